package io.tether.online;

import io.tether.rollout.Experience;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
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

class OnlineDpoTrainingTest {
    @TempDir Path tmp;
    static final ModelConfig CONFIG = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);
    /** The judge: how many of the completion's tokens are 5. */
    static final RewardFunction FIVES = (prompt, completion, tokens, record) -> {
        int n = 0;
        for (long t : tokens) n += t == 5 ? 1 : 0;
        return OptionalDouble.of(n);
    };

    @BeforeAll
    static void load() {
        Torch.init();
    }

    static SamplingConfig sampling(int tokens, long seed) {
        return new SamplingConfig(tokens, 1.0, 0, 1.0, seed, List.of(), List.of(), true);
    }

    /** Win-rate of model a's samples against model b's under the judge, one sample each per prompt and round; ties count half. */
    static double winRate(CausalLM a, CausalLM b, List<OnlinePrompt> prompts, int samples) {
        List<long[]> ids = new ArrayList<>();
        for (var p : prompts) ids.add(p.ids());
        double wins = 0;
        int n = 0;
        try (NoGradGuard g = new NoGradGuard()) {
            for (int r = 0; r < samples; r++) {
                var ga = Generator.generate(a, ids, sampling(4, 100 + r));
                var gb = Generator.generate(b, ids, sampling(4, 200 + r));
                for (int i = 0; i < ids.size(); i++) {
                    double sa = FIVES.score("", "", ga.get(i).tokens(), Map.of()).getAsDouble(), sb = FIVES.score("", "", gb.get(i).tokens(), Map.of()).getAsDouble();
                    wins += sa > sb ? 1 : sa == sb ? 0.5 : 0;
                    n++;
                }
            }
        }
        return wins / n;
    }

    static double meanFives(CausalLM m, List<OnlinePrompt> prompts) {
        List<long[]> ids = new ArrayList<>();
        for (var p : prompts) ids.add(p.ids());
        double s = 0;
        try (NoGradGuard g = new NoGradGuard()) {
            for (var gen : Generator.generate(m, ids, sampling(4, 300))) s += FIVES.score("", "", gen.tokens(), Map.of()).getAsDouble();
        }
        return s / ids.size();
    }

    @Test
    void onlineDpoWinsAgainstItsStartingPolicyUnderTheJudge() throws java.io.IOException {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 2); CausalLM reference = Models.create(CONFIG, DType.F32, 2);
             CausalLM start = Models.create(CONFIG, DType.F32, 2)) {
            var settings = new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(0.1, "sigmoid"), sampling(4, 7), Rollouts.of(FIVES, null),
                    Rollouts.Shaping.NONE, reference, null, 1);
            List<OnlinePrompt> held = GrpoTrainingTest.prompts(64, 2);
            double before = winRate(policy, start, held, 4), fivesBefore = meanFives(policy, held);
            TrainerConfig c = new TrainerConfig(40, 1, 16, 1, 1e-2, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 10, 0, 0, 1, "stop", false);
            new Trainer<>(policy, new OnlineDpoTraining(settings), GrpoTrainingTest.prompts(1024, 1), List.of(), c, new RunDirectory(tmp),
                    GradientSync.SINGLE_PROCESS, null, null).train(false);
            double after = winRate(policy, start, held, 4), fivesAfter = meanFives(policy, held);
            System.out.printf("Online DPO: win-rate vs the starting policy %.3f -> %.3f; fives per 4-token completion %.3f -> %.3f%n",
                    before, after, fivesBefore, fivesAfter);
            assertEquals(0.5, before, 0.1, "an untrained copy should be an even match");
            assertTrue(after > 0.7, "win-rate " + after);
            String metrics = Files.readString(tmp.resolve("metrics.jsonl"));
            for (String key : List.of("objective/kl", "objective/non_score_reward", "objective/rlhf_reward", "objective/scores", "objective/scores_margin",
                    "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected",
                    "val/contain_eos_token", "beta", "pairs/tie_fraction", "pairs/dropped_fraction"))
                assertTrue(metrics.contains("\"" + key + "\""), key + " missing: " + metrics.lines().findFirst().orElse(""));
        }
    }

    static OnlinePrompt pair(long[] prompt, long[] a, double scoreA, long[] b, double scoreB) {
        Experience x = new Experience(a, false, new double[a.length]), y = new Experience(b, true, new double[b.length]);
        x.score = scoreA;
        y.score = scoreB;
        return new OnlinePrompt(prompt, Map.of(), null).withExperiences(List.of(x, y));
    }

    static double seqLogp(CausalLM m, long[] prompt, long[] completion) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            var l = Rollouts.Layout.of(List.of(prompt), List.of(completion));
            return Experience.sum(l.perRow(Rollouts.completionLogps(m, l, 1.0))[0]);
        }
    }

    /** Prepared by hand: reference log-probs from the reference model, pairs oriented chosen-first. */
    static List<OnlinePrompt> prepared(CausalLM reference, List<OnlinePrompt> raw) {
        List<OnlinePrompt> out = OnlineDpoTraining.orient(raw);
        var l = Rollouts.layout(out);
        double[][] ref = Rollouts.referenceLogps(null, reference, l, 1.0);
        int i = 0;
        for (var p : out) for (var e : p.experiences()) e.refLogps = ref[i++];
        return out;
    }

    @Test
    void tiesAndUnscorablePairsAddNothingAndPairsAreOrderedByScore() {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 3); CausalLM reference = Models.create(CONFIG, DType.F32, 4)) {
            policy.setTrainable(true);
            long[] p = {9, 12}, a = {5, 6, 7}, b = {20, 21};
            // The second completion scores higher: it must become the chosen one.
            List<OnlinePrompt> flipped = OnlineDpoTraining.orient(List.of(pair(p, a, 0, b, 1)));
            assertArrayEquals(b, flipped.get(0).experiences().get(0).tokens);
            assertArrayEquals(a, OnlineDpoTraining.orient(List.of(pair(p, a, 1, b, 0))).get(0).experiences().get(0).tokens);
            assertArrayEquals(a, OnlineDpoTraining.orient(List.of(pair(p, a, 1, b, 1))).get(0).experiences().get(0).tokens, "a tie keeps the first");

            double beta = 0.1;
            // Expected per-pair quantities for chosen b (score 1) over rejected a (score 0).
            double delta = (seqLogp(policy, p, b) - seqLogp(reference, p, b)) - (seqLogp(policy, p, a) - seqLogp(reference, p, a));
            double sigmoid = Math.log1p(Math.exp(-beta * delta)), ipo = Math.pow(delta - 1 / (2 * beta), 2);
            for (String type : List.of("sigmoid", "ipo")) {
                var settings = new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(beta, type), sampling(3, 1), Rollouts.of(FIVES, null),
                        Rollouts.Shaping.NONE, reference, null, 1);
                OnlineDpoTraining m = new OnlineDpoTraining(settings);
                double expected = type.equals("sigmoid") ? sigmoid : ipo;
                try (StepScope s = new StepScope()) {
                    var alone = m.forward(policy, prepared(reference, List.of(pair(p, a, 0, b, 1))));
                    assertEquals(expected, alone.lossSum().item_double(), 1e-4, type + ": chosen must be the higher-scored completion");
                    assertEquals(delta > 0 ? 1.0 : 0.0, alone.metricSums().get("rewards/accuracies"), type);
                    assertEquals(beta * delta, alone.metricSums().get("rewards/margins"), 1e-4, type);
                    // Add a tied pair and an unscorable one: they add nothing, the loss per prompt is still the one pair's, and they are counted.
                    List<OnlinePrompt> three = prepared(reference, List.of(pair(p, a, 0, b, 1), pair(p, a, 2, b, 2), pair(p, a, Double.NaN, b, 3)));
                    var mixed = m.forward(policy, three);
                    assertEquals(expected, mixed.lossSum().item_double() / m.units(three), 1e-4, type);
                    assertEquals(1.0, mixed.metricSums().get("pairs/tie_fraction"));
                    assertEquals(2.0, mixed.metricSums().get("pairs/dropped_fraction"));
                    // Only ties: zero loss, zero gradient.
                    var none = m.forward(policy, prepared(reference, List.of(pair(p, a, 2, b, 2), pair(p, a, 1, b, Double.NaN))));
                    assertEquals(0.0, none.lossSum().item_double(), 0.0);
                    none.lossSum().backward();
                    assertFalse(gradients(policy).isEmpty());
                    for (Tensor g : gradients(policy)) assertEquals(0.0, g.abs().sum().item_double(), 0.0);
                    assertFalse(none.metricSums().containsKey("rewards/chosen"));
                }
            }
        }
    }

    /**
     * Loss and gradient of one optimizer step over {@code batch} in {@code microBatches} micro-batches, normalised as the
     * loop normalises them (each micro-batch's loss sum over the units of the whole step).
     */
    static double[] stepLossAndGradient(CausalLM policy, OnlineDpoTraining method, List<OnlinePrompt> batch, int microBatches) {
        long units = 0;
        List<List<OnlinePrompt>> micro = new ArrayList<>();
        for (int k = 0; k < microBatches; k++) micro.add(batch.subList(k * batch.size() / microBatches, (k + 1) * batch.size() / microBatches));
        for (List<OnlinePrompt> mb : micro) units += method.units(mb);
        double loss = 0;
        for (List<OnlinePrompt> mb : micro) {
            try (StepScope s = new StepScope()) {
                Tensor l = method.forward(policy, mb).lossSum().div(Tensors.scalar((double) units));
                loss += l.item_double();
                l.backward();
            }
        }
        List<Double> out = new ArrayList<>(List.of(loss));
        try (StepScope s = new StepScope()) {
            for (Tensor g : gradients(policy)) {
                for (double v : Tensors.toDoubles(g.contiguous())) out.add(v);
                g.zero_();
            }
        }
        return out.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** −log σ(β((π_c − ref_c) − (π_r − ref_r))) of one pair, from the models' own sequence log-probs. */
    static double sigmoidLoss(CausalLM policy, CausalLM reference, double beta, long[] prompt, long[] chosen, long[] rejected) {
        double delta = (seqLogp(policy, prompt, chosen) - seqLogp(reference, prompt, chosen)) - (seqLogp(policy, prompt, rejected) - seqLogp(reference, prompt, rejected));
        return Math.log1p(Math.exp(-beta * delta));
    }

    @Test
    void theLossIsTheMeanOverThePairsThatCountInAnyMicroBatchingAndTiesFollowTiePolicy() {
        try (CausalLM policy = Models.create(CONFIG, DType.F64, 3); CausalLM reference = Models.create(CONFIG, DType.F64, 4)) {
            policy.setTrainable(true);
            long[] p = {9, 12}, q = {11, 14}, a = {5, 6, 7}, b = {20, 21};
            double beta = 0.1, nan = Double.NaN;
            double bOverAtP = sigmoidLoss(policy, reference, beta, p, b, a), bOverAtQ = sigmoidLoss(policy, reference, beta, q, b, a);
            double aOverBatQ = sigmoidLoss(policy, reference, beta, q, a, b);
            // Prompt by prompt: b wins at p; a tie at q; an unscorable pair; b wins at q. The second half of the batch
            // holds the tie, so with 4 micro-batches one of them has no preference pair at all.
            for (String policyName : List.of("drop", "first")) {
                var settings = new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(beta, "sigmoid"), sampling(3, 1), Rollouts.of(FIVES, null),
                        Rollouts.Shaping.NONE, reference, null, 1, null, policyName);
                var method = new OnlineDpoTraining(settings);
                List<OnlinePrompt> batch;
                try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                    batch = method.pairUp(policy, List.of(pair(p, a, 0, b, 1), pair(p, a, nan, b, 3), pair(q, a, 2, b, 2), pair(q, b, 5, a, 1)));
                }
                // drop: the mean of the 2 preference pairs; first: the tie trains too, a (first) over b, and the mean is over 3.
                double expected = policyName.equals("drop") ? (bOverAtP + bOverAtQ) / 2 : (bOverAtP + aOverBatQ + bOverAtQ) / 3;
                double[] whole = stepLossAndGradient(policy, method, batch, 1);
                assertEquals(expected, whole[0], 1e-12, policyName);
                for (int k : new int[] {2, 4}) assertArrayEquals(whole, stepLossAndGradient(policy, method, batch, k), 1e-10, policyName + ", " + k + " micro-batches");
                try (StepScope s = new StepScope()) {
                    var out = method.forward(policy, batch);
                    assertEquals(0.25, out.metricSums().get("pairs/tie_fraction") / method.units(batch), 0.0);
                    assertEquals(policyName.equals("drop") ? 0.5 : 0.25, out.metricSums().get("pairs/dropped_fraction") / method.units(batch), 0.0);
                }
            }
            assertThrows(IllegalArgumentException.class, () -> new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(beta, "sigmoid"), sampling(3, 1),
                    Rollouts.of(FIVES, null), Rollouts.Shaping.NONE, reference, null, 1, null, "random"));
        }
    }

    static List<Tensor> gradients(CausalLM m) {
        List<Tensor> out = new ArrayList<>();
        for (Tensor t : m.parameters().values()) if (t.grad().defined()) out.add(t.grad());
        return out;
    }

    @Test
    void aPairwiseJudgeLabelsThePairs() {
        long[] p = {9, 10}, a = {5, 5}, b = {6, 6};
        PairwiseJudge fewerFives = (prompt, t1, s1, t2, s2) -> {
            long f1 = java.util.Arrays.stream(t1).filter(x -> x == 5).count(), f2 = java.util.Arrays.stream(t2).filter(x -> x == 5).count();
            return f1 == f2 ? PairwiseJudge.Verdict.TIE : f1 < f2 ? PairwiseJudge.Verdict.FIRST : PairwiseJudge.Verdict.SECOND;
        };
        // Scores say a (1) beats b (0); the judge says the opposite and wins.
        List<OnlinePrompt> judged = List.of(pair(p, a, 1, b, 0));
        OnlineDpoTraining.judge(judged, fewerFives, null);
        assertArrayEquals(b, OnlineDpoTraining.orient(judged).get(0).experiences().get(0).tokens);
        List<OnlinePrompt> tie = List.of(pair(p, a, 1, a.clone(), 0));
        OnlineDpoTraining.judge(tie, fewerFives, null);
        assertFalse(OnlineDpoTraining.preferred(tie.get(0)), "a tie verdict carries no preference");
    }

    @Test
    void iterativeRoundsResetTheReferenceToThePolicy() {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 3); CausalLM reference = Models.create(CONFIG, DType.F32, 4)) {
            var settings = new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(0.1, "sigmoid"), sampling(3, 1), Rollouts.of(FIVES, null),
                    Rollouts.Shaping.NONE, reference, null, 3);
            OnlineDpoTraining m = new OnlineDpoTraining(settings).rounds(10);
            assertEquals(java.util.Set.of(3, 6), m.roundStarts(), "10 steps in 3 rounds: 3, 3 and 4 steps");
            assertEquals(java.util.Set.of(1, 2, 3, 4, 5), new OnlineDpoTraining(new OnlineDpoTraining.Settings(settings.dpo(), settings.sampling(),
                    settings.scorer(), settings.shaping(), reference, null, 6)).rounds(6).roundStarts());
            assertThrows(IllegalArgumentException.class, () -> new OnlineDpoTraining(settings).rounds(2), "3 rounds in 2 steps");
            long[] p = {9, 12}, c = {5, 6};
            double before = seqLogp(reference, p, c);
            m.afterStep(2, policy);
            assertEquals(before, seqLogp(reference, p, c), 0.0, "mid-round: the reference stays");
            m.afterStep(3, policy);
            assertEquals(seqLogp(policy, p, c), seqLogp(reference, p, c), 1e-6, "round 2 starts from the policy");
            assertThrows(IllegalArgumentException.class, () -> new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(0.1, "sigmoid"),
                    sampling(3, 1), Rollouts.of(FIVES, null), Rollouts.Shaping.NONE, null, null, 2), "LoRA (no reference model) cannot reset rounds");
        }
    }

    @Test
    void inTheLoopTheKlToTheReferenceRestartsAtZeroEachRound() throws java.io.IOException {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 2); CausalLM reference = Models.create(CONFIG, DType.F32, 2)) {
            var settings = new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(0.1, "sigmoid"), sampling(4, 7), Rollouts.of(FIVES, null),
                    Rollouts.Shaping.NONE, reference, null, 2);
            TrainerConfig c = new TrainerConfig(10, 1, 16, 1, 1e-2, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 1, 0, 0, 1, "stop", false);
            var method = new OnlineDpoTraining(settings);
            var trainer = new Trainer<>(policy, method, GrpoTrainingTest.prompts(256, 1), List.of(), c, new RunDirectory(tmp), GradientSync.SINGLE_PROCESS, null, null);
            method.rounds(trainer.totalSteps());
            trainer.train(false);
            double[] kl = new double[11];
            var json = new com.fasterxml.jackson.databind.ObjectMapper();
            for (String line : Files.readAllLines(tmp.resolve("metrics.jsonl"))) {
                var n = json.readTree(line);
                if (n.has("objective/kl")) kl[n.get("step").asInt()] = n.get("objective/kl").asDouble();
            }
            System.out.printf("Online DPO, 2 rounds of 5 steps: objective/kl by step %s%n", java.util.Arrays.toString(java.util.Arrays.copyOfRange(kl, 1, 11)));
            assertEquals(0, kl[1], 1e-4, "step 1: the reference is the starting policy");
            assertTrue(Math.abs(kl[5]) > 1e-2, "round 1 moved away from its reference: " + kl[5]);
            assertEquals(0, kl[6], 1e-4, "step 6 starts round 2 with the reference reset to the policy");
            assertThrows(IllegalArgumentException.class, () -> new OnlineDpoTraining.Settings(OnlineDpoTraining.Settings.loss(0.1, "hinge"),
                    sampling(3, 1), Rollouts.of(FIVES, null), Rollouts.Shaping.NONE, reference, null, 1));
        }
    }
}
