package io.tether.model;

import java.util.ArrayDeque;
import java.util.Deque;

import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.Autocast;
import io.tether.engine.StepScope;

/**
 * Activation (gradient) checkpointing over a model's stack of blocks, as HF's {@code gradient_checkpointing}: the
 * forward runs the blocks without a graph and keeps only each block's input; after the loss's backward has reached
 * the stack's output, {@link #backward} recomputes one block at a time with a graph, back-propagates through it and
 * hands the input gradient to the block below. Peak memory holds one block's activations instead of all of them,
 * for about one extra forward of compute. The random state is restored before each recompute, so dropout (LoRA's)
 * draws the same masks twice and the gradients equal those without checkpointing.
 */
final class GradientCheckpoints {
    /** Block {@code i} applied to hidden states. */
    interface Block {
        Tensor apply(int i, Tensor h);
    }

    /** One checkpointed pass: the stack's input (with its graph), each block's input and RNG state, the stack's output. */
    private record Segment(Tensor input, Tensor[] blockInputs, Tensor[] rngStates, Tensor output, boolean autocast, Block block) {}

    private final Deque<Segment> pending = new ArrayDeque<>();
    private boolean enabled;

    void setEnabled(boolean on) {
        enabled = on;
    }

    boolean enabled() {
        return enabled;
    }

    /**
     * Runs blocks 0..n-1 over {@code h}: checkpointed when enabled and gradients are on, else as usual (each block
     * in its own scope so that its temporaries die with it).
     */
    Tensor run(Tensor h, int n, Block block) {
        if (!enabled || !GradMode.is_enabled()) return eachInItsScope(h, n, block);
        Tensor[] inputs = new Tensor[n], rng = new Tensor[n];
        Tensor cur;
        try (NoGradGuard g = new NoGradGuard()) {
            cur = h.detach();
            for (int i = 0; i < n; i++) {
                int layer = i;
                Tensor in = cur;
                inputs[i] = in;
                rng[i] = torch.getDefaultCPUGenerator().get_state();
                cur = StepScope.scoped(() -> block.apply(layer, in));
            }
        }
        Tensor output = cur.requires_grad_(true);   // a leaf: the loss's backward stops here and leaves its gradient
        pending.push(new Segment(h, inputs, rng, output, Autocast.active(), block));
        return output;
    }

    /** Blocks 0..n-1 over {@code h}, each in its own scope. */
    static Tensor eachInItsScope(Tensor h, int n, Block block) {
        Tensor cur = h;
        for (int i = 0; i < n; i++) {
            int layer = i;
            Tensor in = cur;
            cur = StepScope.scoped(() -> block.apply(layer, in));
        }
        return cur;
    }

    /** Finishes the backward pass through every checkpointed segment of this micro-batch, latest first. */
    void backward() {
        while (!pending.isEmpty()) {
            Segment s = pending.pop();
            Tensor g = s.output().grad();
            if (!g.defined()) continue;   // the output did not reach the loss (or no backward ran): nothing to do
            Tensor rngNow = torch.getDefaultCPUGenerator().get_state();
            for (int i = s.blockInputs().length - 1; i >= 0; i--) {
                int layer = i;
                Tensor grad = g;
                torch.getDefaultCPUGenerator().set_state(s.rngStates()[i]);
                g = StepScope.scoped(() -> {
                    Tensor x = s.blockInputs()[layer].detach().requires_grad_(true);
                    Tensor y;
                    try (Autocast region = Autocast.bf16(s.autocast())) {
                        y = s.block().apply(layer, x);
                    }
                    torch.backward(new TensorVector(y), new TensorVector(grad), new BoolOptional(), false, new TensorVector());
                    // grad() is a reference into x, which this scope frees: detach() is an owning handle to the same values.
                    return x.grad().detach();
                });
            }
            torch.getDefaultCPUGenerator().set_state(rngNow);
            if (s.input().requires_grad())
                torch.backward(new TensorVector(s.input()), new TensorVector(g), new BoolOptional(), false, new TensorVector());
        }
    }

    /** Drops pending segments (a skipped batch). */
    void clear() {
        pending.clear();
    }
}
