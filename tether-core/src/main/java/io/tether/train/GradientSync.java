package io.tether.train;

import java.util.Collection;

import org.bytedeco.pytorch.Tensor;

/**
 * The data-parallel seam: every gradient passes through {@link #allReduceMean} once per optimizer step, and data
 * loading and checkpointing ask for {@link #rank} and {@link #worldSize}. Single-process is the default; a c10d
 * implementation plugs in here without touching the loop.
 */
public interface GradientSync {
    int rank();

    int worldSize();

    /** Replaces each gradient by its mean over all ranks. */
    void allReduceMean(Collection<Tensor> gradients);

    GradientSync SINGLE_PROCESS = new GradientSync() {
        @Override public int rank() { return 0; }
        @Override public int worldSize() { return 1; }
        @Override public void allReduceMean(Collection<Tensor> gradients) { }
    };
}
