package io.tether.online;

import io.tether.rollout.Experience;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.ConfigException;
import io.tether.engine.Tensors;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.objective.Grpo;
import io.tether.objective.NanStats;
import io.tether.objective.Rloo;
import io.tether.train.TrainingMethod;

/**
 * The critic-free group methods as methods of the one loop. {@link #prepare} samples {@code numGenerations}
 * completions of each prompt from the current policy (prompt prefilled once per group), scores them, and works out
 * each completion's advantage: GRPO standardises rewards within the prompt's group; RLOO charges the sequence KL in
 * the reward and subtracts the mean of the other completions. The steps then take clipped policy-gradient updates,
 * {@code num_iterations} times over each rollout with importance ratios against the sampling-time log-probs.
 */
public final class GrpoTraining implements TrainingMethod<OnlinePrompt> {
    public enum Estimator { GRPO, RLOO }

    /**
     * @param reference  frozen reference for the KL term (null: the policy without LoRA adapters, or no KL when beta 0)
     * @param decoder    completion ids to text for the reward functions and stop strings (null: token-level rewards)
     * @param numIterations  TRL's {@code num_iterations}: passes over each rollout
     * @param maskTruncated  {@code mask_truncated_completions}: completions that hit the budget train no tokens
     * @param whitenAdvantages RLOO's {@code normalize_advantages} (REINFORCE++-style batch whitening)
     */
    public record Settings(Estimator estimator, Grpo.Config grpo, int numGenerations, SamplingConfig sampling, Rollouts.Scorer scorer,
                           Rollouts.Shaping shaping, CausalLM reference, Function<long[], String> decoder, int numIterations,
                           boolean maskTruncated, boolean whitenAdvantages) {
        public Settings {
            if (numGenerations < 2) throw new ConfigException("key 'num_generations': group baselines need at least 2, got " + numGenerations);
            if (numIterations < 1) throw new ConfigException("key 'num_iterations': must be >= 1, got " + numIterations);
        }

        /** GRPO with one pass per rollout, no shaping. */
        public static Settings grpo(Grpo.Config grpo, int numGenerations, SamplingConfig sampling, RewardFunction reward, CausalLM reference,
                                    Function<long[], String> decoder) {
            return new Settings(Estimator.GRPO, grpo, numGenerations, sampling, Rollouts.of(reward, decoder), Rollouts.Shaping.NONE, reference, decoder,
                    1, false, false);
        }
    }

    private final Settings s;
    /**
     * The GRPO loss's normaliser over the whole rollout {@link #prepare} last made, which every optimizer step trains
     * on whole (one mini-batch, {@code num_iterations} passes), with the rollout's prompts: each micro-batch's summed
     * loss is scaled by prompts / normaliser, so that the loop's division by the step's prompts leaves the loss TRL
     * divides by its batch-wide normaliser, however the step is split into micro-batches.
     */
    private LossScale lossScale;

    private record LossScale(long prompts, double normaliser) {}

    public GrpoTraining(Settings settings) {
        this.s = settings;
    }

    @Override
    public Reuse reuse() {
        return new Reuse(s.numIterations(), 1);
    }

    /** Sampling temperature (1 for greedy), which the training log-probs must use too. */
    private double temperature() {
        return s.sampling().greedy() ? 1 : s.sampling().temperature();
    }

    private boolean needsReference() {
        return s.grpo().beta() > 0;
    }

    @Override
    public List<OnlinePrompt> prepare(CausalLM model, List<OnlinePrompt> drawn, int step) {
        // A seed per rollout, from the step: reproducible from the config's seed, new samples every rollout, and a
        // resumed run samples what an uninterrupted one would.
        SamplingConfig sampling = s.sampling().withSeed(s.sampling().seed() + 1_000_003L * step);
        List<OnlinePrompt> prompts = Rollouts.sampleAndScore(model, drawn, s.numGenerations(), sampling, s.decoder(), s.scorer(), s.shaping());
        Rollouts.Layout l = Rollouts.layout(prompts);
        // With one pass per rollout the ratio is 1 and the current log-probs, detached, serve as the old ones (TRL).
        double[][] old = s.numIterations() > 1 ? l.perRow(Rollouts.completionLogps(model, l, temperature())) : null;
        double[][] ref = needsReference() ? Rollouts.referenceLogps(model, s.reference(), l, temperature()) : null;
        List<Experience> all = Rollouts.experiences(prompts);
        double[] rewards = new double[all.size()];
        for (int i = 0; i < rewards.length; i++) {
            Experience e = all.get(i);
            if (old != null) e.oldLogps = old[i];
            if (ref != null) e.refLogps = ref[i];
            rewards[i] = e.score;
        }
        double[] adv;
        if (s.estimator() == Estimator.RLOO) {
            double[] oldSums = new double[rewards.length], refSums = new double[rewards.length];
            for (int i = 0; i < rewards.length; i++) {
                oldSums[i] = Experience.sum(all.get(i).samplingLogps);
                refSums[i] = ref == null ? oldSums[i] : Experience.sum(ref[i]);
            }
            adv = Rloo.advantages(Rloo.klPenalised(rewards, oldSums, refSums, s.grpo().beta()), s.numGenerations(), s.whitenAdvantages());
        } else {
            adv = Grpo.advantages(rewards, s.numGenerations(), s.grpo().scaleRewards());
        }
        for (int i = 0; i < adv.length; i++) all.get(i).advantage = adv[i];
        lossScale = lossScale(prompts);
        return prompts;
    }

