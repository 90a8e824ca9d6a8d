package io.tether.objective;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.annotation.JsonIgnore;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Tensors;

import static io.tether.objective.Ops.*;

/**
 * Direct Preference Optimization and its family (Rafailov et al. 2023 and successors), exactly as TRL's
 * {@code DPOTrainer} (>= 0.29) computes them, with TRL <= 0.28 and OpenRLHF semantics as explicit options.
 *
 * <p>With c = ℓ(y_w) − ℓ_ref(y_w) and r = ℓ(y_l) − ℓ_ref(y_l) (summed completion log-probs), an f-divergence maps
 * them to s_w = f(c), s_r = f(r), δ = s_w − s_r and x = β·δ. Each loss type is a per-pair function of these; the
 * batch loss is Σ_k w_k · mean(loss_k). Logged rewards are always β·c and β·r.
 */
public final class DpoLoss {
    private DpoLoss() {}

    /**
     * @param beta                 {@code beta} (0.1)
     * @param lossType             {@code loss_type}: sigmoid, hinge, ipo, exo_pair, nca_pair, robust, bco_pair, sppo_hard,
     *                             aot, aot_unpaired, apo_zero, apo_down, discopop, sigmoid_norm, sft (several combine)
     * @param lossWeights          {@code loss_weights} (all 1.0 by default)
     * @param labelSmoothing       {@code label_smoothing}: ε of robust, exo_pair, aot and aot_unpaired
     * @param fDivergenceType      {@code f_divergence_type}: reverse_kl, forward_kl, js_divergence, alpha_divergence
     * @param fAlphaDivergenceCoef {@code f_alpha_divergence_coef} (0.5; legacy default 1.0)
     * @param discopopTau          {@code discopop_tau} (0.05)
     * @param semantics            which implementation's formulas: TRL (>= 0.29, the default), TRL_LEGACY (<= 0.28:
     *                             cDPO label smoothing in sigmoid, running-mean bco_pair, old alpha divergence,
     *                             WPO clamp) or OPENRLHF (cDPO sigmoid, IPO without length normalisation)
     * @param rdpoAlpha            {@code rdpo_alpha}: R-DPO's length regulariser α (Park et al. 2024, "Disentangling
     *                             Length from Quality in DPO"; 0 = off). Maximising r(x,y) − α|y| under the KL
     *                             constraint gives x = β·δ + α·(|y_w| − |y_l|), lengths in tokens: the part of a
     *                             preference that length explains no longer moves the policy, so a length-biased
     *                             annotator's votes for the longer answer teach less. Only for the losses of x
     *                             (sigmoid, hinge, robust, exo_pair, discopop).
     * @param lossTerms            the loss types {@code lossType} names: {@link #LOSS_TYPES}, or those and a caller's own
     *                             ({@link #withLossType}); not a config key
     */
    public record Config(double beta, List<String> lossType, List<Double> lossWeights, double labelSmoothing,
                         String fDivergenceType, double fAlphaDivergenceCoef, double discopopTau, Semantics semantics,
                         double rdpoAlpha, @JsonIgnore Map<String, LossTerm> lossTerms) {
        public Config(double beta, List<String> lossType, List<Double> lossWeights, double labelSmoothing,
                      String fDivergenceType, double fAlphaDivergenceCoef, double discopopTau, Semantics semantics) {
            this(beta, lossType, lossWeights, labelSmoothing, fDivergenceType, fAlphaDivergenceCoef, discopopTau, semantics, 0.0);
        }

        public Config(double beta, List<String> lossType, List<Double> lossWeights, double labelSmoothing,
                      String fDivergenceType, double fAlphaDivergenceCoef, double discopopTau, Semantics semantics, double rdpoAlpha) {
            this(beta, lossType, lossWeights, labelSmoothing, fDivergenceType, fAlphaDivergenceCoef, discopopTau, semantics, rdpoAlpha, LOSS_TYPES);
        }

        public Config {
            lossTerms = lossTerms == null ? LOSS_TYPES : lossTerms;
            if (!(beta > 0)) throw new ConfigException("beta must be > 0, got " + beta);
            if (lossType.isEmpty()) throw new ConfigException("loss_type must name at least one loss");
            if (lossWeights == null) lossWeights = java.util.Collections.nCopies(lossType.size(), 1.0);
            if (lossWeights.size() != lossType.size())
                throw new ConfigException("loss_weights has " + lossWeights.size() + " entries for " + lossType.size() + " loss types");
            for (String t : lossType)
                if (!lossTerms.containsKey(t)) throw new ConfigException("loss_type '" + t + "' is not supported (known: " + lossTerms.keySet() + ")");
            if (lossType.contains("exo_pair") && !(labelSmoothing > 0))
                throw new ConfigException("exo_pair needs label_smoothing > 0 (the paper uses 1e-3)");
            if (lossType.contains("robust") && !(labelSmoothing >= 0 && labelSmoothing < 0.5))
                throw new ConfigException("robust needs label_smoothing in [0, 0.5), got " + labelSmoothing);
            if (!(rdpoAlpha >= 0 && Double.isFinite(rdpoAlpha))) throw new ConfigException("rdpo_alpha must be >= 0, got " + rdpoAlpha);
            if (rdpoAlpha > 0)
                for (String t : lossType)
                    if (!OF_X.contains(t) && !t.equals("sft"))
                        throw new ConfigException("rdpo_alpha shifts the logit x = β·δ, which loss_type '" + t + "' does not use (it works with " + OF_X + ")");
            lossType = List.copyOf(lossType);
            lossWeights = List.copyOf(lossWeights);
        }

        public static Config of(double beta, String lossType) {
            return new Config(beta, List.of(lossType), null, 0.0, "reverse_kl", 0.5, 0.05, Semantics.TRL);
        }

        /** This config with R-DPO's length term (see {@code rdpo_alpha} above). */
        public Config withRdpoAlpha(double alpha) {
            return new Config(beta, lossType, lossWeights, labelSmoothing, fDivergenceType, fAlphaDivergenceCoef, discopopTau, semantics, alpha, lossTerms);
        }

        /** This config training with one more loss type, {@code name}, alone (weight 1): a caller's own loss, no fork needed. */
        public Config withLossType(String name, LossTerm term) {
            Map<String, LossTerm> terms = new LinkedHashMap<>(lossTerms);
            terms.put(name, term);
            return new Config(beta, List.of(name), null, labelSmoothing, fDivergenceType, fAlphaDivergenceCoef, discopopTau, semantics,
                    rdpoAlpha, Collections.unmodifiableMap(terms));
        }
    }

