package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.ProcessGroup;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.train.DataParallel;
import io.tether.train.GradientSync;
import io.tether.train.PreferenceTraining;
import io.tether.train.RunDirectory;
import io.tether.train.Sft;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;
import io.tether.train.TrainingMethod;

/**
 * {@code tether bench dp}: data-parallel scaling on this machine. Each configuration is a real {@code tether launch}
 * (run in this JVM, so its child JVMs, environment variables, thread counts and rendezvous are exactly a user's):
 * 1 process with all the threads against 2 processes with half each, on the same global batch. The ranks train
 * through the trainer with the {@link DataParallel} sync that {@code tether sft} builds under a launch, and rank 0
 * reports its own optimizer-step times after the warm-up step. The 2-process run then times the all-reduce of the
 * model's gradient bytes over loopback. DPO goes through the same trainer and sync, built here: {@code tether dpo}
 * itself still refuses to run under a launch until it builds its trainer through the run session.
 */
@Command(name = "dp", mixinStandardHelpOptions = true,
        description = {"Data-parallel scaling: SFT and DPO (live reference) tokens/s of 1 process x 2t threads against 2 processes",
                "x t threads (t = max(1, cores / 2)) on the same global batch, each configuration started as `tether launch` starts",
                "ranks; scaling efficiency = 2-process tokens/s / 1-process tokens/s; all-reduce bandwidth of the model's gradient",
                "between 2 processes over loopback (median of --runs, MB = 10^6 bytes)."})
final class BenchDp implements Callable<Integer> {
    @ParentCommand BenchCommand bench;
    @Mixin Shape s;
    @Option(names = "--pairs", defaultValue = "8", description = "DPO pairs per global batch (default: ${DEFAULT-VALUE})") int pairs;
    @Option(names = "--prompt-len", defaultValue = "64", description = "DPO prompt tokens (default: ${DEFAULT-VALUE})") int promptLen;
    @Option(names = "--completion-len", defaultValue = "64", description = "DPO completion tokens (default: ${DEFAULT-VALUE})") int completionLen;
    @Option(names = "--steps", defaultValue = "4", description = "timed optimizer steps per run, after one warm-up step (default: ${DEFAULT-VALUE})") int steps;
    @Option(names = "--methods", split = ",", defaultValue = "sft,dpo", description = "methods to run (default: ${DEFAULT-VALUE})") List<String> methods;
    @Option(names = "--master-port", defaultValue = "0", description = "rendezvous port of the launches; 0 picks a free one per launch (default: ${DEFAULT-VALUE})")
    int masterPort;
    @Option(names = "--worker", hidden = true, description = "run as one rank of a launch, training --methods") boolean worker;

    private static final int WORLD = 2;

    @Override
    public Integer call() throws Exception {
        validate();
        return worker ? work() : lead();
    }

    /** Refuses what would make the two configurations train different batches, before any process starts. */
    private void validate() {
        if (steps < 1) throw new ConfigException("option '--steps': must be >= 1 (one warm-up step is not timed), got " + steps);
        if (s.runs < 1) throw new ConfigException("option '--runs': must be >= 1, got " + s.runs);
        if (s.seq < 2) throw new ConfigException("option '--seq': must be >= 2, got " + s.seq);
        if (s.batch < WORLD || s.batch % WORLD != 0)
            throw new ConfigException("option '--batch': the global batch must split evenly over " + WORLD + " processes, got " + s.batch);
        if (pairs < WORLD || pairs % WORLD != 0)
            throw new ConfigException("option '--pairs': the global batch must split evenly over " + WORLD + " processes, got " + pairs);
        if (promptLen < 1 || completionLen < 1) throw new ConfigException("option '--prompt-len'/'--completion-len': must be >= 1");
        if (masterPort < 0 || masterPort > 65535) throw new ConfigException("option '--master-port': must be in [0, 65535], got " + masterPort);
        if (methods.isEmpty()) throw new ConfigException("option '--methods': name sft, dpo or both");
        for (String m : methods)
            if (!m.equals("sft") && !m.equals("dpo")) throw new ConfigException("option '--methods': sft or dpo, got '" + m + "'");
    }

