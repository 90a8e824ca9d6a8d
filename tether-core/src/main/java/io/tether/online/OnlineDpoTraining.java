package io.tether.online;

import io.tether.rollout.Experience;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.Rollouts;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.ConfigException;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.objective.DpoLoss;
import io.tether.train.TrainingMethod;

/**
 * Online DPO (Guo et al. 2024; TRL's {@code OnlineDPOTrainer}) as a method of the one loop. {@link #prepare} samples
 * two completions of every prompt from the current policy, scores both (reward functions and/or a reward model, less
 * {@code missing_eos_penalty} for a completion without EOS), orders each pair chosen-first by score and computes the
 * reference's log-probs; the step then takes the DPO loss ({@code sigmoid} or {@code ipo}, {@link DpoLoss}) on the
 * pairs, with sequence log-prob sums under the policy's own distribution (temperature 1, as TRL).
 *
 * <p>A pair with an unscorable completion carries no preference and adds nothing to the loss. A pair whose scores tie
 * exactly is dropped too ({@code tie_policy: drop}, the default), or, as TRL's OnlineDPOTrainer (v0.24.0:
 * {@code first_half >= second_half}) does, trained with the first sample as the chosen one ({@code tie_policy: first}).
 * The loss is the mean over the pairs that count in the whole batch of the step, so ties never shrink the step; the
 * shares of tied and of dropped pairs are logged as {@code pairs/tie_fraction} and {@code pairs/dropped_fraction}.
 * "Iterative DPO": with {@code numRounds} > 1 the reference is reset to the current policy at the
 * start of every round (round length total steps / rounds).
 */
public final class OnlineDpoTraining implements TrainingMethod<OnlinePrompt> {
    /**
     * @param dpo        beta and the loss type (sigmoid, or ipo without length normalisation)
     * @param reference  frozen reference (null: the policy with its LoRA adapters disabled)
     * @param decoder    completion ids to text for the reward functions and stop strings (null: token-level rewards)
     * @param numRounds  iterative rounds; the reference becomes the policy at the start of each (needs a reference model)
     * @param judge      labels each pair instead of the scores (null: the higher score wins); its verdict becomes the
     *                   pair's scores, 1 for the winner and 0 for the loser (a tie: both 0)
     * @param tiePolicy  {@code tie_policy}: what a pair whose scores tie trains: "drop" (nothing; the default) or
     *                   "first" (the first sample is chosen, as TRL)
     */
    public record Settings(DpoLoss.Config dpo, SamplingConfig sampling, Rollouts.Scorer scorer, Rollouts.Shaping shaping, CausalLM reference,
                           Function<long[], String> decoder, int numRounds, PairwiseJudge judge, String tiePolicy) {
        public static final List<String> TIE_POLICIES = List.of("drop", "first");

        public Settings(DpoLoss.Config dpo, SamplingConfig sampling, Rollouts.Scorer scorer, Rollouts.Shaping shaping, CausalLM reference,
                        Function<long[], String> decoder, int numRounds) {
            this(dpo, sampling, scorer, shaping, reference, decoder, numRounds, null, "drop");
        }

        public Settings {
            requireSupported(dpo.lossType().size() == 1 ? dpo.lossType().get(0) : dpo.lossType().toString());
            if (!TIE_POLICIES.contains(tiePolicy))
                throw new ConfigException("key 'tie_policy': 'drop' or 'first', got '" + tiePolicy + "'");
            if (numRounds < 1) throw new ConfigException("key 'num_rounds': must be >= 1, got " + numRounds);
            if (numRounds > 1 && reference == null)
                throw new ConfigException("key 'num_rounds': iterative rounds reset the reference to the policy, but with LoRA the reference is "
                        + "the policy without adapters (no merge); use num_rounds 1 or train without use_peft");
        }

        private static void requireSupported(String lossType) {
            if (!List.of("sigmoid", "ipo").contains(lossType))
                throw new ConfigException("key 'loss_type': online DPO supports 'sigmoid' or 'ipo', got '" + lossType + "'");
        }

        /** The DPO loss settings of online DPO: sigmoid as TRL, ipo as (Δ − 1/(2β))² without length normalisation. */
        public static DpoLoss.Config loss(double beta, String lossType) {
            requireSupported(lossType);
            return new DpoLoss.Config(beta, List.of(lossType), null, 0.0, "reverse_kl", 0.5, 0.05,
                    lossType.equals("ipo") ? DpoLoss.Semantics.OPENRLHF : DpoLoss.Semantics.TRL);
        }
    }

    private final Settings s;
    /**
     * The prompts and the pairs that count in the batch {@link #prepare} last made, which the step trains on whole:
     * each micro-batch's summed pair loss is scaled by prompts / pairs, so that the loop's division by the step's
     * prompts leaves the mean over the counted pairs, however the step is split into micro-batches.
     */
    private PairScale pairScale;

    private record PairScale(long prompts, long pairs) {
        /** The factor that turns a sum over pairs into its share of the step's mean over counted pairs, per prompt. */
        double perPair() {
            return pairs == 0 ? 0 : (double) prompts / pairs;
        }
    }

