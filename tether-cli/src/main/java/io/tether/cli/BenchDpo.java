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
                "precomputed reference log-probs; tokens/s = 2 x batch x (prompt + completion) per step; peak RSS (VmHWM) of each phase,",
                "each phase in its own JVM. Phases: sft, live (full, live reference), precomputed (full), lora (r 16, reference =",
                "adapters off), lora_precomputed (r 16, precomputed reference). Last line: tokens_per_second=<DPO, live reference or",
                "--precompute-ref>, when those phases ran."})
final class BenchDpo implements Callable<Integer> {
    @ParentCommand BenchCommand bench;
    @Mixin Dims d;
    @Option(names = "--batch", defaultValue = "8", description = "pairs per step") int batch;
    @Option(names = "--prompt-len", defaultValue = "64") int promptLen;
    @Option(names = "--completion-len", defaultValue = "64") int completionLen;
    @Option(names = "--steps", defaultValue = "4",
            description = "timed steps per phase after one warm-up; 0 runs one step and times it, warm-up included (a real shape's peak RSS)")
    int steps;
    @Option(names = "--precompute-ref", description = "report the precomputed-reference figure on the last line") boolean precomputeRef;
    @Option(names = "--phase", hidden = true, description = "run one phase (sft, live, precomputed) in this process") String phase;
    @Option(names = "--gradient-checkpointing", description = "every phase recomputes block activations in backward instead of keeping them")
    boolean gradientCheckpointing;
    @Option(names = "--bf16", description = "bf16 autocast in every phase (fp32 master weights and loss math, as TRL's bf16: true)") boolean bf16;
    @Option(names = "--phases", split = ",", defaultValue = "sft,live,precomputed,lora", description = "phases to run (default: ${DEFAULT-VALUE})")
    List<String> phases;
    @Option(names = "--logprob-chunk", defaultValue = "-1",
            description = "positions per log-prob chunk: -1 automatic (2^25 logits per chunk), 0 the unchunked B x T x V logits (default: ${DEFAULT-VALUE})")
    int logprobChunk;
    @Option(names = "--compare-chunking", description = "also run each phase with unchunked log-probs (keys with _unchunked)") boolean compareChunking;