    private double tokensPerStep(String method) {
        return method.equals("sft") ? (double) s.batch * s.seq : 2.0 * pairs * (promptLen + completionLen);
    }

    /** The parent: the peak and CPU, then each method as 1 and 2 ranks of a launch, and the ratios. */
    private int lead() throws Exception {
        String loadAtStart = loadAverage();
        bench.root.initEngine();
        double[] peak = matmulPeak();
        int cores = Runtime.getRuntime().availableProcessors();
        int perRank = Math.max(1, cores / WORLD);
        ObjectNode o = JSON.createObjectNode();
        o.put("benchmark", "dp");
        o.put("shape", String.format("%s sft batch=%d seq=%d; dpo pairs=%d prompt=%d completion=%d", s.dims.describe(), s.batch, s.seq, pairs, promptLen, completionLen));
        putCpu(o);
        o.put("cores", cores);
        o.put("load_average_at_start", loadAtStart);
        o.put("threads", Torch.threads());
        o.put("matmul_1024_fp32_gflops_median", round(peak[0]));
        o.put("matmul_1024_fp32_gflops_peak", round(peak[1]));
        o.put("steps_timed", steps);
        o.put("one_process_threads", WORLD * perRank);
        o.put("two_processes_threads_each", perRank);
        // One launch per configuration trains every method in turn: a JVM's start-up is seconds, and paying it once
        // per configuration keeps the comparison the same (both configurations start one JVM per process).
        ObjectNode one = launch(1, WORLD * perRank), two = launch(WORLD, perRank);
        o.put("1proc_peak_rss_mb", one.get("peak_rss_mb").asDouble());
        o.put("2proc_rank0_peak_rss_mb", two.get("peak_rss_mb").asDouble());
        for (String method : methods) {
            double tokens = tokensPerStep(method);
            double sec1 = one.get(method + "_step_seconds_median").asDouble(), sec2 = two.get(method + "_step_seconds_median").asDouble();
            o.put(method + "_tokens_per_step", tokens);
            o.put(method + "_1proc_step_seconds_median", round3(sec1));
            o.put(method + "_1proc_tokens_per_second", round(tokens / sec1));
            o.put(method + "_2proc_step_seconds_median", round3(sec2));
            o.put(method + "_2proc_tokens_per_second", round(tokens / sec2));
            o.put(method + "_scaling_efficiency", round3(sec1 / sec2));
            // Every timed step, so a reader can see a contended step (the host is shared) behind a median.
            o.set(method + "_1proc_step_seconds", one.get(method + "_step_seconds"));
            o.set(method + "_2proc_step_seconds", two.get(method + "_step_seconds"));
        }
        long bytes = two.get("gradient_bytes").asLong();
        o.put("parameters", two.get("parameters").asLong());
        o.put("gradient_bytes", bytes);
        o.put("allreduce_runs", s.runs);
        double flat = two.get("allreduce_flat_seconds_median").asDouble(), grads = two.get("allreduce_gradients_seconds_median").asDouble();
        o.put("allreduce_flat_ms_median", round3(flat * 1e3));
        o.put("allreduce_mb_per_second", round(bytes / flat / 1e6));
        o.put("allreduce_gradients_ms_median", round3(grads * 1e3));
        o.put("allreduce_gradients_mb_per_second", round(bytes / grads / 1e6));
        String first = methods.get(0);
        o.put("allreduce_share_of_2proc_" + first + "_step", round3(grads / two.get(first + "_step_seconds_median").asDouble()));
        report(bench.root.spec.commandLine().getOut(), s.out.path, o);
        return 0;
    }

