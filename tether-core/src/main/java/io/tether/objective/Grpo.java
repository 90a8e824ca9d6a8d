package io.tether.objective;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.Tensors;

import static io.tether.objective.Ops.*;

/**
 * Group Relative Policy Optimization (Shao et al. 2024) as TRL's GRPOTrainer computes it: no critic; each
 * completion's advantage is its reward standardised within its prompt's group, and a clipped importance ratio
 * (ε below, ε_high above, DAPO's asymmetric clip) bounds each update. Optional k3 KL to the reference per token.
 */
public final class Grpo {
    private Grpo() {}

    /**
     * @param lossType       {@code loss_type}: grpo (per-sequence token mean, then mean), bnpo (token sum over all
     *                       tokens), dr_grpo (sum / (sequences x max_completion_length)), dapo (as bnpo on one process)
     * @param scaleRewards   {@code scale_rewards}: group (divide by the group's std), batch (by the batch's), none
     * @param sequenceLevel  {@code importance_sampling_level: sequence} (GSPO, Zheng et al. 2025): one ratio per
     *                       completion, exp of the mean token log-ratio, instead of one per token
     */
    public record Config(double epsilon, double epsilonHigh, double beta, String lossType, String scaleRewards, int maxCompletionLength,
                         boolean sequenceLevel) {
        public Config {
            if (!java.util.List.of("grpo", "bnpo", "dr_grpo", "dapo").contains(lossType))
                throw new IllegalArgumentException("loss_type '" + lossType + "' is not supported (grpo, bnpo, dr_grpo, dapo)");
            if (!java.util.List.of("group", "batch", "none").contains(scaleRewards))
                throw new IllegalArgumentException("scale_rewards '" + scaleRewards + "' is not supported (group, batch, none)");
        }

        public Config(double epsilon, double epsilonHigh, double beta, String lossType, String scaleRewards, int maxCompletionLength) {
            this(epsilon, epsilonHigh, beta, lossType, scaleRewards, maxCompletionLength, false);
        }
    }

    /**
     * Advantages of rewards laid out as consecutive groups of {@code groupSize}: r − mean(group), divided by
     * (std + 1e-4) with the unbiased std of the group (or of the batch) unless scaling is none. NaN marks an
     * unscorable completion: it is left out of its group's mean and std and gets advantage 0.
     */
    public static double[] advantages(double[] rewards, int groupSize, String scaleRewards) {
        int n = rewards.length;
        if (n % groupSize != 0) throw new IllegalArgumentException(n + " rewards do not form groups of " + groupSize);
        double[] out = new double[n];
        double batchStd = NanStats.std(rewards, 0, n);
        for (int start = 0; start < n; start += groupSize) {
            double mean = NanStats.mean(rewards, start, start + groupSize);
            double scale = switch (scaleRewards) {
                case "none" -> 1;
                case "group" -> NanStats.std(rewards, start, start + groupSize) + 1e-4;
                default -> batchStd + 1e-4;
            };
            for (int i = start; i < start + groupSize; i++) out[i] = Double.isNaN(rewards[i]) || Double.isNaN(mean) ? 0 : (rewards[i] - mean) / scale;
        }
        return out;
    }

    /** Groups whose scorable rewards all tie (std 0): they carry no signal and contribute no gradient. */
    public static int zeroStdGroups(double[] rewards, int groupSize) {
        int count = 0;
        for (int start = 0; start < rewards.length; start += groupSize) if (!(NanStats.std(rewards, start, start + groupSize) > 0)) count++;
        return count;
    }


    /** k3 (Schulman's unbiased, always ≥ 0) estimate of KL(π || π_ref) per token: e^{ref−logp} − (ref − logp) − 1. */
    public static Tensor k3(Tensor logps, Tensor refLogps) {
        Tensor d = refLogps.sub(logps);
        return plus(d.exp().sub(d), -1);
    }

    /**
     * The loss from per-token log-probs [B, T] of the current, old (sampling) and reference policies, advantages [B]
     * and a completion mask [B, T].
     */
    public static Tensor loss(Config c, Tensor logps, Tensor oldLogps, Tensor refLogps, Tensor advantages, Tensor mask) {
        Tensor logRatio = logps.sub(oldLogps);
        if (c.sequenceLevel()) {
            Tensor perSequence = logRatio.mul(mask).sum(new long[] {1}, true, new org.bytedeco.pytorch.ScalarTypeOptional())
                    .div(mask.sum(new long[] {1}, true, new org.bytedeco.pytorch.ScalarTypeOptional()).clamp_min(Tensors.scalar(1.0)));
            logRatio = perSequence.expand_as(logps);
        }
        Tensor ratio = logRatio.exp();
        Tensor a = advantages.unsqueeze(1);
        Tensor clipped = ratio.clamp(new org.bytedeco.pytorch.ScalarOptional(Tensors.scalar(1 - c.epsilon())),
                new org.bytedeco.pytorch.ScalarOptional(Tensors.scalar(1 + c.epsilonHigh())));
        Tensor perToken = torch.min(ratio.mul(a), clipped.mul(a)).neg();
        if (c.beta() > 0) perToken = perToken.add(scale(k3(logps, refLogps), c.beta()));
        Tensor masked = perToken.mul(mask);
        long sequences = logps.size(0);
        return switch (c.lossType()) {
            case "grpo" -> masked.sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional())
                    .div(mask.sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()).clamp_min(Tensors.scalar(1.0))).mean();
            case "bnpo", "dapo" -> masked.sum().div(mask.sum().clamp_min(Tensors.scalar(1.0)));
            default -> masked.sum().div(Tensors.scalar((double) sequences * c.maxCompletionLength()));
        };
    }
}
