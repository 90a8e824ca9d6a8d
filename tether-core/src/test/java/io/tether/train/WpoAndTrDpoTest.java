package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
import io.tether.model.LogProbs;
import io.tether.model.Models;
import io.tether.model.TinyConfigs;
import io.tether.objective.DpoLoss;

/**
 * WPO's weights and TR-DPO's mixed reference, checked exactly against values computed here from the models' own
 * logits and weights (TRL v1.9's DPOTrainer {@code use_weighting} and SyncRefModelCallback).
 */
class WpoAndTrDpoTest {
    @TempDir Path tmp;

    @BeforeAll
    static void load() {
        Torch.init();
    }

    /** Prompts and completions of different lengths, so that the batched path pads. Vocabulary 13. */
    static List<PreferenceTraining.Pair> pairs() {
        return List.of(
                new PreferenceTraining.Pair(new long[] {1, 2, 3}, new long[] {4, 5}, new long[] {6, 7, 8, 9}, Double.NaN, Double.NaN),
                new PreferenceTraining.Pair(new long[] {10, 11}, new long[] {12, 0, 1, 2, 3}, new long[] {4}, Double.NaN, Double.NaN),
                new PreferenceTraining.Pair(new long[] {5, 6, 7, 8}, new long[] {9, 10, 11}, new long[] {12, 1, 2}, Double.NaN, Double.NaN));
    }