    /**
     * One configuration: {@code tether --threads T launch --nproc-per-node N -- bench dp --worker ...} in this
     * JVM; rank 0's report is its JSON line on stdout (the launcher prefixes it with {@code [rank 0]}).
     */
    private ObjectNode launch(int nproc, int threads) throws IOException {
        int port = masterPort != 0 ? masterPort : freePort();
        List<String> args = new ArrayList<>(List.of("--threads", Integer.toString(threads), "launch", "--nproc-per-node", Integer.toString(nproc),
                "--master-port", Integer.toString(port), "--", "bench", "dp", "--worker", "--methods", String.join(",", methods),
                "--d", Integer.toString(s.dims.hidden), "--layers", Integer.toString(s.dims.layers), "--heads", Integer.toString(s.dims.heads),
                "--kv-heads", Integer.toString(s.dims.kvHeads), "--ffn", Integer.toString(s.dims.ffn), "--vocab", Integer.toString(s.dims.vocab),
                "--batch", Integer.toString(s.batch), "--seq", Integer.toString(s.seq), "--runs", Integer.toString(s.runs),
                "--pairs", Integer.toString(pairs), "--prompt-len", Integer.toString(promptLen), "--completion-len", Integer.toString(completionLen),
                "--steps", Integer.toString(steps)));
        if (s.dims.realShape != null) args.addAll(List.of("--real-shape", s.dims.realShape));
        PrintWriter err = bench.root.spec.commandLine().getErr();
        StringWriter out = new StringWriter();
        int code = TetherCommand.run(args.toArray(new String[0]), new PrintWriter(out, true), err);
        String prefix = "[rank 0] {";
        for (String line : out.toString().split("\n"))
            if (line.startsWith(prefix) && code == 0) return (ObjectNode) JSON.readTree(line.substring(prefix.length() - 1));
        throw new IOException("bench dp: the " + nproc + "-process launch failed (exit code " + code + "): " + out);
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    /** The 1-minute load average (Linux), so a reader can tell a contended run; "unknown" elsewhere. */
    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+")[0];
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    /**
     * One rank of a launch: joins the group the launch's variables name (as {@code RunSession.gradientSync} does;
     * none for a world of one), trains each method on its share of each global batch through the real loop, a fresh
     * model each, and on rank 0 prints the median optimizer-step seconds after the warm-up step. With 2 ranks the
     * first method's model then times the all-reduce of its gradient's bytes.
     */
    private int work() throws IOException {
        bench.root.initEngine();
        ProcessGroup.Env env = ProcessGroup.Env.read(System.getenv());
        ProcessGroup group = env == null ? null : ProcessGroup.join(env);
        try {
            GradientSync sync = group == null ? GradientSync.SINGLE_PROCESS : new DataParallel(group);
            ObjectNode o = JSON.createObjectNode();
            o.put("world_size", sync.worldSize());
            o.put("threads", Torch.threads());
            ModelConfig config = s.config(Math.max(2048, Math.max(s.seq, promptLen + completionLen)));
            for (String method : methods) {
                try (CausalLM m = Models.create(config, DType.F32, 0)) {
                    List<Double> times = method.equals("sft") ? train(m, new Sft(), sftRows(), s.batch / sync.worldSize(), sync)
                            : trainDpo(m, config, sync);
                    o.put(method + "_step_seconds_median", median(times));
                    List<Double> rounded = new ArrayList<>();
                    for (double t : times) rounded.add(round3(t));
                    o.set(method + "_step_seconds", JSON.valueToTree(rounded));
                    if (group != null && method.equals(methods.get(0))) allReduce(m, group, new DataParallel(group), o);
                }
            }
            o.put("peak_rss_mb", round(io.tether.engine.ProcessMemory.peakResidentMb()));
            if (sync.rank() == 0) {
                bench.root.spec.commandLine().getOut().println(o.toString());
                bench.root.spec.commandLine().getOut().flush();
            }
            return 0;
        } finally {
            if (group != null) group.close();
        }
    }

    private List<Double> trainDpo(CausalLM m, ModelConfig config, GradientSync sync) throws IOException {
        try (CausalLM reference = Models.create(config, DType.F32, 0)) {
            var settings = new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, io.tether.objective.DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, reference, 0, 0);
            return train(m, new PreferenceTraining(settings), dpoPairs(), pairs / sync.worldSize(), sync);
        }
    }

