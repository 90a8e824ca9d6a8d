package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;

@Command(name = "dpo", mixinStandardHelpOptions = true,
        description = {"DPO step cost on the bench shape against an SFT step on the same tokens: with a live reference and with",
                "precomputed reference log-probs; tokens/s = 2 x batch x (prompt + completion) per step; peak RSS of each phase.",
                "Last line: tokens_per_second=<DPO, live reference or --precompute-ref>."})
final class BenchDpo implements Callable<Integer> {
    @ParentCommand BenchCommand bench;
    @Mixin Dims d;
    @Option(names = "--batch", defaultValue = "8", description = "pairs per step") int batch;
    @Option(names = "--prompt-len", defaultValue = "64") int promptLen;
    @Option(names = "--completion-len", defaultValue = "64") int completionLen;
    @Option(names = "--steps", defaultValue = "4", description = "timed steps per phase after one warm-up") int steps;
    @Option(names = "--precompute-ref", description = "report the precomputed-reference figure on the last line") boolean precomputeRef;
    @Option(names = "--phase", hidden = true, description = "run one phase (sft, live, precomputed) in this process") String phase;
    @Option(names = "--gradient-checkpointing", description = "every phase recomputes block activations in backward instead of keeping them")
    boolean gradientCheckpointing;

    /**
     * Each phase runs in its own JVM so that its peak RSS is its own: within one process the allocator keeps
     * the previous phase's freed memory and every later peak would include it.
     */
    private ObjectNode phaseInChild(String which) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dorg.bytedeco.javacpp.maxphysicalbytes=0", "-Dorg.bytedeco.javacpp.maxbytes=0", "-cp", System.getProperty("java.class.path"),
                TetherCommand.class.getName(), "--threads", Integer.toString(Torch.threads()), "bench", "dpo", "--phase", which,
                "--d", Integer.toString(d.hidden), "--layers", Integer.toString(d.layers), "--heads", Integer.toString(d.heads), "--kv-heads", Integer.toString(d.kvHeads),
                "--ffn", Integer.toString(d.ffn), "--vocab", Integer.toString(d.vocab), "--batch", Integer.toString(batch), "--prompt-len", Integer.toString(promptLen),
                "--completion-len", Integer.toString(completionLen), "--steps", Integer.toString(steps)));
        if (gradientCheckpointing) cmd.add("--gradient-checkpointing");
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        try {
            if (p.waitFor() != 0) throw new IOException("bench phase " + which + " failed: " + out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        }
        return (ObjectNode) JSON.readTree(out.substring(out.indexOf('{')));
    }

    @Override
    public Integer call() throws IOException {
        bench.root.initEngine();
        double[] peak = matmulPeak();
        ModelConfig config = d.config(Math.max(2048, promptLen + completionLen));
        Random r = new Random(1);
        List<io.tether.train.PreferenceTraining.Pair> pairs = new ArrayList<>();
        List<io.tether.train.Sft.Row> rows = new ArrayList<>();
        for (int i = 0; i < batch * (steps + 1); i++) {
            long[] p = new long[promptLen], c = new long[completionLen], j = new long[completionLen];
            for (int k = 0; k < promptLen; k++) p[k] = r.nextInt(d.vocab);
            for (int k = 0; k < completionLen; k++) { c[k] = r.nextInt(d.vocab); j[k] = r.nextInt(d.vocab); }
            pairs.add(new io.tether.train.PreferenceTraining.Pair(p, c, j, Double.NaN, Double.NaN));
            for (long[] comp : new long[][] {c, j}) {
                long[] ids = new long[promptLen + completionLen], mask = new long[ids.length];
                System.arraycopy(p, 0, ids, 0, promptLen);
                System.arraycopy(comp, 0, ids, promptLen, completionLen);
                Arrays.fill(mask, promptLen, ids.length, 1);
                rows.add(new io.tether.train.Sft.Row(ids, mask, new int[] {0}));
            }
        }
        if (phase == null) {
            ObjectNode o = JSON.createObjectNode();
            o.put("benchmark", "dpo");
            o.put("gradient_checkpointing", gradientCheckpointing);
            o.put("matmul_1024_fp32_gflops_peak", round(peak[1]));
            for (String which : new String[] {"sft", "live", "precomputed", "lora"}) phaseInChild(which).properties().forEach(e -> o.set(e.getKey(), e.getValue()));
            double sft = o.get("sft_step_seconds_median").asDouble(), live = o.get("dpo_live_reference_step_seconds_median").asDouble(),
                    pre = o.get("dpo_precomputed_reference_step_seconds_median").asDouble();
            o.put("dpo_live_over_sft_step", round3(live / sft));
            o.put("dpo_precomputed_over_sft_step", round3(pre / sft));
            o.put("precomputed_peak_rss_over_sft", round3(o.get("dpo_precomputed_reference_peak_rss_mb").asDouble() / o.get("sft_peak_rss_mb").asDouble()));
            o.put("lora_peak_rss_over_full_with_reference", round3(o.get("dpo_lora_peak_rss_mb").asDouble() / o.get("dpo_live_reference_peak_rss_mb").asDouble()));
            o.put("lora_step_over_full_with_reference", round3(o.get("dpo_lora_step_seconds_median").asDouble() / live));
            report(bench.root.spec.commandLine().getOut(), null, o);
            double tokensPerStep = 2.0 * batch * (promptLen + completionLen);
            bench.root.spec.commandLine().getOut().printf("tokens_per_second=%.1f%n", tokensPerStep / (precomputeRef ? pre : live));
            bench.root.spec.commandLine().getOut().flush();
            return 0;
        }
        ObjectNode o = JSON.createObjectNode();
        o.put("benchmark", "dpo");
        o.put("shape", String.format("llama d=%d layers=%d heads=%d kv=%d ffn=%d vocab=%d pairs=%d prompt=%d completion=%d", d.hidden, d.layers, d.heads, d.kvHeads, d.ffn, d.vocab, batch, promptLen, completionLen));
        o.put("matmul_1024_fp32_gflops_peak", round(peak[1]));
        double tokensPerStep = 2.0 * batch * (promptLen + completionLen);
        switch (phase) {
            case "sft" -> phase(o, "sft", config, rows, 2 * batch, new io.tether.train.Sft(), tokensPerStep);
            case "live" -> {
                try (CausalLM reference = Models.create(config, DType.F32, 0)) {
                    var settings = new io.tether.train.PreferenceTraining.Settings(io.tether.train.PreferenceTraining.Kind.DPO,
                            io.tether.objective.DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, reference, 0, 0);
                    phase(o, "dpo_live_reference", config, pairs, batch, new io.tether.train.PreferenceTraining(settings), tokensPerStep);
                }
            }
            case "precomputed" -> {
                List<io.tether.train.PreferenceTraining.Pair> precomputed = new ArrayList<>();
                for (var p : pairs) precomputed.add(p.withReference(-100.0, -100.0));
                var settings = new io.tether.train.PreferenceTraining.Settings(io.tether.train.PreferenceTraining.Kind.DPO,
                        io.tether.objective.DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, null, 0, 0);
                phase(o, "dpo_precomputed_reference", config, precomputed, batch, new io.tether.train.PreferenceTraining(settings), tokensPerStep);
            }
            case "lora" -> {
                // One model in memory: LoRA (r 16, all-linear) on the policy, the reference is the policy with adapters off.
                var settings = new io.tether.train.PreferenceTraining.Settings(io.tether.train.PreferenceTraining.Kind.DPO,
                        io.tether.objective.DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, null, 0, 0);
                phase(o, "dpo_lora", config, pairs, batch, new io.tether.train.PreferenceTraining(settings), tokensPerStep,
                        new io.tether.model.LoraAdapters.Config(16, 32, 0.0, List.of("all-linear"), false));
            }
            default -> throw new ConfigException("--phase must be sft, live, precomputed or lora");
        }
        o.remove("benchmark");
        o.remove("matmul_1024_fp32_gflops_peak");
        bench.root.spec.commandLine().getOut().println(o.toString());
        bench.root.spec.commandLine().getOut().flush();
        return 0;
    }

    /** Median step seconds of {@code steps} optimizer steps of {@code method} (after one warm-up), with this phase's peak RSS. */
    private <E> double phase(ObjectNode o, String name, ModelConfig config, List<E> data, int perStep, io.tether.train.TrainingMethod<E> method, double tokensPerStep) throws IOException {
        return phase(o, name, config, data, perStep, method, tokensPerStep, null);
    }

    private <E> double phase(ObjectNode o, String name, ModelConfig config, List<E> data, int perStep, io.tether.train.TrainingMethod<E> method,
                             double tokensPerStep, io.tether.model.LoraAdapters.Config lora) throws IOException {
        List<Double> times;
        try (CausalLM m = Models.create(config, DType.F32, 0)) {
            if (lora != null) io.tether.model.LoraAdapters.attach(m, lora, 0);
            var c = new io.tether.train.TrainerConfig(steps + 1, 1, perStep, 1, 1e-5, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 0, 1, 0, 0, 1, "stop", false)
                    .withGradientCheckpointing(gradientCheckpointing);
            times = stepSeconds(m, method, data, c, "tether-bench-dpo");
        }
        double sec = median(times);
        o.put(name + "_step_seconds_median", round3(sec));
        o.put(name + "_tokens_per_second", round(tokensPerStep / sec));
        o.put(name + "_peak_rss_mb", round(io.tether.engine.ProcessMemory.peakResidentMb()));
        return sec;
    }
}
