package io.tether.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import com.fasterxml.jackson.databind.JsonNode;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.ProcessGroup;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;

/**
 * Two ranks (two threads of this JVM, each with its own c10d group member over loopback) against one process on
 * the same global batch: per_device_train_batch_size 2 x 2 ranks = 4 x 1 rank, accumulation 2. 18 examples make
 * the last batch of an epoch short and carry a step across the epoch boundary.
 */
class DataParallelTest {
    @TempDir Path tmp;
    private static final ModelConfig TINY = ModelConfig.llama(32, 32, 2, 4, 2, 48, 64);
    private static final int STEPS = 6;

    @BeforeAll
    static void load() {
        Torch.init();
    }

    private static TrainerConfig config(int batch, int accumulation) {
        return SftRunProbe.config(STEPS, batch, accumulation, 1e-2, "stop");
    }

    /** The final parameters of one rank's run (world 1 when {@code world == 1}). */
    private static Map<String, double[]> train(DType dtype, GradientSync sync, Path dir, int batch) throws IOException {
        return train(dtype, sync, dir, batch, 2, 18);
    }

    private static Map<String, double[]> train(DType dtype, GradientSync sync, Path dir, int batch, int accumulation, int examples) throws IOException {
        try (CausalLM model = Models.create(TINY, dtype, 4)) {
            new Trainer<>(model, new Sft(), Sft.rows(SftRunProbe.examples(examples, 2), 16), Sft.rows(SftRunProbe.examples(5, 9), 16),
                    config(batch, accumulation), new RunDirectory(dir), sync, null, null).train(false);
            Map<String, double[]> out = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) out.put(e.getKey(), Tensors.toDoubles(e.getValue().to(DType.F64.scalarType)));
            return out;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Runs {@code body(rank, sync)} on two ranks at once; returns their results in rank order. */
    private static <T> List<T> twoRanks(RankBody<T> body) throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                fs.add(pool.submit(() -> {
                    try (ProcessGroup pg = ProcessGroup.join(new ProcessGroup.Env(rank, 2, rank, "127.0.0.1", port, Duration.ofMinutes(5)))) {
                        return body.run(rank, new DataParallel(pg, 4096));   // small buckets: several per step
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : fs) out.add(f.get());
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    interface RankBody<T> {
        T run(int rank, GradientSync sync) throws Exception;
    }

    private static List<JsonNode> metrics(Path dir) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Files.readAllLines(dir.resolve("metrics.jsonl"))) out.add(RunDirectory.JSON.readTree(l));
        return out;
    }

    @Test
    void twoRanksTrainTheWeightsOfOneProcessInFp64() throws Exception {
        Map<String, double[]> single = train(DType.F64, GradientSync.SINGLE_PROCESS, tmp.resolve("single"), 4);
        List<Map<String, double[]>> ranks = twoRanks((rank, sync) -> train(DType.F64, sync, tmp.resolve("ddp"), 2));
        double moved = 0;
        try (CausalLM init = Models.create(TINY, DType.F64, 4)) {
            double[] before = Tensors.toDoubles(init.parameters().get("model.layers.0.self_attn.q_proj.weight"));
            double[] after = single.get("model.layers.0.self_attn.q_proj.weight");
            for (int i = 0; i < before.length; i++) moved = Math.max(moved, Math.abs(after[i] - before[i]));
        }
        assertTrue(moved > 1e-3, "training moved the weights (the comparison can fail): " + moved);
        for (String name : single.keySet()) {
            assertArrayEquals(single.get(name), ranks.get(0).get(name), 1e-10, name);
            assertArrayEquals(ranks.get(0).get(name), ranks.get(1).get(name), 0.0, "ranks hold identical weights: " + name);
        }
        // metrics.jsonl written once (by rank 0), with the global batch's loss.
        List<JsonNode> one = metrics(tmp.resolve("single")), two = metrics(tmp.resolve("ddp"));
        assertEquals(one.size(), two.size());
        for (int i = 0; i < one.size(); i++) {
            assertEquals(one.get(i).get("step").asInt(), two.get(i).get("step").asInt());
            for (String k : new String[] {"loss", "grad_norm", "eval_loss"})
                if (one.get(i).has(k)) assertEquals(one.get(i).get(k).asDouble(), two.get(i).get(k).asDouble(), 1e-10, k + " at line " + i);
        }
        TrainerState s = TrainerState.read(tmp.resolve("ddp/checkpoints/step-" + STEPS));
        assertEquals(2, s.worldSize());
        assertEquals(TrainerState.read(tmp.resolve("single/checkpoints/step-" + STEPS)).position(), s.position(), "one cursor for every rank");
    }

    /**
     * Against one process with the same micro-batches (per-device 2, accumulation 4), so fp32's rounding of other
     * batch shapes is out of the comparison; 16 examples, because at an epoch's short end one process with smaller
     * draws than world x per-device takes its next micro-batch from the next epoch sooner.
     */
    @Test
    void twoRanksStayCloseToOneProcessInFp32() throws Exception {
        Map<String, double[]> single = train(DType.F32, GradientSync.SINGLE_PROCESS, tmp.resolve("single"), 2, 4, 16);
        List<Map<String, double[]>> ranks = twoRanks((rank, sync) -> train(DType.F32, sync, tmp.resolve("ddp"), 2, 2, 16));
        for (String name : single.keySet()) {
            double[] a = single.get(name), b = ranks.get(0).get(name);
            double diff = 0, norm = 0;
            for (int i = 0; i < a.length; i++) { diff += (a[i] - b[i]) * (a[i] - b[i]); norm += a[i] * a[i]; }
            assertTrue(Math.sqrt(diff) <= 1e-5 * Math.sqrt(norm), name + ": relative difference " + Math.sqrt(diff / norm));
            assertArrayEquals(b, ranks.get(1).get(name), 0.0, "ranks hold identical weights: " + name);
        }
    }

    /** DPO's final weights and logged metrics (rewards/*, logps/*: summed over ranks) on two ranks and on one, fp64. */
    private static Map<String, double[]> dpo(GradientSync sync, Path dir, int batch) throws IOException {
        try (CausalLM policy = Models.create(PreferenceTrainingTest.CONFIG, DType.F64, 7); CausalLM reference = Models.create(PreferenceTrainingTest.CONFIG, DType.F64, 7)) {
            var settings = new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, io.tether.objective.DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, reference, 0, 0);
            new Trainer<>(policy, new PreferenceTraining(settings), PreferenceTrainingTest.pairs(20, 1), List.<PreferenceTraining.Pair>of(),
                    SftRunProbe.config(4, batch, 2, 1e-2, "stop"), new RunDirectory(dir), sync, null, null).train(false);
            Map<String, double[]> out = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : policy.parameters().entrySet()) out.put(e.getKey(), Tensors.toDoubles(e.getValue()));
            return out;
        }
    }

