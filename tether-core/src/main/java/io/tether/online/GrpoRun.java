package io.tether.online;

import io.tether.rollout.RewardFunction;
import java.io.IOException;
import java.util.Map;

import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;
import io.tether.objective.Grpo;
import io.tether.run.ConfigTree;
import io.tether.train.GradientSync;
import io.tether.train.Trainer;

/**
 * {@code tether grpo} and {@code tether rloo}: prompts from JSONL ({@code prompt} text rendered with the chat template
 * when it is a message list, or {@code prompt_ids}), rewards from built-in functions and/or a reward model, TRL's
 * GRPOConfig / RLOOConfig names and defaults.
 */
public final class GrpoRun {
    private GrpoRun() {}

    public record Config(GrpoTraining.Estimator estimator, OnlineRun.Common common, Grpo.Config grpo, int numGenerations, int numIterations,
                         boolean maskTruncated, boolean whitenAdvantages, Map<String, Object> resolved) {

        public static Config from(ConfigTree c) {
            return from(c, GrpoTraining.Estimator.GRPO);
        }

        public static Config from(ConfigTree c, GrpoTraining.Estimator estimator) {
            boolean rloo = estimator == GrpoTraining.Estimator.RLOO;
            OnlineRun.Common common = OnlineRun.Common.read(c, new OnlineRun.Defaults(1.0, 256, "answer",
                    estimator == GrpoTraining.Estimator.RLOO ? io.tether.train.LearningRateDefault.RLOO : io.tether.train.LearningRateDefault.GRPO));
            // TRL: GRPO 8 generations, beta 0 (no reference loaded); RLOO 2 generations, beta 0.05 in the reward.
            double eps = c.number("epsilon", 0.2), epsHigh = c.number("epsilon_high", eps), beta = c.number("beta", rloo ? 0.05 : 0.0);
            String lossType = rloo ? "grpo" : c.string("loss_type", "dapo"), scale = rloo ? "none" : c.string("scale_rewards", "group");
            int g = c.integer("num_generations", rloo ? 2 : 8), iterations = c.integer("num_iterations", 1);
            String level = rloo ? "sequence" : c.string("importance_sampling_level", "token");
            boolean maskTruncated = c.bool("mask_truncated_completions", false);
            boolean whiten = rloo && c.bool("normalize_advantages", false);
            c.rejectUnknownKeys();
            if (!level.equals("token") && !level.equals("sequence"))
                throw new ConfigException("key 'importance_sampling_level': 'token' or 'sequence', got '" + level + "'");
            if (g < 2) throw new ConfigException("key 'num_generations': group baselines need at least 2, got " + g);
            if (iterations < 1) throw new ConfigException("key 'num_iterations': must be >= 1, got " + iterations);
            Grpo.Config grpo = c.validated(() -> new Grpo.Config(eps, epsHigh, beta, lossType, scale, common.maxCompletionLength(), level.equals("sequence")));
            return new Config(estimator, common, grpo, g, iterations, maskTruncated, whiten, c.resolved());
        }

        public java.nio.file.Path outputDir() {
            return common.outputDir();
        }
    }

    /** @param rewards reward functions offered by name to the config's {@code reward_functions} */
    public static Trainer.Result run(Config c, boolean resume, Trainer.Listener listener, Map<String, RewardFunction> rewards) throws IOException {
        try (OnlineRun.Session s = new OnlineRun.Session(c.common(), resume, rewards)) {
            // The KL reference: a frozen copy, or with LoRA the policy with adapters off; none when beta is 0.
            CausalLM reference = c.grpo().beta() > 0 && c.common().lora() == null ? s.loadCopy(c.common().model()) : null;
            var settings = new GrpoTraining.Settings(c.estimator(), c.grpo(), c.numGenerations(), s.sampling(), s.scorer(), c.common().shaping(),
                    reference, s.decoder(), c.numIterations(), c.maskTruncated(), c.whitenAdvantages());
            s.writeRecords(c.resolved(), resume, listener);
            Trainer.Result r = new Trainer<>(s.policy.model(), new GrpoTraining(settings), s.prompts, java.util.List.of(), c.common().trainer(), s.run,
                    GradientSync.SINGLE_PROCESS, listener, c.common().model()).train(resume);
            s.saveResult();
            return r;
        }
    }
}
