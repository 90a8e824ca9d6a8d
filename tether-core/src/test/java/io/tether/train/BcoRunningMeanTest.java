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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.Models;
import io.tether.objective.DpoLoss;

/**
 * Legacy bco_pair (semantics trl_legacy): δ is TRL v0.28's RunningMoments mean of each batch's mean implicit reward,
 * carried from step to step (each batch one observation, whatever its size), untouched by evaluation, and restored
 * with a checkpoint so that a resumed run trains exactly as an uninterrupted one.
 */
class BcoRunningMeanTest {
    @TempDir Path tmp;

    @BeforeAll
    static void load() {
        Torch.init();
    }

    static final double BETA = 0.1;
    static final DpoLoss.Config LEGACY_BCO = new DpoLoss.Config(BETA, List.of("bco_pair"), null, 0.0, "reverse_kl", 1.0, 0.05, DpoLoss.Semantics.TRL_LEGACY);

    static double logSigmoid(double x) {
        return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
    }

    /** β·(log-ratio) of chosen (column 0) and rejected (column 1) per pair, each sequence scored alone. */
    static double[][] rewards(CausalLM policy, CausalLM reference, List<PreferenceTraining.Pair> pairs) {
        List<LogProbs.Sequence> seqs = new ArrayList<>();
        for (PreferenceTraining.Pair p : pairs) {
            seqs.add(new LogProbs.Sequence(p.prompt(), p.chosen()));
            seqs.add(new LogProbs.Sequence(p.prompt(), p.rejected()));
        }
        List<LogProbs.Result> pol = LogProbs.score(policy, seqs, 1), ref = LogProbs.score(reference, seqs, 1);
        double[][] out = new double[pairs.size()][2];
        for (int i = 0; i < pairs.size(); i++)
            for (int j = 0; j < 2; j++) out[i][j] = BETA * (pol.get(2 * i + j).logprob() - ref.get(2 * i + j).logprob());
        return out;
    }

    static double batchMean(double[][] rewards) {
        double s = 0;
        for (double[] r : rewards) s += r[0] + r[1];
        return s / (2 * rewards.length);
    }

    /** −logσ(βc − δ) − logσ(−(βr − δ)), averaged over the pairs. */
    static double bcoLoss(double[][] rewards, double delta) {
        double s = 0;
        for (double[] r : rewards) s -= logSigmoid(r[0] - delta) + logSigmoid(-(r[1] - delta));
        return s / rewards.length;
    }

    static double forward(PreferenceTraining method, CausalLM policy, List<PreferenceTraining.Pair> batch, boolean training) {
        try (StepScope s = new StepScope()) {
            if (training) return method.forward(policy, batch).lossSum().item_double() / batch.size();
            try (NoGradGuard g = new NoGradGuard()) {
                return method.forward(policy, batch).lossSum().item_double() / batch.size();
            }
        }
    }

    @Test
    void deltaIsTheRunningMeanOfBatchMeansCarriedAcrossStepsAndLeftAloneByEvaluation() {
        List<PreferenceTraining.Pair> all = PreferenceTrainingTest.pairs(5, 3);
        List<PreferenceTraining.Pair> a = all.subList(0, 3), b = all.subList(3, 5);   // batches of 3 and 2 pairs
        try (CausalLM policy = Models.create(PreferenceTrainingTest.CONFIG, DType.F64, 7); CausalLM reference = Models.create(PreferenceTrainingTest.CONFIG, DType.F64, 8)) {
            double[][] ra = rewards(policy, reference, a), rb = rewards(policy, reference, b);
            double ma = batchMean(ra), mb = batchMean(rb);
            var method = new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, LEGACY_BCO, 0, 0, reference, 0, 0));
            assertEquals(bcoLoss(ra, ma), forward(method, policy, a, true), 1e-10, "the first batch: δ is its own mean");
            assertEquals(bcoLoss(rb, (ma + mb) / 2), forward(method, policy, b, true), 1e-10,
                    "the second batch: δ is the mean of the two batch means, each batch one observation (TRL's update gets a scalar)");
            assertEquals(bcoLoss(ra, (ma + mb + ma) / 3), forward(method, policy, a, false), 1e-10, "an evaluation batch sees its own update");
            assertEquals(2.0, method.state().get(PreferenceTraining.BCO_COUNT), "but leaves the training state as it was");
            assertEquals(bcoLoss(rb, (ma + mb + mb) / 3), forward(method, policy, b, true), 1e-10);
            assertEquals((ma + mb + mb) / 3, method.state().get(PreferenceTraining.BCO_MEAN), 1e-12);
        }
    }

    @Test
    void otherLossesKeepNoState() {
        var method = new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO,
                new DpoLoss.Config(BETA, List.of("bco_pair"), null, 0.0, "reverse_kl", 0.5, 0.05, DpoLoss.Semantics.TRL), 0, 0, null, 0, 0));
        assertEquals(java.util.Map.of(), method.state(), "TRL >= 0.29's bco_pair has no running mean");
    }

    /** Per-step losses of a legacy bco_pair run of {@code steps} (resumed from {@code dir}'s latest checkpoint when asked). */
    List<Double> losses(Path dir, int steps, boolean resume) throws IOException {
        try (CausalLM policy = Models.create(PreferenceTrainingTest.CONFIG, DType.F32, 7); CausalLM reference = Models.create(PreferenceTrainingTest.CONFIG, DType.F32, 7)) {
            var method = new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, LEGACY_BCO, 0, 0, reference, 0, 0));
            TrainerConfig c = new TrainerConfig(steps, 1, 8, 1, 1e-2, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 1, 0, 2, 5, "stop", false);
            new Trainer<>(policy, method, PreferenceTrainingTest.pairs(64, 1), List.of(), c, RunDirectory.open(dir, resume),
                    GradientSync.SINGLE_PROCESS, null, null).train(resume);
        }
        List<Double> out = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl"))) out.add(new ObjectMapper().readTree(line).get("loss").asDouble());
        return out;
    }

    @Test
    void aResumedRunRestoresTheRunningMeanAndTrainsAsAnUninterruptedOne() throws IOException {
        List<Double> straight = losses(tmp.resolve("straight"), 6, false);
        losses(tmp.resolve("resumed"), 2, false);
        List<Double> resumed = losses(tmp.resolve("resumed"), 6, true);
        assertEquals(6, straight.size());
        assertEquals(straight, resumed);
        JsonNode state = new ObjectMapper().readTree(tmp.resolve("resumed/checkpoints/step-6/trainer_state.json").toFile()).get("method_state");
        assertNotNull(state, "the checkpoint carries the running mean");
        assertEquals(6, state.get(PreferenceTraining.BCO_COUNT).asInt(), "one batch a step, six steps, across the resume");
        assertTrue(Double.isFinite(state.get(PreferenceTraining.BCO_MEAN).asDouble()));
    }
}
