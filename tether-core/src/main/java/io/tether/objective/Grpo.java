package io.tether.objective;

import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.ConfigException;
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
     * @param lossType       {@code loss_type}, the normaliser of the summed token loss ({@link #normaliser}): grpo
     *                       (per-sequence token mean, then mean over sequences), bnpo (trained tokens), dr_grpo
     *                       (sequences x max_completion_length), dapo (every completion token of the generation batch)
     * @param scaleRewards   {@code scale_rewards}: group (divide by the group's std), batch (by the batch's), none
     * @param sequenceLevel  {@code importance_sampling_level: sequence} (GSPO, Zheng et al. 2025): one ratio per
     *                       completion, exp of the mean token log-ratio, instead of one per token
     */
    public record Config(double epsilon, double epsilonHigh, double beta, String lossType, String scaleRewards, int maxCompletionLength,
                         boolean sequenceLevel) {
        public Config {
            if (!java.util.List.of("grpo", "bnpo", "dr_grpo", "dapo").contains(lossType))
                throw new ConfigException("loss_type '" + lossType + "' is not supported (grpo, bnpo, dr_grpo, dapo)");
            if (!java.util.List.of("group", "batch", "none").contains(scaleRewards))
                throw new ConfigException("scale_rewards '" + scaleRewards + "' is not supported (group, batch, none)");
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
     * The loss of one whole batch from per-token log-probs [B, T] of the current, old (sampling) and reference
     * policies, advantages [B] and the mask of trained tokens [B, T]; every masked-in token counts as a completion
     * token (see the overload when truncated completions are masked out).
     */
    public static Tensor loss(Config c, Tensor logps, Tensor oldLogps, Tensor refLogps, Tensor advantages, Tensor mask) {
        return loss(c, logps, oldLogps, refLogps, advantages, mask, mask.sum().item_double());
    }

    /** As above, with {@code completionTokens}: every completion token of the batch, trained or masked out (dapo's normaliser). */
    public static Tensor loss(Config c, Tensor logps, Tensor oldLogps, Tensor refLogps, Tensor advantages, Tensor mask, double completionTokens) {
        Tensor sum = lossSum(c, perTokenLoss(c, logps, oldLogps, refLogps, advantages, mask), mask);
        return sum.div(Tensors.scalar(normaliser(c, logps.size(0), mask.sum().item_double(), completionTokens)));
    }

    /**
     * The per-token objective [B, T], before masking: −min(ρA, clip(ρ, 1 − ε, 1 + ε_high)A) + β·k3, with ρ per token,
     * or per sequence (GSPO: exp of the mean masked token log-ratio) when {@code c.sequenceLevel()}.
     */
    public static Tensor perTokenLoss(Config c, Tensor logps, Tensor oldLogps, Tensor refLogps, Tensor advantages, Tensor mask) {
        Tensor logRatio = logps.sub(oldLogps);
        if (c.sequenceLevel()) {
            Tensor perSequence = logRatio.mul(mask).sum(new long[] {1}, true, new ScalarTypeOptional())
                    .div(mask.sum(new long[] {1}, true, new ScalarTypeOptional()).clamp_min(Tensors.scalar(1.0)));
            logRatio = perSequence.expand_as(logps);
        }
        Tensor perToken = Ppo.clippedSurrogate(logRatio.exp(), advantages.unsqueeze(1), c.epsilon(), c.epsilonHigh());
        if (c.beta() > 0) perToken = perToken.add(scale(k3(logps, refLogps), c.beta()));
        return perToken;
    }

    /**
     * The masked loss summed over the loss type's units, so that a batch's loss is the sum over its micro-batches
     * divided by one {@link #normaliser} of the whole batch: grpo sums each sequence's token mean, the others sum
     * tokens.
     */
    public static Tensor lossSum(Config c, Tensor perToken, Tensor mask) {
        Tensor masked = perToken.mul(mask);
        if (!c.lossType().equals("grpo")) return masked.sum();
        return masked.sum(new long[] {1}, false, new ScalarTypeOptional())
                .div(mask.sum(new long[] {1}, false, new ScalarTypeOptional()).clamp_min(Tensors.scalar(1.0))).sum();
    }

    /**
     * What the summed loss of a batch is divided by, as TRL's GRPOTrainer._compute_loss (v0.24.0, unchanged through
     * v0.29.1) on one process: grpo the sequences, dr_grpo sequences x max_completion_length, dapo TRL's
     * {@code num_items_in_batch}, every completion token of the generation batch (truncated completions included
     * even when {@code mask_truncated_completions} leaves them untrained), bnpo the trained tokens (at least 1).
     * Counted over the whole batch an optimizer step trains on, so micro-batching never changes the gradient; TRL
     * does the same for dapo but averages per-micro-batch grpo/bnpo/dr_grpo losses, which differs for bnpo (and for
     * uneven micro-batches) when gradient_accumulation_steps > 1.
     *
     * @param sequences        completions in the batch
     * @param trainedTokens    completion tokens the mask trains
     * @param completionTokens every completion token, trained or not
     */
    public static double normaliser(Config c, long sequences, double trainedTokens, double completionTokens) {
        return switch (c.lossType()) {
            case "grpo" -> sequences;
            case "bnpo" -> Math.max(1, trainedTokens);
            case "dapo" -> Math.max(1, completionTokens);
            default -> (double) sequences * c.maxCompletionLength();
        };
    }
}