    public enum Semantics { TRL, TRL_LEGACY, OPENRLHF }

    /** The losses that are functions of x = β·δ alone, to which R-DPO's length term applies. */
    static final List<String> OF_X = List.of("sigmoid", "hinge", "robust", "exo_pair", "discopop");

    /**
     * Per-pair summed log-probs [B] of policy and reference, completion token counts [B], and optionally the SFT
     * term's token-mean NLL over the batch's chosen completions (a scalar) and WPO weights [B].
     */
    public record Inputs(Tensor policyChosen, Tensor policyRejected, Tensor refChosen, Tensor refRejected,
                         Tensor chosenTokens, Tensor rejectedTokens, Tensor sftNll, Tensor pairWeights) {}

    /** The batch loss (scalar), per-pair losses [B] and the implicit rewards β·c and β·r [B]. */
    public record Output(Tensor loss, Tensor perPair, Tensor chosenRewards, Tensor rejectedRewards) {}

    /**
     * Legacy bco_pair's δ: TRL v0.28's {@code RunningMoments} mean over the batch means of the implicit rewards. TRL
     * folds in each batch's mean as one observation (it updates with the scalar mean, so {@code xs.numel()} is 1),
     * so every micro-batch weighs the same whatever its size. A trainer keeps one across steps and checkpoints.
     */
    public static final class RunningMean {
        private double mean;
        private long count;

