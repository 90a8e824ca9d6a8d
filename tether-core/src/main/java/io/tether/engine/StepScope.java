package io.tether.engine;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * Frees every native object created inside it when it closes: wrap each training or inference step in one.
 *
 * <p>The JVM heap stays tiny while native tensors pile up, so the GC never runs; without scopes a training run
 * leaked 16.6 MB per step (engine-notes.md, "Memory"). Long-lived tensors (weights, optimizer state, KV caches)
 * are created outside any scope, or marked with {@link #keep}.
 */
public final class StepScope implements AutoCloseable {
    private final PointerScope scope = new PointerScope();

    /**
     * Lets {@code p} outlive this scope: the scope's release then leaves one reference, which the caller now owns
     * (close it, or leave it to an enclosing owner).
     */
    public static <T extends Pointer> T keep(T p) {
        p.retainReference();
        return p;
    }

    /**
     * Runs {@code block} in a scope of its own and hands its result to the enclosing scope (or to the caller when
     * there is none). Every other tensor the block made is released when it ends, as eager PyTorch frees a
     * temporary when its last reference goes; autograd still holds what backward needs. Without this a step scope
     * keeps every intermediate of a forward alive until the step ends: the DPO bench shape peaked at 3.7 GB instead
     * of the activations autograd actually saves.
     */
    public static <T extends Pointer> T scoped(java.util.function.Supplier<T> block) {
        T out;
        try (StepScope inner = new StepScope()) {
            out = keep(block.get());
        }
        PointerScope outer = PointerScope.getInnerScope();
        if (outer != null) {
            outer.attach(out);
            out.releaseReference();
        }
        return out;
    }

    /** {@link #scoped} for a block with several results (each handed to the enclosing scope; nulls pass through). */
    public static Tensor[] scopedAll(java.util.function.Supplier<Tensor[]> block) {
        Tensor[] out;
        try (StepScope inner = new StepScope()) {
            out = block.get();
            for (Tensor t : out) if (t != null) keep(t);
        }
        PointerScope outer = PointerScope.getInnerScope();
        if (outer != null)
            for (Tensor t : out)
                if (t != null) {
                    outer.attach(t);
                    t.releaseReference();
                }
        return out;
    }

    @Override
    public void close() {
        scope.close();
    }
}