    /**
     * One sequence alone (no padding): {sum of the completion's token log-probs, WPO's log-weight}, where WPO's weight
     * (Zhou et al. 2024, Eq. 2) is exp of the completion's mean over tokens of log p(y_t) − log Σ_v p(v)², the
     * log-prob relative to the distribution's own expected probability.
     */
    static double[] sequence(CausalLM model, long[] prompt, long[] completion) {
        long[] ids = new long[prompt.length + completion.length];
        System.arraycopy(prompt, 0, ids, 0, prompt.length);
        System.arraycopy(completion, 0, ids, prompt.length, completion.length);
        try (NoGradGuard g = new NoGradGuard()) {
            Tensor logits = LogProbs.predictionLogits(model, Tensors.longs(ids, 1, ids.length), null, null);   // (1, L-1, V)
            int vocab = (int) logits.size(2);
            double[] z = Tensors.toDoubles(logits);
            double sum = 0, aligned = 0;
            for (int j = 0; j < completion.length; j++) {
                int at = prompt.length + j - 1;   // the position that predicts completion token j
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) max = Math.max(max, z[at * vocab + v]);
                double norm = 0;
                for (int v = 0; v < vocab; v++) norm += Math.exp(z[at * vocab + v] - max);
                double lse = max + Math.log(norm), sumSquares = 0;
                for (int v = 0; v < vocab; v++) sumSquares += Math.exp(2 * (z[at * vocab + v] - lse));
                double logp = z[at * vocab + (int) completion[j]] - lse;
                sum += logp;
                aligned += logp - Math.log(sumSquares);
            }
            return new double[] {sum, aligned / completion.length};
        }
    }

    static double logSigmoid(double x) {
        return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
    }

    @Test
    void wpoWeighsEachPairByThePolicysOwnWeightsWithoutGradient() {
        double beta = 0.1;
        try (CausalLM policy = Models.create(TinyConfigs.qwen2(), DType.F64, 7); CausalLM reference = Models.create(TinyConfigs.qwen2(), DType.F64, 8);
             StepScope s = new StepScope()) {
            policy.setTrainable(true);
            // The policy's own greedy answers give a weight above 1 (the argmax's p is at least Σ p²), the
            // arbitrary completions of pairs() weights below 1.
            List<PreferenceTraining.Pair> pairs = new ArrayList<>(pairs());
            long[] prompt = {3, 1, 4};
            List<io.tether.generate.Generator.Generation> greedy = io.tether.generate.Generator.generate(policy, List.of(prompt, prompt),
                    io.tether.generate.SamplingConfig.greedy(4));
            pairs.add(new PreferenceTraining.Pair(prompt, greedy.get(0).tokens(), java.util.Arrays.copyOf(greedy.get(1).tokens(), 2), Double.NaN, Double.NaN));
            int n = pairs.size();
            double[] weights = new double[n], losses = new double[n];
            double weighted = 0, unweighted = 0;
            for (int i = 0; i < n; i++) {
                PreferenceTraining.Pair p = pairs.get(i);
                double[] pc = sequence(policy, p.prompt(), p.chosen()), pr = sequence(policy, p.prompt(), p.rejected());
                double rc = sequence(reference, p.prompt(), p.chosen())[0], rr = sequence(reference, p.prompt(), p.rejected())[0];
                // TRL multiplies the per-pair loss by exp(w_chosen) * exp(w_rejected), unclamped since v0.29.
                weights[i] = Math.exp(pc[1]) * Math.exp(pr[1]);
                losses[i] = -logSigmoid(beta * ((pc[0] - rc) - (pr[0] - rr)));
                weighted += weights[i] * losses[i];
                unweighted += losses[i];
            }
            System.out.printf("WPO pair weights %s%n", java.util.Arrays.toString(weights));
            boolean above = false, below = false;
            for (double w : weights) {
                above |= w > 1 + 1e-3;
                below |= w < 1 - 1e-3;
            }
            assertTrue(above && below, "the case has weights on both sides of 1, so a clamp at 1 or a missing weight would show");

            PreferenceTraining wpo = new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(beta, "sigmoid"),
                    0, 0, reference, 0, 0, null, true));
            Tensor lossSum = wpo.forward(policy, pairs).lossSum();   // the batch mean times the pairs
            assertEquals(weighted, lossSum.item_double(), 1e-12);
            // The weights are constants: the gradient is Σ_i w_i ∇ℓ_i, each ℓ_i's gradient from its pair alone.
            Tensor probe = policy.parameters().get("model.layers.0.mlp.down_proj.weight");
            lossSum.backward();
            double[] gradient = Tensors.toDoubles(probe.grad());
            probe.grad().zero_();
            PreferenceTraining plain = new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(beta, "sigmoid"),
                    0, 0, reference, 0, 0, null, false));
            double[] expected = new double[gradient.length];
            double plainSum = 0;
            for (int i = 0; i < n; i++) {
                for (Tensor t : policy.parameters().values()) if (t.grad().defined()) t.grad().zero_();
                Tensor li = plain.forward(policy, List.of(pairs.get(i))).lossSum();
                assertEquals(losses[i], li.item_double(), 1e-12, "pair " + i);
                plainSum += li.item_double();
                li.backward();
                double[] gi = Tensors.toDoubles(probe.grad());
                for (int k = 0; k < gi.length; k++) expected[k] += weights[i] * gi[k];
            }
            assertEquals(unweighted, plainSum, 1e-12);
            assertArrayEquals(expected, gradient, 1e-12);
        }
    }

    @Test
    void trDpoMixesTheReferenceEveryRefModelSyncSteps() throws java.io.IOException {
        double alpha = 0.6;
        try (CausalLM policy = Models.create(TinyConfigs.qwen2(), DType.F64, 7); CausalLM reference = Models.create(TinyConfigs.qwen2(), DType.F64, 8)) {
            Map<String, double[]> initialReference = snapshot(reference);
            List<Map<String, double[]>> policyAt = new ArrayList<>(), referenceAt = new ArrayList<>();
            Trainer.Listener record = new Trainer.Listener() {
                @Override
                public void onStep(int step, int totalSteps, Map<String, Object> metrics) {
                    // Called after the step's update and its afterStep, as TRL's on_step_end runs after the update.
                    policyAt.add(snapshot(policy));
                    referenceAt.add(snapshot(reference));
                }
            };
            var settings = new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, reference, alpha, 2);
            TrainerConfig config = new TrainerConfig(4, 1, 3, 1, 1e-2, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 11, 1, 0, 0, 1, "stop", false, false);
            new Trainer<>(policy, new PreferenceTraining(settings), pairs(), List.of(), config, new RunDirectory(tmp.resolve("tr")),
                    GradientSync.SINGLE_PROCESS, record, null).train(false);
            assertEquals(4, policyAt.size());
            // Steps 1 and 3 leave the reference; steps 2 and 4 (global_step % ref_model_sync_steps == 0) set
            // ref <- alpha * policy + (1 - alpha) * ref, with the policy as it stands after that step's update.
            assertClose(initialReference, referenceAt.get(0), "step 1");
            Map<String, double[]> afterSecond = mix(alpha, policyAt.get(1), initialReference);
            assertClose(afterSecond, referenceAt.get(1), "step 2");
            assertClose(afterSecond, referenceAt.get(2), "step 3");
            assertClose(mix(alpha, policyAt.get(3), afterSecond), referenceAt.get(3), "step 4");
            assertClose(referenceAt.get(3), snapshot(reference), "after training");
        }
    }

    static Map<String, double[]> snapshot(CausalLM model) {
        Map<String, double[]> out = new LinkedHashMap<>();
        model.parameters().forEach((k, v) -> out.put(k, Tensors.toDoubles(v)));
        return out;
    }

    static Map<String, double[]> mix(double alpha, Map<String, double[]> policy, Map<String, double[]> reference) {
        Map<String, double[]> out = new LinkedHashMap<>();
        reference.forEach((k, r) -> {
            double[] p = policy.get(k), m = new double[r.length];
            for (int i = 0; i < r.length; i++) m[i] = alpha * p[i] + (1 - alpha) * r[i];
            out.put(k, m);
        });
        return out;
    }

    static void assertClose(Map<String, double[]> expected, Map<String, double[]> actual, String when) {
        assertEquals(expected.keySet(), actual.keySet(), when);
        expected.forEach((k, e) -> assertArrayEquals(e, actual.get(k), 1e-12, when + ": " + k));
    }
}