        public RunningMean() {}

        /** The state a checkpoint recorded. */
        public RunningMean(double mean, long count) {
            if (count < 0) throw new IllegalArgumentException("running mean count must be >= 0, got " + count);
            this.mean = mean;
            this.count = count;
        }

        /** Folds in a batch of values and returns the updated mean. */
        public double update(double batchMean, long batchCount) {
            long total = count + batchCount;
            mean += (batchMean - mean) * batchCount / total;
            count = total;
            return mean;
        }

        public double mean() { return mean; }

        /** Batches folded in so far. */
        public long count() { return count; }

        public RunningMean copy() { return new RunningMean(mean, count); }
    }

    /**
     * What a loss type reads of a batch, computed once for all of them: with c = ℓ(y_w) − ℓ_ref(y_w) and
     * r = ℓ(y_l) − ℓ_ref(y_l), the f-divergence scores s_w = f(c) and s_r = f(r), δ = s_w − s_r and the logit
     * x = β·δ (plus R-DPO's length term); every tensor is per pair [B].
     */
    public record Terms(Config config, Inputs in, Tensor chosenRatio, Tensor rejectedRatio, Tensor chosenScore, Tensor rejectedScore,
                        Tensor delta, Tensor logit, RunningMean bcoMean) {
        public double beta() { return config.beta(); }

        /** ε of the losses that smooth labels. */
        public double eps() { return config.labelSmoothing(); }
    }

    /** One {@code loss_type}: its per-pair losses [B] from the batch's terms. */
    @FunctionalInterface
    public interface LossTerm {
        Tensor perPair(Terms t);
    }

    /** The built-in loss types by name, in TRL's order: a new loss type is one entry here. */
    public static final Map<String, LossTerm> LOSS_TYPES = lossTypes();

