package io.tether.objective;

/**
 * Statistics over the values that are not NaN: online methods mark an unscorable completion's reward NaN, and it
 * must count in no mean, spread or baseline.
 */
public final class NanStats {
    private NanStats() {}

    /** Mean of the non-NaN values in [from, to); NaN when there are none. */
    public static double mean(double[] v, int from, int to) {
        double sum = 0;
        int k = 0;
        for (int i = from; i < to; i++) if (!Double.isNaN(v[i])) { sum += v[i]; k++; }
        return k == 0 ? Double.NaN : sum / k;
    }

    /** Unbiased (n − 1) standard deviation of the non-NaN values in [from, to); 0 for fewer than two. */
    public static double std(double[] v, int from, int to) {
        double m = mean(v, from, to), ss = 0;
        int k = 0;
        for (int i = from; i < to; i++) if (!Double.isNaN(v[i])) { ss += (v[i] - m) * (v[i] - m); k++; }
        return k < 2 ? 0 : Math.sqrt(ss / (k - 1));
    }
}
