package io.tether.online;

import io.tether.rollout.Experience;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.Random;

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
import io.tether.objective.Grpo;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

class GrpoTrainingTest {
    @TempDir Path tmp;

    @BeforeAll
    static void load() {
        Torch.init();
    }

    static List<OnlinePrompt> prompts(int n, long seed) {
        Random r = new Random(seed);
        List<OnlinePrompt> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new OnlinePrompt(new long[] {8 + r.nextInt(24), 8 + r.nextInt(24)}, Map.of(), null));
        return out;
    }

    static double greedyRate(CausalLM m, List<OnlinePrompt> prompts) {
        List<long[]> ids = new ArrayList<>();
        for (var p : prompts) ids.add(p.ids());
        int hits = 0;
        for (var g : Generator.generate(m, ids, SamplingConfig.greedy(1))) hits += g.tokens()[0] == 5 ? 1 : 0;
        return (double) hits / prompts.size();
    }

    @Test
    void grpoLearnsAVerifiableRewardAgainstAFrozenReference() throws java.io.IOException {
        ModelConfig config = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);
        try (CausalLM policy = Models.create(config, DType.F32, 2); CausalLM reference = Models.create(config, DType.F32, 2)) {
            // The verifiable reward: the answer must start with token 5.
            RewardFunction startsWithFive = (prompt, completion, tokens, record) -> OptionalDouble.of(tokens.length > 0 && tokens[0] == 5 ? 1.0 : 0.0);
            var settings = GrpoTraining.Settings.grpo(new Grpo.Config(0.2, 0.28, 0.04, "dapo", "group", 2), 8,
                    new SamplingConfig(2, 1.0, 0, 1.0, 7, List.of(), List.of(), true), startsWithFive, reference, null);
            List<OnlinePrompt> held = prompts(64, 2);
            double before = greedyRate(policy, held);
            TrainerConfig c = new TrainerConfig(40, 1, 8, 1, 1e-2, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 10, 0, 0, 1, "stop", false);
            new Trainer<>(policy, new GrpoTraining(settings), prompts(256, 1), List.of(), c, new RunDirectory(tmp), GradientSync.SINGLE_PROCESS, null, null).train(false);
            double after = greedyRate(policy, held);
            System.out.printf("GRPO: greedy answers starting with 5: %.3f -> %.3f%n", before, after);
            assertTrue(after >= 0.8 && after > before, before + " -> " + after);
            assertTrue(java.nio.file.Files.readString(tmp.resolve("metrics.jsonl")).contains("\"reward\""));
        }
    }

    @Test
    void rlooLearnsTheSameRewardWithALeaveOneOutBaselineAndTwoPassesPerRollout() throws java.io.IOException {
        ModelConfig config = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);
        try (CausalLM policy = Models.create(config, DType.F32, 2); CausalLM reference = Models.create(config, DType.F32, 2)) {
            RewardFunction startsWithFive = (prompt, completion, tokens, record) -> OptionalDouble.of(tokens.length > 0 && tokens[0] == 5 ? 1.0 : 0.0);
            var grpo = new Grpo.Config(0.2, 0.2, 0.05, "grpo", "none", 2, true);
            var settings = new GrpoTraining.Settings(GrpoTraining.Estimator.RLOO, grpo, 4, new SamplingConfig(2, 1.0, 0, 1.0, 7, List.of(), List.of(), true),
                    Rollouts.of(startsWithFive, null), Rollouts.Shaping.NONE, reference, null, 2, false, false);
            List<OnlinePrompt> held = prompts(64, 2);
            double before = greedyRate(policy, held);
            TrainerConfig c = new TrainerConfig(40, 1, 8, 1, 1e-2, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 10, 0, 0, 1, "stop", false);
            var trainer = new Trainer<>(policy, new GrpoTraining(settings), prompts(256, 1), List.of(), c, new RunDirectory(tmp), GradientSync.SINGLE_PROCESS, null, null);
            trainer.train(false);
            double after = greedyRate(policy, held);
            System.out.printf("RLOO: greedy answers starting with 5: %.3f -> %.3f%n", before, after);
            assertTrue(after >= 0.8 && after > before, before + " -> " + after);
            String metrics = java.nio.file.Files.readString(tmp.resolve("metrics.jsonl"));
            assertTrue(metrics.contains("\"kl\"") && metrics.contains("\"rollout_share\""), metrics.lines().findFirst().orElse(""));
        }
    }

    /**
     * The gradient of one optimizer step over {@code batch} split into {@code microBatches} micro-batches, normalised as
     * the loop normalises them (each micro-batch's loss sum over the units of the whole step), in fp64.
     */
    static Map<String, double[]> stepGradient(CausalLM policy, GrpoTraining method, List<OnlinePrompt> batch, int microBatches) {
        List<List<OnlinePrompt>> micro = new ArrayList<>();
        for (int k = 0; k < microBatches; k++) micro.add(batch.subList(k * batch.size() / microBatches, (k + 1) * batch.size() / microBatches));
        long units = 0;
        for (List<OnlinePrompt> mb : micro) units += method.units(mb);
        for (List<OnlinePrompt> mb : micro) {
            try (StepScope s = new StepScope()) {
                method.forward(policy, mb).lossSum().div(io.tether.engine.Tensors.scalar((double) units)).backward();
            }
        }
        Map<String, double[]> out = new java.util.LinkedHashMap<>();
        for (Map.Entry<String, org.bytedeco.pytorch.Tensor> e : policy.trainableParameters().entrySet()) {
            try (StepScope s = new StepScope()) {
                org.bytedeco.pytorch.Tensor g = e.getValue().grad();
                out.put(e.getKey(), io.tether.engine.Tensors.toDoubles(g.contiguous()));
                g.zero_();
            }
        }
        return out;
    }

    @Test
    void microBatchingNeverChangesTheGradientForAnyLossType() {
        ModelConfig config = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);
        try (CausalLM policy = Models.create(config, DType.F64, 2); CausalLM reference = Models.create(config, DType.F64, 3)) {
            policy.setTrainable(true);
            RewardFunction fives = (prompt, completion, tokens, record) -> OptionalDouble.of(java.util.Arrays.stream(tokens).filter(t -> t == 5).count());
            // Stop tokens end completions at different lengths, so micro-batches hold different numbers of tokens per prompt.
            SamplingConfig sampling = new SamplingConfig(6, 1.0, 0, 1.0, 11, List.of(1L, 2L, 3L, 4L, 6L, 7L), List.of(), true);
            List<OnlinePrompt> drawn = prompts(8, 3);
            for (String lossType : List.of("grpo", "bnpo", "dr_grpo", "dapo")) {
                for (boolean maskTruncated : new boolean[] {false, true}) {
                    var grpo = new Grpo.Config(0.2, 0.28, 0.04, lossType, "group", 6);
                    var method = new GrpoTraining(new GrpoTraining.Settings(GrpoTraining.Estimator.GRPO, grpo, 4, sampling, Rollouts.of(fives, null),
                            Rollouts.Shaping.NONE, reference, null, 1, maskTruncated, false));
                    List<OnlinePrompt> batch;
                    try (StepScope s = new StepScope(); org.bytedeco.pytorch.NoGradGuard g = new org.bytedeco.pytorch.NoGradGuard()) {
                        batch = method.prepare(policy, drawn, 0);
                    }
                    java.util.Set<Integer> lengths = new java.util.TreeSet<>();
                    int truncated = 0;
                    for (Experience e : Rollouts.experiences(batch)) { lengths.add(e.tokens.length); truncated += e.truncated ? 1 : 0; }
                    assertTrue(lengths.size() >= 3 && truncated > 0 && truncated < 32, "completion lengths " + lengths + ", truncated " + truncated);
                    Map<String, double[]> whole = stepGradient(policy, method, batch, 1);
                    for (int k : new int[] {2, 4}) {
                        Map<String, double[]> split = stepGradient(policy, method, batch, k);
                        for (String name : whole.keySet())
                            assertArrayEquals(whole.get(name), split.get(name), 1e-10, lossType + (maskTruncated ? " (truncated masked)" : "") + ", " + k + " micro-batches: " + name);
                    }
                }
            }
        }
    }

    @Test
    void unscorableCompletionsAreNoOnesBaselineAndTiedGroupsAreCounted() {
        double nan = Double.NaN;
        // Group 1: (1, NaN, 0) -> the NaN is left out of mean and std; group 2 ties.
        double[] a = Grpo.advantages(new double[] {1, nan, 0, 2, 2, 2}, 3, "none");
        assertArrayEquals(new double[] {0.5, 0, -0.5, 0, 0, 0}, a, 1e-12);
        assertEquals(1, Grpo.zeroStdGroups(new double[] {1, nan, 0, 2, 2, 2}, 3));
        double[] loo = io.tether.objective.Rloo.advantages(new double[] {1, nan, 0, 3}, 4, false);
        // Scorable: 1, 0, 3. A_i = r_i - mean(others): 1 - 1.5, 0 - 2, 3 - 0.5.
        assertArrayEquals(new double[] {-0.5, 0, -2, 2.5}, loo, 1e-12);
    }

    @Test
    void gsm8kStyleAnswersAreVerified() {
        RewardFunction exact = RewardFunction.exactAnswer("answer");
        Map<String, Object> record = Map.of("answer", "Janet sells 9 eggs... #### 18");
        assertEquals(1.0, exact.score("", "so she earns $18 a day. #### 18", new long[0], record).getAsDouble());
        assertEquals(1.0, exact.score("", "The answer is 18.", new long[0], record).getAsDouble());
        assertEquals(0.0, exact.score("", "#### 1,800", new long[0], record).getAsDouble());
        assertTrue(exact.score("", "I don't know", new long[0], record).isEmpty());
        // A real GSM8K record: its own worked answer scores 1.
        try {
            String line = java.nio.file.Files.readAllLines(Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/datasets/gsm8k/test.jsonl")).get(0);
            Map<String, Object> gsm = new com.fasterxml.jackson.databind.ObjectMapper().readValue(line, new com.fasterxml.jackson.core.type.TypeReference<Map<String, Object>>() {});
            assertEquals(1.0, exact.score("", gsm.get("answer").toString(), new long[0], gsm).getAsDouble());
            assertEquals(0.0, exact.score("", "#### 123456789", new long[0], gsm).getAsDouble());
        } catch (java.io.IOException e) {
            fail(e);
        }
        RewardFunction both = RewardFunction.weightedSum(List.of(exact, RewardFunction.lengthPenalty(4, 0.1)), List.of(1.0, 1.0));
        assertEquals(1.0 - 0.6, both.score("", "#### 18", new long[10], record).getAsDouble(), 1e-12);
    }

    /** GRPO's loss and gradient at a sampling temperature are those of the unchunked log-prob path (fp64, 1e-10). */
    @Test
    void chunkedLogProbsGiveTheUnchunkedGradientAtATemperature() {
        ModelConfig config = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);
        try (CausalLM policy = Models.create(config, DType.F64, 2); CausalLM reference = Models.create(config, DType.F64, 3)) {
            policy.setTrainable(true);
            RewardFunction fives = (prompt, completion, tokens, record) -> OptionalDouble.of(java.util.Arrays.stream(tokens).filter(t -> t == 5).count());
            SamplingConfig sampling = new SamplingConfig(6, 0.7, 0, 1.0, 11, List.of(1L, 2L, 3L), List.of(), true);
            var grpo = new Grpo.Config(0.2, 0.28, 0.04, "grpo", "group", 6);
            var method = new GrpoTraining(new GrpoTraining.Settings(GrpoTraining.Estimator.GRPO, grpo, 4, sampling, Rollouts.of(fives, null),
                    Rollouts.Shaping.NONE, reference, null, 1, false, false));
            List<OnlinePrompt> batch;
            try (StepScope s = new StepScope(); org.bytedeco.pytorch.NoGradGuard g = new org.bytedeco.pytorch.NoGradGuard()) {
                batch = method.prepare(policy, prompts(4, 3), 0);
            }
            int before = io.tether.model.LogProbs.setChunkPositions(0);
            Map<String, double[]> full;
            try {
                full = stepGradient(policy, method, batch, 1);
            } finally {
                io.tether.model.LogProbs.setChunkPositions(before);
            }
            for (int chunk : new int[] {5, -1}) {
                io.tether.model.LogProbs.setChunkPositions(chunk);
                try {
                    Map<String, double[]> chunked = stepGradient(policy, method, batch, 1);
                    for (String name : full.keySet()) {
                        assertTrue(java.util.Arrays.stream(full.get(name)).anyMatch(x -> x != 0), name + " has an all-zero gradient");
                        assertArrayEquals(full.get(name), chunked.get(name), 1e-10, "chunk " + chunk + ": " + name);
                    }
                } finally {
                    io.tether.model.LogProbs.setChunkPositions(before);
                }
            }
        }
    }
}