    /** Steps after which a new round starts (the reference becomes the policy); empty for a single round. */
    private java.util.Set<Integer> roundStarts = java.util.Set.of();
    private boolean planned;

    public OnlineDpoTraining(Settings settings) {
        this.s = settings;
    }

    /**
     * Splits the run's optimizer steps into {@code num_rounds} rounds of total / rounds steps (lengths differing by at
     * most one: round k ends after step ⌊k·total/rounds⌋); needed (and checked) only when num_rounds > 1.
     */
    public OnlineDpoTraining rounds(int totalSteps) {
        if (s.numRounds() > totalSteps)
            throw new ConfigException("key 'num_rounds': " + s.numRounds() + " rounds need at least as many steps, the run has " + totalSteps);
        java.util.Set<Integer> starts = new java.util.TreeSet<>();
        for (int k = 1; k < s.numRounds(); k++) starts.add((int) ((long) k * totalSteps / s.numRounds()));
        roundStarts = java.util.Collections.unmodifiableSet(starts);
        planned = true;
        return this;
    }

    /** The steps after which the reference is reset to the policy. */
    public java.util.Set<Integer> roundStarts() {
        return roundStarts;
    }

    @Override
    public List<OnlinePrompt> prepare(CausalLM model, List<OnlinePrompt> drawn, int step) {
        if (s.numRounds() > 1 && !planned) throw new IllegalStateException("num_rounds > 1: call rounds(totalSteps) before training");
        SamplingConfig sampling = s.sampling().withSeed(s.sampling().seed() + 1_000_003L * step);
        List<OnlinePrompt> sampled = Rollouts.sampleAndScore(model, drawn, 2, sampling, s.decoder(), s.scorer(), s.shaping());
        if (s.judge() != null) judge(sampled, s.judge(), s.decoder());
        return pairUp(model, sampled);
    }

    /**
     * The step's batch from scored pairs: each oriented chosen-first, with the reference's log-probs, and the pairs
     * that count in the whole batch noted for the loss's mean.
     */
    List<OnlinePrompt> pairUp(CausalLM model, List<OnlinePrompt> scored) {
        List<OnlinePrompt> prompts = orient(scored);
        Rollouts.Layout l = Rollouts.layout(prompts);
        double[][] ref = Rollouts.referenceLogps(model, s.reference(), l, 1.0);
        int i = 0;
        for (OnlinePrompt p : prompts) for (Experience e : p.experiences()) e.refLogps = ref[i++];
        pairScale = pairScale(prompts);
        return prompts;
    }

    private PairScale pairScale(List<OnlinePrompt> prompts) {
        long counted = 0;
        for (OnlinePrompt p : prompts) counted += counts(p) ? 1 : 0;
        return new PairScale(prompts.size(), counted);
    }

    /** Replaces each pair's scores by the judge's verdict: 1 for the winner, 0 for the loser, 0 and 0 for a tie. */
    static void judge(List<OnlinePrompt> prompts, PairwiseJudge judge, Function<long[], String> decoder) {
        for (OnlinePrompt p : prompts) {
            Experience a = p.experiences().get(0), b = p.experiences().get(1);
            PairwiseJudge.Verdict v = judge.judge(p, a.tokens, decoder == null ? "" : decoder.apply(a.tokens), b.tokens,
                    decoder == null ? "" : decoder.apply(b.tokens));
            a.score = v == PairwiseJudge.Verdict.FIRST ? 1 : 0;
            b.score = v == PairwiseJudge.Verdict.SECOND ? 1 : 0;
        }
    }

    /** Each prompt's pair ordered chosen-first: the second completion goes first only when it scores strictly higher. */
    static List<OnlinePrompt> orient(List<OnlinePrompt> prompts) {
        List<OnlinePrompt> out = new ArrayList<>(prompts.size());
        for (OnlinePrompt p : prompts) {
            List<Experience> e = p.experiences();
            if (e.size() != 2) throw new IllegalArgumentException("online DPO needs 2 completions per prompt, got " + e.size());
            out.add(e.get(1).score > e.get(0).score ? p.withExperiences(List.of(e.get(1), e.get(0))) : p);
        }
        return out;
    }

    /** A pair carries a preference when both completions are scorable and their scores differ. */
    static boolean preferred(OnlinePrompt p) {
        double a = p.experiences().get(0).score, b = p.experiences().get(1).score;
        return !Double.isNaN(a) && !Double.isNaN(b) && a != b;
    }

    /** Both completions are scorable and score the same. */
    static boolean tied(OnlinePrompt p) {
        double a = p.experiences().get(0).score, b = p.experiences().get(1).score;
        return !Double.isNaN(a) && a == b;
    }

    /** The pair trains: it carries a preference, or it ties and {@code tie_policy} is first. */
    private boolean counts(OnlinePrompt p) {
        return preferred(p) || (s.tiePolicy().equals("first") && tied(p));
    }