    /**
     * Each phase runs in its own JVM so that its peak RSS is its own: within one process the allocator keeps
     * the previous phase's freed memory and every later peak would include it.
     */
    private ObjectNode phaseInChild(String which, int chunk) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dorg.bytedeco.javacpp.maxphysicalbytes=0", "-Dorg.bytedeco.javacpp.maxbytes=0", "-cp", System.getProperty("java.class.path"),
                TetherCommand.class.getName(), "--threads", Integer.toString(Torch.threads()), "bench", "dpo", "--phase", which,
                "--d", Integer.toString(d.hidden), "--layers", Integer.toString(d.layers), "--heads", Integer.toString(d.heads), "--kv-heads", Integer.toString(d.kvHeads),
                "--ffn", Integer.toString(d.ffn), "--vocab", Integer.toString(d.vocab), "--batch", Integer.toString(batch), "--prompt-len", Integer.toString(promptLen),
                "--completion-len", Integer.toString(completionLen), "--steps", Integer.toString(steps), "--logprob-chunk", Integer.toString(chunk)));
        if (gradientCheckpointing) cmd.add("--gradient-checkpointing");
        if (bf16) cmd.add("--bf16");
        if (d.realShape != null) cmd.addAll(List.of("--real-shape", d.realShape));
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
            o.put("shape", String.format("%s pairs=%d prompt=%d completion=%d", d.describe(), batch, promptLen, completionLen));
            putCpu(o);
            o.put("threads", Torch.threads());
            o.put("bf16", bf16);
            o.put("gradient_checkpointing", gradientCheckpointing);
            o.put("logprob_chunk", logprobChunk);
            o.put("matmul_1024_fp32_gflops_peak", round(peak[1]));
            for (String which : phases) {
                phaseInChild(which, logprobChunk).properties().forEach(e -> o.set(e.getKey(), e.getValue()));
                if (compareChunking && logprobChunk != 0)
                    phaseInChild(which, 0).properties().forEach(e -> { if (!e.getKey().equals("shape")) o.set(e.getKey() + "_unchunked", e.getValue()); });
            }
            ratio(o, "dpo_live_over_sft_step", "dpo_live_reference_step_seconds_median", "sft_step_seconds_median");
            ratio(o, "dpo_precomputed_over_sft_step", "dpo_precomputed_reference_step_seconds_median", "sft_step_seconds_median");
            ratio(o, "precomputed_peak_rss_over_sft", "dpo_precomputed_reference_peak_rss_mb", "sft_peak_rss_mb");
            ratio(o, "lora_peak_rss_over_full_with_reference", "dpo_lora_peak_rss_mb", "dpo_live_reference_peak_rss_mb");
            ratio(o, "lora_step_over_full_with_reference", "dpo_lora_step_seconds_median", "dpo_live_reference_step_seconds_median");
            for (String ph : new String[] {"sft", "dpo_live_reference", "dpo_precomputed_reference", "dpo_lora", "dpo_lora_precomputed_reference"})
                ratio(o, ph + "_peak_rss_chunked_over_unchunked", ph + "_peak_rss_mb", ph + "_peak_rss_mb_unchunked");
            report(bench.root.spec.commandLine().getOut(), null, o);
            double tokensPerStep = 2.0 * batch * (promptLen + completionLen);
            String last = precomputeRef ? "dpo_precomputed_reference_step_seconds_median" : "dpo_live_reference_step_seconds_median";
            if (o.has(last)) bench.root.spec.commandLine().getOut().printf("tokens_per_second=%.1f%n", tokensPerStep / o.get(last).asDouble());
            bench.root.spec.commandLine().getOut().flush();
            return 0;
        }
        io.tether.model.LogProbs.setChunkPositions(logprobChunk);
        ObjectNode o = JSON.createObjectNode();
        o.put("benchmark", "dpo");
        o.put("shape", String.format("%s pairs=%d prompt=%d completion=%d", d.describe(), batch, promptLen, completionLen));
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
            case "lora_precomputed" -> {
                // LoRA with reference log-probs computed before training (TRL's precompute_ref_log_probs): no reference pass.
                List<io.tether.train.PreferenceTraining.Pair> precomputed = new ArrayList<>();
                for (var p : pairs) precomputed.add(p.withReference(-100.0, -100.0));
                var settings = new io.tether.train.PreferenceTraining.Settings(io.tether.train.PreferenceTraining.Kind.DPO,
                        io.tether.objective.DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, null, 0, 0);
                phase(o, "dpo_lora_precomputed_reference", config, precomputed, batch, new io.tether.train.PreferenceTraining(settings), tokensPerStep,
                        new io.tether.model.LoraAdapters.Config(16, 32, 0.0, List.of("all-linear"), false));
            }
            default -> throw new ConfigException("--phase must be sft, live, precomputed, lora or lora_precomputed, got '" + phase + "'");
        }
        o.remove("benchmark");
        o.remove("matmul_1024_fp32_gflops_peak");
        bench.root.spec.commandLine().getOut().println(o.toString());
        bench.root.spec.commandLine().getOut().flush();
        return 0;
    }

    /** {@code name} = a / b when both keys are in {@code o}. */
    private static void ratio(ObjectNode o, String name, String a, String b) {
        if (o.has(a) && o.has(b)) o.put(name, round3(o.get(a).asDouble() / o.get(b).asDouble()));
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
            var c = new io.tether.train.TrainerConfig(steps + 1, 1, perStep, 1, 1e-5, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 0, 1, 0, 0, 1, "stop", bf16)
                    .withGradientCheckpointing(gradientCheckpointing);
            times = stepSeconds(m, method, data, c, "tether-bench-dpo", steps == 0);
        }
        double sec = median(times);
        o.put(name + (steps == 0 ? "_first_step_seconds" : "_step_seconds_median"), round3(sec));
        o.put(name + "_tokens_per_second", round(tokensPerStep / sec));
        o.put(name + "_peak_rss_mb", round(io.tether.engine.ProcessMemory.peakResidentMb()));
        return sec;
    }
}
