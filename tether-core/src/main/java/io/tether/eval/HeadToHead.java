package io.tether.eval;

import java.util.List;
import java.util.function.Function;

import org.bytedeco.pytorch.NoGradGuard;

import io.tether.engine.StepScope;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.reward.Experience;
import io.tether.reward.OnlinePrompt;
import io.tether.reward.PairwiseJudge;
import io.tether.reward.Rollouts;

/**
 * A candidate policy against a baseline on held-out prompts: one completion of each prompt from each (same seed),
 * a pairwise judge's verdicts as a {@link WinRate}, both mean lengths, the candidate's KL to the baseline (the mean
 * over its samples of Σ_t log π − log π_base, a k1 estimate), and, given a scorer, both mean proxy scores.
 */
public final class HeadToHead {
    private HeadToHead() {}

    public record Result(WinRate winRate, double candidateLength, double baselineLength, double klToBaseline, double candidateScore,
                         double baselineScore, List<OnlinePrompt> candidateSamples, List<OnlinePrompt> baselineSamples) {
        public double lengthDelta() {
            return candidateLength - baselineLength;
        }
    }

    /**
     * @param judge  the pairwise judge; null: the proxy judges, by the scores it already gave each completion
     * @param proxy  a reward model or functions to report mean scores with (null: NaN scores)
     */
    public static Result compare(CausalLM candidate, CausalLM baseline, List<OnlinePrompt> prompts, PairwiseJudge judge, SamplingConfig sampling,
                                 Function<long[], String> decoder, Rollouts.Scorer proxy, int batchSize) {
        if (prompts.isEmpty()) throw new IllegalArgumentException("no prompts to evaluate on");
        if (judge == null && proxy == null) throw new IllegalArgumentException("no judge: give a pairwise judge or a proxy scorer");
        Rollouts.Scorer scorer = proxy != null ? proxy : (ps, cs) -> {
            double[] nan = new double[cs.size()];
            java.util.Arrays.fill(nan, Double.NaN);
            return nan;
        };
        List<OnlinePrompt> mine = new java.util.ArrayList<>(), theirs = new java.util.ArrayList<>();
        int wins = 0, ties = 0, losses = 0;
        double kl = 0;
        for (int start = 0; start < prompts.size(); start += batchSize) {
            List<OnlinePrompt> batch = prompts.subList(start, Math.min(prompts.size(), start + batchSize));
            SamplingConfig seeded = sampling.withSeed(sampling.seed() + start);
            try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                List<OnlinePrompt> a = Rollouts.sampleAndScore(candidate, batch, 1, seeded, decoder, scorer, Rollouts.Shaping.NONE);
                List<OnlinePrompt> b = Rollouts.sampleAndScore(baseline, batch, 1, seeded, decoder, scorer, Rollouts.Shaping.NONE);
                Rollouts.Layout l = Rollouts.layout(a);
                double[][] pol = l.perRow(Rollouts.completionLogps(candidate, l, 1.0)), base = l.perRow(Rollouts.completionLogps(baseline, l, 1.0));
                for (int i = 0; i < a.size(); i++) {
                    kl += Experience.sum(pol[i]) - Experience.sum(base[i]);
                    Experience x = a.get(i).experiences().get(0), y = b.get(i).experiences().get(0);
                    PairwiseJudge.Verdict v = judge == null ? higher(x.score, y.score)
                            : judge.judge(a.get(i), x.tokens, text(decoder, x.tokens), y.tokens, text(decoder, y.tokens));
                    if (v == PairwiseJudge.Verdict.FIRST) wins++;
                    else if (v == PairwiseJudge.Verdict.SECOND) losses++;
                    else ties++;
                }
                mine.addAll(a);
                theirs.addAll(b);
            }
        }
        int n = prompts.size();
        return new Result(new WinRate(wins, ties, losses), meanLength(mine), meanLength(theirs), kl / n, meanScore(mine), meanScore(theirs), mine, theirs);
    }

    /** A judge from a scorer: the higher score wins; equal or unscorable scores tie. */
    public static PairwiseJudge byScore(Rollouts.Scorer scorer) {
        return (prompt, firstTokens, first, secondTokens, second) -> {
            double[] s = scorer.score(List.of(prompt, prompt), List.of(firstTokens, secondTokens));
            return higher(s[0], s[1]);
        };
    }

    /** The higher score wins; equal or unscorable (NaN) scores tie. */
    private static PairwiseJudge.Verdict higher(double first, double second) {
        if (Double.isNaN(first) || Double.isNaN(second) || first == second) return PairwiseJudge.Verdict.TIE;
        return first > second ? PairwiseJudge.Verdict.FIRST : PairwiseJudge.Verdict.SECOND;
    }

    private static String text(Function<long[], String> decoder, long[] tokens) {
        return decoder == null ? "" : decoder.apply(tokens);
    }

    private static double meanLength(List<OnlinePrompt> samples) {
        double sum = 0;
        for (OnlinePrompt p : samples) sum += p.experiences().get(0).tokens.length;
        return sum / samples.size();
    }

    private static double meanScore(List<OnlinePrompt> samples) {
        double sum = 0;
        int k = 0;
        for (OnlinePrompt p : samples) {
            double s = p.experiences().get(0).score;
            if (!Double.isNaN(s)) { sum += s; k++; }
        }
        return k == 0 ? Double.NaN : sum / k;
    }
}
