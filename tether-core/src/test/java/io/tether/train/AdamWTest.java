package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

class AdamWTest {
    @TempDir Path tmp;

    @BeforeAll
    static void load() {
        Torch.init();
    }

    private static Tensor param(long seed, long... shape) {
        Torch.seed(seed);
        return torch.randn(shape, Tensors.options(DType.F64)).requires_grad_(true);
    }

    /** Loss whose gradient changes every step: sum(sin(p * k)). */
    private static void backward(Tensor p, int k) {
        try (StepScope s = new StepScope()) {
            p.mul(Tensors.scalar((double) k)).sin().sum().backward();
        }
    }

    @Test
    void matchesLibtorchAdamWStepForStep() {
        AdamW.Config c = new AdamW.Config(0.05, 0.8, 0.95, 1e-6, 0.1);
        Tensor ours = param(1, 3, 4), theirs = param(1, 3, 4);
        AdamW opt = new AdamW(Map.of("w", ours), Map.of("w", true), c);
        AdamWOptions o = new AdamWOptions(c.lr());
        // The C++ betas tuple is stored reversed (engine-notes.md): index 0 holds beta2.
        o.betas().put(0, c.beta2());
        o.betas().put(1, c.beta1());
        o.eps().put(c.eps());
        o.weight_decay().put(c.weightDecay());
        org.bytedeco.pytorch.AdamW native_ = new org.bytedeco.pytorch.AdamW(new TensorVector(theirs), o);
        for (int k = 1; k <= 6; k++) {
            backward(ours, k);
            backward(theirs, k);
            opt.step(c.lr());
            native_.step();
            opt.zeroGrad();
            native_.zero_grad();
            double diff = ours.sub(theirs).abs().max().item_double();
            assertTrue(diff < 1e-12, "step " + k + ": max difference " + diff);
        }
        assertTrue(ours.sub(param(1, 3, 4)).abs().max().item_double() > 1e-3, "the parameter moved");
    }

    @Test
    void noDecayGroupIsNotDecayed() {
        AdamW.Config c = new AdamW.Config(0.1, 0.9, 0.999, 1e-8, 0.5);
        Tensor p = param(2, 4);
        double[] before = Tensors.toDoubles(p);
        AdamW opt = new AdamW(Map.of("model.norm.weight", p), Map.of("model.norm.weight", false), c);
        try (StepScope s = new StepScope()) {
            p.mul(Tensors.scalar(0.0)).sum().backward();   // zero gradient: only decay could move p
        }
        opt.step(c.lr());
        assertArrayEquals(before, Tensors.toDoubles(p), 0.0);
        assertEquals(Map.of("a.bias", false, "a.weight", true, "model.embed_tokens.weight", false, "model.layers.0.input_layernorm.weight", false),
                AdamW.defaultDecay(new LinkedHashMap<>(Map.of("a.bias", param(1, 2), "a.weight", param(1, 2, 2),
                        "model.embed_tokens.weight", param(1, 3, 2), "model.layers.0.input_layernorm.weight", param(1, 2)))));
    }

    @Test
    void savedStateResumesBitIdentically() {
        AdamW.Config c = new AdamW.Config(0.01, 0.9, 0.999, 1e-8, 0.01);
        Tensor a = param(3, 5), b = param(3, 5);
        AdamW optA = new AdamW(Map.of("w", a), Map.of("w", true), c);
        for (int k = 1; k <= 3; k++) { backward(a, k); optA.step(c.lr()); optA.zeroGrad(); }
        optA.save(tmp.resolve("opt.safetensors"));
        // b replays the same three steps' parameters, then loads the optimizer state.
        try (NoGradGuard g = new NoGradGuard()) { b.copy_(a); }
        AdamW optB = new AdamW(Map.of("w", b), Map.of("w", true), c);
        optB.load(tmp.resolve("opt.safetensors"));
        assertEquals(3, optB.stepCount());
        for (int k = 4; k <= 6; k++) {
            backward(a, k); optA.step(c.lr()); optA.zeroGrad();
            backward(b, k); optB.step(c.lr()); optB.zeroGrad();
        }
        assertArrayEquals(Tensors.toDoubles(a), Tensors.toDoubles(b), 0.0);
    }
}
