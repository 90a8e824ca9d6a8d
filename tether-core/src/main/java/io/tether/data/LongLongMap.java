package io.tether.data;

import java.util.Arrays;

/** An open-addressing map from long to long (16 bytes a slot), for a million keys without a million boxed objects. */
final class LongLongMap {
    private static final long EMPTY = 0;   // key 0 is remapped, so 0 can mark free slots
    private long[] keys = new long[1 << 10];
    private long[] values = new long[1 << 10];
    private int size;

    private static long key(long k) {
        return k == EMPTY ? 0x5bd1e995L : k;
    }

    /** The value stored for {@code k}, or {@code missing}. */
    long get(long k, long missing) {
        k = key(k);
        int mask = keys.length - 1;
        for (int i = (int) PromptKeys.mix(k) & mask; ; i = (i + 1) & mask) {
            if (keys[i] == k) return values[i];
            if (keys[i] == EMPTY) return missing;
        }
    }

    /** Returned by {@link #putIfAbsent} when the key was new. */
    static final long ADDED = Long.MIN_VALUE;

    /** Stores {@code v} unless {@code k} is present; returns the value already stored, or {@link #ADDED}. */
    long putIfAbsent(long k, long v) {
        k = key(k);
        if (size * 2 >= keys.length) grow();
        int mask = keys.length - 1;
        for (int i = (int) PromptKeys.mix(k) & mask; ; i = (i + 1) & mask) {
            if (keys[i] == k) return values[i];
            if (keys[i] == EMPTY) {
                keys[i] = k;
                values[i] = v;
                size++;
                return ADDED;
            }
        }
    }

    private void grow() {
        long[] oldKeys = keys, oldValues = values;
        keys = new long[oldKeys.length * 2];
        values = new long[oldKeys.length * 2];
        size = 0;
        for (int i = 0; i < oldKeys.length; i++) if (oldKeys[i] != EMPTY) putIfAbsent(oldKeys[i], oldValues[i]);
    }

    /** The keys (remapped zero aside), in no particular order. */
    long[] keys() {
        long[] out = new long[size];
        int n = 0;
        for (long k : keys) if (k != EMPTY) out[n++] = k;
        return Arrays.copyOf(out, n);
    }
}
