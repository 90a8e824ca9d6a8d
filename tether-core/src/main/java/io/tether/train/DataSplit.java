package io.tether.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import io.tether.engine.ConfigException;

/** A seeded train/held-out split: the same seed always holds out the same examples. */
public final class DataSplit {
    private DataSplit() {}

    /**
     * [train, held-out] as every trainer takes them: the eval_data file's examples when there is one
     * ({@code fromFile} non-null), else {@code fraction} of {@code train} held out with the seed.
     */
    public static <T> List<List<T>> trainAndHeldOut(List<T> train, List<T> fromFile, double fraction, long seed) {
        return fromFile != null ? List.of(train, fromFile) : of(train, fraction, seed);
    }

    /** [train, held-out]; {@code fraction} 0 holds out nothing. */
    public static <T> List<List<T>> of(List<T> all, double fraction, long seed) {
        if (fraction == 0) return List.of(all, List.of());
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < all.size(); i++) order.add(i);
        Collections.shuffle(order, new Random(seed ^ 0x5EEDL));
        int held = Math.max(1, (int) Math.round(fraction * all.size()));
        if (held >= all.size()) throw new ConfigException("key 'eval_fraction': leaves no training examples out of " + all.size());
        Set<Integer> heldOut = new HashSet<>(order.subList(0, held));
        List<T> train = new ArrayList<>(), eval = new ArrayList<>();
        for (int i = 0; i < all.size(); i++) (heldOut.contains(i) ? eval : train).add(all.get(i));
        return List.of(train, eval);
    }
}
