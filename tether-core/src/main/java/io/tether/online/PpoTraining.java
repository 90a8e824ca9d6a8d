package io.tether.online;

import io.tether.rollout.Experience;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.Rollouts;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.DType;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.objective.Ppo;
import io.tether.train.TrainingMethod;

/**
 * PPO-RLHF (Ouyang et al. 2022) with its four roles, as TRL's PPOTrainer runs it. {@link #prepare}: the policy samples
 * one completion per prompt; the reward model (or functions) scores it; the frozen reference and the critic give
 * per-token log-probs and values; each token is charged −kl_coef·KL and the last one paid the score; GAE turns
 * those into advantages (whitened over the batch) and returns. The steps then take {@code num_ppo_epochs} passes of
 * {@code num_mini_batches} clipped updates of policy and critic together: loss = pg + vf_coef · vf.
 */
public final class PpoTraining implements TrainingMethod<OnlinePrompt> {
    /**
     * What the method runs with, built from the run's {@link PpoSettings} and {@link OnlineSettings}. The critic: a
     * separate value model (a one-output sequence-classification model, e.g. initialised from the reward model as TRL
     * does), or, when {@code valueModel} is null, a linear value head [1, hidden] on the policy's own final hidden
     * states (one backbone forward gives both).
     *
     * @param gold  an independent judge of the same samples (the held-out "human"), logged as objective/gold_scores
     *              beside the proxy's objective/scores so over-optimisation shows as it happens; null for none
     */
    public record Settings(PpoSettings ppo, SamplingConfig sampling, Rollouts.Scorer scorer, Rollouts.Shaping shaping, CausalLM reference,
                           CausalLM valueModel, Function<long[], String> decoder, Rollouts.Scorer gold) {
        public Settings(PpoSettings ppo, SamplingConfig sampling, Rollouts.Scorer scorer, Rollouts.Shaping shaping, CausalLM reference,
                        CausalLM valueModel, Function<long[], String> decoder) {
            this(ppo, sampling, scorer, shaping, reference, valueModel, decoder, null);
        }
    }

    private final Settings s;
    private final Tensor valueHead;
    /** The KL coefficient; the adaptive controller moves it and {@link #state} checkpoints it (not a parameter). */
    private double klCoef;
    private Map<String, Double> rolloutMetrics = Map.of();

    public PpoTraining(Settings settings, CausalLM policy, long seed) {
        this.s = settings;
        this.klCoef = settings.ppo().klCoef();
        if (settings.valueModel() == null) {
            long hidden = policy.config().hiddenSize();
            // As a fresh classification head: N(0, initializer_range).
            valueHead = Torch.seeded(seed, () -> torch.randn(new long[] {1, hidden}, Tensors.options(policy.dtype()))
                    .mul(Tensors.scalar(policy.config().initializerRange())));
        } else {
            valueHead = null;
        }
    }

    /** The current KL coefficient (moves when the adaptive controller is on). */
    public double klCoef() {
        return klCoef;
    }

    @Override
    public Reuse reuse() {
        return new Reuse(s.ppo().numPpoEpochs(), s.ppo().numMiniBatches());
    }

