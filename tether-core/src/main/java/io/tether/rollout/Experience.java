package io.tether.rollout;

/**
 * One sampled completion and what the method worked out about it before training on it (the rollout buffer of
 * PPO-style methods). Generation fills the first fields; scoring and the method fill the rest. Plain Java arrays,
 * so a rollout holds no native memory between optimizer steps.
 */
public final class Experience {
    /** Completion token ids, without the prompt. */
    public final long[] tokens;
    /** Ended on the token budget, with no stop token or string. */
    public final boolean truncated;
    /** Per-token log-probs under the sampling distribution. */
    public final double[] samplingLogps;

    /** The reward (after shaping); NaN when no reward source could score it. */
    public double score = Double.NaN;
    /** Per-token log-probs of the policy that generated it, as the training forward computes them (the "old" policy). */
    public double[] oldLogps;
    /** Per-token log-probs of the reference (null when no KL is charged). */
    public double[] refLogps;
    /** Sequence advantage (GRPO, RLOO). */
    public double advantage;
    /** Per-token advantages, returns and value estimates (PPO). */
    public double[] tokenAdvantages, returns, values;

    public Experience(long[] tokens, boolean truncated, double[] samplingLogps) {
        this.tokens = tokens;
        this.truncated = truncated;
        this.samplingLogps = samplingLogps;
    }

    public static double sum(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s;
    }
}
