package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.Autocast;
import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;

class Bf16AutocastTest {
    @BeforeAll
    static void load() {
        Torch.init();
    }

    @Test
    void bf16RegionGivesCloseLossAndGradientsOnFp32Masters() {
        ModelConfig config = ModelConfig.llama(32, 64, 2, 4, 2, 96, 64);
        try (CausalLM model = Models.create(config, DType.F32, 8)) {
            model.setTrainable(true);
            List<Sft.Row> rows = Sft.rows(SftRunProbe.examples(4, 9), 16);
            Tensor w = model.parameters().get("model.layers.0.mlp.up_proj.weight");
            double fp32Loss, bf16Loss;
            float[] fp32Grad, bf16Grad;
            try (StepScope s = new StepScope()) {
                Tensor loss = new Sft().forward(model, rows).lossSum();
                fp32Loss = loss.item_double();
                loss.backward();
                fp32Grad = Tensors.toFloats(w.grad());
                w.grad().zero_();
            }
            try (StepScope s = new StepScope()) {
                Tensor loss;
                try (Autocast region = Autocast.bf16(true)) {
                    assertTrue(Autocast.active());
                    loss = new Sft().forward(model, rows).lossSum();
                }
                assertFalse(Autocast.active(), "closing the region turns autocast off");
                bf16Loss = loss.item_double();
                loss.backward();
                bf16Grad = Tensors.toFloats(w.grad());
            }
            assertEquals(DType.F32, Tensors.dtype(w), "master weights stay fp32");
            assertNotEquals(fp32Loss, bf16Loss, "the region really computed in bf16");
            assertEquals(fp32Loss, bf16Loss, 0.02 * Math.abs(fp32Loss));
            double dot = 0, na = 0, nb = 0;
            for (int i = 0; i < fp32Grad.length; i++) {
                dot += fp32Grad[i] * bf16Grad[i];
                na += fp32Grad[i] * fp32Grad[i];
                nb += bf16Grad[i] * bf16Grad[i];
            }
            assertTrue(dot / Math.sqrt(na * nb) > 0.99, "gradient cosine " + dot / Math.sqrt(na * nb));
        }
    }
}
