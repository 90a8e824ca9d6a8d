package io.tether.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.ConfigException;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.LoraAdapters;
import io.tether.model.PromptCompletionRows;
import io.tether.objective.DpoLoss;
import io.tether.objective.PairwiseLosses;

/**
 * Offline preference optimisation as a method of the one loop: chosen and rejected completions go through the policy
 * in one concatenated batch of 2B right-padded rows, their completion log-probs are summed under completion masks
 * (padding-invariant), and the pair loss comes from {@link DpoLoss} (against reference log-probs) or, reference-free,
 * from {@link PairwiseLosses} (CPO, SimPO, ORPO). Metrics carry TRL's names.
 */
public final class PreferenceTraining implements TrainingMethod<PreferenceTraining.Pair> {
    /** A comparison; reference log-probs are NaN unless precomputed. */
    public record Pair(long[] prompt, long[] chosen, long[] rejected, double refChosen, double refRejected) {
        public Pair withReference(double c, double r) {
            return new Pair(prompt, chosen, rejected, c, r);
        }
    }

    public enum Kind { DPO, CPO, SIMPO, ORPO }

    /**
     * Options of the reference-free losses.
     *
     * @param alpha              TRL CPOConfig {@code alpha} (CPO and SimPO): AlphaPO's reward r = (1 − p^{−α})/α in place of
     *                           the log-prob (Gupta et al. 2025); 0 keeps the log-prob
     * @param orpoNllWithPrompt  ORPO's NLL term over the chosen rows' prompt and completion tokens, as TRL's ORPOTrainer
     *                           computes it (true, the default), or over the completion alone (false; {@code orpo_nll_tokens: completion})
     */
    public record ReferenceFree(double alpha, boolean orpoNllWithPrompt) {
        public static final ReferenceFree TRL = new ReferenceFree(0.0, true);

        public ReferenceFree {
            if (!Double.isFinite(alpha)) throw new ConfigException("key 'alpha': must be a finite number, got " + alpha);
        }
    }

    /**
     * @param reference the frozen reference model when reference log-probs are not precomputed (DPO only)
     * @param simpoGamma SimPO's γ; {@code cpoAlpha} weights the NLL term of CPO/SimPO; ORPO's λ is {@code dpo.beta()}
     */
    public record Settings(Kind kind, DpoLoss.Config dpo, double simpoGamma, double cpoAlpha, CausalLM reference,
                           double syncAlpha, int syncSteps, Double ldAlpha, boolean useWeighting, ReferenceFree referenceFree) {
        public Settings {
            if (referenceFree == null) referenceFree = ReferenceFree.TRL;
        }

        public Settings(Kind kind, DpoLoss.Config dpo, double simpoGamma, double cpoAlpha, CausalLM reference,
                        double syncAlpha, int syncSteps, Double ldAlpha, boolean useWeighting) {
            this(kind, dpo, simpoGamma, cpoAlpha, reference, syncAlpha, syncSteps, ldAlpha, useWeighting, ReferenceFree.TRL);
        }

        public Settings(Kind kind, DpoLoss.Config dpo, double simpoGamma, double cpoAlpha, CausalLM reference, double syncAlpha, int syncSteps) {
            this(kind, dpo, simpoGamma, cpoAlpha, reference, syncAlpha, syncSteps, null, false);
        }
    }

    private final Settings s;
    /** Legacy bco_pair's δ, carried across steps and checkpoints as TRL v0.28 carried it across steps. */
    private DpoLoss.RunningMean bcoMean = new DpoLoss.RunningMean();

    public PreferenceTraining(Settings settings) {
        this.s = settings;
    }

    private boolean runningBcoMean() {
        return s.kind() == Kind.DPO && s.dpo().semantics() == DpoLoss.Semantics.TRL_LEGACY && s.dpo().lossType().contains("bco_pair");
    }

    /** Legacy bco_pair's running mean and the batches folded into it; nothing for other losses. */
    @Override
    public Map<String, Double> state() {
        if (!runningBcoMean()) return Map.of();
        return Map.of(BCO_MEAN, bcoMean.mean(), BCO_COUNT, (double) bcoMean.count());
    }

