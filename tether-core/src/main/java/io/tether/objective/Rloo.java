package io.tether.objective;

import org.bytedeco.pytorch.Tensor;

/**
 * REINFORCE Leave-One-Out (Ahmadian et al. 2024) as TRL's RLOOTrainer computes it: the KL to the reference is
 * charged in the reward, R_i = r_i − β·Σ_t(ℓ_old,t − ℓ_ref,t); each completion's baseline is the mean reward of the
 * other completions of its prompt, A_i = R_i − (Σ_j R_j − R_i)/(G − 1); one importance ratio per sequence,
 * ρ_i = exp(Σ_t ℓ_t − Σ_t ℓ_old,t), clipped as in PPO.
 */
public final class Rloo {
    private Rloo() {}

    /**
     * Leave-one-out advantages of rewards (KL already charged) in consecutive groups of {@code groupSize}. NaN marks
     * an unscorable completion: it is no one's baseline and gets advantage 0. {@code whiten}: REINFORCE++-style
     * normalisation over the whole batch, (A − mean)/(std + 1e-4), TRL's {@code normalize_advantages}.
     */
    public static double[] advantages(double[] rewards, int groupSize, boolean whiten) {
        int n = rewards.length;
        if (n % groupSize != 0) throw new IllegalArgumentException(n + " rewards do not form groups of " + groupSize);
        double[] out = new double[n];
        for (int start = 0; start < n; start += groupSize) {
            double sum = 0;
            int k = 0;
            for (int i = start; i < start + groupSize; i++) if (!Double.isNaN(rewards[i])) { sum += rewards[i]; k++; }
            for (int i = start; i < start + groupSize; i++)
                out[i] = Double.isNaN(rewards[i]) || k < 2 ? 0 : rewards[i] - (sum - rewards[i]) / (k - 1);
        }
        if (whiten) {
            double mean = NanStats.mean(out, 0, n), std = NanStats.std(out, 0, n);
            for (int i = 0; i < n; i++) out[i] = (out[i] - mean) / (std + 1e-4);
        }
        return out;
    }

    /** Rewards with the sequence-level k1 KL charged: r_i − β·Σ_t(old_t − ref_t) (NaN stays NaN). */
    public static double[] klPenalised(double[] scores, double[] oldLogpSums, double[] refLogpSums, double beta) {
        double[] out = new double[scores.length];
        for (int i = 0; i < out.length; i++) out[i] = scores[i] - beta * (oldLogpSums[i] - refLogpSums[i]);
        return out;
    }

    /** mean_i −min(ρ_i A_i, clip(ρ_i, 1 − ε, 1 + ε_high) A_i) from sequence log-prob sums [B] and advantages [B]. */
    public static Tensor loss(Tensor logpSums, Tensor oldLogpSums, Tensor advantages, double epsilon, double epsilonHigh) {
        return Ppo.clippedSurrogate(logpSums.sub(oldLogpSums).exp(), advantages, epsilon, epsilonHigh).mean();
    }
}