    /** The prompts and the loss type's normaliser ({@link Grpo#normaliser}) of a batch of prepared prompts. */
    private LossScale lossScale(List<OnlinePrompt> prompts) {
        double trained = 0, completion = 0;
        List<Experience> rows = Rollouts.experiences(prompts);
        for (Experience e : rows) {
            completion += e.tokens.length;
            if (!(s.maskTruncated() && e.truncated)) trained += e.tokens.length;
        }
        return new LossScale(prompts.size(), Grpo.normaliser(s.grpo(), rows.size(), trained, completion));
    }

    @Override
    public Output forward(CausalLM model, List<OnlinePrompt> prompts) {
        Rollouts.Layout l = Rollouts.layout(prompts);
        List<Experience> rows = Rollouts.experiences(prompts);
        int n = rows.size();
        double[][] oldRows = new double[n][], refRows = new double[n][], maskRows = new double[n][];
        double[] adv = new double[n], rewards = new double[n];
        double length = 0, unscorable = 0, truncated = 0, kl = 0;
        for (int i = 0; i < n; i++) {
            Experience e = rows.get(i);
            oldRows[i] = e.oldLogps;
            refRows[i] = e.refLogps;
            maskRows[i] = new double[e.tokens.length];
            Arrays.fill(maskRows[i], s.maskTruncated() && e.truncated ? 0 : 1);
            adv[i] = e.advantage;
            rewards[i] = e.score;
            length += e.tokens.length;
            unscorable += Double.isNaN(e.score) ? 1 : 0;
            truncated += e.truncated ? 1 : 0;
            if (e.refLogps != null) kl += Experience.sum(e.samplingLogps) - Experience.sum(e.refLogps);
        }
        var dt = model.dtype();
        Tensor logps = Rollouts.completionLogps(model, l, temperature());
        Tensor old = rows.get(0).oldLogps == null ? logps.detach() : l.tensor(oldRows, dt), mask = l.tensor(maskRows, dt);
        Tensor advantages = Tensors.doubles(adv, n).to(dt.scalarType);
        int b = prompts.size(), g = s.numGenerations();
        Tensor loss;
        if (s.estimator() == Estimator.RLOO) {
            Tensor sums = logps.mul(mask).sum(new long[] {1}, false, new ScalarTypeOptional());
            Tensor oldSums = old.mul(mask).sum(new long[] {1}, false, new ScalarTypeOptional());
            // A mean over sequences, G per prompt: weighted by prompts it is the mean over the whole batch.
            loss = Rloo.loss(sums, oldSums, advantages, s.grpo().epsilon(), s.grpo().epsilonHigh()).mul(Tensors.scalar((double) b));
        } else {
            Tensor perToken = Grpo.perTokenLoss(s.grpo(), logps, old, needsReference() ? l.tensor(refRows, dt) : logps.detach(), advantages, mask);
            LossScale scale = lossScale != null ? lossScale : lossScale(prompts);
            loss = Grpo.lossSum(s.grpo(), perToken, mask).div(Tensors.scalar(scale.normaliser())).mul(Tensors.scalar((double) scale.prompts()));
        }
        // Metrics are sums over this micro-batch's prompts; the loop divides by prompts (its units).
        double perPrompt = (double) b / n;
        Map<String, Double> m = new LinkedHashMap<>();
        double scoredSum = 0, scored = 0;
        for (double r : rewards) if (!Double.isNaN(r)) { scoredSum += r; scored++; }
        m.put("reward", scored == 0 ? 0 : scoredSum / scored * b);
        m.put("reward_std", stdOfGroups(rewards, g) * b);
        m.put("frac_reward_zero_std", (double) Grpo.zeroStdGroups(rewards, g));
        m.put("completions/mean_length", length * perPrompt);
        m.put("completions/clipped_ratio", truncated * perPrompt);
        m.put("completions/unscorable", unscorable * perPrompt);
        if (needsReference()) m.put("kl", kl * perPrompt);
        return new Output(loss, m);
    }

    /** Mean over groups of the within-group (unbiased, as TRL's) std of the scorable rewards. */
    private static double stdOfGroups(double[] rewards, int g) {
        double sum = 0;
        for (int start = 0; start < rewards.length; start += g) sum += NanStats.std(rewards, start, start + g);
        return sum / (rewards.length / g);
    }
}