    @Override
    public void restoreState(Map<String, Double> state) {
        // A checkpoint written before the mean was saved restarts it, as every step did then.
        if (runningBcoMean() && state.containsKey(BCO_MEAN) && state.containsKey(BCO_COUNT))
            bcoMean = new DpoLoss.RunningMean(state.get(BCO_MEAN), Math.round(state.get(BCO_COUNT)));
    }

    static final String BCO_MEAN = "bco_pair_running_mean", BCO_COUNT = "bco_pair_running_count";

    /** Completion log-prob sums, completion token counts and mean completion logits of rows [B] (prompt + completion). */
    record Scored(Tensor logps, Tensor tokens, Tensor meanLogits, Tensor tokenLogps, Tensor mask, Tensor wpoWeights) {}

    static Scored score(CausalLM model, List<long[]> prompts, List<long[]> completions) {
        return score(model, prompts, completions, null, false);
    }

    /**
     * @param ldAlpha  LD-DPO: completion tokens past the pair's shorter completion count α times (rows i and i+B are
     *                 a pair); null for plain sums
     * @param wpo      also compute WPO's sequence weights exp(mean_t[log p_t − log Σ_v p_v²]) without gradient
     */
    static Scored score(CausalLM model, List<long[]> prompts, List<long[]> completions, Double ldAlpha, boolean wpo) {
        int b = prompts.size();
        PromptCompletionRows rows = PromptCompletionRows.of(prompts, completions, 0);
        int len = rows.length();
        long[] mask = new long[b * (len - 1)];
        double[] counts = new double[b];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < completions.get(i).length; j++) mask[rows.predictionIndex(i, j)] = 1;
            counts[i] = completions.get(i).length;
        }
        double[] weights = null;
        if (ldAlpha != null) {
            int pairs = b / 2;
            weights = new double[mask.length];
            for (int i = 0; i < b; i++) {
                int shared = Math.min(completions.get(i % pairs).length, completions.get(i % pairs + pairs).length);
                for (int j = 0; j < completions.get(i).length; j++) weights[rows.predictionIndex(i, j)] = j < shared ? 1 : ldAlpha;
            }
        }
        Tensor input = rows.idsTensor();
        LogProbs.TokenScores scores = LogProbs.tokenScores(model, model.hiddenStates(input, null, null, null), input, 1,
                wpo ? EnumSet.of(LogProbs.Extra.MEAN_LOGIT, LogProbs.Extra.LOG_SUM_SQUARES) : EnumSet.of(LogProbs.Extra.MEAN_LOGIT));
        Tensor tokenLogps = scores.logps();                                                            // (B, L-1)
        Tensor m = Tensors.longs(mask, b, len - 1).to(model.dtype().scalarType);
        Tensor w = weights == null ? m : Tensors.doubles(weights, b, len - 1).to(model.dtype().scalarType);
        Tensor sums = tokenLogps.mul(w).sum(new long[] {1}, false, new ScalarTypeOptional());
        Tensor wpoWeights = null;
        if (wpo) {
            try (NoGradGuard g = new NoGradGuard()) {
                wpoWeights = DpoLoss.wpoWeightOfTokens(tokenLogps.detach(), scores.logSumSquares(), Tensors.longs(mask, b, len - 1));
            }
        }
        Tensor meanLogits = scores.meanLogits().mul(m).sum(new long[] {1}, false, new ScalarTypeOptional());
        Tensor tokens = Tensors.doubles(counts, b).to(model.dtype().scalarType);
        return new Scored(sums, tokens, meanLogits.div(tokens), tokenLogps, m, wpoWeights);
    }

    @Override
    public Output forward(CausalLM model, List<Pair> pairs) {
        int b = pairs.size();
        List<long[]> prompts = new ArrayList<>(), completions = new ArrayList<>();
        for (Pair p : pairs) { prompts.add(p.prompt()); completions.add(p.chosen()); }
        for (Pair p : pairs) { prompts.add(p.prompt()); completions.add(p.rejected()); }
        Scored pol = score(model, prompts, completions, s.ldAlpha(), s.useWeighting());   // one forward over 2B rows
        Tensor pc = pol.logps().narrow(0, 0, b), pr = pol.logps().narrow(0, b, b);
        Tensor nc = pol.tokens().narrow(0, 0, b), nr = pol.tokens().narrow(0, b, b);
        // NLL of the chosen completions, token-mean over the batch (RPO's sft term, CPO/SimPO/ORPO's NLL).
        Tensor chosenNll = pc.sum().neg().div(nc.sum());
        Tensor loss, chosenRewards, rejectedRewards;
        switch (s.kind()) {
            case DPO -> {
                Tensor rc, rr;
                if (Double.isNaN(pairs.get(0).refChosen())) {
                    Scored ref = referenceScores(model, prompts, completions, s.reference(), s.ldAlpha());
                    rc = ref.logps().narrow(0, 0, b).detach();
                    rr = ref.logps().narrow(0, b, b).detach();
                } else {
                    double[] c = new double[b], r = new double[b];
                    for (int i = 0; i < b; i++) { c[i] = pairs.get(i).refChosen(); r[i] = pairs.get(i).refRejected(); }
                    rc = Tensors.doubles(c, b).to(model.dtype().scalarType);
                    rr = Tensors.doubles(r, b).to(model.dtype().scalarType);
                }
                Tensor pairWeights = pol.wpoWeights() == null ? null : pol.wpoWeights().narrow(0, 0, b).mul(pol.wpoWeights().narrow(0, b, b));
                // Evaluation (no gradients) folds its batch into a copy: held-out batches must not move the training run's δ.
                DpoLoss.RunningMean mean = GradMode.is_enabled() ? bcoMean : bcoMean.copy();
                DpoLoss.Output o = DpoLoss.compute(s.dpo(), new DpoLoss.Inputs(pc, pr, rc, rr, nc, nr, chosenNll, pairWeights), mean);
                loss = o.loss();
                chosenRewards = o.chosenRewards();
                rejectedRewards = o.rejectedRewards();
            }
            case CPO -> {
                // AlphaPO's reward shape applies to CPO's summed log-probs too, as TRL's CPOTrainer applies it to every loss type.
                double alpha = s.referenceFree().alpha();
                PairwiseLosses.Output o = PairwiseLosses.cpo(s.dpo().beta(), s.dpo().labelSmoothing(), s.cpoAlpha(),
                        PairwiseLosses.alphaReward(pc, alpha), PairwiseLosses.alphaReward(pr, alpha), chosenNll);
                loss = o.loss(); chosenRewards = o.chosenRewards(); rejectedRewards = o.rejectedRewards();
            }
            case SIMPO -> {
                double alpha = s.referenceFree().alpha();
                PairwiseLosses.Output o = alpha == 0
                        ? PairwiseLosses.simpo(s.dpo().beta(), s.simpoGamma(), s.cpoAlpha(), pc.div(nc), pr.div(nr), chosenNll)
                        : PairwiseLosses.alphapo(s.dpo().beta(), s.simpoGamma(), alpha, s.cpoAlpha(), pc.div(nc), pr.div(nr), chosenNll);
                loss = o.loss(); chosenRewards = o.chosenRewards(); rejectedRewards = o.rejectedRewards();
            }
            case ORPO -> {
                Tensor nll = s.referenceFree().orpoNllWithPrompt() ? promptAndCompletionNll(pol.tokenLogps().narrow(0, 0, b), pairs) : chosenNll;
                PairwiseLosses.Output o = PairwiseLosses.orpo(s.dpo().beta(), pc.div(nc), pr.div(nr), nll);
                loss = o.loss(); chosenRewards = o.chosenRewards(); rejectedRewards = o.rejectedRewards();
            }
            default -> throw new IllegalStateException();
        }
        double[] c = Tensors.toDoubles(chosenRewards), r = Tensors.toDoubles(rejectedRewards);
        double[] lc = Tensors.toDoubles(pc), lr = Tensors.toDoubles(pr), gc = Tensors.toDoubles(pol.meanLogits().narrow(0, 0, b)),
                gr = Tensors.toDoubles(pol.meanLogits().narrow(0, b, b)), tc = Tensors.toDoubles(nc), tr = Tensors.toDoubles(nr);
        Map<String, Double> m = new LinkedHashMap<>();
        double acc = 0, margins = 0, sc = 0, sr = 0, slc = 0, slr = 0, sgc = 0, sgr = 0, stc = 0, str = 0;
        for (int i = 0; i < b; i++) {
            acc += c[i] > r[i] ? 1 : 0;
            margins += c[i] - r[i];
            sc += c[i]; sr += r[i]; slc += lc[i]; slr += lr[i]; sgc += gc[i]; sgr += gr[i]; stc += tc[i]; str += tr[i];
        }
        m.put("rewards/chosen", sc);
        m.put("rewards/rejected", sr);
        m.put("rewards/accuracies", acc);
        m.put("rewards/margins", margins);
        m.put("logps/chosen", slc);
        m.put("logps/rejected", slr);
        m.put("logits/chosen", sgc);
        m.put("logits/rejected", sgr);
        m.put("lengths/chosen", stc);
        m.put("lengths/rejected", str);
        return new Output(loss.mul(Tensors.scalar((double) b)), m);
    }

    /**
     * TRL's ORPO NLL: the token-mean cross-entropy of the chosen rows over every predicted token of prompt and
     * completion (all but each row's first token; padding masked). {@code chosenTokenLogps} [B, L-1] as {@link #score}
     * lays them out, rows in the order of {@code pairs}.
     */
    static Tensor promptAndCompletionNll(Tensor chosenTokenLogps, List<Pair> pairs) {
        long width = chosenTokenLogps.size(1);
        double[] mask = new double[(int) (pairs.size() * width)];
        long tokens = 0;
        for (int i = 0; i < pairs.size(); i++) {
            int predicted = pairs.get(i).prompt().length + pairs.get(i).chosen().length - 1;
            Arrays.fill(mask, (int) (i * width), (int) (i * width + predicted), 1.0);
            tokens += predicted;
        }
        Tensor m = Tensors.doubles(mask, pairs.size(), width).to(chosenTokenLogps.scalar_type());
        return chosenTokenLogps.mul(m).sum().neg().div(Tensors.scalar((double) tokens));
    }

    /**
     * Reference log-probs without gradient: from the reference model, or, with LoRA and no reference model, from the
     * policy with its adapters switched off (one model in memory).
     */
    static Scored referenceScores(CausalLM policy, List<long[]> prompts, List<long[]> completions, CausalLM reference, Double ldAlpha) {
        try (NoGradGuard g = new NoGradGuard()) {
            if (reference != null) return score(reference, prompts, completions, ldAlpha, false);
            if (policy.lora() == null) throw new IllegalStateException("no reference: give a reference model, precomputed log-probs, or LoRA adapters");
            try (LoraAdapters.Disabled off = policy.lora().disabled()) {
                return score(policy, prompts, completions, ldAlpha, false);
            }
        }
    }

    /** Per-token log-probs [N, L-1] of each row's completion tokens (others masked) and the mask, with gradient. */
    public static Tensor[] scoreTokens(CausalLM model, List<long[]> prompts, List<long[]> completions) {
        Scored s = score(model, prompts, completions);
        return new Tensor[] {s.tokenLogps().mul(s.mask()), s.mask()};
    }

    /** The reference's per-token log-probs laid out as {@link #scoreTokens}, without gradient. */
    public static Tensor referenceTokenLogps(CausalLM policy, List<long[]> prompts, List<long[]> completions, CausalLM reference) {
        Scored s = referenceScores(policy, prompts, completions, reference, null);
        return s.tokenLogps().mul(s.mask()).detach();
    }

    /** TR-DPO (Gorbatovski et al. 2024): every τ steps the reference moves toward the policy, θ_ref ← αθ + (1−α)θ_ref. */
    @Override
    public void afterStep(int step, CausalLM model) {
        if (s.reference() == null || s.syncSteps() <= 0 || step % s.syncSteps() != 0) return;
        try (StepScope scope = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : s.reference().parameters().entrySet()) {
                Tensor policy = model.parameters().get(e.getKey());
                e.getValue().mul_(Tensors.scalar(1 - s.syncAlpha())).add_(policy.detach(), Tensors.scalar(s.syncAlpha()));
            }
        }
    }
}
