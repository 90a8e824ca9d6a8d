package io.tether.model;

import java.util.List;

import org.bytedeco.pytorch.Tensor;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * Keys and values of past tokens, preallocated per layer as [B, kvHeads, capacity, headDim] so that a decode step
 * writes one slice instead of concatenating. Lives outside step scopes; close it when generation ends.
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys;   // per layer: (B, kvHeads, capacity, headDim)
    private final Tensor[] values; // per layer: (B, kvHeads, capacity, headDim)
    private final int capacity;
    private int length;

    public KvCache(int layers, long batch, int kvHeads, int headDim, int capacity, DType dtype) {
        if (capacity < 1) throw new IllegalArgumentException("cache capacity must be >= 1, got " + capacity);
        this.capacity = capacity;
        keys = new Tensor[layers];
        values = new Tensor[layers];
        for (int i = 0; i < layers; i++) {
            keys[i] = Tensors.zeros(dtype, batch, kvHeads, capacity, headDim);
            values[i] = Tensors.zeros(dtype, batch, kvHeads, capacity, headDim);
        }
    }

    /** Tokens already cached (the "past" length). */
    public int length() { return length; }

    public int capacity() { return capacity; }

    /**
     * Writes this step's keys and values [B, kvHeads, T, headDim] for {@code layer} after the cached ones and
     * returns views of everything cached so far including them: {past+T} along dim 2.
     */
    public Tensor[] append(int layer, Tensor k, Tensor v) {
        long t = k.size(2);
        if (length + t > capacity)
            throw new IllegalStateException("KV cache full: " + length + " cached + " + t + " new > capacity " + capacity);
        keys[layer].narrow(2, length, t).copy_(k);
        values[layer].narrow(2, length, t).copy_(v);
        return new Tensor[] {keys[layer].narrow(2, 0, length + t), values[layer].narrow(2, 0, length + t)};
    }

    /** Marks {@code t} more tokens as cached; called once per forward, after every layer appended. */
    public void advance(int t) {
        length += t;
    }

    /** Keeps only the first {@code n} cached tokens (e.g. to reuse a shared prompt). */
    public void truncate(int n) {
        if (n < 0 || n > length) throw new IllegalArgumentException("cannot truncate a cache of " + length + " to " + n);
        length = n;
    }

    /**
     * Fills this cache from {@code source}: row r gets source row {@code sourceRows[r]}'s cached tokens (a shared
     * prompt copied to each sample of its group), and the cached length becomes the source's.
     */
    public void copyRowsFrom(KvCache source, Tensor sourceRows) {
        if (source.length > capacity) throw new IllegalStateException("KV cache of capacity " + capacity + " cannot take " + source.length + " cached tokens");
        for (int l = 0; l < keys.length; l++) {
            keys[l].narrow(2, 0, source.length).copy_(source.keys[l].narrow(2, 0, source.length).index_select(0, sourceRows));
            values[l].narrow(2, 0, source.length).copy_(source.values[l].narrow(2, 0, source.length).index_select(0, sourceRows));
        }
        length = source.length;
    }

    /** Rows {@code rows} of {@code cache}, without its first {@code dropFront} columns (padding no kept row uses). */
    public record Slice(KvCache cache, long[] rows, int dropFront) {}

    /**
     * A new cache of {@code capacity} columns holding the slices' rows one after another, each slice's columns
     * right-aligned to end at column {@code length} (the new cached length). Columns to the left of a slice are
     * zero: the caller's attention mask must hide them, as it hides left padding. This is how rows join and leave a
     * running batch between decode steps (continuous batching): a joining request's prefilled cache and the running
     * rows are laid out on one column timeline; a finished row is dropped by not selecting it.
     */
    public static KvCache assemble(List<Slice> slices, int length, int capacity) {
        if (slices.isEmpty()) throw new IllegalArgumentException("assemble needs at least one slice");
        if (length > capacity) throw new IllegalArgumentException("length " + length + " > capacity " + capacity);
        KvCache first = slices.get(0).cache();
        long batch = 0;
        for (Slice s : slices) batch += s.rows().length;
        Tensor k0 = first.keys[0];
        KvCache out = new KvCache(first.keys.length, batch, (int) k0.size(1), (int) k0.size(3), capacity, Tensors.dtype(k0));
        try (StepScope scope = new StepScope()) {
            long row = 0;
            for (Slice s : slices) {
                int n = s.rows().length, cols = s.cache().length - s.dropFront();
                if (cols < 0 || cols > length)
                    throw new IllegalArgumentException("slice of " + cols + " columns does not fit a cache of length " + length);
                if (n > 0 && cols > 0) {
                    Tensor idx = Tensors.longs(s.rows(), n);
                    for (int l = 0; l < out.keys.length; l++) {
                        out.keys[l].narrow(0, row, n).narrow(2, length - cols, cols)
                                .copy_(s.cache().keys[l].index_select(0, idx).narrow(2, s.dropFront(), cols));
                        out.values[l].narrow(0, row, n).narrow(2, length - cols, cols)
                                .copy_(s.cache().values[l].index_select(0, idx).narrow(2, s.dropFront(), cols));
                    }
                }
                row += n;
            }
        }
        out.length = length;
        return out;
    }

    @Override
    public void close() {
        for (Tensor t : keys) t.close();
        for (Tensor t : values) t.close();
    }
}
