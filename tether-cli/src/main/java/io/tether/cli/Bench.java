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

    /** The model's dimensions on the shared bench shape (Llama layout). */
    static final class Dims {
        @Option(names = {"--d", "--hidden"}, defaultValue = "512") int hidden;
        @Option(names = "--layers", defaultValue = "8") int layers;
        @Option(names = "--heads", defaultValue = "8") int heads;
        @Option(names = "--kv-heads", defaultValue = "8") int kvHeads;
        @Option(names = "--ffn", defaultValue = "1376") int ffn;
        @Option(names = "--vocab", defaultValue = "4096") int vocab;

        ModelConfig config(int maxPositions) {
            return ModelConfig.llama(vocab, hidden, layers, heads, kvHeads, ffn, maxPositions);
        }
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
            Random r = new Random(seed);
            long[] ids = new long[rows * cols];
            for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(dims.vocab);
            return ids;
        }

        /** Forward FLOPs: 2 x (non-embedding parameters) per token plus causal attention (QK^T and AV, half the square). */
        double forwardFlops(CausalLM m, int rows, int len) {
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
        o.put("shape", String.format("llama d=%d layers=%d heads=%d kv=%d ffn=%d vocab=%d batch=%d seq=%d",
                s.dims.hidden, s.dims.layers, s.dims.heads, s.dims.kvHeads, s.dims.ffn, s.dims.vocab, s.batch, s.seq));
        o.put("cpu", cpuModel());
        o.put("threads", Torch.threads());
        o.put("cores", Runtime.getRuntime().availableProcessors());
        o.put("matmul_1024_fp32_gflops_median", round(peak[0]));
        o.put("matmul_1024_fp32_gflops_peak", round(peak[1]));
        return o;
    }

    /** /proc/cpuinfo's model name (the host is shared, so a figure needs its CPU beside it); "unknown" elsewhere. */
    static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo")))
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
        return "unknown";
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
        List<Double> times = new ArrayList<>();
        train(m, method, data, config, new Trainer.Listener() {
            @Override
            public void onStep(int step, int total, Map<String, Object> metrics) {
                if (step > 1) times.add((Double) metrics.get("step_seconds"));   // step 1 warms up
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
