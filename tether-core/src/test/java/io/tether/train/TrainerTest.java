package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;

class TrainerTest {
    @TempDir Path tmp;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ModelConfig TINY = ModelConfig.llama(32, 32, 2, 4, 2, 48, 64);

    @BeforeAll
    static void load() {
        Torch.init();
    }

    private static List<JsonNode> metrics(Path run) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Files.readAllLines(run.resolve("metrics.jsonl"))) out.add(JSON.readTree(l));
        return out;
    }

    @Test
    void overfitsOneBatchToNearZeroLoss() throws IOException {
        try (CausalLM model = Models.create(TINY, DType.F32, 1)) {
            List<Sft.Row> rows = Sft.rows(SftRunProbe.examples(4, 1), 16);
            Trainer<Sft.Row> t = new Trainer<>(model, new Sft(), rows, rows, SftRunProbe.config(150, 4, 1, 1e-2, "stop"),
                    new RunDirectory(tmp), GradientSync.SINGLE_PROCESS, null, null);
            Trainer.Result r = t.train(false);
            assertEquals(150, r.steps());
            assertTrue(r.lastLoss() < 0.05, "loss after 150 steps on one batch: " + r.lastLoss());
            assertTrue(r.evalLoss() < 0.05);
            List<JsonNode> m = metrics(tmp);
            assertTrue(m.get(0).get("loss").asDouble() > 2.0, "starts near log(32)");
            for (String k : new String[] {"step", "loss", "lr", "grad_norm", "units_per_second", "step_seconds", "rss_mb"}) assertTrue(m.get(0).has(k), k);
            assertTrue(m.stream().anyMatch(x -> x.has("eval_perplexity")));
            assertEquals(2, new RunDirectory(tmp).checkpointDirs().size(), "save_total_limit keeps the newest two");
            assertTrue(Files.exists(tmp.resolve("checkpoints/step-150/model.safetensors")));
        }
    }

    @Test
    void promptTokensContributeExactlyZero() {
        try (CausalLM model = Models.create(TINY, DType.F64, 2); StepScope s = new StepScope()) {
            model.setTrainable(true);
            long[] ids = {1, 2, 3, 4, 5, 6}, mask = {0, 0, 0, 1, 1, 1};
            Sft sft = new Sft();
            Tensor loss = sft.forward(model, List.of(new Sft.Row(ids, mask, new int[] {0}))).lossSum();
            loss.backward();
            double a = loss.item_double();
            try (NoGradGuard g = new NoGradGuard()) {
                // Only targets 3..5 count: the loss equals minus the sum of their log-probs.
                double[] lp = Tensors.toDoubles(io.tether.model.LogProbs.tokenLogprobs(model, Tensors.longs(ids, 1, 6)));
                assertEquals(-(lp[2] + lp[3] + lp[4]), a, 1e-12);
                // A prompt token is context for the completion, so changing one inside a row changes the loss; a row
                // that is all prompt is context for nothing: beside the first row it must add exactly nothing,
                // whatever its tokens (were its 5 targets counted, they would add about 5 ln 32).
                long[] other = {9, 8, 7, 6, 5, 4};
                double b = sft.forward(model, List.of(new Sft.Row(ids, mask, new int[] {0}), new Sft.Row(other, new long[6], new int[] {0})))
                        .lossSum().item_double();
                assertEquals(a, b, 1e-12, "an all-prompt row contributes nothing");
                // The comparison can fail: the same row with its tokens counted changes the loss.
                double counted = sft.forward(model, List.of(new Sft.Row(ids, mask, new int[] {0}), new Sft.Row(other, new long[] {0, 1, 1, 1, 1, 1}, new int[] {0})))
                        .lossSum().item_double();
                assertTrue(counted - a > 1.0, "counted prompt targets would show: " + a + " -> " + counted);
                // Within a row: a last token outside the mask is context for nothing, so its value cannot matter.
                long[] tailMask = {0, 0, 0, 1, 1, 0}, changedTail = {1, 2, 3, 4, 5, 9};
                double tail = sft.forward(model, List.of(new Sft.Row(ids, tailMask, new int[] {0}))).lossSum().item_double();
                assertEquals(tail, sft.forward(model, List.of(new Sft.Row(changedTail, tailMask, new int[] {0}))).lossSum().item_double(), 0.0);
                assertEquals(-(lp[2] + lp[3]), tail, 1e-12);
            }
            assertEquals(3, sft.units(List.of(new Sft.Row(ids, mask, new int[] {0}))));
        }
    }

    @Test
    void packingGivesTheSameLossAsUnpacked() {
        try (CausalLM model = Models.create(TINY, DType.F64, 3); StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            List<Sft.Example> ex = SftRunProbe.examples(9, 11);
            Sft sft = new Sft();
            double unpacked = 0;
            for (Sft.Row r : Sft.rows(ex, 64)) unpacked += sft.forward(model, List.of(r)).lossSum().item_double();
            List<Sft.Row> packed = Sft.pack(ex, 40);
            assertTrue(packed.size() < ex.size(), "examples were packed");
            double packedLoss = sft.forward(model, packed).lossSum().item_double();
            assertEquals(unpacked, packedLoss, 1e-9);
            assertEquals(sft.units(Sft.rows(ex, 64)), sft.units(packed));
        }
    }

    @Test
    void accumulationEqualsOneBigBatch() throws IOException {
        double[][] finals = new double[2][];
        int[][] shapes = {{4, 1}, {2, 2}};
        for (int k = 0; k < 2; k++) {
            try (CausalLM model = Models.create(TINY, DType.F64, 4)) {
                new Trainer<>(model, new Sft(), Sft.rows(SftRunProbe.examples(8, 2), 16), List.<Sft.Row>of(),
                        SftRunProbe.config(2, shapes[k][0], shapes[k][1], 1e-2, "stop"), new RunDirectory(tmp.resolve("acc" + k)),
                        GradientSync.SINGLE_PROCESS, null, null).train(false);
                finals[k] = Tensors.toDoubles(model.parameters().get("model.layers.1.mlp.down_proj.weight"));
            }
        }
        assertArrayEquals(finals[0], finals[1], 1e-12);
    }

    @Test
    void gradientCheckpointingTrainsTheSameWeights() throws IOException {
        double[][] finals = new double[2][];
        for (int k = 0; k < 2; k++) {
            try (CausalLM model = Models.create(TINY, DType.F64, 4)) {
                new Trainer<>(model, new Sft(), Sft.rows(SftRunProbe.examples(8, 2), 16), List.<Sft.Row>of(),
                        SftRunProbe.config(3, 2, 2, 1e-2, "stop").withGradientCheckpointing(k == 1), new RunDirectory(tmp.resolve("gc" + k)),
                        GradientSync.SINGLE_PROCESS, null, null).train(false);
                finals[k] = Tensors.toDoubles(model.parameters().get("model.layers.0.self_attn.q_proj.weight"));
            }
        }
        assertArrayEquals(finals[0], finals[1], 1e-10);
    }

    @Test
    void nonFiniteLossStopsWithAReportOrIsSkipped() throws IOException {
        try (CausalLM model = Models.create(TINY, DType.F32, 5)) {
            List<Sft.Row> rows = Sft.rows(SftRunProbe.examples(8, 3), 16);
            float[] before = Tensors.toFloats(model.parameters().get("model.norm.weight"));
            TrainingMethod<Sft.Row> poisoned = new NanAtCall<>(new Sft(), 3, false);
            Trainer<Sft.Row> t = new Trainer<>(model, poisoned, rows, List.of(), SftRunProbe.config(6, 4, 1, 1e-2, "stop"),
                    new RunDirectory(tmp.resolve("stop")), GradientSync.SINGLE_PROCESS, null, null);
            NonFiniteException e = assertThrows(NonFiniteException.class, () -> t.train(false));
            assertEquals(3, e.step());
            assertTrue(e.getMessage().contains("non-finite loss at step 3") && e.getMessage().contains("checkpoints/step-2"), e.getMessage());
            assertFalse(java.util.Arrays.equals(before, Tensors.toFloats(model.parameters().get("model.norm.weight"))), "steps 1-2 trained");
        }
        try (CausalLM model = Models.create(TINY, DType.F32, 5)) {
            List<Sft.Row> rows = Sft.rows(SftRunProbe.examples(8, 3), 16);
            Trainer<Sft.Row> t = new Trainer<>(model, new NanAtCall<>(new Sft(), 3, true), rows, List.of(), SftRunProbe.config(6, 4, 1, 1e-2, "skip"),
                    new RunDirectory(tmp.resolve("skip")), GradientSync.SINGLE_PROCESS, null, null);
            assertEquals(6, t.train(false).steps());
            List<JsonNode> m = metrics(tmp.resolve("skip"));
            assertTrue(m.stream().anyMatch(x -> x.has("skipped") && x.get("skipped").asText().startsWith("non-finite gradient in")), m.toString());
            for (Tensor p : model.parameters().values()) assertTrue(p.isfinite().all().item().toBool(), "no weight was corrupted");
        }
    }

    /** Makes the n-th forward non-finite: its loss (or, with {@code viaGradient}, only its gradient). */
    static final class NanAtCall<E> implements TrainingMethod<E> {
        private final TrainingMethod<E> inner;
        private final int at;
        private final boolean viaGradient;
        private int calls;

        NanAtCall(TrainingMethod<E> inner, int at, boolean viaGradient) {
            this.inner = inner;
            this.at = at;
            this.viaGradient = viaGradient;
        }

        @Override public long units(List<E> examples) { return inner.units(examples); }

        @Override
        public Output forward(io.tether.model.CausalLM model, List<E> examples) {
            Output out = inner.forward(model, examples);
            if (++calls != at) return out;
            if (!viaGradient) return new Output(out.lossSum().mul(Tensors.scalar(Double.NaN)), out.metricSums());
            // sqrt has an infinite slope at 0: the loss stays finite, the gradient becomes 0 * inf = NaN.
            Tensor p = model.parameters().get("model.norm.weight");
            Tensor kink = p.sub(p.detach()).abs().sqrt().sum().mul(Tensors.scalar(0.0));
            return new Output(out.lossSum().add(kink), out.metricSums());
        }
    }

    @Test
    void killedAndResumedRunLogsExactlyTheSameLosses() throws Exception {
        Path straight = tmp.resolve("straight"), killed = tmp.resolve("killed");
        assertEquals(0, probe(straight, false, 0, null));
        // Kill -9 the second run once its step-4 checkpoint exists, then resume it to the end.
        assertEquals(137, probe(killed, false, 300, killed.resolve("checkpoints/step-4/trainer_state.json")));
        assertTrue(Files.exists(killed.resolve("checkpoints/step-4")));
        assertFalse(Files.exists(killed.resolve("checkpoints/step-10")), "the run was killed mid-way");
        assertEquals(0, probe(killed, true, 0, null));
        List<JsonNode> a = metrics(straight), b = metrics(killed);
        assertEquals(10, a.size());
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i).get("step").asInt(), b.get(i).get("step").asInt());
            assertEquals(a.get(i).get("loss").asDouble(), b.get(i).get("loss").asDouble(), 0.0, "step " + (i + 1));
            assertEquals(a.get(i).get("grad_norm").asDouble(), b.get(i).get("grad_norm").asDouble(), 0.0, "step " + (i + 1));
        }
        assertArrayEquals(Files.readAllBytes(straight.resolve("checkpoints/step-10/model.safetensors")),
                Files.readAllBytes(killed.resolve("checkpoints/step-10/model.safetensors")));
    }

    @Test
    void aHalfWrittenCheckpointIsIgnored() throws Exception {
        Path run = tmp.resolve("partial");
        assertEquals(0, probe(run, false, 0, null));
        Path partial = run.resolve("checkpoints/.step-12.tmp");
        Files.createDirectories(partial);
        Files.writeString(partial.resolve("model.safetensors"), "half");
        Path incomplete = Files.createDirectories(run.resolve("checkpoints/step-14"));   // no trainer_state.json
        assertEquals(run.resolve("checkpoints/step-10"), new RunDirectory(run).latestCheckpoint().orElseThrow());
        assertTrue(Files.exists(incomplete));
    }

    private int probe(Path dir, boolean resume, long sleepMs, Path killWhenExists) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-Dorg.bytedeco.javacpp.maxphysicalbytes=0", "-cp", System.getProperty("java.class.path"),
                SftRunProbe.class.getName(), dir.toString(), Boolean.toString(resume), Long.toString(sleepMs));
        pb.redirectErrorStream(true);
        pb.redirectOutput(tmp.resolve("probe-" + dir.getFileName() + "-" + resume + ".log").toFile());
        Process p = pb.start();
        // No deadlines: the probe's work is bounded (10 steps), so it ends on its own however busy the machine is; a
        // timed kill would fire before step 4 on a slow machine and fail for the wrong reason.
        if (killWhenExists != null) {
            while (!Files.exists(killWhenExists) && p.isAlive()) Thread.sleep(20);
            p.destroyForcibly();   // SIGKILL on Linux
        }
        return p.waitFor();
    }

    @Test
    void scheduleFollowsHf() {
        LrSchedule s = new LrSchedule(LrSchedule.Kind.COSINE, 1.0, 2, 10);
        assertEquals(0.0, s.at(0));
        assertEquals(0.5, s.at(1));
        assertEquals(1.0, s.at(2));
        assertEquals(0.5, s.at(6), 1e-12);
        assertEquals(0.0, s.at(10), 1e-12);
        LrSchedule l = new LrSchedule(LrSchedule.Kind.LINEAR, 2.0, 0, 4);
        assertEquals(2.0, l.at(0));
        assertEquals(1.0, l.at(2));
        assertEquals(2.0, new LrSchedule(LrSchedule.Kind.CONSTANT, 2.0, 0, 4).at(3));
        var e = assertThrows(IllegalArgumentException.class, () -> LrSchedule.Kind.parse("polynomial"));
        assertTrue(e.getMessage().contains("lr_scheduler_type"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SftRunProbe.config(1, 0, 1, 1, "stop")).getMessage().contains("per_device_train_batch_size"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SftRunProbe.config(1, 1, 1, 1, "ignore")).getMessage().contains("nan_policy"));
    }
}
