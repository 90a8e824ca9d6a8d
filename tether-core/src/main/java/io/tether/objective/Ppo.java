package io.tether.objective;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.Tensors;

import static io.tether.objective.Ops.*;

/**
 * The PPO-RLHF pieces (Ouyang et al. 2022, TRL's PPOTrainer): per-token KL estimators, token rewards that pay the
 * score at the last token and charge the KL penalty everywhere, GAE (Schulman et al. 2016), the clipped policy and
 * value losses, and the adaptive KL controller (Ziegler et al. 2019).
 */
public final class Ppo {
    private Ppo() {}

    /** k1 = logp − ref (unbiased, can be negative). */
    public static Tensor k1(Tensor logp, Tensor ref) {
        return logp.sub(ref);
    }

    /** k2 = ½ (logp − ref)² (biased, low variance). */
    public static Tensor k2(Tensor logp, Tensor ref) {
        return scale(square(logp.sub(ref)), 0.5);
    }

    /** k3 = e^{ref − logp} − 1 − (ref − logp) (unbiased, ≥ 0). */
    public static Tensor k3(Tensor logp, Tensor ref) {
        return Grpo.k3(logp, ref);
    }

    /** The per-token estimate of KL(π‖π_ref) that {@code kl_estimator} names: k1, k2 or k3. */
    public static Tensor kl(String estimator, Tensor logp, Tensor ref) {
        return switch (estimator) {
            case "k1" -> k1(logp, ref);
            case "k2" -> k2(logp, ref);
            case "k3" -> k3(logp, ref);
            default -> throw new ConfigException("key 'kl_estimator': k1, k2 or k3, got '" + estimator + "'");
        };
    }

    /** Token rewards [T]: −kl_coef · kl_t, plus the score on the last token. */
    public static double[] tokenRewards(double[] perTokenKl, double klCoef, double score) {
        double[] r = new double[perTokenKl.length];
        for (int t = 0; t < r.length; t++) r[t] = -klCoef * perTokenKl[t];
        r[r.length - 1] += score;
        return r;
    }

    /** GAE advantages and returns (advantage + value) for one trajectory; the value after the last token is 0. */
    public static double[][] gae(double[] rewards, double[] values, double gamma, double lambda) {
        int n = rewards.length;
        double[] adv = new double[n], ret = new double[n];
        double last = 0;
        for (int t = n - 1; t >= 0; t--) {
            double next = t + 1 < n ? values[t + 1] : 0;
            double delta = rewards[t] + gamma * next - values[t];
            last = delta + gamma * lambda * last;
            adv[t] = last;
            ret[t] = adv[t] + values[t];
        }
        return new double[][] {adv, ret};
    }

    /** The adaptive KL coefficient after a step: β ← β(1 + clip(KL/target − 1, ±0.2) · n_steps / horizon). */
    public static double adaptiveKl(double coef, double currentKl, double target, double horizon, int nSteps) {
        double error = Math.max(-0.2, Math.min(0.2, currentKl / target - 1));
        return coef * (1 + error * nSteps / horizon);
    }

    /**
     * The clipped surrogate −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)A), element-wise (ρ and A broadcast): PPO's policy
     * loss per token (ε_low = ε_high), GRPO's per token or per sequence (DAPO's ε_high), RLOO's per completion.
     */
    public static Tensor clippedSurrogate(Tensor ratio, Tensor advantages, double epsilonLow, double epsilonHigh) {
        Tensor clipped = Tensors.clamp(ratio, 1 - epsilonLow, 1 + epsilonHigh);
        return torch.min(ratio.mul(advantages), clipped.mul(advantages)).neg();
    }

    /** Where {@link #clippedSurrogate} takes the clipped term: −clip(ρ)A > −ρA (TRL's pg_clipfrac counts these), boolean. */
    public static Tensor surrogateClipped(Tensor ratio, Tensor advantages, double epsilonLow, double epsilonHigh) {
        Tensor clipped = Tensors.clamp(ratio, 1 - epsilonLow, 1 + epsilonHigh);
        return clipped.mul(advantages).neg().gt(ratio.mul(advantages).neg());
    }

    /** The clipped surrogate −min(ρA, clip(ρ, 1±ε)A) per token. */
    public static Tensor policyLoss(Tensor logp, Tensor oldLogp, Tensor advantages, double epsilon) {
        return clippedSurrogate(logp.sub(oldLogp).exp(), advantages, epsilon, epsilon);
    }

    /** The clipped value loss ½ max((V − R)², (clip(V, V_old ± ε) − R)²) per token. */
    public static Tensor valueLoss(Tensor values, Tensor oldValues, Tensor returns, double clipRange) {
        Tensor clipped = oldValues.add(Tensors.clamp(values.sub(oldValues), -clipRange, clipRange));
        return scale(torch.max(square(values.sub(returns)), square(clipped.sub(returns))), 0.5);
    }
}
