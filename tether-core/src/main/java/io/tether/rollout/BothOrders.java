package io.tether.rollout;

import java.util.concurrent.atomic.AtomicLong;

import io.tether.engine.ConfigException;
import io.tether.rollout.PairwiseJudge.Verdict;

/**
 * What every "A or B?" judge does with its two answers ({@link LocalModelJudge}, {@link OpenAiEndpointJudge}): each
 * pair is asked with the first answer as A and again as B; P(first better) is the mean of the two, so swapping the
 * answers gives exactly 1 − P; the verdict is FIRST above 0.5 + margin, SECOND below 0.5 − margin, else TIE. It
 * also counts the position bias: the share of pairs whose two orders, each alone, named different winners.
 */
public final class BothOrders {
    /** P(first better) with the first answer shown as A, with it shown as B, their mean, and the verdict from the mean. */
    public record Judgement(double pFirstBetterFirstAsA, double pFirstBetterFirstAsB, double pFirstBetter, Verdict verdict) {
        /** The two orders, each taken alone, named different winners (a tie in either counts as no disagreement). */
        public boolean ordersDisagree() {
            return Math.signum(pFirstBetterFirstAsA - 0.5) * Math.signum(pFirstBetterFirstAsB - 0.5) < 0;
        }
    }

    private final double margin;
    private final AtomicLong judged = new AtomicLong(), disagreed = new AtomicLong();

    /** @param margin a verdict is TIE when |P(first better) − 0.5| ≤ margin (0: only an exact 0.5 ties) */
    public BothOrders(double margin) {
        if (!(margin >= 0 && margin < 0.5)) throw new ConfigException("judge tie margin must be in [0, 0.5), got " + margin);
        this.margin = margin;
    }

    /** The judgement of one pair from P(first better) in each order; counted in {@link #positionBias}. */
    public Judgement combine(double firstAsA, double firstAsB) {
        double p = (firstAsA + firstAsB) / 2;
        Verdict v = p > 0.5 + margin ? Verdict.FIRST : p < 0.5 - margin ? Verdict.SECOND : Verdict.TIE;
        Judgement j = new Judgement(firstAsA, firstAsB, p, v);
        judged.incrementAndGet();
        if (j.ordersDisagree()) disagreed.incrementAndGet();
        return j;
    }

    /** Pairs judged so far. */
    public long judged() {
        return judged.get();
    }

    /** The share of judged pairs whose two orders, each alone, named different winners (NaN before any). */
    public double positionBias() {
        long n = judged.get();
        return n == 0 ? Double.NaN : (double) disagreed.get() / n;
    }

    public double margin() {
        return margin;
    }
}
