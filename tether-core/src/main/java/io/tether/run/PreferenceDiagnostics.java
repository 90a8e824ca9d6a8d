package io.tether.run;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.tether.model.CausalLM;
import io.tether.train.PreferenceTraining;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;

/**
 * The 0.693 trap: DPO's loss starts at ln 2 (policy = reference). If it is still within 0.01 of ln 2 after a
 * tenth of the run while gradients flow, the data likely carries no signal (contradictory labels, ties, leakage,
 * missing coverage); if gradients are zero, the policy is not updating. "Still" is the mean of the last three
 * logged losses, each within 0.05 of ln 2: one batch of 8 noisy pairs can log 0.696 in a run whose loss has fallen
 * to 0.37 (the demo's DPO did at step 50 of 80), and three can average 0.685 from 0.52, 0.57 and 0.96 (a 160-step
 * run at step 35). Without signal every batch's margins stay near 0, so every logged loss sits near ln 2.
 */
final class PreferenceDiagnostics implements Trainer.Listener {
    static final double LN2 = Math.log(2);

    private final Trainer.Listener inner;
    /** The DPO run whose sigmoid loss starts at ln 2, or null (another method: the checks that need it stand down). */
    private final PreferenceMethod.Dpo dpo;
    private boolean warned;
    private final java.util.ArrayDeque<Double> recentLosses = new java.util.ArrayDeque<>();
    private CausalLM policy;
    private RunDirectory run;
    private List<PreferenceTraining.Pair> evalPairs = List.of();
    private List<Long> stopIds = List.of();

    PreferenceDiagnostics(Trainer.Listener inner, PreferenceMethod method) {
        this.inner = inner == null ? new Trainer.Listener() {} : inner;
        this.dpo = method instanceof PreferenceMethod.Dpo d && d.sigmoidOnly() ? d : null;
    }

    /** Says where the loss starts, for a fresh run of sigmoid DPO: at ln 2, or (R-DPO) off it. */
    void announceStart() {
        if (dpo == null) return;
        inner.onNotice(dpo.loss().rdpoAlpha() > 0
                ? "the loss starts at the mean of −log σ(rdpo_alpha·(|y_w| − |y_l|)), not ln 2: the policy begins as the reference, and R-DPO's length term alone separates each pair"
                : "a loss near ln 2 ≈ 0.693 is expected at the start: the policy begins as the reference, so every pair's margin is 0");
    }

    /** Enables tracking of the policy's greedy response length on (up to 8) held-out prompts at every evaluation. */
    private String counts = "";

    void dataCounts(String counts) {
        this.counts = counts;
    }

    void trackSampledLength(CausalLM policy, RunDirectory run, List<PreferenceTraining.Pair> eval, List<Long> stopIds) {
        this.policy = policy;
        this.run = run;
        this.evalPairs = eval.subList(0, Math.min(8, eval.size()));
        this.stopIds = stopIds;
    }

    @Override
    public void onStep(int step, int total, Map<String, Object> m) {
        inner.onStep(step, total, m);
        // R-DPO's length term moves the starting loss off ln 2, so the check would read a shifted baseline.
        if (dpo == null || dpo.loss().rdpoAlpha() > 0) return;
        double latest = (Double) m.get("loss"), grad = (Double) m.get("grad_norm");
        recentLosses.addLast(latest);
        if (recentLosses.size() > 3) recentLosses.removeFirst();
        double loss = recentLosses.stream().mapToDouble(Double::doubleValue).average().orElse(latest);
        boolean eachNear = recentLosses.stream().allMatch(x -> Math.abs(x - LN2) < 0.05);
        if (!warned && recentLosses.size() == 3 && step >= Math.max(10, total / 10) && Math.abs(loss - LN2) < 0.01 && eachNear) {
            warned = true;
            inner.onNotice(grad == 0
                    ? "loss stuck at ln 2 with zero gradients: the policy is not updating (frozen parameters, zero learning rate?)"
                    : String.format(java.util.Locale.ROOT, "loss still %.4f ≈ ln 2 (mean of the last 3 logged) after %d steps while gradients flow (norm %.3g): the pairs carry little "
                    + "learnable signal; the usual causes are contradictory labels, ties, leakage between splits and missing coverage (training data: %s)",
                    loss, step, grad, counts));
        }
    }

