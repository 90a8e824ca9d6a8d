package io.tether.train;

import java.nio.file.Path;

/** A non-finite loss or gradient stopped the run before it could corrupt the weights. */
public class NonFiniteException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int step;
    private final String tensor;
    private final transient Path lastGoodCheckpoint;

    public NonFiniteException(int step, String tensor, Path lastGoodCheckpoint) {
        super("non-finite " + (tensor == null ? "loss" : "gradient in '" + tensor + "'") + " at step " + step
                + "; weights were not updated; last good checkpoint: " + (lastGoodCheckpoint == null ? "none" : lastGoodCheckpoint)
                + " (set nan_policy: skip to drop such batches instead)");
        this.step = step;
        this.tensor = tensor;
        this.lastGoodCheckpoint = lastGoodCheckpoint;
    }

    public int step() { return step; }

    public String tensor() { return tensor; }

    public Path lastGoodCheckpoint() { return lastGoodCheckpoint; }
}
