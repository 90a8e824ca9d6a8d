package io.tether.eval;

import java.util.ArrayList;
import java.util.List;

/**
 * The release gate as the seed writes it: a model ships only if it beats the baseline on held-out prompts by the
 * gold judge (win delta above {@code minWinDeltaPoints}), its answers grew by less than {@code maxLengthDeltaTokens}
 * on average, and no probe regressed. A FAIL names every reason.
 */
public record ReleaseGate(double minWinDeltaPoints, double maxLengthDeltaTokens) {
    /** The seed's thresholds: win delta > 0 points, mean length delta < 20 tokens. */
    public static final ReleaseGate SEED = new ReleaseGate(0, 20);

    /** A named probe and whether the candidate got worse on it than the baseline (with what was measured). */
    public record Probe(String name, boolean regressed, String detail) {}

    public record Verdict(boolean pass, List<String> reasons) {
        public String line() {
            return (pass ? "PASS" : "FAIL") + (reasons.isEmpty() ? "" : ": " + String.join("; ", reasons));
        }
    }

    /** Whether answers that grew by {@code lengthDeltaTokens} on average fail this gate. */
    public boolean lengthGrewTooMuch(double lengthDeltaTokens) {
        return !(lengthDeltaTokens < maxLengthDeltaTokens);
    }

    public Verdict check(WinRate gold, double lengthDeltaTokens, List<Probe> probes) {
        List<String> reasons = new ArrayList<>();
        if (!(gold.deltaPoints() > minWinDeltaPoints))
            reasons.add(String.format("gold win delta %+.1f points is not above %+.1f (win rate %.3f over %d prompts)",
                    gold.deltaPoints(), minWinDeltaPoints, gold.rate(), gold.total()));
        if (lengthGrewTooMuch(lengthDeltaTokens))
            reasons.add(String.format("mean length grew %+.1f tokens (limit %.0f)", lengthDeltaTokens, maxLengthDeltaTokens));
        for (Probe p : probes) if (p.regressed()) reasons.add("probe " + p.name() + " regressed: " + p.detail());
        return new Verdict(reasons.isEmpty(), List.copyOf(reasons));
    }
}