    @Override
    public Output forward(CausalLM model, List<OnlinePrompt> prompts) {
        int b = prompts.size();
        Rollouts.Layout l = Rollouts.layout(prompts);
        Tensor logps = Rollouts.completionLogps(model, l, 1.0);                                   // (2B, T), rows chosen, rejected, ...
        Tensor sums = logps.sum(new long[] {1}, false, new ScalarTypeOptional());                 // (2B)
        double[] seq = Tensors.toDoubles(sums.detach().to(io.tether.engine.DType.F64.scalarType).contiguous());
        List<Integer> used = new ArrayList<>();
        int ties = 0;
        for (int i = 0; i < b; i++) {
            if (counts(prompts.get(i))) used.add(i);
            ties += tied(prompts.get(i)) ? 1 : 0;
        }
        int k = used.size();
        PairScale scale = pairScale != null ? pairScale : pairScale(prompts);
        Map<String, Double> m = new LinkedHashMap<>();
        double beta = s.dpo().beta();
        // Sample-level statistics over both completions of every prompt (TRL's objective/* and val/*).
        double kl = 0, scoreSum = 0, rlhf = 0, eos = 0, margin = 0;
        int scored = 0, scoredPairs = 0;
        for (int i = 0; i < b; i++) {
            List<Experience> e = prompts.get(i).experiences();
            for (int j = 0; j < 2; j++) {
                Experience x = e.get(j);
                double sampleKl = seq[2 * i + j] - Experience.sum(x.refLogps);
                kl += sampleKl;
                eos += x.truncated ? 0 : 1;
                if (!Double.isNaN(x.score)) { scoreSum += x.score; rlhf += x.score - beta * sampleKl; scored++; }
            }
            if (!Double.isNaN(e.get(0).score) && !Double.isNaN(e.get(1).score)) { margin += e.get(0).score - e.get(1).score; scoredPairs++; }
        }
        // Sums over this micro-batch's prompts; the loop divides by prompts (its units).
        m.put("objective/kl", kl / 2);
        m.put("objective/non_score_reward", -beta * kl / 2);
        if (scored > 0) {
            m.put("objective/rlhf_reward", rlhf / scored * b);
            m.put("objective/scores", scoreSum / scored * b);
        }
        if (scoredPairs > 0) m.put("objective/scores_margin", margin / scoredPairs * b);
        m.put("val/contain_eos_token", eos / 2);
        m.put("pairs/tie_fraction", (double) ties);
        m.put("pairs/dropped_fraction", (double) (b - k));
        m.put("beta", beta * b);
        Tensor loss;
        if (k == 0) {
            loss = sums.sum().mul(Tensors.scalar(0.0));   // no preference: a zero loss that still backpropagates
        } else {
            long[] ci = new long[k], ri = new long[k];
            double[] refC = new double[k], refR = new double[k], nC = new double[k], nR = new double[k];
            for (int q = 0; q < k; q++) {
                int i = used.get(q);
                List<Experience> e = prompts.get(i).experiences();
                ci[q] = 2L * i;
                ri[q] = 2L * i + 1;
                refC[q] = Experience.sum(e.get(0).refLogps);
                refR[q] = Experience.sum(e.get(1).refLogps);
                nC[q] = Math.max(1, e.get(0).tokens.length);
                nR[q] = Math.max(1, e.get(1).tokens.length);
            }
            var st = model.dtype().scalarType;
            Tensor pc = sums.index_select(0, Tensors.longs(ci, k)), pr = sums.index_select(0, Tensors.longs(ri, k));
            DpoLoss.Output out = DpoLoss.compute(s.dpo(), new DpoLoss.Inputs(pc, pr, Tensors.doubles(refC, k).to(st), Tensors.doubles(refR, k).to(st),
                    Tensors.doubles(nC, k).to(st), Tensors.doubles(nR, k).to(st), null, null));
            loss = out.perPair().sum().mul(Tensors.scalar(scale.perPair()));
            double[] rc = Tensors.toDoubles(out.chosenRewards().to(io.tether.engine.DType.F64.scalarType).contiguous());
            double[] rr = Tensors.toDoubles(out.rejectedRewards().to(io.tether.engine.DType.F64.scalarType).contiguous());
            double sc = 0, sr = 0, acc = 0, lc = 0, lr = 0;
            for (int q = 0; q < k; q++) {
                sc += rc[q];
                sr += rr[q];
                acc += rc[q] > rr[q] ? 1 : 0;
                lc += seq[(int) ci[q]];
                lr += seq[(int) ri[q]];
            }
            // Pair statistics are means over the step's counted pairs, as the loss.
            double w = scale.perPair();
            m.put("rewards/chosen", sc * w);
            m.put("rewards/rejected", sr * w);
            m.put("rewards/margins", (sc - sr) * w);
            m.put("rewards/accuracies", acc * w);
            m.put("logps/chosen", lc * w);
            m.put("logps/rejected", lr * w);
        }
        return new Output(loss, m);
    }

    /** Iterative DPO: at the end of each round but the last, the reference becomes a copy of the policy. */
    @Override
    public void afterStep(int step, CausalLM model) {
        if (!roundStarts.contains(step)) return;
        try (StepScope scope = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : s.reference().parameters().entrySet()) e.getValue().copy_(model.parameters().get(e.getKey()).detach());
        }
    }
}
