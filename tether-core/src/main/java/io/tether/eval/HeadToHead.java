package io.tether.eval;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

import org.bytedeco.pytorch.NoGradGuard;

import io.tether.engine.ConfigException;
import io.tether.engine.StepScope;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.rollout.Experience;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.Rollouts;

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
        checkJudge(judge, proxy);
        return compareToSamples(candidate, baseline, sample(baseline, prompts, sampling, decoder, proxy, batchSize), judge, sampling, decoder, proxy, batchSize);
    }

    /**
     * As {@link #compare(CausalLM, CausalLM, List, PairwiseJudge, SamplingConfig, Function, Rollouts.Scorer, int)}, with
     * the baseline's completions already drawn by {@link #sample} under the same sampling settings and batch size, so
     * that several candidates can be compared with one baseline without sampling it again.
     */
    public static Result compareToSamples(CausalLM candidate, CausalLM baseline, List<OnlinePrompt> baselineSamples, PairwiseJudge judge,
                                 SamplingConfig sampling, Function<long[], String> decoder, Rollouts.Scorer proxy, int batchSize) {
        if (baselineSamples.isEmpty()) throw new ConfigException("no prompts to evaluate on");
        checkJudge(judge, proxy);
        List<OnlinePrompt> mine = sample(candidate, baselineSamples, sampling, decoder, proxy, batchSize);
        int wins = 0, ties = 0, losses = 0;
        double kl = 0;
        for (int start = 0; start < mine.size(); start += batchSize) {
            List<OnlinePrompt> a = mine.subList(start, Math.min(mine.size(), start + batchSize));
            try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                Rollouts.Layout l = Rollouts.layout(a);
                double[][] pol = l.perRow(Rollouts.completionLogps(candidate, l, 1.0)), base = l.perRow(Rollouts.completionLogps(baseline, l, 1.0));
                for (int i = 0; i < a.size(); i++) {
                    kl += Experience.sum(pol[i]) - Experience.sum(base[i]);
                    OnlinePrompt p = a.get(i);
                    Experience x = p.experiences().get(0), y = baselineSamples.get(start + i).experiences().get(0);
                    PairwiseJudge.Verdict v = judge == null ? higher(x.score, y.score)
                            : judge.judge(p, x.tokens, text(decoder, x.tokens), y.tokens, text(decoder, y.tokens));
                    if (v == PairwiseJudge.Verdict.FIRST) wins++;
                    else if (v == PairwiseJudge.Verdict.SECOND) losses++;
                    else ties++;
                }
            }
        }
        int n = mine.size();
        return new Result(new WinRate(wins, ties, losses), meanLength(mine), meanLength(baselineSamples), kl / n, meanScore(mine),
                meanScore(baselineSamples), mine, baselineSamples);
    }

    /**
     * One completion of each prompt from {@code model}, scored by {@code proxy} (NaN scores without one); batch i is
     * sampled with seed {@code sampling.seed() + i * batchSize}, so two models see the same random stream per prompt.
     */
    public static List<OnlinePrompt> sample(CausalLM model, List<OnlinePrompt> prompts, SamplingConfig sampling, Function<long[], String> decoder,
                                            Rollouts.Scorer proxy, int batchSize) {
        if (prompts.isEmpty()) throw new ConfigException("no prompts to evaluate on");
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        Rollouts.Scorer scorer = proxy != null ? proxy : (ps, cs) -> {
            double[] nan = new double[cs.size()];
            Arrays.fill(nan, Double.NaN);
            return nan;
        };
        List<OnlinePrompt> out = new ArrayList<>();
        for (int start = 0; start < prompts.size(); start += batchSize) {
            List<OnlinePrompt> batch = prompts.subList(start, Math.min(prompts.size(), start + batchSize));
            try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                out.addAll(Rollouts.sampleAndScore(model, batch, 1, sampling.withSeed(sampling.seed() + start), decoder, scorer, Rollouts.Shaping.NONE));
            }
        }
        return out;
    }

    private static void checkJudge(PairwiseJudge judge, Rollouts.Scorer proxy) {
        if (judge == null && proxy == null) throw new IllegalArgumentException("no judge: give a pairwise judge or a proxy scorer");
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