    @Override
    public void onEval(int step, Map<String, Object> m) {
        inner.onEval(step, m);
        if (policy == null || evalPairs.isEmpty()) return;
        double chosen = 0;
        int longest = 0;
        List<long[]> prompts = new ArrayList<>();
        for (PreferenceTraining.Pair p : evalPairs) {
            chosen += p.chosen().length;
            longest = Math.max(longest, p.chosen().length);
            prompts.add(p.prompt());
        }
        chosen /= evalPairs.size();
        var config = new io.tether.generate.SamplingConfig(Math.max(8, 2 * longest), 0, 0, 1.0, 0, stopIds, List.of(), true);
        double sampled = 0;
        for (var g : io.tether.generate.Generator.generate(policy, prompts, config)) sampled += g.tokens().length;
        sampled /= prompts.size();
        try {
            run.appendMetrics(Trainer.orderedMap("step", step, "eval/sampled_length", sampled, "eval/chosen_length", chosen));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        if (sampled > 1.5 * chosen)
            inner.onNotice(String.format(java.util.Locale.ROOT, "step %d: greedy responses average %.1f tokens against %.1f for chosen ones: the policy is growing verbose", step, sampled, chosen));
    }

    @Override public void onStart(int totalSteps, double learningRate) { inner.onStart(totalSteps, learningRate); }

    @Override public void onCheckpoint(int step, Path dir) { inner.onCheckpoint(step, dir); }

    @Override public void onSkippedBatch(int step, String reason) { inner.onSkippedBatch(step, reason); }

    @Override public void onNotice(String message) { inner.onNotice(message); }

    /** Ties (identical chosen and rejected) and contradictions (the same comparison with the opposite label). */
    static String dataCounts(List<PreferenceTraining.Pair> pairs) {
        java.util.Set<String> seen = new java.util.HashSet<>();
        int ties = 0, contradictions = 0;
        for (PreferenceTraining.Pair p : pairs) {
            String prompt = java.util.Arrays.toString(p.prompt()), c = java.util.Arrays.toString(p.chosen()), r = java.util.Arrays.toString(p.rejected());
            if (c.equals(r)) ties++;
            if (seen.contains(prompt + "|" + r + "|" + c)) contradictions++;
            seen.add(prompt + "|" + c + "|" + r);
        }
        return pairs.size() + " pairs, " + ties + " ties, " + contradictions + " contradicted by an opposite-label duplicate";
    }

    /** The seed's length-bias check: chosen systematically longer than rejected lets a policy win by padding. */
    static void warnLengthBias(List<PreferenceTraining.Pair> pairs, PreferenceMethod method, Trainer.Listener l) {
        if (pairs.isEmpty()) return;
        int longer = 0;
        double ratio = 0;
        for (PreferenceTraining.Pair p : pairs) {
            longer += p.chosen().length > p.rejected().length ? 1 : 0;
            ratio += (double) p.chosen().length / Math.max(1, p.rejected().length);
        }
        double share = (double) longer / pairs.size();
        ratio /= pairs.size();
        if (share > 0.65 || ratio > 1.25)
            l.onNotice(String.format(java.util.Locale.ROOT, "length bias: chosen is longer than rejected in %.0f%% of pairs (mean length ratio %.2f); "
                    + "the policy can learn to be verbose rather than right%s", 100 * share, ratio,
                    method instanceof PreferenceMethod.Dpo ? " (rdpo_alpha or ld_alpha discount length)" : ""));
    }

    /** TRL's KTO check: desirable_weight * n_desirable / (undesirable_weight * n_undesirable) should lie in [1, 4/3]. */
    static void warnKtoWeights(List<io.tether.train.KtoTraining.Example> train, PreferenceMethod.Kto kto, Trainer.Listener l) {
        long nd = train.stream().filter(io.tether.train.KtoTraining.Example::desirable).count(), nu = train.size() - nd;
        double ratio = nu == 0 ? Double.POSITIVE_INFINITY : kto.loss().desirableWeight() * nd / (kto.loss().undesirableWeight() * nu);
        if (ratio < 1 || ratio > 4.0 / 3)
            l.onNotice(String.format(java.util.Locale.ROOT, "KTO: desirable_weight x %d desirable / (undesirable_weight x %d undesirable) = %.2f is outside "
                    + "[1, 4/3]; the KTO paper recommends weights that bring it into that range", nd, nu, ratio));
    }
}