    /** Step seconds of each optimizer step after the first (which warms up), as this rank's trainer measured them. */
    private <E> List<Double> train(CausalLM m, TrainingMethod<E> method, List<E> data, int perDevice, GradientSync sync) throws IOException {
        TrainerConfig c = new TrainerConfig(steps + 1, 1, perDevice, 1, 1e-5, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 0, 1, 0, 0, 1, "stop", false);
        List<Double> times = new ArrayList<>();
        Path dir = Files.createTempDirectory("tether-bench-dp");
        try {
            new Trainer<>(m, method, data, List.of(), c, new RunDirectory(dir), sync, new Trainer.Listener() {
                @Override
                public void onStep(int step, int total, Map<String, Object> metrics) {
                    if (step > 1) times.add((Double) metrics.get("step_seconds"));   // step 1 warms up
                }
            }, null).train(false);
        } finally {
            deleteTree(dir);
        }
        return times;
    }

    /**
     * The all-reduce of the model's gradient bytes between the ranks: ProcessGroup.allReduceSum on one flat fp32
     * buffer of that size (the wire), and DataParallel.allReduceGradients on the model's gradients (what a step pays:
     * the wire plus copies into and out of 25 MB buckets). Each timed call starts after a barrier, so a rank that is
     * late does not count; two untimed calls first connect and warm the buffers.
     */
    private void allReduce(CausalLM m, ProcessGroup group, DataParallel dp, ObjectNode o) {
        Collection<Tensor> params = m.parameters().values();
        long elements = 0;
        for (Tensor p : params) elements += p.numel();
        o.put("parameters", elements);
        o.put("gradient_bytes", elements * 4);
        List<Double> flat = new ArrayList<>(), grads = new ArrayList<>();
        try (StepScope scope = new StepScope()) {
            Tensor buffer = Tensors.empty(DType.F32, elements).fill_(new org.bytedeco.pytorch.Scalar(1.0));
            for (int r = -2; r < s.runs; r++) {
                group.barrier();
                long t0 = System.nanoTime();
                group.allReduceSum(buffer);
                if (r >= 0) flat.add((System.nanoTime() - t0) / 1e9);
            }
        }
        for (int r = -2; r < s.runs; r++) {
            group.barrier();
            long t0 = System.nanoTime();
            dp.allReduceGradients(params);
            if (r >= 0) grads.add((System.nanoTime() - t0) / 1e9);
        }
        o.put("allreduce_flat_seconds_median", median(flat));
        o.put("allreduce_gradients_seconds_median", median(grads));
    }

    private List<Sft.Row> sftRows() {
        List<Sft.Row> rows = new ArrayList<>();
        for (int i = 0; i < s.batch * (steps + 1); i++) {
            long[] ids = s.randomIds(i, 1, s.seq), mask = new long[s.seq];
            Arrays.fill(mask, 1);
            rows.add(new Sft.Row(ids, mask, new int[] {0}));
        }
        return rows;
    }

    private List<PreferenceTraining.Pair> dpoPairs() {
        Random r = new Random(1);
        List<PreferenceTraining.Pair> out = new ArrayList<>();
        for (int i = 0; i < pairs * (steps + 1); i++) {
            long[] p = new long[promptLen], c = new long[completionLen], j = new long[completionLen];
            for (int k = 0; k < promptLen; k++) p[k] = r.nextInt(s.dims.vocab);
            for (int k = 0; k < completionLen; k++) { c[k] = r.nextInt(s.dims.vocab); j[k] = r.nextInt(s.dims.vocab); }
            out.add(new PreferenceTraining.Pair(p, c, j, Double.NaN, Double.NaN));
        }
        return out;
    }
}
