package io.tether.objective;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.DType;

import static io.tether.objective.Ops.*;

import io.tether.engine.ConfigException;

/**
 * Kahneman-Tversky Optimization (Ethayarajh et al. 2024) on unpaired thumbs-up/down data, as TRL's KTOTrainer
 * computes it. With log-ratio ρ = ℓ − ℓ_ref and the detached KL estimate z0 = max(0, mean(ℓ_KL − ℓ_ref,KL)) from
 * mismatched prompt/completion pairs:
 * <pre>
 *   desirable:   w_d · (1 − σ(β(ρ − z0)))        undesirable:   w_u · (1 − σ(β(z0 − ρ)))
 * </pre>
 * {@code apo_zero_unpaired} replaces these with 1 − σ(βρ) and σ(βρ) and needs no KL term. The loss is the mean over
 * all examples.
 */
public final class KtoLoss {
    private KtoLoss() {}

    /** {@code beta}, {@code desirable_weight}, {@code undesirable_weight}, {@code loss_type} (kto or apo_zero_unpaired). */
    public record Config(double beta, double desirableWeight, double undesirableWeight, String lossType) {
        public Config {
            if (!(beta > 0)) throw new ConfigException("beta must be > 0");
            if (!lossType.equals("kto") && !lossType.equals("apo_zero_unpaired"))
                throw new ConfigException("loss_type '" + lossType + "' is not supported (kto or apo_zero_unpaired)");
        }
    }

    /** Loss, per-example losses (desirable first, then undesirable, as TRL concatenates them) and rewards βρ of each group. */
    public record Output(Tensor loss, Tensor perExample, Tensor desirableRewards, Tensor undesirableRewards, double kl) {}

    /**
     * @param desirable [B] boolean labels
     * @param policyKl  summed log-probs of mismatched completions under the policy (null for apo_zero_unpaired)
     */
    public static Output compute(Config c, Tensor desirable, Tensor policy, Tensor ref, Tensor policyKl, Tensor refKl) {
        Tensor rho = policy.sub(ref);
        double z0 = 0;
        if (c.lossType().equals("kto")) z0 = Math.max(0, policyKl.sub(refKl).mean().detach().item_double());
        Tensor mask = desirable.to(DType.BOOL.scalarType);
        Tensor d = rho.masked_select(mask), u = rho.masked_select(mask.logical_not());
        Tensor ld, lu;
        if (c.lossType().equals("kto")) {
            ld = plus(sigmoid(scale(plus(d, -z0), c.beta())).neg(), 1);
            lu = plus(sigmoid(scale(plus(u.neg(), z0), c.beta())).neg(), 1);
        } else {
            ld = plus(sigmoid(scale(d, c.beta())).neg(), 1);
            lu = sigmoid(scale(u, c.beta()));
        }
        Tensor all = torch.cat(new TensorVector(scale(ld, c.desirableWeight()), scale(lu, c.undesirableWeight())));
        return new Output(all.mean(), all, scale(d, c.beta()).detach(), scale(u, c.beta()).detach(), z0);
    }

}
