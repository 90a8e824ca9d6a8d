package io.tether.online;

import io.tether.engine.ConfigException;
import io.tether.objective.Grpo;
import io.tether.run.ConfigTree;
import io.tether.run.RunConfig;
import io.tether.run.RunSpec;
import io.tether.train.LearningRateDefault;

/**
 * {@code tether grpo} and {@code tether rloo}'s own keys, named and defaulted as TRL's GRPOConfig and RLOOConfig
 * (v0.29.1); the shared online keys are {@link OnlineSettings}, the rest the {@link RunSpec}. RLOO fixes what TRL's
 * RLOOTrainer fixes (loss over sequences, no reward scaling, sequence-level ratios) and takes none of those keys.
 *
 * @param estimator              GRPO (group-standardised rewards) or RLOO (leave-one-out baseline, KL in the reward)
 * @param epsilon                TRL {@code epsilon}: the ratio's lower clip
 * @param epsilonHigh            TRL {@code epsilon_high}: the upper clip (defaults to epsilon)
 * @param beta                   TRL {@code beta}: KL coefficient (GRPO 0: no reference loaded; RLOO 0.05 in the reward)
 * @param lossType               TRL {@code loss_type}: grpo, bnpo, dr_grpo or dapo (GRPO)
 * @param scaleRewards           TRL {@code scale_rewards}: group, batch or none (GRPO)
 * @param numGenerations         TRL {@code num_generations}: completions per prompt (GRPO 8, RLOO 2)
 * @param numIterations          TRL {@code num_iterations}: passes over each rollout
 * @param importanceSamplingLevel TRL {@code importance_sampling_level}: token or sequence (GSPO)
 * @param maskTruncatedCompletions TRL {@code mask_truncated_completions}: completions that hit the budget train no tokens
 * @param normalizeAdvantages    RLOO's {@code normalize_advantages}: advantages whitened over the batch
 */
public record GrpoSettings(GrpoTraining.Estimator estimator, double epsilon, double epsilonHigh, double beta, String lossType, String scaleRewards,
                           int numGenerations, int numIterations, String importanceSamplingLevel, boolean maskTruncatedCompletions,
                           boolean normalizeAdvantages) {
    /** GRPO's shared online defaults: temperature 1.0, 256 completion tokens, the exact answer in the record's {@code answer}. */
    public static final OnlineSettings.Defaults ONLINE = new OnlineSettings.Defaults(1.0, 256, "answer");

    public GrpoSettings {
        if (!importanceSamplingLevel.equals("token") && !importanceSamplingLevel.equals("sequence"))
            throw new ConfigException("key 'importance_sampling_level': 'token' or 'sequence', got '" + importanceSamplingLevel + "'");
        if (numGenerations < 2) throw new ConfigException("key 'num_generations': group baselines need at least 2, got " + numGenerations);
        if (numIterations < 1) throw new ConfigException("key 'num_iterations': must be >= 1, got " + numIterations);
        new Grpo.Config(epsilon, epsilonHigh, beta, lossType, scaleRewards, 1, importanceSamplingLevel.equals("sequence"));
    }

    /** The common keys' defaults: GRPO's and RLOO's learning rates; prompts are cut by max_prompt_length, not max_length. */
    public static RunSpec.Defaults runDefaults(GrpoTraining.Estimator estimator) {
        return new RunSpec.Defaults(null, false, false, 0.0,
                estimator == GrpoTraining.Estimator.RLOO ? LearningRateDefault.RLOO : LearningRateDefault.GRPO, false, false);
    }

    /** TRL's defaults: GRPO 8 generations, beta 0, dapo loss, group scaling; RLOO 2 generations, beta 0.05. */
    public static GrpoSettings defaults(GrpoTraining.Estimator estimator) {
        boolean rloo = estimator == GrpoTraining.Estimator.RLOO;
        return new GrpoSettings(estimator, 0.2, 0.2, rloo ? 0.05 : 0.0, rloo ? "grpo" : "dapo", rloo ? "none" : "group", rloo ? 2 : 8, 1,
                rloo ? "sequence" : "token", false, false);
    }

    public static GrpoSettings read(ConfigTree c, GrpoTraining.Estimator estimator) {
        boolean rloo = estimator == GrpoTraining.Estimator.RLOO;
        GrpoSettings d = defaults(estimator);
        double eps = c.number("epsilon", d.epsilon()), epsHigh = c.number("epsilon_high", eps), beta = c.number("beta", d.beta());
        String lossType = rloo ? d.lossType() : c.string("loss_type", d.lossType()), scale = rloo ? d.scaleRewards() : c.string("scale_rewards", d.scaleRewards());
        int g = c.integer("num_generations", d.numGenerations()), iterations = c.integer("num_iterations", d.numIterations());
        String level = rloo ? d.importanceSamplingLevel() : c.string("importance_sampling_level", d.importanceSamplingLevel());
        boolean maskTruncated = c.bool("mask_truncated_completions", d.maskTruncatedCompletions());
        boolean whiten = rloo && c.bool("normalize_advantages", d.normalizeAdvantages());
        return c.validated(() -> new GrpoSettings(estimator, eps, epsHigh, beta, lossType, scale, g, iterations, level, maskTruncated, whiten));
    }

    /** The whole run's configuration from YAML and overrides. */
    public static RunConfig<Online<GrpoSettings>> config(ConfigTree c, GrpoTraining.Estimator estimator) {
        return RunConfig.read(c, runDefaults(estimator), t -> new Online<>(OnlineSettings.read(t, ONLINE), read(t, estimator)));
    }

    /** The objective's settings for completions of at most {@code maxCompletionLength} tokens. */
    public Grpo.Config grpo(int maxCompletionLength) {
        return new Grpo.Config(epsilon, epsilonHigh, beta, lossType, scaleRewards, maxCompletionLength, importanceSamplingLevel.equals("sequence"));
    }

    public GrpoSettings withBeta(double beta) {
        return new GrpoSettings(estimator, epsilon, epsilonHigh, beta, lossType, scaleRewards, numGenerations, numIterations, importanceSamplingLevel,
                maskTruncatedCompletions, normalizeAdvantages);
    }

    public GrpoSettings withNumGenerations(int numGenerations) {
        return new GrpoSettings(estimator, epsilon, epsilonHigh, beta, lossType, scaleRewards, numGenerations, numIterations, importanceSamplingLevel,
                maskTruncatedCompletions, normalizeAdvantages);
    }
}
