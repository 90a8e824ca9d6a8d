package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.LoraAdapters;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.model.TinyConfigs;
import io.tether.objective.DpoLoss;
import io.tether.objective.KtoLoss;

/**
 * The trainers' losses, metrics and gradients are those of the unchunked log-prob path when log-probs are chunked
 * (fp64, 1e-10): DPO sigmoid with a live reference (and WPO weights, which need log Σ p²), DPO with LoRA and the
 * adapters-off reference, KTO, and SFT's NLL (plain and packed), on tied and untied heads.
 */
class ChunkedTrainingMethodsTest {
    static final ModelConfig[] FAMILIES = {TinyConfigs.llama(), TinyConfigs.qwen2(), TinyConfigs.gpt2()};

    @BeforeAll
    static void init() {
        Torch.init();
    }

    record Step(double loss, Map<String, Double> metrics, Map<String, double[]> grads) {}

    /** One forward and backward of {@code method} over {@code batch}, as the loop runs it, at chunk setting {@code chunk}. */
    static <E> Step step(CausalLM model, TrainingMethod<E> method, List<E> batch, int chunk) {
        int before = LogProbs.setChunkPositions(chunk);
        try (StepScope s = new StepScope()) {
            TrainingMethod.Output out = method.forward(model, batch);
            Tensor loss = out.lossSum();
            double value = loss.item_double();
            loss.backward();
            model.backwardCheckpoints();
            Map<String, double[]> grads = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : model.trainableParameters().entrySet()) {
                Tensor g = e.getValue().grad();
                assertTrue(g.defined(), e.getKey() + " got no gradient");
                grads.put(e.getKey(), Tensors.toDoubles(g.contiguous()));
                g.zero_();
            }
            return new Step(value, out.metricSums(), grads);
        } finally {
            LogProbs.setChunkPositions(before);
        }
    }

    static <E> void assertChunkingChangesNothing(CausalLM model, TrainingMethod<E> method, List<E> batch, String what) {
        Step full = step(model, method, batch, 0);
        for (int chunk : new int[] {4, 7, -1}) {
            Step chunked = step(model, method, batch, chunk);
            String w = what + " chunk " + chunk;
            assertEquals(full.loss(), chunked.loss(), 1e-10, w + ": loss");
            assertEquals(full.metrics().keySet(), chunked.metrics().keySet(), w);
            for (String k : full.metrics().keySet()) assertEquals(full.metrics().get(k), chunked.metrics().get(k), 1e-10, w + ": " + k);
            assertEquals(full.grads().keySet(), chunked.grads().keySet(), w);
            for (String k : full.grads().keySet()) {
                double[] e = full.grads().get(k);
                assertTrue(java.util.Arrays.stream(e).anyMatch(x -> x != 0), w + ": " + k + " has an all-zero gradient");
                assertArrayEquals(e, chunked.grads().get(k), 1e-10, w + ": gradient of " + k);
            }
        }
    }

    static List<PreferenceTraining.Pair> pairs() {
        return List.of(
                new PreferenceTraining.Pair(new long[] {1, 2, 3}, new long[] {4, 5}, new long[] {6, 7, 8, 9}, Double.NaN, Double.NaN),
                new PreferenceTraining.Pair(new long[] {10, 11}, new long[] {12, 0, 1, 2, 3}, new long[] {4}, Double.NaN, Double.NaN),
                new PreferenceTraining.Pair(new long[] {5, 6, 7, 8}, new long[] {9, 10, 11}, new long[] {12, 1, 2}, Double.NaN, Double.NaN));
    }

    @Test
    void dpoSigmoidWithALiveReferenceAndWpoWeights() {
        for (ModelConfig config : FAMILIES) {
            try (CausalLM policy = Models.create(config, DType.F64, 2); CausalLM reference = Models.create(config, DType.F64, 3)) {
                policy.setTrainable(true);
                for (boolean wpo : new boolean[] {false, true}) {
                    var method = new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(0.1, "sigmoid"),
                            0, 0, reference, 0, 0, null, wpo));
                    assertChunkingChangesNothing(policy, method, pairs(), config.architecture() + (wpo ? " WPO" : " DPO"));
                }
            }
        }
    }

    @Test
    void dpoWithLoraAndTheAdaptersOffReference() {
        for (ModelConfig config : FAMILIES) {
            try (CausalLM policy = Models.create(config, DType.F64, 2)) {
                LoraAdapters l = LoraAdapters.attach(policy, new LoraAdapters.Config(4, 8, 0.0, List.of("all-linear"), false), 1);
                try (StepScope s = new StepScope(); org.bytedeco.pytorch.NoGradGuard g = new org.bytedeco.pytorch.NoGradGuard()) {
                    for (var e : l.parameters().entrySet()) if (e.getKey().endsWith("lora_B.weight")) e.getValue().normal_(0.0, 0.05, new org.bytedeco.pytorch.GeneratorOptional());
                }
                policy.setTrainable(true);
                var method = new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, DpoLoss.Config.of(0.1, "sigmoid"), 0, 0, null, 0, 0));
                assertChunkingChangesNothing(policy, method, pairs(), config.architecture() + " LoRA DPO");
            }
        }
    }

    @Test
    void kto() {
        for (ModelConfig config : FAMILIES) {
            try (CausalLM policy = Models.create(config, DType.F64, 2); CausalLM reference = Models.create(config, DType.F64, 3)) {
                policy.setTrainable(true);
                var batch = List.of(new KtoTraining.Example(new long[] {1, 2, 3}, new long[] {4, 5}, true),
                        new KtoTraining.Example(new long[] {10, 11}, new long[] {12, 0, 1, 2, 3}, false),
                        new KtoTraining.Example(new long[] {5, 6, 7, 8}, new long[] {9, 10, 11}, true),
                        new KtoTraining.Example(new long[] {6}, new long[] {3, 3, 7}, false));
                var method = new KtoTraining(new KtoLoss.Config(0.1, 1.0, 1.0, "kto"), reference, 64);
                assertChunkingChangesNothing(policy, method, batch, config.architecture() + " KTO");
            }
        }
    }

    @Test
    void sftNllPlainAndPacked() {
        List<Sft.Example> examples = List.of(new Sft.Example(new long[] {1, 2, 3, 4, 5}, new long[] {0, 0, 1, 1, 1}),
                new Sft.Example(new long[] {6, 7, 8}, new long[] {0, 1, 1}),
                new Sft.Example(new long[] {9, 10, 11, 12, 1, 2, 3}, new long[] {0, 0, 0, 1, 1, 1, 1}));
        for (ModelConfig config : FAMILIES) {
            try (CausalLM policy = Models.create(config, DType.F64, 2)) {
                policy.setTrainable(true);
                assertChunkingChangesNothing(policy, new Sft(), Sft.rows(examples, 32), config.architecture() + " SFT");
                assertChunkingChangesNothing(policy, new Sft(), Sft.pack(examples, 10), config.architecture() + " SFT packed");
            }
        }
    }
}
