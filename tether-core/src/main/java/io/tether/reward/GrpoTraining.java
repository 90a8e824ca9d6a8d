package io.tether.reward;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.function.Function;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.Tensors;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.objective.Grpo;
import io.tether.train.TrainingMethod;

/**
 * GRPO as a method of the one loop: each step samples {@code numGenerations} completions per prompt from the current
 * policy, scores them with a reward function, standardises rewards within each prompt's group, and takes the
 * clipped policy-gradient step of {@link Grpo}. With one policy update per generation (TRL's num_iterations = 1)
 * the sampling log-probs equal the current ones, detached.
 */
public final class GrpoTraining implements TrainingMethod<GrpoTraining.Prompt> {
    public record Prompt(long[] ids, Map<String, Object> record, String text) {}

    /**
     * @param reference frozen reference for the KL term (null: the policy without LoRA adapters, or no KL when beta 0)
     * @param decoder   completion ids to text for the reward function (null: token-level rewards only)
     */
    public record Settings(Grpo.Config grpo, int numGenerations, SamplingConfig sampling, RewardFunction reward,
                           CausalLM reference, Function<long[], String> decoder) {}

    private final Settings s;
    private long draws;

    public GrpoTraining(Settings settings) {
        this.s = settings;
    }

    @Override
    public Output forward(CausalLM model, List<Prompt> prompts) {
        int g = s.numGenerations();
        List<long[]> repeated = new ArrayList<>();
        for (Prompt p : prompts) for (int k = 0; k < g; k++) repeated.add(p.ids());
        // A fresh seed per draw keeps runs reproducible from the config's seed while every step samples anew.
        SamplingConfig sampling = s.sampling().withSeed(s.sampling().seed() + 1_000_003L * draws++);
        List<Generator.Generation> gens;
        try (NoGradGuard ng = new NoGradGuard()) {
            gens = Generator.generate(model, repeated, sampling, s.decoder());
        }
        int n = repeated.size();
        double[] rewards = new double[n];
        int unscorable = 0;
        double length = 0;
        List<long[]> completions = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long[] tokens = gens.get(i).tokens();
            completions.add(tokens);
            length += tokens.length;
            Prompt p = prompts.get(i / g);
            OptionalDouble r = s.reward().score(p.text() == null ? "" : p.text(), s.decoder() == null ? "" : s.decoder().apply(tokens), tokens, p.record());
            if (r.isEmpty()) unscorable++;
            rewards[i] = r.orElse(0.0);
        }
        Tensor rewardTensor = Tensors.doubles(rewards, n).to(model.dtype().scalarType);
        Tensor advantages = Grpo.advantages(rewardTensor, g, s.grpo().scaleRewards());
        var scored = io.tether.train.PreferenceTraining.scoreTokens(model, repeated, completions);
        Tensor logps = scored[0], mask = scored[1];
        Tensor ref = logps.detach();
        if (s.grpo().beta() > 0) ref = io.tether.train.PreferenceTraining.referenceTokenLogps(model, repeated, completions, s.reference());
        Tensor loss = Grpo.loss(s.grpo(), logps, logps.detach(), ref, advantages, mask);
        double mean = 0;
        for (double r : rewards) mean += r;
        mean /= n;
        double var = 0;
        for (double r : rewards) var += (r - mean) * (r - mean);
        int b = prompts.size();
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("reward", mean * b);
        m.put("reward_std", Math.sqrt(var / n) * b);
        m.put("completions/mean_length", length / n * b);
        m.put("completions/unscorable", (double) unscorable / n * b);
        return new Output(loss.mul(Tensors.scalar((double) b)), m);
    }
}
