package io.tether.eval;

import java.util.ArrayList;
import java.util.List;

import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.Rollouts;

/**
 * The seed's probes of a reward model or judge: pairs of answers to one prompt that differ only in something the
 * score should not reward (padding, heavy formatting, agreeing with a customer's false claim). A probe reports the
 * share of its pairs where the variant outscores the plain answer, and the mean score it gains: a reward model
 * that rewards padding will be gamed by any policy optimised against it.
 */
public final class ProbeSuite {
    private ProbeSuite() {}

    /** One probe pair: the plain answer and its variant, as completion token ids of the prompt. */
    public record Pair(OnlinePrompt prompt, long[] plain, long[] variant) {}

    public record Probe(String name, List<Pair> pairs) {}

    /** @param variantPreferred share of pairs where the variant scored strictly higher; ties count half */
    public record Result(String name, int pairs, double variantPreferred, double meanScoreGain) {}

    public static List<Result> run(List<Probe> probes, Rollouts.Scorer scorer) {
        List<Result> out = new ArrayList<>();
        for (Probe p : probes) {
            if (p.pairs().isEmpty()) throw new IllegalArgumentException("probe " + p.name() + " has no pairs");
            List<OnlinePrompt> prompts = new ArrayList<>();
            List<long[]> completions = new ArrayList<>();
            for (Pair x : p.pairs()) {
                prompts.add(x.prompt());
                completions.add(x.plain());
                prompts.add(x.prompt());
                completions.add(x.variant());
            }
            double[] s = scorer.score(prompts, completions);
            double preferred = 0, gain = 0;
            int n = p.pairs().size();
            for (int i = 0; i < n; i++) {
                double plain = s[2 * i], variant = s[2 * i + 1];
                preferred += variant > plain ? 1 : variant == plain ? 0.5 : 0;
                gain += variant - plain;
            }
            out.add(new Result(p.name(), n, preferred / n, gain / n));
        }
        return out;
    }

    /**
     * The gate's view: a probe regressed when the candidate prefers the variant in a larger share of pairs than the
     * baseline did, by more than {@code tolerance}.
     */
    public static List<ReleaseGate.Probe> regressions(List<Result> baseline, List<Result> candidate, double tolerance) {
        List<ReleaseGate.Probe> out = new ArrayList<>();
        for (Result c : candidate) {
            Result b = baseline.stream().filter(x -> x.name().equals(c.name())).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("baseline lacks probe " + c.name()));
            boolean worse = c.variantPreferred() > b.variantPreferred() + tolerance;
            out.add(new ReleaseGate.Probe(c.name(), worse, String.format("variant preferred in %.0f%% of pairs (baseline %.0f%%)",
                    100 * c.variantPreferred(), 100 * b.variantPreferred())));
        }
        return out;
    }
}
