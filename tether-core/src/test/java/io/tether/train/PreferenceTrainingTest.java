package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.bytedeco.pytorch.NoGradGuard;
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
import io.tether.objective.DpoLoss;

/** A synthetic preference: chosen answers start with token 5, rejected ones with token 6. */
class PreferenceTrainingTest {
    @TempDir Path tmp;
    static final ModelConfig CONFIG = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);

    @BeforeAll
    static void load() {
        Torch.init();
    }

    static List<PreferenceTraining.Pair> pairs(int n, long seed) {
        Random r = new Random(seed);
        List<PreferenceTraining.Pair> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long[] p = {8 + r.nextInt(24), 8 + r.nextInt(24), 8 + r.nextInt(24)};
            long[] c = {5, 8 + r.nextInt(24), 8 + r.nextInt(24)}, j = {6, 8 + r.nextInt(24), 8 + r.nextInt(24)};
            out.add(new PreferenceTraining.Pair(p, c, j, Double.NaN, Double.NaN));
        }
        return out;
    }

    /** Held-out share of pairs where the policy prefers chosen: implicit reward β(c − r) > 0, or (no reference) ℓ_w > ℓ_l. */
    static double accuracy(CausalLM policy, CausalLM reference, List<PreferenceTraining.Pair> pairs) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            List<long[]> prompts = new ArrayList<>(), completions = new ArrayList<>();
            for (var p : pairs) { prompts.add(p.prompt()); completions.add(p.chosen()); }
            for (var p : pairs) { prompts.add(p.prompt()); completions.add(p.rejected()); }
            double[] pol = Tensors.toDoubles(PreferenceTraining.score(policy, prompts, completions).logps());
            double[] ref = reference == null ? new double[pol.length] : Tensors.toDoubles(PreferenceTraining.score(reference, prompts, completions).logps());
            int n = pairs.size(), right = 0;
            for (int i = 0; i < n; i++) right += (pol[i] - ref[i]) - (pol[n + i] - ref[n + i]) > 0 ? 1 : 0;
            return (double) right / n;
        }
    }

    static double propertyRate(CausalLM policy, List<PreferenceTraining.Pair> pairs) {
        List<long[]> prompts = new ArrayList<>();
        for (var p : pairs) prompts.add(p.prompt());
        int hits = 0;
        for (Generator.Generation g : Generator.generate(policy, prompts, SamplingConfig.greedy(1))) hits += g.tokens()[0] == 5 ? 1 : 0;
        return (double) hits / pairs.size();
    }

    static TrainerConfig config(int steps, double lr) {
        return new TrainerConfig(steps, 1, 16, 1, lr, "constant", 0, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 11, 10, 0, 0, 1, "stop", false);
    }

    @Test
    void dpoLiftsHeldOutAccuracyAndTheProperty() throws java.io.IOException {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 7); CausalLM reference = Models.create(CONFIG, DType.F32, 7)) {
            List<PreferenceTraining.Pair> train = pairs(256, 1), held = pairs(128, 2);
            double before = accuracy(policy, reference, held), propertyBefore = propertyRate(policy, held);
            var settings = new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, reference, 0, 0);
            Trainer.Result r = new Trainer<>(policy, new PreferenceTraining(settings), train, List.of(), config(60, 1e-3), new RunDirectory(tmp.resolve("dpo")),
                    GradientSync.SINGLE_PROCESS, null, null).train(false);
            double after = accuracy(policy, reference, held), propertyAfter = propertyRate(policy, held);
            System.out.printf("DPO: held-out implicit-reward accuracy %.3f -> %.3f, greedy first token = 5: %.3f -> %.3f, loss %.3f%n", before, after, propertyBefore, propertyAfter, r.lastLoss());
            assertTrue(before < 0.6, "policy = reference: no preference yet (" + before + ")");
            assertTrue(after >= 0.9, "held-out accuracy " + after);
            assertTrue(propertyAfter > propertyBefore && propertyAfter >= 0.9, "greedy samples carry the property: " + propertyBefore + " -> " + propertyAfter);
        }
    }

    @Test
    void dpoWithLoraUsesThePolicyWithoutAdaptersAsReference() throws java.io.IOException {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 7); CausalLM base = Models.create(CONFIG, DType.F32, 7)) {
            io.tether.model.LoraAdapters lora = io.tether.model.LoraAdapters.attach(policy,
                    new io.tether.model.LoraAdapters.Config(8, 16, 0.0, List.of("all-linear"), false), 3);
            float[] frozen = Tensors.toFloats(policy.parameters().get("model.layers.0.self_attn.q_proj.weight"));
            var settings = new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, null, 0, 0);
            new Trainer<>(policy, new PreferenceTraining(settings), pairs(256, 1), List.of(), config(60, 3e-3), new RunDirectory(tmp.resolve("lora")),
                    GradientSync.SINGLE_PROCESS, null, null).train(false);
            double acc = accuracy(policy, base, pairs(128, 2));
            System.out.printf("DPO with LoRA (reference = adapters off): held-out accuracy %.3f%n", acc);
            assertTrue(acc >= 0.9, "accuracy " + acc);
            assertArrayEquals(frozen, Tensors.toFloats(policy.parameters().get("model.layers.0.self_attn.q_proj.weight")), 0f, "base weights untouched");
            assertTrue(java.nio.file.Files.exists(tmp.resolve("lora/checkpoints/step-60/adapter_model.safetensors")), "checkpoints hold the adapter");
            assertFalse(java.nio.file.Files.exists(tmp.resolve("lora/checkpoints/step-60/model.safetensors")));
            assertSame(lora, policy.lora(), "the adapters stay attached to the policy");
        }
    }

    @Test
    void referenceFreeMethodsLearnTooAndNeedNoReference() throws java.io.IOException {
        for (PreferenceTraining.Kind kind : new PreferenceTraining.Kind[] {PreferenceTraining.Kind.SIMPO, PreferenceTraining.Kind.ORPO, PreferenceTraining.Kind.CPO}) {
            try (CausalLM policy = Models.create(CONFIG, DType.F32, 7)) {
                double beta = kind == PreferenceTraining.Kind.SIMPO ? 2.0 : 0.1;
                var settings = new PreferenceTraining.Settings(kind, DpoLoss.Config.of(beta, "sigmoid"), 0.5, kind == PreferenceTraining.Kind.SIMPO ? 0.0 : 1.0, null, 0, 0);
                new Trainer<>(policy, new PreferenceTraining(settings), pairs(256, 1), List.of(), config(60, 1e-3), new RunDirectory(tmp.resolve(kind.name())),
                        GradientSync.SINGLE_PROCESS, null, null).train(false);
                double acc = accuracy(policy, null, pairs(128, 2));
                System.out.printf("%s: held-out accuracy (policy log-probs) %.3f%n", kind, acc);
                assertTrue(acc >= 0.9, kind + " accuracy " + acc);
            }
        }
    }

    @Test
    void ldDpoWeightsTheTailOfTheLongerCompletion() {
        try (CausalLM policy = Models.create(CONFIG, DType.F64, 7); StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            List<long[]> prompts = List.of(new long[] {9, 10}, new long[] {9, 10});
            List<long[]> completions = List.of(new long[] {11, 12, 13, 14}, new long[] {15, 16});   // chosen 4 tokens, rejected 2
            double[] plain = Tensors.toDoubles(PreferenceTraining.score(policy, prompts, completions).logps());
            double[] alpha1 = Tensors.toDoubles(PreferenceTraining.score(policy, prompts, completions, 1.0, false).logps());
            double[] alpha0 = Tensors.toDoubles(PreferenceTraining.score(policy, prompts, completions, 0.0, false).logps());
            assertArrayEquals(plain, alpha1, 1e-12);
            assertEquals(plain[1], alpha0[1], 1e-12, "the shorter completion is untouched");
            // Chosen with α = 0 keeps only its first 2 tokens: log p(11 | 9 10) + log p(12 | 9 10 11).
            double[] per = Tensors.toDoubles(io.tether.model.LogProbs.tokenLogprobs(policy, Tensors.longs(new long[] {9, 10, 11, 12, 13, 14}, 1, 6)));
            assertEquals(per[1] + per[2], alpha0[0], 1e-12);
        }
    }

    @Test
    void wpoWeightedDpoStillLearns() throws java.io.IOException {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 7); CausalLM reference = Models.create(CONFIG, DType.F32, 7)) {
            var settings = new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, reference, 0, 0, 0.5, true);
            new Trainer<>(policy, new PreferenceTraining(settings), pairs(256, 1), List.of(), config(60, 1e-3), new RunDirectory(tmp.resolve("wpo")),
                    GradientSync.SINGLE_PROCESS, null, null).train(false);
            assertTrue(accuracy(policy, reference, pairs(128, 2)) >= 0.9);
        }
    }

    @Test
    void ktoLearnsFromTheUnpairedVersion() throws java.io.IOException {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 7); CausalLM reference = Models.create(CONFIG, DType.F32, 7)) {
            List<KtoTraining.Example> unpaired = new ArrayList<>();
            for (var p : pairs(256, 1)) {
                unpaired.add(new KtoTraining.Example(p.prompt(), p.chosen(), true));
                unpaired.add(new KtoTraining.Example(p.prompt(), p.rejected(), false));
            }
            var kto = new KtoTraining(new io.tether.objective.KtoLoss.Config(0.1, 1.0, 1.0, "kto"), reference, 1024);
            new Trainer<>(policy, kto, unpaired, List.of(), config(60, 1e-3), new RunDirectory(tmp.resolve("kto")), GradientSync.SINGLE_PROCESS, null, null).train(false);
            double acc = accuracy(policy, reference, pairs(128, 2));
            System.out.printf("KTO: held-out implicit-reward accuracy %.3f%n", acc);
            assertTrue(acc >= 0.9, "KTO accuracy " + acc);
        }
    }

    @Test
    void ktoCutsMismatchedPairsToMaxLength() {
        // A long prompt followed by the next example's long completion passes the model's 64 positions unless cut.
        ModelConfig small = ModelConfig.llama(32, 16, 1, 2, 2, 32, 64);
        try (CausalLM policy = Models.create(small, DType.F32, 7); CausalLM reference = Models.create(small, DType.F32, 7);
             io.tether.engine.StepScope scope = new io.tether.engine.StepScope()) {
            long[] longPrompt = new long[60], shortPrompt = {1, 2, 3, 4}, shortAnswer = {5, 6, 7, 8}, longAnswer = new long[60];
            java.util.Arrays.fill(longPrompt, 3);
            java.util.Arrays.fill(longAnswer, 9);
            var batch = List.of(new KtoTraining.Example(longPrompt, shortAnswer, true), new KtoTraining.Example(shortPrompt, longAnswer, false));
            var kto = new KtoTraining(new io.tether.objective.KtoLoss.Config(0.1, 1.0, 1.0, "kto"), reference, 64);
            assertTrue(Double.isFinite(kto.forward(policy, batch).lossSum().item().toDouble()));
        }
    }

    @Test
    void trDpoMovesTheReferenceTowardThePolicy() throws java.io.IOException {
        try (CausalLM policy = Models.create(CONFIG, DType.F32, 7); CausalLM reference = Models.create(CONFIG, DType.F32, 7)) {
            var settings = new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, reference, 0.6, 2);
            new Trainer<>(policy, new PreferenceTraining(settings), pairs(64, 1), List.of(), config(4, 1e-2), new RunDirectory(tmp.resolve("tr")),
                    GradientSync.SINGLE_PROCESS, null, null).train(false);
            float[] after = Tensors.toFloats(reference.parameters().get("model.layers.0.mlp.up_proj.weight"));
            float[] pol = Tensors.toFloats(policy.parameters().get("model.layers.0.mlp.up_proj.weight"));
            double distance = 0;
            for (int i = 0; i < pol.length; i++) distance += Math.abs(after[i] - pol[i]);
            try (CausalLM fresh = Models.create(CONFIG, DType.F32, 7)) {
                float[] init = Tensors.toFloats(fresh.parameters().get("model.layers.0.mlp.up_proj.weight"));
                double initDistance = 0;
                for (int i = 0; i < pol.length; i++) initDistance += Math.abs(init[i] - pol[i]);
                assertTrue(distance < 0.7 * initDistance, "the synced reference sits between init and policy: " + distance + " vs " + initDistance);
            }
        }
    }
}
