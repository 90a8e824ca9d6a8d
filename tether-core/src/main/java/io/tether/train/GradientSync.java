package io.tether.train;

import java.util.Collection;

import org.bytedeco.pytorch.Tensor;

/**
 * The data-parallel seam: the loop's only contact with other ranks. Each optimizer step it sums the step's loss
 * units over ranks (the loss normaliser of the global batch), then sums every gradient with
 * {@link #allReduceGradients}: each rank's loss is its own summed loss divided by the global units, so the summed
 * gradient is exactly the single-process gradient of the global batch (TRL/Accelerate's global batch = world size x
 * per-device batch x accumulation). Data loading, logging and checkpointing ask for {@link #rank} and
 * {@link #worldSize}. Single-process is {@link #SINGLE_PROCESS}: a world of one where every collective is the identity.
 */
public interface GradientSync {
    int rank();

    int worldSize();

    /**
     * Sums each parameter's gradient over all ranks, in place. A gradient undefined on some ranks (a rank whose
     * share of the batch was empty) counts as zeros there; one undefined on every rank stays undefined.
     */
    void allReduceGradients(Collection<Tensor> parameters);

    /** Element-wise sum over ranks (loss units, loss values, metric sums). */
    default double[] sum(double[] values) { return values.clone(); }

    /** Every rank's values, row r from rank r (the same length on every rank). */
    default double[][] allGather(double[] values) { return new double[][] {values.clone()}; }

    /** Replaces the tensors on every rank with rank 0's (initial weights, so every rank starts identical). */
    default void broadcastFromRankZero(Collection<Tensor> tensors) {}

    /** Returns when every rank has reached it (ranks wait here while rank 0 writes a checkpoint). */
    default void barrier() {}

    /** Rank 0 writes the run's files (config, provenance, metrics, checkpoints); the others only train. */
    default boolean writesFiles() { return rank() == 0; }

    GradientSync SINGLE_PROCESS = new GradientSync() {
        @Override public int rank() { return 0; }
        @Override public int worldSize() { return 1; }
        @Override public void allReduceGradients(Collection<Tensor> parameters) { }
    };
}
