package io.tether.objective;

import org.bytedeco.pytorch.Tensor;

import static io.tether.objective.Ops.*;

/**
 * The reference-free preference losses and the Bradley-Terry reward-model loss, each as its paper and TRL write it.
 */
public final class PairwiseLosses {
    private PairwiseLosses() {}

    /** Batch loss, per-pair losses (without NLL terms) and logged rewards. */
    public record Output(Tensor loss, Tensor perPair, Tensor chosenRewards, Tensor rejectedRewards) {}

    /**
     * ORPO (Hong et al. 2024): L = NLL(chosen) − λ·mean(log σ(log-odds)), where with per-token average log-probs a,
     * log-odds = (a_w − a_l) − (log(1 − e^{a_w}) − log(1 − e^{a_l})). λ is TRL's {@code beta}; rewards are β·a.
     */
    public static Output orpo(double lambda, Tensor chosenAvgLogps, Tensor rejectedAvgLogps, Tensor chosenNll) {
        Tensor logOdds = chosenAvgLogps.sub(rejectedAvgLogps).sub(log1mexp(chosenAvgLogps).sub(log1mexp(rejectedAvgLogps)));
        Tensor perPair = chosenNll.sub(scale(logSigmoid(logOdds), lambda));
        return new Output(perPair.mean(), perPair, scale(chosenAvgLogps, lambda).detach(), scale(rejectedAvgLogps, lambda).detach());
    }

    /**
     * CPO (Xu et al. 2024), TRL's {@code sigmoid}: −(1−ε)logσ(βΔ) − ε logσ(−βΔ) on summed policy log-probs
     * (no reference), plus cpo_alpha · NLL(chosen).
     */
    public static Output cpo(double beta, double labelSmoothing, double cpoAlpha, Tensor chosenLogps, Tensor rejectedLogps, Tensor chosenNll) {
        Tensor x = scale(chosenLogps.sub(rejectedLogps), beta);
        Tensor perPair = scale(logSigmoid(x), -(1 - labelSmoothing)).sub(scale(logSigmoid(x.neg()), labelSmoothing));
        return new Output(perPair.mean().add(scale(chosenNll, cpoAlpha)), perPair, scale(chosenLogps, beta).detach(), scale(rejectedLogps, beta).detach());
    }

    /**
     * SimPO (Meng et al. 2024): −logσ(β(a_w − a_l) − γ) on average log-probs, plus cpo_alpha · NLL(chosen)
     * (TRL's default cpo_alpha = 1 gives CPO-SimPO; pure SimPO is cpo_alpha = 0).
     */
    public static Output simpo(double beta, double gamma, double cpoAlpha, Tensor chosenAvgLogps, Tensor rejectedAvgLogps, Tensor chosenNll) {
        Tensor perPair = logSigmoid(plus(scale(chosenAvgLogps.sub(rejectedAvgLogps), beta), -gamma)).neg();
        return new Output(perPair.mean().add(scale(chosenNll, cpoAlpha)), perPair, scale(chosenAvgLogps, beta).detach(), scale(rejectedAvgLogps, beta).detach());
    }

    /**
     * AlphaPO (Gupta et al. 2025): SimPO on the reward r = (1 − p^{−α})/α with p = e^{a}, i.e. r = (1 − e^{−αa})/α;
     * α → 0 recovers SimPO.
     */
    public static Output alphapo(double beta, double gamma, double alpha, double cpoAlpha, Tensor chosenAvgLogps, Tensor rejectedAvgLogps, Tensor chosenNll) {
        Tensor rw = alphaReward(chosenAvgLogps, alpha), rl = alphaReward(rejectedAvgLogps, alpha);
        Tensor perPair = logSigmoid(plus(scale(rw.sub(rl), beta), -gamma)).neg();
        return new Output(perPair.mean().add(scale(chosenNll, cpoAlpha)), perPair, scale(rw, beta).detach(), scale(rl, beta).detach());
    }

    /**
     * AlphaPO's reward shape (TRL CPOConfig {@code alpha}): r = (1 − p^{−α})/α = (1 − e^{−αℓ})/α for log-probs ℓ;
     * α = 0 returns ℓ itself (the limit).
     */
    public static Tensor alphaReward(Tensor logps, double alpha) {
        if (alpha == 0) return logps;
        return scale(plus(scale(logps, -alpha).exp().neg(), 1), 1 / alpha);
    }

    /**
     * The Bradley-Terry reward-model loss: mean(−logσ(r_w − r_l − m)) + c·mean((r_w + r_l)²), with per-pair margins m
     * (zero without margins) and TRL's {@code center_rewards_coefficient} c (0 disables) keeping rewards centred.
     */
    public static Output rewardModel(Tensor chosenRewards, Tensor rejectedRewards, Tensor margin, double centerCoefficient) {
        Tensor diff = chosenRewards.sub(rejectedRewards);
        if (margin != null) diff = diff.sub(margin);
        Tensor perPair = logSigmoid(diff).neg();
        Tensor loss = perPair.mean();
        if (centerCoefficient > 0) loss = loss.add(scale(square(chosenRewards.add(rejectedRewards)).mean(), centerCoefficient));
        return new Output(loss, perPair, chosenRewards.detach(), rejectedRewards.detach());
    }
}
