package io.tether.eval;

/**
 * Pairwise results of a policy against a baseline, ties counted half, with the 95% Wilson score interval of the
 * rate (better than the normal interval near 0 and 1 and for a few hundred prompts).
 */
public record WinRate(int wins, int ties, int losses) {
    public WinRate {
        if (wins < 0 || ties < 0 || losses < 0) throw new IllegalArgumentException("counts must be >= 0");
    }

    public int total() {
        return wins + ties + losses;
    }

    /** (wins + ties/2) / total; NaN with no comparisons. */
    public double rate() {
        return total() == 0 ? Double.NaN : (wins + 0.5 * ties) / total();
    }

    /** The rate above parity in points: 100 (rate − 0.5). */
    public double deltaPoints() {
        return 100 * (rate() - 0.5);
    }

    /** The 95% Wilson score interval [low, high] of the rate. */
    public double[] interval95() {
        int n = total();
        if (n == 0) return new double[] {Double.NaN, Double.NaN};
        double z = 1.959963984540054, p = rate(), z2 = z * z;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = z * Math.sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / (1 + z2 / n);
        return new double[] {Math.max(0, centre - half), Math.min(1, centre + half)};
    }

    public WinRate plus(WinRate o) {
        return new WinRate(wins + o.wins, ties + o.ties, losses + o.losses);
    }
}
