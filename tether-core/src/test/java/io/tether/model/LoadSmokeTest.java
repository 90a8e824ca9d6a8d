package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

class LoadSmokeTest {
    @Test
    void loadsEveryFixture() {
        for (String name : new String[] {Fixtures.LLAMA, Fixtures.GPT2, Fixtures.GPT2_BACKBONE}) {
            try (Models.LoadedModel m = Models.load(Fixtures.checkpoint(name), DType.F32); StepScope s = new StepScope()) {
                Tensor logits = m.model().forward(Tensors.longs(new long[] {1, 2, 3, 4}, 1, 4));
                assertArrayEquals(new long[] {1, 4, m.model().config().vocabSize()}, Tensors.shape(logits), name);
                for (float f : Tensors.toFloats(logits)) assertTrue(Float.isFinite(f));
            }
        }
    }
}
