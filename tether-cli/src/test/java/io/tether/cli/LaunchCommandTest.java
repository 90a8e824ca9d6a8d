package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Safetensors;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.train.RunDirectory;

/**
 * `tether launch` on loopback: two SFT processes against one on the same global batch (the Llama fixture), a rank
 * killed mid-run, and ranks started by hand (as a scheduler would) with different configs.
 */
class LaunchCommandTest {
    @TempDir Path tmp;
    private static final Path LLAMA = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/verl-arithmetic-llama");

    private static String[] run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = TetherCommand.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private Path data() throws IOException {
        Random r = new Random(1);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            int a = r.nextInt(16), b = r.nextInt(16), c = r.nextInt(16);
            StringBuilder completion = new StringBuilder();
            for (int k = 1; k <= 1 + r.nextInt(6); k++) completion.append(k > 1 ? "," : "").append((c + k) % 16);
            lines.add("{\"prompt_ids\": [" + a + "," + b + "," + c + "], \"completion_ids\": [" + completion + "]}");
        }
        Path p = tmp.resolve("sft.jsonl");
        Files.write(p, lines);
        return p;
    }

    /** An SFT run's arguments: K steps of per-device batches accumulated {@code accumulation} times, with eval and checkpoints. */
    private static List<String> sft(Path data, Path out, String dtype, int perDevice, int steps) {
        return sft(data, out, dtype, perDevice, 2, steps);
    }

    private static List<String> sft(Path data, Path out, String dtype, int perDevice, int accumulation, int steps) {
        return new ArrayList<>(List.of("sft", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(), "--max-steps", Integer.toString(steps),
                "--set", "dtype=" + dtype, "--set", "per_device_train_batch_size=" + perDevice, "--set", "gradient_accumulation_steps=" + accumulation,
                "--set", "learning_rate=3e-3", "--set", "logging_steps=1", "--set", "eval_fraction=0.2", "--set", "save_steps=2"));
    }

    private static Map<String, double[]> weights(Path checkpoint) {
        Torch.init();
        Map<String, double[]> out = new LinkedHashMap<>();
        Safetensors.Reader r = Safetensors.open(checkpoint.resolve("model.safetensors"));
        for (String name : r.entries().keySet())
            try (StepScope s = new StepScope()) {
                out.put(name, Tensors.toDoubles(r.read(name, DType.F64)));
            }
        return out;
    }

    private static List<JsonNode> metrics(Path run) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Files.readAllLines(run.resolve("metrics.jsonl"))) out.add(RunDirectory.JSON.readTree(l));
        return out;
    }

    /**
     * Two launched processes with per-device batch 2 and accumulation 2 against one process on the same global batch
     * of 8: per-device 4 x accumulation 2 (other micro-batches: equal up to summation order, checked in fp64) or
     * per-device 2 x accumulation 4 (the same micro-batches: fp32's rounding of different batch shapes, about 1e-5
     * of the weights after 4 steps here, is then out of the comparison).
     */
    private void twoProcessesMatchOne(String dtype, int singlePerDevice, double relTol) throws IOException {
        Path data = data(), one = tmp.resolve("one-" + dtype), two = tmp.resolve("two-" + dtype);
        String[] single = run(sft(data, one, dtype, singlePerDevice, 8 / singlePerDevice, 4).toArray(String[]::new));
        assertEquals("0", single[0], single[2]);
        List<String> launch = new ArrayList<>(List.of("launch", "--nproc-per-node", "2", "--master-port", Integer.toString(freePort()), "--"));
        launch.addAll(sft(data, two, dtype, 2, 4));
        String[] r = run(launch.toArray(String[]::new));
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("2 process(es) x 1 torch thread(s)"), "the layout is printed: " + r[2]);
        assertTrue(r[2].contains("[rank 1] ") && r[2].contains("[rank 0] "), "output lines carry their rank: " + r[2]);
        Map<String, double[]> a = weights(one.resolve("checkpoints/step-4")), b = weights(two.resolve("checkpoints/step-4"));
        Map<String, double[]> start = weights(LLAMA);
        assertEquals(a.keySet(), b.keySet());
        double moved = 0;
        for (String name : a.keySet()) {
            double[] x = a.get(name), y = b.get(name), s0 = start.get(name);
            double diff = 0, norm = 0;
            for (int i = 0; i < x.length; i++) {
                diff += (x[i] - y[i]) * (x[i] - y[i]);
                norm += x[i] * x[i];
                moved = Math.max(moved, Math.abs(x[i] - s0[i]));
            }
            if (relTol == 0) assertArrayEquals(x, y, 1e-10, name);
            else assertTrue(Math.sqrt(diff) <= relTol * Math.sqrt(norm), name + ": relative difference " + Math.sqrt(diff / norm));
        }
        assertTrue(moved > 1e-3, "training moved the weights, so equality means something: " + moved);
        // Rank 0 alone wrote the run's files: one metrics line per step and eval, as one process writes.
        List<JsonNode> m1 = metrics(one), m2 = metrics(two);
        assertEquals(m1.size(), m2.size(), "metrics.jsonl written once");
        for (int i = 0; i < m1.size(); i++)
            for (String k : new String[] {"loss", "eval_loss"})
                if (m1.get(i).has(k)) assertEquals(m1.get(i).get(k).asDouble(), m2.get(i).get(k).asDouble(), relTol == 0 ? 1e-10 : 1e-4 * Math.abs(m1.get(i).get(k).asDouble()), k);
        assertEquals(2, RunDirectory.JSON.readTree(two.resolve("provenance.json").toFile()).get("world_size").asInt());
        assertTrue(Files.exists(two.resolve("model/model.safetensors")));
    }

    @Test
    void twoSftProcessesTrainTheWeightsOfOneInFp64() throws IOException {
        twoProcessesMatchOne("float64", 4, 0);
    }

    @Test
    void twoSftProcessesStayCloseToOneInFp32() throws IOException {
        twoProcessesMatchOne("float32", 2, 1e-5);
    }

    /** Reads a process's environment (Linux), to tell the launched ranks apart. */
    private static Optional<String> envOf(ProcessHandle p, String key) {
        try {
            byte[] raw = Files.readAllBytes(Path.of("/proc/" + p.pid() + "/environ"));
            for (String kv : new String(raw, java.nio.charset.StandardCharsets.UTF_8).split("\0"))
                if (kv.startsWith(key + "=")) return Optional.of(kv.substring(key.length() + 1));
        } catch (IOException e) {
            // gone already
        }
        return Optional.empty();
    }

    @Test
    void aRankKilledMidRunStopsTheLaunchNamingIt() throws Exception {
        Path data = data(), out = tmp.resolve("killed");
        List<String> launch = new ArrayList<>(List.of("launch", "--nproc-per-node", "2", "--master-port", Integer.toString(freePort()), "--"));
        launch.addAll(sft(data, out, "float32", 2, 100_000));
        CompletableFuture<String[]> launched = CompletableFuture.supplyAsync(() -> run(launch.toArray(String[]::new)));
        // Mid-run: rank 0 has logged a step, so both ranks are in the loop.
        while (!launched.isDone() && !(Files.exists(out.resolve("metrics.jsonl")) && Files.size(out.resolve("metrics.jsonl")) > 0)) Thread.sleep(50);
        assertFalse(launched.isDone(), "the run is still going: " + (launched.isDone() ? Arrays.toString(launched.get()) : ""));
        ProcessHandle rank1 = ProcessHandle.current().children().filter(p -> envOf(p, "RANK").equals(Optional.of("1"))).findFirst().orElseThrow();
        long killed = System.nanoTime();
        assertTrue(rank1.destroyForcibly(), "SIGKILL sent to rank 1");
        // Bounded, not timed: a hang would otherwise hold the build until surefire's own timeout.
        String[] r = launched.get(5, TimeUnit.MINUTES);
        System.out.printf("launch ended %.2f s after rank 1 was killed%n", (System.nanoTime() - killed) / 1e9);
        assertNotEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("tether launch: rank 1 was killed by signal 9"), r[2]);
        assertEquals(0, ProcessHandle.current().children().filter(p -> envOf(p, "WORLD_SIZE").isPresent()).count(), "no rank is left running");
    }

    @Test
    void ranksWithDifferentConfigsAreRefusedNamingTheKey() throws Exception {
        // Started by hand with torchrun's variables, as a cluster scheduler would start them.
        Path data = data(), out = tmp.resolve("mismatch");
        int port = freePort();
        List<Process> ranks = new ArrayList<>();
        for (int rank = 0; rank < 2; rank++) {
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
            cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments().stream().filter(a -> !a.startsWith("-javaagent") && !a.startsWith("-agentlib")).toList());
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), TetherCommand.class.getName()));
            List<String> args = sft(data, out, "float32", 2, 2);
            args.addAll(List.of("--set", "learning_rate=" + (rank == 0 ? "3e-3" : "1e-3")));
            cmd.addAll(args);
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("rank" + rank + ".log").toFile());
            pb.environment().putAll(Map.of("RANK", Integer.toString(rank), "WORLD_SIZE", "2", "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", Integer.toString(port),
                    "TETHER_DIST_TIMEOUT_SECONDS", "120"));
            ranks.add(pb.start());
        }
        for (int rank = 0; rank < 2; rank++) {
            Process p = ranks.get(rank);
            assertTrue(p.waitFor(5, TimeUnit.MINUTES), "rank " + rank + " ended");
            String log = Files.readString(tmp.resolve("rank" + rank + ".log"));
            assertEquals(2, p.exitValue(), log);
            assertTrue(log.contains("rank 1 differs from rank 0 in config key 'learning_rate' (rank 0: 0.003, rank 1: 0.001)"), log);
        }
        assertFalse(Files.exists(out.resolve("config.yaml")), "nothing is written when ranks differ");
    }

    /** The online methods do not reduce their batch statistics across ranks yet: under a launch they are refused before any model loads. */
    @Test
    void anOnlineRunUnderALaunchIsRefusedNamingWhy() throws Exception {
        Path prompts = tmp.resolve("prompts.jsonl"), out = tmp.resolve("grpo");
        Files.write(prompts, List.of("{\"prompt_ids\": [1, 2, 3]}", "{\"prompt_ids\": [4, 5, 6]}"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments().stream().filter(a -> !a.startsWith("-javaagent") && !a.startsWith("-agentlib")).toList());
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), TetherCommand.class.getName(), "grpo", "--model", LLAMA.toString(),
                "--data", prompts.toString(), "--output-dir", out.toString(), "--max-steps", "1", "--set", "reward_format_regex=x"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("grpo.log").toFile());
        pb.environment().putAll(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", Integer.toString(freePort())));
        Process p = pb.start();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the run ended");
        String log = Files.readString(tmp.resolve("grpo.log"));
        assertEquals(2, p.exitValue(), log);
        assertTrue(log.contains("WORLD_SIZE") && log.contains("online methods") && log.contains("one process"), log);
        assertFalse(Files.exists(out.resolve("model")), log);
    }
}