    @Override
    public Map<String, Tensor> extraParameters() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        if (valueHead != null) out.put("value_head.weight", valueHead);
        else s.valueModel().trainableParameters().forEach((k, v) -> out.put("value_model." + k, v));
        return out;
    }

    /**
     * The name of the adaptive coefficient in {@code method_state}: the name it had as a one-element extra parameter in
     * checkpoints written before methods had a state hook, so the loop reads those back into this state.
     */
    static final String ADAPTIVE_KL_COEF = "ppo.adaptive_kl_coef";

    private boolean adaptiveKl() {
        return !Double.isNaN(s.ppo().klTarget());
    }

    /** The coefficient the adaptive controller has reached, so that a resumed run continues with it; nothing when fixed. */
    @Override
    public Map<String, Double> state() {
        return adaptiveKl() ? Map.of(ADAPTIVE_KL_COEF, klCoef) : Map.of();
    }

    @Override
    public void restoreState(Map<String, Double> state) {
        if (adaptiveKl() && state.containsKey(ADAPTIVE_KL_COEF)) klCoef = state.get(ADAPTIVE_KL_COEF);
    }

    /** The loss is a token mean over the mini-batch, as TRL's masked_mean: one unit per completion token. */
    @Override
    public long units(List<OnlinePrompt> prompts) {
        long n = 0;
        for (OnlinePrompt p : prompts) for (Experience e : p.experiences()) n += e.tokens.length;
        return n;
    }

    private double temperature() {
        return s.sampling().greedy() ? 1 : s.sampling().temperature();
    }

    /** One policy forward over the rows: per-position entropies [N, L-1] (no gradient), per-token log-probs and values [N, T]. */
    private record PolicyForward(Tensor entropy, Tensor logps, Tensor values) {}

    /** The policy's forward, plus the critic's unless the critic is a head on the policy's own hidden states. */
    private PolicyForward policyForward(CausalLM model, Rollouts.Layout l) {
        Tensor hidden = model.hiddenStates(l.ids(), null, null, null);                               // (N, L, H)
        long len = l.ids().size(1);
        LogProbs.TokenScores scores = LogProbs.tokenScores(model, hidden, l.ids(), temperature(), EnumSet.of(LogProbs.Extra.ENTROPY));
        Tensor logps = Rollouts.completionPart(scores.logps(), l).mul(l.mask(model.dtype()));
        if (valueHead == null) return new PolicyForward(scores.entropy(), logps, Rollouts.completionValues(s.valueModel(), l));
        Tensor v = torch.matmul(hidden.narrow(1, 0, len - 1), valueHead.t()).squeeze(-1);       // (N, L-1)
        return new PolicyForward(scores.entropy(), logps, torch.gather(v, 1, l.index()).mul(l.mask(model.dtype())));
    }

    @Override
    public List<OnlinePrompt> prepare(CausalLM model, List<OnlinePrompt> drawn, int step) {
        SamplingConfig sampling = s.sampling().withSeed(s.sampling().seed() + 1_000_003L * step);
        List<OnlinePrompt> prompts = Rollouts.sampleAndScore(model, drawn, 1, sampling, s.decoder(), s.scorer(), s.shaping());
        Rollouts.Layout l = Rollouts.layout(prompts);
        double[][] old, values;
        try (NoGradGuard g = new NoGradGuard()) {
            PolicyForward f = policyForward(model, l);
            old = l.perRow(f.logps());
            values = l.perRow(f.values());
        }
        double[][] ref = Rollouts.referenceLogps(model, s.reference(), l, temperature());
        int n = l.rows();
        // Padding is 0 in both, which every estimator maps to 0; perRow trims it anyway.
        double[][] kl = l.perRow(Ppo.kl(s.ppo().klEstimator(), l.tensor(old, DType.F64), l.tensor(ref, DType.F64)));
        double[][] rewards = new double[n][];
        double klSum = 0, nonScore = 0, scores = 0, unscorable = 0, eos = 0, entropy = 0;
        List<Experience> rows = Rollouts.experiences(prompts);
        for (int i = 0; i < n; i++) {
            Experience e = rows.get(i);
            e.oldLogps = old[i];
            e.refLogps = ref[i];
            e.values = values[i];
            double score = Double.isNaN(e.score) ? 0 : e.score;
            unscorable += Double.isNaN(e.score) ? 1 : 0;
            rewards[i] = Ppo.tokenRewards(kl[i], klCoef, score);
            double seqKl = Experience.sum(kl[i]);
            klSum += seqKl;
            nonScore += -klCoef * seqKl;
            scores += score;
            eos += e.truncated ? 0 : 1;
            entropy -= Experience.sum(e.samplingLogps);
        }
        if (s.ppo().whitenRewards()) whiten(rewards, false);
        double[][] adv = new double[n][];
        for (int i = 0; i < n; i++) {
            double[][] ar = Ppo.gae(rewards[i], values[i], s.ppo().gamma(), s.ppo().lam());
            adv[i] = ar[0];
            rows.get(i).returns = ar[1];
        }
        whiten(adv, true);
        for (int i = 0; i < n; i++) rows.get(i).tokenAdvantages = adv[i];
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("objective/kl", klSum / n);
        m.put("objective/entropy", entropy / n);
        m.put("objective/non_score_reward", nonScore / n);
        m.put("objective/rlhf_reward", (scores + nonScore) / n);
        m.put("objective/scores", scores / n);
        m.put("objective/kl_coef", klCoef);
        if (s.gold() != null) {
            List<OnlinePrompt> rowPrompts = new ArrayList<>(n);
            List<long[]> completions = new ArrayList<>(n);
            for (OnlinePrompt p : prompts) for (Experience e : p.experiences()) { rowPrompts.add(p); completions.add(e.tokens); }
            double gold = 0;
            int scored = 0;
            for (double g : s.gold().score(rowPrompts, completions)) if (!Double.isNaN(g)) { gold += g; scored++; }
            if (scored > 0) m.put("objective/gold_scores", gold / scored);
        }
        m.put("val/num_eos_tokens", eos);
        m.put("completions/unscorable", unscorable / n);
        rolloutMetrics = m;
        // The adaptive controller moves the coefficient for the next rollout from this one's KL.
        if (adaptiveKl()) klCoef = Ppo.adaptiveKl(klCoef, klSum / n, s.ppo().klTarget(), s.ppo().klHorizon(), n);
        return prompts;
    }

    /**
     * Whitening over every token of the batch with the Bessel-corrected variance: (x − mean)/sqrt(var + 1e-8), the
     * mean restored or not (TRL restores it for nothing but whitens advantages with shift, rewards without).
     */
    static void whiten(double[][] rows, boolean shiftMean) {
        double sum = 0, ss = 0;
        long k = 0;
        for (double[] r : rows) for (double v : r) { sum += v; k++; }
        if (k < 2) return;
        double mean = sum / k;
        for (double[] r : rows) for (double v : r) ss += (v - mean) * (v - mean);
        double scale = 1 / Math.sqrt(ss / (k - 1) + 1e-8);
        for (double[] r : rows)
            for (int t = 0; t < r.length; t++) r[t] = shiftMean ? (r[t] - mean) * scale : (r[t] - mean) * scale + mean;
    }

    @Override
    public Output forward(CausalLM model, List<OnlinePrompt> prompts) {
        Rollouts.Layout l = Rollouts.layout(prompts);
        List<Experience> rows = Rollouts.experiences(prompts);
        int n = rows.size();
        double[][] old = new double[n][], adv = new double[n][], ret = new double[n][], val = new double[n][];
        for (int i = 0; i < n; i++) {
            Experience e = rows.get(i);
            old[i] = e.oldLogps; adv[i] = e.tokenAdvantages; ret[i] = e.returns; val[i] = e.values;
        }
        var dt = model.dtype();
        Tensor mask = l.mask(dt);
        PolicyForward f = policyForward(model, l);
        Tensor logps = f.logps(), values = f.values();
        Tensor oldT = l.tensor(old, dt), advT = l.tensor(adv, dt), retT = l.tensor(ret, dt), valT = l.tensor(val, dt);
        Tensor pg = Ppo.policyLoss(logps, oldT, advT, s.ppo().cliprange()).mul(mask).sum();
        Tensor vf = Ppo.valueLoss(values, valT, retT, s.ppo().cliprangeValue()).mul(mask).sum();
        Tensor loss = pg.add(vf.mul(Tensors.scalar(s.ppo().vfCoef())));
        double tokens = units(prompts);
        Map<String, Double> m = new LinkedHashMap<>();
        try (NoGradGuard g = new NoGradGuard()) {
            Tensor diff = logps.sub(oldT);
            Tensor ratio = diff.exp();
            m.put("policy/approxkl_avg", diff.mul(diff).mul(mask).sum().item_double() * 0.5);
            m.put("policy/clipfrac_avg", Ppo.surrogateClipped(ratio, advT, s.ppo().cliprange(), s.ppo().cliprange()).to(dt.scalarType).mul(mask).sum().item_double());
            m.put("loss/policy_avg", pg.item_double());
            m.put("loss/value_avg", vf.item_double());
            Tensor vClipped = valT.add(Tensors.clamp(values.sub(valT), -s.ppo().cliprangeValue(), s.ppo().cliprangeValue()));
            m.put("val/clipfrac_avg", vClipped.sub(retT).square().gt(values.sub(retT).square()).to(dt.scalarType).mul(mask).sum().item_double());
            m.put("val/ratio", ratio.mul(mask).sum().item_double());
            m.put("policy/entropy_avg", Rollouts.completionPart(f.entropy(), l).mul(mask).sum().item_double());
        }
        // Rollout-level figures, logged with every step that trains on the rollout.
        for (Map.Entry<String, Double> e : rolloutMetrics.entrySet()) m.put(e.getKey(), e.getValue() * tokens);
        return new Output(loss, m);
    }
}