    private static Map<String, LossTerm> lossTypes() {
        Map<String, LossTerm> m = new LinkedHashMap<>();
        m.put("sigmoid", t -> t.config().semantics() == Semantics.TRL
                ? logSigmoid(t.logit()).neg()
                // cDPO (TRL <= 0.28, OpenRLHF): −(1−ε)logσ(x) − ε logσ(−x)
                : scale(logSigmoid(t.logit()), -(1 - t.eps())).sub(scale(logSigmoid(t.logit().neg()), t.eps())));
        m.put("hinge", t -> torch.relu(plus(t.logit().neg(), 1)));
        m.put("ipo", t -> t.config().semantics() == Semantics.OPENRLHF
                ? square(plus(t.delta(), -1 / (2 * t.beta())))
                // TRL normalises by completion length (confirmed with the IPO authors)
                : square(plus(t.chosenScore().div(t.in().chosenTokens()).sub(t.rejectedScore().div(t.in().rejectedTokens())), -1 / (2 * t.beta()))));
        m.put("exo_pair", t -> sigmoid(t.logit()).mul(plus(logSigmoid(t.logit()), -Math.log(1 - t.eps())))
                .add(sigmoid(t.logit().neg()).mul(plus(logSigmoid(t.logit().neg()), -Math.log(t.eps())))));
        m.put("nca_pair", t -> logSigmoid(scale(t.chosenScore(), t.beta())).neg().sub(scale(logSigmoid(scale(t.chosenScore(), -t.beta())), 0.5))
                .sub(scale(logSigmoid(scale(t.rejectedScore(), -t.beta())), 0.5)));
        m.put("robust", t -> scale(scale(logSigmoid(t.logit()), -(1 - t.eps())).add(scale(logSigmoid(t.logit().neg()), t.eps())), 1 / (1 - 2 * t.eps())));
        m.put("bco_pair", t -> {
            double beta = t.beta(), shift = 0;
            if (t.config().semantics() == Semantics.TRL_LEGACY) {
                // δ: running mean of the batches' mean chosen and rejected rewards, updated with this batch before use
                double batchMean = torch.cat(new TensorVector(scale(t.chosenRatio(), beta).detach(), scale(t.rejectedRatio(), beta).detach())).mean().item_double();
                shift = (t.bcoMean() == null ? new RunningMean() : t.bcoMean()).update(batchMean, 1);
            }
            return logSigmoid(plus(scale(t.chosenScore(), beta), -shift)).neg().sub(logSigmoid(plus(scale(t.rejectedScore(), beta), -shift).neg()));
        });
        m.put("sppo_hard", t -> square(plus(t.chosenScore(), -1 / (2 * t.beta()))).add(square(plus(t.rejectedScore(), 1 / (2 * t.beta())))));
        m.put("aot", t -> aot(t, torch.sort(t.in().policyChosen().sub(t.in().policyRejected()), 0, false).get0()
                .sub(torch.sort(t.in().refChosen().sub(t.in().refRejected()), 0, false).get0())));
        m.put("aot_unpaired", t -> aot(t, torch.sort(t.chosenRatio(), 0, false).get0().sub(torch.sort(t.rejectedRatio(), 0, false).get0())));
        m.put("apo_zero", t -> plus(sigmoid(scale(t.chosenRatio(), t.beta())).neg(), 1).add(sigmoid(scale(t.rejectedRatio(), t.beta()))));
        m.put("apo_down", t -> sigmoid(scale(t.chosenRatio(), t.beta())).add(plus(sigmoid(t.logit()).neg(), 1)));
        m.put("discopop", t -> {
            Tensor x = t.logit(), mix = sigmoid(scale(x, 1 / t.config().discopopTau()));
            return mix.mul(x.neg().exp()).add(plus(mix.neg(), 1).mul(logSigmoid(x).neg()));
        });
        m.put("sigmoid_norm", t -> logSigmoid(scale(t.chosenScore().div(t.in().chosenTokens()).sub(t.rejectedScore().div(t.in().rejectedTokens())), t.beta())).neg());
        m.put("sft", t -> {
            if (t.in().sftNll() == null) throw new IllegalArgumentException("loss_type 'sft' needs the chosen completions' NLL");
            return t.in().sftNll().expand(t.chosenRatio().size(0));
        });
        return Collections.unmodifiableMap(m);
    }

    /** AOT's loss of the sorted margins' difference {@code d}: cDPO's smoothed sigmoid of β·d. */
    private static Tensor aot(Terms t, Tensor d) {
        Tensor bd = scale(d, t.beta());
        return scale(logSigmoid(bd), -(1 - t.eps())).sub(scale(logSigmoid(bd.neg()), t.eps()));
    }

    public static Output compute(Config cfg, Inputs in) {
        return compute(cfg, in, null);
    }

    public static Output compute(Config cfg, Inputs in, RunningMean bcoMean) {
        double beta = cfg.beta();
        Tensor c = in.policyChosen().sub(in.refChosen());       // chosen log-ratio
        Tensor r = in.policyRejected().sub(in.refRejected());   // rejected log-ratio
        Tensor sw, sr, delta;
        if (cfg.semantics() == Semantics.TRL_LEGACY && cfg.fDivergenceType().equals("alpha_divergence")) {
            // TRL <= 0.28: δ = (e^{−α r} − e^{−α c}) / α
            double a = cfg.fAlphaDivergenceCoef();
            sw = c;
            sr = r;
            delta = scale(r.mul(Tensors.scalar(-a)).exp().sub(c.mul(Tensors.scalar(-a)).exp()), 1 / a);
        } else {
            sw = fDivergence(cfg, c);
            sr = fDivergence(cfg, r);
            delta = sw.sub(sr);
        }
        Tensor x = scale(delta, beta);
        if (cfg.rdpoAlpha() > 0) x = x.add(scale(in.chosenTokens().sub(in.rejectedTokens()).to(x.scalar_type()), cfg.rdpoAlpha()));
        Terms terms = new Terms(cfg, in, c, r, sw, sr, delta, x, bcoMean);
        Tensor perPair = null, total = null;
        for (int k = 0; k < cfg.lossType().size(); k++) {
            Tensor l = cfg.lossTerms().get(cfg.lossType().get(k)).perPair(terms);
            if (in.pairWeights() != null) {
                Tensor w = cfg.semantics() == Semantics.TRL_LEGACY ? in.pairWeights().clamp_max(Tensors.scalar(1.0)) : in.pairWeights();
                l = l.mul(w);
            }
            double weight = cfg.lossWeights().get(k);
            perPair = perPair == null ? scale(l, weight) : perPair.add(scale(l, weight));
            total = total == null ? scale(l.mean(), weight) : total.add(scale(l.mean(), weight));
        }
        return new Output(total, perPair, scale(c, beta).detach(), scale(r, beta).detach());
    }

