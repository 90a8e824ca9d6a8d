package io.tether.online;

import io.tether.reward.RewardModelTest;
import io.tether.reward.RewardTraining;
import io.tether.rollout.Experience;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.bytedeco.pytorch.NoGradGuard;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Torch;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

/** PPO against a trained reward model: the score rises, the KL stays in budget, and a larger kl_coef gives a smaller KL. */
class PpoTrainingTest {
    @TempDir Path tmp;
    static final ModelConfig TINY = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);
    static final SamplingConfig SAMPLING = new SamplingConfig(6, 1.0, 0, 1.0, 11, List.of(), List.of(), true);
    static CausalLM rewardModel;

    @BeforeAll
    static void trainRewardModel() throws IOException {
        Torch.init();
        // The reward model of RewardModelTest: prefers sequences that contain token 7.
        try (CausalLM lm = Models.create(TINY, DType.F32, 1)) {
            rewardModel = Models.withRewardHead(lm, 1);
        }
        TrainerConfig c = new TrainerConfig(120, 1, 16, 1, 3e-3, "cosine", 10, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 20, 0, 0, 1, "stop", false);
        Path dir = Files.createTempDirectory("tether-ppo-rm");
        new Trainer<>(rewardModel, new RewardTraining(0.0, false), RewardModelTest.rulePairs(256, 1), List.of(), c, new RunDirectory(dir),
                GradientSync.SINGLE_PROCESS, null, null).train(false);
        rewardModel.setTrainable(false);
    }

    static List<OnlinePrompt> prompts(int n, long seed) {
        Random r = new Random(seed);
        List<OnlinePrompt> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new OnlinePrompt(new long[] {8 + r.nextInt(24), 8 + r.nextInt(24)}, Map.of(), null));
        return out;
    }

    /** Mean reward-model score and mean sequence KL (k1, Σ_t logπ − logπ_ref) of the policy's samples on held-out prompts. */
    static double[] scoreAndKl(CausalLM policy, CausalLM reference, List<OnlinePrompt> held) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            List<OnlinePrompt> rolled = Rollouts.sampleAndScore(policy, held, 4, SAMPLING.withSeed(99), null, Rollouts.rewardModel(rewardModel, 64), Rollouts.Shaping.NONE);
            Rollouts.Layout l = Rollouts.layout(rolled);
            double[][] pol = l.perRow(Rollouts.completionLogps(policy, l, 1.0)), ref = l.perRow(Rollouts.completionLogps(reference, l, 1.0));
            double score = 0, kl = 0;
            int i = 0;
            for (OnlinePrompt p : rolled)
                for (Experience e : p.experiences()) {
                    score += e.score;
                    kl += Experience.sum(pol[i]) - Experience.sum(ref[i]);
                    i++;
                }
            return new double[] {score / i, kl / i};
        }
    }

    /** Trains a fresh policy with PPO at {@code klCoef}; returns {score before, score after, KL after}. */
    double[] train(double klCoef, boolean valueHead, String name) throws IOException {
        try (CausalLM policy = Models.create(TINY, DType.F32, 2); CausalLM reference = Models.create(TINY, DType.F32, 2);
             CausalLM critic = valueHead ? null : Models.load(saveRewardModel(), DType.F32).model()) {
            List<OnlinePrompt> held = prompts(32, 2);
            double before = scoreAndKl(policy, reference, held)[0];
            var ppo = PpoSettings.defaults().toBuilder().klCoef(klCoef).numMiniBatches(2).build();
            // The gold judge is the rule the reward model was trained on: does the completion contain token 7?
            RewardFunction containsSeven = (prompt, completion, tokens, record) -> java.util.OptionalDouble.of(java.util.Arrays.stream(tokens).anyMatch(t -> t == 7) ? 1 : 0);
            var settings = new PpoTraining.Settings(ppo, SAMPLING, Rollouts.rewardModel(rewardModel, 64), Rollouts.Shaping.NONE, reference, critic, null,
                    Rollouts.of(containsSeven, null));
            TrainerConfig c = new TrainerConfig(48, 1, 8, 1, 3e-3, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 8, 0, 0, 1, "stop", false);
            new Trainer<>(policy, new PpoTraining(settings, policy, 5), prompts(256, 1), List.of(), c, new RunDirectory(tmp.resolve(name)),
                    GradientSync.SINGLE_PROCESS, null, null).train(false);
            double[] after = scoreAndKl(policy, reference, held);
            System.out.printf("PPO %s kl_coef=%.2f: reward-model score %.3f -> %.3f, KL to reference %.3f%n", name, klCoef, before, after[0], after[1]);
            return new double[] {before, after[0], after[1]};
        }
    }

    Path saveRewardModel() {
        Path dir = tmp.resolve("rm");
        if (!Files.exists(dir)) Models.save(rewardModel, dir, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
        return dir;
    }

    @Test
    void ppoRaisesTheScoreWithinTheKlBudgetAndALargerCoefficientDriftsLess() throws IOException {
        double[] weak = train(0.02, false, "weak");
        double[] strong = train(3.0, false, "strong");
        assertTrue(weak[1] > weak[0] + 1.0, "the reward-model score should rise clearly: " + weak[0] + " -> " + weak[1]);
        assertTrue(weak[2] < 10, "KL to the reference within a budget of 10 nats: " + weak[2]);
        assertTrue(strong[2] < weak[2], "kl_coef 3.0 should drift less than 0.02: KL " + strong[2] + " vs " + weak[2]);
        String metrics = Files.readString(tmp.resolve("weak/metrics.jsonl"));
        for (String key : List.of("objective/kl", "objective/scores", "objective/rlhf_reward", "objective/non_score_reward", "policy/approxkl_avg",
                "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg", "val/clipfrac_avg", "policy/entropy_avg", "rollout_share", "objective/gold_scores"))
            assertTrue(metrics.contains("\"" + key + "\""), key + " missing from " + metrics.lines().findFirst().orElse(""));
    }

    @Test
    void aValueHeadOnThePolicyBackboneAlsoLearns() throws IOException {
        double[] r = train(0.02, true, "head");
        assertTrue(r[1] > r[0] + 1.0, r[0] + " -> " + r[1]);
    }

    /** Losses logged by a run of {@code steps} (resumed from {@code dir}'s latest checkpoint when asked). */
    List<Double> ppoLosses(Path dir, int steps, boolean resume) throws IOException {
        return adaptivePpo(dir, steps, resume).losses();
    }

    /** What an adaptive-KL PPO run left: its logged losses, the coefficient its controller reached, its extra parameters' names. */
    record AdaptiveRun(List<Double> losses, double klCoef, java.util.Set<String> extraParameters) {}

    AdaptiveRun adaptivePpo(Path dir, int steps, boolean resume) throws IOException {
        double klCoef;
        java.util.Set<String> extra;
        try (CausalLM policy = Models.create(TINY, DType.F32, 2); CausalLM reference = Models.create(TINY, DType.F32, 2)) {
            // The adaptive controller (target 0.01, short horizon) moves kl_coef every rollout: it must survive the resume.
            var ppo = PpoSettings.defaults().toBuilder().klEstimator("k3").klTarget(0.01).klHorizon(64).numPpoEpochs(2).build();
            var settings = new PpoTraining.Settings(ppo, SAMPLING, Rollouts.rewardModel(rewardModel, 64), Rollouts.Shaping.NONE, reference, null, null);
            TrainerConfig c = new TrainerConfig(steps, 1, 8, 1, 3e-3, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 1, 0, 2, 5, "stop", false);
            PpoTraining method = new PpoTraining(settings, policy, 5);
            new Trainer<>(policy, method, prompts(64, 1), List.of(), c, RunDirectory.open(dir, resume),
                    GradientSync.SINGLE_PROCESS, null, null).train(resume);
            klCoef = method.klCoef();
            extra = java.util.Set.copyOf(method.extraParameters().keySet());
        }
        List<Double> losses = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl")))
            losses.add(new com.fasterxml.jackson.databind.ObjectMapper().readTree(line).get("loss").asDouble());
        return new AdaptiveRun(losses, klCoef, extra);
    }

    /**
     * The adaptive coefficient is method state in trainer_state.json, not a parameter: a resumed run continues with
     * the coefficient and losses of an uninterrupted one, and so does one resumed from a checkpoint written when the
     * coefficient was a one-element extra parameter (with optimizer moments).
     */
    @Test
    void theAdaptiveKlCoefficientIsCheckpointedAsMethodStateAndOldCheckpointsStillResume() throws IOException {
        AdaptiveRun straight = adaptivePpo(tmp.resolve("straight"), 4, false);
        assertEquals(4, straight.losses().size());
        assertNotEquals(0.05, straight.klCoef(), "the controller should have moved the coefficient");
        assertEquals(java.util.Set.of("value_head.weight"), straight.extraParameters(), "the coefficient is no parameter the optimizer sees");

        AdaptiveRun first = adaptivePpo(tmp.resolve("resumed"), 2, false);
        Path step2 = tmp.resolve("resumed/checkpoints/step-2");
        var state = new com.fasterxml.jackson.databind.ObjectMapper().readTree(step2.resolve("trainer_state.json").toFile());
        assertEquals(first.klCoef(), state.get("method_state").get(PpoTraining.ADAPTIVE_KL_COEF).asDouble(), 0.0);
        assertFalse(io.tether.engine.Safetensors.open(step2.resolve("extra_parameters.safetensors")).entries().containsKey(PpoTraining.ADAPTIVE_KL_COEF));
        AdaptiveRun resumed = adaptivePpo(tmp.resolve("resumed"), 4, true);
        assertEquals(straight.losses(), resumed.losses());
        assertEquals(straight.klCoef(), resumed.klCoef(), 0.0);

        // The same checkpoint rewritten as the code before the state hook wrote it.
        adaptivePpo(tmp.resolve("legacy"), 2, false);
        Path legacy = tmp.resolve("legacy/checkpoints/step-2");
        var stateNode = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(legacy.resolve("trainer_state.json").toFile());
        double coef = stateNode.remove("method_state").get(PpoTraining.ADAPTIVE_KL_COEF).asDouble();
        Files.writeString(legacy.resolve("trainer_state.json"), stateNode.toPrettyString());
        try (StepScope s = new StepScope()) {
            var extra = io.tether.engine.Safetensors.open(legacy.resolve("extra_parameters.safetensors"));
            Map<String, org.bytedeco.pytorch.Tensor> tensors = new java.util.LinkedHashMap<>();
            for (String name : extra.entries().keySet()) tensors.put(name, extra.read(name));
            tensors.put(PpoTraining.ADAPTIVE_KL_COEF, io.tether.engine.Tensors.doubles(new double[] {coef}, 1));
            io.tether.engine.Safetensors.write(legacy.resolve("extra_parameters.safetensors"), tensors, Map.of("format", "pt"));
            var opt = io.tether.engine.Safetensors.open(legacy.resolve("optimizer.safetensors"));
            Map<String, org.bytedeco.pytorch.Tensor> moments = new java.util.LinkedHashMap<>();
            for (String name : opt.entries().keySet()) moments.put(name, opt.read(name));
            moments.put("exp_avg." + PpoTraining.ADAPTIVE_KL_COEF, io.tether.engine.Tensors.zeros(DType.F64, 1));
            moments.put("exp_avg_sq." + PpoTraining.ADAPTIVE_KL_COEF, io.tether.engine.Tensors.zeros(DType.F64, 1));
            io.tether.engine.Safetensors.write(legacy.resolve("optimizer.safetensors"), moments, opt.metadata());
        }
        AdaptiveRun fromLegacy = adaptivePpo(tmp.resolve("legacy"), 4, true);
        assertEquals(straight.losses(), fromLegacy.losses());
        assertEquals(straight.klCoef(), fromLegacy.klCoef(), 0.0);
    }

    @Test
    void aResumedPpoRunTrainsExactlyAsAnUninterruptedOne() throws IOException {
        List<Double> straight = ppoLosses(tmp.resolve("straight"), 4, false);
        ppoLosses(tmp.resolve("resumed"), 2, false);
        List<Double> resumed = ppoLosses(tmp.resolve("resumed"), 4, true);
        assertEquals(4, straight.size());
        // The value head (an extra parameter), the optimizer state and the step-seeded rollouts all come back.
        assertEquals(straight, resumed);
    }

    /** The rollout's objective/kl and the coefficient after {@link PpoTraining#prepare} of {@code drawn} against {@code reference}. */
    static double[] prepareOnce(CausalLM policy, CausalLM reference, PpoSettings ppo, List<OnlinePrompt> drawn, double[] k3Out) {
        RewardFunction containsSeven = (prompt, completion, tokens, record) -> java.util.OptionalDouble.of(java.util.Arrays.stream(tokens).anyMatch(t -> t == 7) ? 1 : 0);
        var method = new PpoTraining(new PpoTraining.Settings(ppo, SAMPLING, Rollouts.of(containsSeven, null), Rollouts.Shaping.NONE, reference, null, null), policy, 5);
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            List<OnlinePrompt> rolled = method.prepare(policy, drawn, 0);
            // k3 by hand from the rollout's own log-probs: Σ_t e^{ref−old} − 1 − (ref − old), averaged over the completions.
            double k3 = 0;
            for (Experience e : Rollouts.experiences(rolled))
                for (int t = 0; t < e.oldLogps.length; t++) k3 += Math.exp(e.refLogps[t] - e.oldLogps[t]) - 1 - (e.refLogps[t] - e.oldLogps[t]);
            k3Out[0] = k3 / drawn.size();
            double logged = method.forward(policy, rolled).metricSums().get("objective/kl") / method.units(rolled);
            return new double[] {logged, method.klCoef()};
        }
    }

    /** k3 with the adaptive controller, one pass of one mini-batch. */
    static PpoSettings adaptive(double klCoef, double klTarget, double klHorizon) {
        return PpoSettings.defaults().toBuilder().klCoef(klCoef).klEstimator("k3").klTarget(klTarget).klHorizon(klHorizon).numPpoEpochs(1).build();
    }

    @Test
    void theAdaptiveKlCoefficientFallsBelowTargetAndRisesAbove() {
        try (CausalLM policy = Models.create(TINY, DType.F32, 2); CausalLM same = Models.create(TINY, DType.F32, 2);
             CausalLM other = Models.create(TINY, DType.F32, 3)) {
            List<OnlinePrompt> drawn = prompts(8, 4);
            double coef = 0.1, horizon = 64, perRollout = 8 / horizon;   // n_steps = the rollout's 8 completions
            double[] k3 = new double[1];
            // The reference is the policy itself: KL 0, far below target, so the error clips at −0.2 and β falls.
            double[] r = prepareOnce(policy, same, adaptive(coef, 0.5, horizon), drawn, k3);
            assertEquals(0.0, r[0], 1e-6);
            assertEquals(coef * (1 - 0.2 * perRollout), r[1], 1e-12, "KL below target: the coefficient falls");
            // Another reference: the trainer's objective/kl is the k3 estimate (not k1), and far above a small target β rises.
            r = prepareOnce(policy, other, adaptive(coef, 1e-3, horizon), drawn, k3);
            assertEquals(k3[0], r[0], 1e-6 * Math.max(1, k3[0]), "objective/kl is the mean sequence k3");
            assertTrue(k3[0] > 1.2e-3, "KL " + k3[0]);
            assertEquals(coef * (1 + 0.2 * perRollout), r[1], 1e-12, "KL above target: the coefficient rises");
            // A target the KL exceeds by 10%: the proportional error itself, unclipped (same samples: the rollout is seeded by the step).
            double target = k3[0] / 1.1;
            r = prepareOnce(policy, other, adaptive(coef, target, horizon), drawn, k3);
            assertEquals(coef * (1 + (r[0] / target - 1) * perRollout), r[1], 1e-12);
            assertEquals(coef * (1 + 0.1 * perRollout), r[1], 1e-7);
        }
    }

    @Test
    void whiteningCentresAndScales() {
        double[][] rows = {{1, 2, 3}, {4, 5}};
        PpoTraining.whiten(rows, true);
        double sum = 0, ss = 0;
        for (double[] r : rows) for (double v : r) { sum += v; ss += v * v; }
        assertEquals(0, sum, 1e-9);
        assertEquals(4, ss, 1e-6, "unit Bessel-corrected variance over 5 tokens: sum of squares n - 1");
    }

    /**
     * PPO with its value head on the policy's hidden states (the log-probs and the values share them): loss, metrics
     * (entropy included) and the policy's gradient are those of the unchunked log-prob path at a temperature (fp64).
     */
    @Test
    void chunkedLogProbsGiveTheUnchunkedLossMetricsAndGradient() {
        try (CausalLM policy = Models.create(TINY, DType.F64, 2); CausalLM reference = Models.create(TINY, DType.F64, 3)) {
            RewardFunction containsSeven = (prompt, completion, tokens, record) -> java.util.OptionalDouble.of(java.util.Arrays.stream(tokens).anyMatch(t -> t == 7) ? 1 : 0);
            var ppo = new PpoSettings(0.05, "k3", Double.NaN, 64, 1.0, 0.95, 0.2, 0.2, 0.1, 2, 1, false, null, false, List.of());
            SamplingConfig sampling = new SamplingConfig(6, 0.7, 0, 1.0, 11, List.of(), List.of(), true);
            var method = new PpoTraining(new PpoTraining.Settings(ppo, sampling, Rollouts.of(containsSeven, null), Rollouts.Shaping.NONE, reference, null, null), policy, 5);
            policy.setTrainable(true);
            List<OnlinePrompt> rolled;
            try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                rolled = method.prepare(policy, prompts(4, 3), 0);
            }
            Object[] full = ppoStep(policy, method, rolled, 0);
            for (int chunk : new int[] {4, -1}) {
                Object[] chunked = ppoStep(policy, method, rolled, chunk);
                assertEquals((Double) full[0], (Double) chunked[0], 1e-10, "chunk " + chunk + ": loss");
                @SuppressWarnings("unchecked") Map<String, Double> fm = (Map<String, Double>) full[1], cm = (Map<String, Double>) chunked[1];
                assertTrue(fm.containsKey("policy/entropy_avg"));
                for (String k : fm.keySet()) assertEquals(fm.get(k), cm.get(k), 1e-10, "chunk " + chunk + ": " + k);
                @SuppressWarnings("unchecked") Map<String, double[]> fg = (Map<String, double[]>) full[2], cg = (Map<String, double[]>) chunked[2];
                for (String k : fg.keySet()) {
                    assertTrue(java.util.Arrays.stream(fg.get(k)).anyMatch(x -> x != 0), k + " has an all-zero gradient");
                    assertArrayEquals(fg.get(k), cg.get(k), 1e-10, "chunk " + chunk + ": gradient of " + k);
                }
            }
        }
    }

    /** {loss, metric sums, gradients of the policy's parameters} of one PPO forward and backward at a chunk setting. */
    static Object[] ppoStep(CausalLM policy, PpoTraining method, List<OnlinePrompt> rolled, int chunk) {
        int before = io.tether.model.LogProbs.setChunkPositions(chunk);
        try (StepScope s = new StepScope()) {
            var out = method.forward(policy, rolled);
            double loss = out.lossSum().item_double();
            out.lossSum().backward();
            policy.backwardCheckpoints();
            Map<String, double[]> grads = new java.util.LinkedHashMap<>();
            for (Map.Entry<String, org.bytedeco.pytorch.Tensor> e : policy.trainableParameters().entrySet()) {
                org.bytedeco.pytorch.Tensor g = e.getValue().grad();
                grads.put(e.getKey(), io.tether.engine.Tensors.toDoubles(g.contiguous()));
                g.zero_();
            }
            return new Object[] {loss, out.metricSums(), grads};
        } finally {
            io.tether.model.LogProbs.setChunkPositions(before);
        }
    }
}
