package io.tether.model;

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

/** Checkpointed backward gives the gradients of the plain one, in fp64, with and without LoRA dropout. */
class GradientCheckpointsTest {
    static final long[] IDS = {1, 5, 9, 2, 7, 3, 11, 4, 6, 8, 10, 12};

    @BeforeAll
    static void init() {
        Torch.init();
    }

    /** Gradients of Σ log p(token) over a right-padded 2-row batch, after the full backward (checkpointed or not). */
    static Map<String, double[]> gradients(CausalLM m, boolean checkpointing) {
        m.setTrainable(true);
        m.setGradientCheckpointing(checkpointing);
        Map<String, double[]> out = new LinkedHashMap<>();
        try (StepScope s = new StepScope()) {
            Torch.seed(17);   // the same dropout draws for both runs
            Tensor ids = Tensors.longs(IDS, 2, IDS.length / 2);
            Tensor loss = LogProbs.tokenLogprobs(m, ids).sum().neg();
            loss.backward();
            m.backwardCheckpoints();
            for (Map.Entry<String, Tensor> e : m.trainableParameters().entrySet()) {
                Tensor g = e.getValue().grad();
                assertTrue(g.defined(), e.getKey() + " got no gradient");
                out.put(e.getKey(), Tensors.toDoubles(g));
                g.zero_();
            }
        }
        m.setGradientCheckpointing(false);
        return out;
    }

    static void assertSameGradients(Map<String, double[]> a, Map<String, double[]> b, String what) {
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) assertArrayEquals(a.get(k), b.get(k), 1e-10, what + ": " + k);
    }

    @Test
    void fullFineTuningGradientsMatch() {
        for (ModelConfig config : TinyConfigs.all()) {
            try (CausalLM m = Models.create(config, DType.F64, 5)) {
                assertSameGradients(gradients(m, false), gradients(m, true), config.architecture());
            }
        }
    }

    @Test
    void loraWithDropoutGradientsMatch() {
        for (ModelConfig config : new ModelConfig[] {TinyConfigs.llama(), TinyConfigs.gpt2()}) {
            try (CausalLM m = Models.create(config, DType.F64, 6)) {
                LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.2, List.of("all-linear"), false), 1);
                LoraTest.perturb(l);
                Map<String, double[]> plain = gradients(m, false);
                assertSameGradients(plain, gradients(m, true), config.architecture() + " LoRA");
                assertTrue(plain.keySet().stream().allMatch(k -> k.contains("lora_")), "only adapters train: " + plain.keySet());
            }
        }
    }
}