    /** The f-divergence score map of TRL's {@code f_divergence_type}. */
    static Tensor fDivergence(Config cfg, Tensor u) {
        return switch (cfg.fDivergenceType()) {
            case "reverse_kl" -> u;
            case "forward_kl" -> u.neg().exp().neg();
            case "js_divergence" -> logSigmoid(u);
            case "alpha_divergence" -> {
                double a = cfg.fAlphaDivergenceCoef();
                if (Math.abs(a - 1) < 1e-6) yield u;
                // exp((α−1)u)/(α−1), the exponent clamped at 80 as TRL does against overflow
                yield scale(scale(u, a - 1).clamp_max(Tensors.scalar(80.0)).exp(), 1 / (a - 1));
            }
            default -> throw new ConfigException("f_divergence_type '" + cfg.fDivergenceType() + "' is not supported");
        };
    }

    /**
     * LD-DPO's desensitised sequence log-prob: Σ_{t ≤ Ls} logp_t + α Σ_{t > Ls} logp_t, where Ls = min(n_w, n_l) is the
     * shorter completion of the pair. {@code tokenLogps} [B, T] (zero-padded), {@code sharedLength} [B].
     */
    public static Tensor ldLogps(Tensor tokenLogps, Tensor sharedLength, double alpha) {
        long t = tokenLogps.size(1);
        Tensor positions = Tensors.arange(t, DType.I64).view(1, t);
        Tensor head = positions.lt(sharedLength.view(-1, 1)).to(tokenLogps.scalar_type());
        Tensor weights = head.add(plus(head.neg(), 1).mul(Tensors.scalar(alpha)));
        return tokenLogps.mul(weights).sum(new long[] {1}, false, new ScalarTypeOptional());
    }

    /**
     * WPO's per-sequence weight exp(mean_t [log p_t − log Σ_v p_v²]), without gradient, from policy logits [B, T, V],
     * target tokens [B, T] and a 0/1 mask [B, T].
     */
    public static Tensor wpoWeight(Tensor logits, Tensor tokens, Tensor mask) {
        Tensor logProbs = torch.log_softmax(logits.detach(), -1);
        Tensor picked = torch.gather(logProbs, -1, tokens.unsqueeze(-1)).squeeze(-1);
        Tensor logSumSq = torch.logsumexp(scale(logProbs, 2), new long[] {-1}, false);
        return wpoWeightOfTokens(picked, logSumSq, mask);
    }

    /**
     * {@link #wpoWeight(Tensor, Tensor, Tensor)} from per-token log-probs of the chosen tokens and log Σ_v p_v² [B, T]
     * (what chunked scoring reports without holding the logits).
     */
    public static Tensor wpoWeightOfTokens(Tensor tokenLogps, Tensor logSumSquares, Tensor mask) {
        Tensor m = mask.to(tokenLogps.scalar_type());
        Tensor perToken = tokenLogps.detach().sub(logSumSquares).mul(m);
        return perToken.sum(new long[] {1}, false, new ScalarTypeOptional())
                .div(m.sum(new long[] {1}, false, new ScalarTypeOptional())).exp();
    }
}
