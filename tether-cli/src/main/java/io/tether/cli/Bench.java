package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import io.tether.engine.AtomicFiles;
import io.tether.engine.StepScope;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;
import io.tether.train.TrainingMethod;

/**
 * What the {@code tether bench} benchmarks share: the bench shape's options, the matmul peak measured in the same
 * process, medians and rounding, the JSON report, and timing optimizer steps of the real training loop.
 */
final class Bench {
    private Bench() {}

    static final ObjectMapper JSON = new ObjectMapper();

    /** The model's dimensions on the shared bench shape (Llama layout), or a real model's shape with random weights. */
    static final class Dims {
        @Option(names = {"--d", "--hidden"}, defaultValue = "512") int hidden;
        @Option(names = "--layers", defaultValue = "8") int layers;
        @Option(names = "--heads", defaultValue = "8") int heads;
        @Option(names = "--kv-heads", defaultValue = "8") int kvHeads;
        @Option(names = "--ffn", defaultValue = "1376") int ffn;
        @Option(names = "--vocab", defaultValue = "4096") int vocab;
        @Option(names = "--real-shape", paramLabel = "<model>",
                description = "a real model's shape with random weights instead of the dimensions above: qwen2.5-0.5b (d 896, 24 layers, 14 heads, 2 KV heads, FFN 4864, vocab 151,936, tied)")
        String realShape;

        /** Applies {@code --real-shape} to the dimensions (so reports and child processes see them); idempotent. */
        Dims resolve() {
            if (realShape == null) return this;
            if (!realShape.equals("qwen2.5-0.5b")) throw new io.tether.engine.ConfigException("--real-shape: qwen2.5-0.5b is the only preset, got '" + realShape + "'");
            hidden = 896; layers = 24; heads = 14; kvHeads = 2; ffn = 4864; vocab = 151_936;
            return this;
        }

        ModelConfig config(int maxPositions) {
            resolve();
            if (realShape == null) return ModelConfig.llama(vocab, hidden, layers, heads, kvHeads, ffn, maxPositions);
            // Qwen2.5-0.5B's config.json, less what random weights do not need: q/k/v biases, tied embeddings.
            ObjectNode j = JSON.createObjectNode();
            j.putArray("architectures").add("Qwen2ForCausalLM");
            j.put("model_type", "qwen2");
            j.put("vocab_size", vocab);
            j.put("hidden_size", hidden);
            j.put("num_hidden_layers", layers);
            j.put("num_attention_heads", heads);
            j.put("num_key_value_heads", kvHeads);
            j.put("intermediate_size", ffn);
            j.put("max_position_embeddings", Math.max(maxPositions, 32768));
            j.put("rms_norm_eps", 1e-6);
            j.put("rope_theta", 1000000.0);
            j.put("hidden_act", "silu");
            j.put("tie_word_embeddings", true);
            j.put("initializer_range", 0.02);
            j.put("torch_dtype", "float32");
            return ModelConfig.parse(j, Path.of("<" + realShape + " shape>"));
        }

        String describe() {
            resolve();
            return String.format("%s d=%d layers=%d heads=%d kv=%d ffn=%d vocab=%d%s", realShape == null ? "llama" : realShape,
                    hidden, layers, heads, kvHeads, ffn, vocab, realShape == null ? "" : " tied");
        }
    }

    /**
     * The CPU's model name and the flags that decide bf16's speed (figures from different machines do not compare):
     * avx512_bf16 / amx_bf16 give bf16 matmuls their own instructions, without them bf16 is converted to fp32.
     */
    static void putCpu(ObjectNode o) {
        String model = "unknown", flags = "";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (model.equals("unknown") && line.startsWith("model name")) model = line.substring(line.indexOf(':') + 1).trim();
                if (flags.isEmpty() && line.startsWith("flags")) flags = line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (IOException | RuntimeException e) {
            // Not Linux: the report says unknown.
        }
        List<String> present = new ArrayList<>();
        List<String> all = Arrays.asList(flags.split("\\s+"));
        for (String f : new String[] {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}) if (all.contains(f)) present.add(f);
        o.put("cpu_model", model);
        o.put("cpu_flags", String.join(" ", present));
    }