    @Test
    void twoRanksTrainTheDpoWeightsOfOneProcessInFp64() throws Exception {
        Map<String, double[]> single = dpo(GradientSync.SINGLE_PROCESS, tmp.resolve("single"), 4);
        List<Map<String, double[]>> ranks = twoRanks((rank, sync) -> dpo(sync, tmp.resolve("ddp"), 2));
        for (String name : single.keySet()) {
            assertArrayEquals(single.get(name), ranks.get(0).get(name), 1e-10, name);
            assertArrayEquals(ranks.get(0).get(name), ranks.get(1).get(name), 0.0, name);
        }
        List<JsonNode> one = metrics(tmp.resolve("single")), two = metrics(tmp.resolve("ddp"));
        assertEquals(one.size(), two.size());
        int compared = 0;
        for (int i = 0; i < one.size(); i++)
            for (var it = one.get(i).fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (k.startsWith("rewards/") || k.startsWith("logps/") || k.equals("loss")) {
                    assertEquals(one.get(i).get(k).asDouble(), two.get(i).get(k).asDouble(), 1e-10, k + " at line " + i);
                    compared++;
                }
            }
        assertTrue(compared >= 4 * 3, "metrics were compared: " + compared);
    }

    /** A crash after step 4's checkpoint (both ranks stop), then both resume: the run ends where an uninterrupted one does. */
    @Test
    void twoRanksResumeFromTheSameCheckpointAndContinueExactly() throws Exception {
        List<Map<String, double[]>> straight = twoRanks((rank, sync) -> train(DType.F64, sync, tmp.resolve("straight"), 2));
        class Crash extends RuntimeException {}
        List<Map<String, double[]>> resumed = twoRanks((rank, sync) -> {
            Trainer.Listener crashAt4 = new Trainer.Listener() {
                @Override public void onCheckpoint(int step, Path dir) { if (step == 4) throw new Crash(); }
            };
            try (CausalLM model = Models.create(TINY, DType.F64, 4)) {
                assertThrows(Crash.class, () -> new Trainer<>(model, new Sft(), Sft.rows(SftRunProbe.examples(18, 2), 16), Sft.rows(SftRunProbe.examples(5, 9), 16),
                        config(2, 2), new RunDirectory(tmp.resolve("resumed")), sync, crashAt4, null).train(false));
            }
            try (CausalLM model = Models.create(TINY, DType.F64, 99)) {   // other initial weights: the checkpoint must replace them
                Trainer.Result r = new Trainer<>(model, new Sft(), Sft.rows(SftRunProbe.examples(18, 2), 16), Sft.rows(SftRunProbe.examples(5, 9), 16),
                        config(2, 2), new RunDirectory(tmp.resolve("resumed")), sync, null, null).train(true);
                assertEquals(STEPS, r.steps());
                Map<String, double[]> out = new LinkedHashMap<>();
                for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) out.put(e.getKey(), Tensors.toDoubles(e.getValue()));
                return out;
            }
        });
        for (String name : straight.get(0).keySet())
            for (int r = 0; r < 2; r++) assertArrayEquals(straight.get(0).get(name), resumed.get(r).get(name), 0.0, name + " on rank " + r);
        List<JsonNode> a = metrics(tmp.resolve("straight")), b = metrics(tmp.resolve("resumed"));
        assertEquals(a.size(), b.size(), "the resumed log reads as one run");
        for (int i = 0; i < a.size(); i++)
            if (a.get(i).has("loss")) assertEquals(a.get(i).get("loss").asDouble(), b.get(i).get("loss").asDouble(), 0.0, "loss at line " + i);
    }

    @Test
    void aRunIsResumedOnlyWithItsWorldSize() throws Exception {
        Path dir = tmp.resolve("ddp");
        twoRanks((rank, sync) -> train(DType.F32, sync, dir, 2));
        try (CausalLM model = Models.create(TINY, DType.F32, 4)) {
            ConfigException e = assertThrows(ConfigException.class, () -> new Trainer<>(model, new Sft(), Sft.rows(SftRunProbe.examples(18, 2), 16), List.<Sft.Row>of(),
                    SftRunProbe.config(STEPS + 2, 4, 2, 1e-2, "stop"), new RunDirectory(dir), GradientSync.SINGLE_PROCESS, null, null).train(true));
            assertTrue(e.getMessage().contains("WORLD_SIZE") && e.getMessage().contains("2 process"), e.getMessage());
        }
    }
}