    /** The bench shape: dimensions, batch, sequence length, timed runs and the optional JSON file. */
    static final class Shape {
        @Mixin Dims dims;
        @Option(names = "--batch", defaultValue = "8") int batch;
        @Option(names = "--seq", defaultValue = "256") int seq;
        @Option(names = "--runs", defaultValue = "5", description = "timed runs; the median is reported (default: ${DEFAULT-VALUE})") int runs;
        @Mixin JsonFile out;

        ModelConfig config(int maxPositions) {
            return dims.config(maxPositions);
        }

        long[] randomIds(long seed, int rows, int cols) {
            dims.resolve();
            Random r = new Random(seed);
            long[] ids = new long[rows * cols];
            for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(dims.vocab);
            return ids;
        }

        /** Forward FLOPs: 2 x (non-embedding parameters) per token plus causal attention (QK^T and AV, half the square). */
        double forwardFlops(CausalLM m, int rows, int len) {
            dims.resolve();
            long nonEmbedding = m.parameterCount() - (long) dims.vocab * dims.hidden;
            double tokens = (double) rows * len;
            return 2.0 * nonEmbedding * tokens + 2.0 * dims.layers * rows * (double) len * len * dims.hidden;
        }
    }

    /** {@code --out}: the results also as a JSON file. */
    static final class JsonFile {
        @Option(names = "--out", paramLabel = "<out>", description = "also write the results as JSON") Path path;
    }

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

    /** The result as pretty JSON on {@code out} and, when {@code file} is given, in that file. */
    static void report(PrintWriter out, Path file, ObjectNode result) throws IOException {
        out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result));
        out.flush();
        if (file != null) AtomicFiles.write(file, w -> w.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result) + "\n"));
    }

    /** The report's opening fields: the benchmark, its shape, threads, cores and the same-run matmul peak. */
    static ObjectNode header(String what, Shape s, double[] peak) {
        ObjectNode o = JSON.createObjectNode();
        o.put("benchmark", what);
        o.put("shape", String.format("%s batch=%d seq=%d", s.dims.describe(), s.batch, s.seq));
        putCpu(o);
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

    /** A run of the real training loop in a temporary run directory, handed the directory before it is deleted. */
    interface RunReader<T> {
        T read(Path runDir) throws IOException;
    }

    /**
     * Trains {@code method} on {@code data} with {@code config} in a temporary run directory (deleted afterwards),
     * reporting steps to {@code listener} (may be null), and returns what {@code reader} reads from the directory.
     */
    static <E, T> T train(CausalLM m, TrainingMethod<E> method, List<E> data, TrainerConfig config, Trainer.Listener listener, String prefix,
                          RunReader<T> reader) throws IOException {
        Path dir = Files.createTempDirectory(prefix);
        try {
            new Trainer<>(m, method, data, List.of(), config, new RunDirectory(dir), GradientSync.SINGLE_PROCESS, listener, null).train(false);
            return reader.read(dir);
        } finally {
            deleteTree(dir);
        }
    }

    /** The seconds of each optimizer step of a training run after the first, which warms up. */
    static <E> List<Double> stepSeconds(CausalLM m, TrainingMethod<E> method, List<E> data, TrainerConfig config, String prefix) throws IOException {
        return stepSeconds(m, method, data, config, prefix, false);
    }

    /** {@link #stepSeconds}, or with {@code withFirst} every step's, the first (warm-up) included: for one-step runs. */
    static <E> List<Double> stepSeconds(CausalLM m, TrainingMethod<E> method, List<E> data, TrainerConfig config, String prefix, boolean withFirst) throws IOException {
        List<Double> times = new ArrayList<>();
        train(m, method, data, config, new Trainer.Listener() {
            @Override
            public void onStep(int step, int total, Map<String, Object> metrics) {
                if (step > 1 || withFirst) times.add((Double) metrics.get("step_seconds"));   // step 1 warms up
            }
        }, prefix, dir -> null);
        return times;
    }

    static void deleteTree(Path p) throws IOException {
        try (var w = Files.walk(p)) {
            for (Path f : w.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
        }
    }
}
