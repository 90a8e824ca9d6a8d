package io.tether.online;

import java.nio.file.Path;
import java.util.List;

import io.tether.engine.ConfigException;
import io.tether.run.ConfigTree;
import io.tether.run.RunConfig;
import io.tether.run.RunSpec;
import io.tether.train.LearningRateDefault;
import io.tether.train.TrainingMethod;

/**
 * {@code tether ppo}'s own keys, named and defaulted as TRL's PPOConfig (v0.29.1); the shared online keys are
 * {@link OnlineSettings}, the rest the {@link RunSpec}. TRL has no adaptive KL controller in PPOConfig: kl_target and
 * kl_horizon are Ziegler et al. (2019)'s, off by default.
 *
 * @param klCoef              TRL {@code kl_coef}: the per-token KL penalty's coefficient
 * @param klEstimator         TRL {@code kl_estimator}: k1 (TRL's default), k2 or k3 estimate of KL(π‖π_ref)
 * @param klTarget            the adaptive KL controller's target; NaN keeps kl_coef fixed
 * @param klHorizon           the controller's horizon in samples
 * @param gamma               TRL {@code gamma}: discount
 * @param lam                 TRL {@code lam}: GAE lambda
 * @param cliprange           TRL {@code cliprange}: the policy ratio's clip
 * @param cliprangeValue      TRL {@code cliprange_value}: the value's clip
 * @param vfCoef              TRL {@code vf_coef}: the value loss's weight
 * @param numPpoEpochs        TRL {@code num_ppo_epochs}: passes over each rollout
 * @param numMiniBatches      TRL {@code num_mini_batches}: updates per pass
 * @param whitenRewards       TRL {@code whiten_rewards}
 * @param valueModel          the critic's starting checkpoint (TRL {@code value_model_path}); null: the reward model's
 * @param valueHead           a value head on the policy's backbone instead of a separate critic
 * @param goldRewardFunctions named reward functions that judge the same samples independently of the proxy, logged (never
 *                            optimised) as objective/gold_scores
 */
public record PpoSettings(double klCoef, String klEstimator, double klTarget, double klHorizon, double gamma, double lam, double cliprange,
                          double cliprangeValue, double vfCoef, int numPpoEpochs, int numMiniBatches, boolean whitenRewards, Path valueModel,
                          boolean valueHead, List<String> goldRewardFunctions) {
    /** PPO's shared online defaults: temperature 0.7 and 53 completion tokens as TRL's PPOConfig (response_length), no answer field. */
    public static final OnlineSettings.Defaults ONLINE = new OnlineSettings.Defaults(0.7, 53, null);
    /** The common keys' defaults: PPO's learning rate; prompts are cut by max_prompt_length, not max_length. */
    public static final RunSpec.Defaults DEFAULTS = new RunSpec.Defaults(null, false, false, 0.0, LearningRateDefault.PPO, false, false);

    public PpoSettings {
        goldRewardFunctions = List.copyOf(goldRewardFunctions);
        if (valueHead && valueModel != null) throw new ConfigException("keys 'value_head' and 'value_model': choose one critic");
        if (!List.of("k1", "k2", "k3").contains(klEstimator)) throw new ConfigException("key 'kl_estimator': k1, k2 or k3, got '" + klEstimator + "'");
        if (klCoef < 0) throw new ConfigException("key 'kl_coef': must be >= 0, got " + klCoef);
        if (!Double.isNaN(klTarget) && !(klTarget > 0)) throw new ConfigException("key 'kl_target': must be > 0, got " + klTarget);
        if (!(klHorizon > 0)) throw new ConfigException("key 'kl_horizon': must be > 0, got " + klHorizon);
        if (!(gamma >= 0 && gamma <= 1) || !(lam >= 0 && lam <= 1)) throw new ConfigException("keys 'gamma' and 'lam' must be in [0, 1]");
        if (!(cliprange > 0) || !(cliprangeValue > 0)) throw new ConfigException("keys 'cliprange' and 'cliprange_value' must be > 0");
        if (vfCoef < 0) throw new ConfigException("key 'vf_coef': must be >= 0, got " + vfCoef);
        new TrainingMethod.Reuse(numPpoEpochs, numMiniBatches);
    }

    /** TRL PPOConfig defaults; the critic starts from the reward model. */
    public static PpoSettings defaults() {
        return new PpoSettings(0.05, "k1", Double.NaN, 10000, 1.0, 0.95, 0.2, 0.2, 0.1, 4, 1, false, null, false, List.of());
    }

    public static PpoSettings read(ConfigTree c) {
        PpoSettings d = defaults();
        double klCoef = c.number("kl_coef", d.klCoef()), target = c.number("kl_target", d.klTarget()), horizon = c.number("kl_horizon", d.klHorizon());
        String estimator = c.string("kl_estimator", d.klEstimator());
        double gamma = c.number("gamma", d.gamma()), lam = c.number("lam", d.lam()), clip = c.number("cliprange", d.cliprange());
        double clipValue = c.number("cliprange_value", d.cliprangeValue()), vf = c.number("vf_coef", d.vfCoef());
        int epochs = c.integer("num_ppo_epochs", d.numPpoEpochs()), mini = c.integer("num_mini_batches", d.numMiniBatches());
        boolean whiten = c.bool("whiten_rewards", d.whitenRewards());
        Path valueModel = c.path("value_model");
        boolean valueHead = c.bool("value_head", d.valueHead());
        List<String> gold = OnlineSettings.strings(c.raw("gold_reward_functions"), "gold_reward_functions");
        return c.validated(() -> new PpoSettings(klCoef, estimator, target, horizon, gamma, lam, clip, clipValue, vf, epochs, mini, whiten, valueModel,
                valueHead, gold));
    }

    /** The whole run's configuration from YAML and overrides. */
    public static RunConfig<Online<PpoSettings>> config(ConfigTree c) {
        return RunConfig.read(c, DEFAULTS, t -> new Online<>(OnlineSettings.read(t, ONLINE), read(t)));
    }

    /** Where the critic starts: the value model, else the reward model, else none (a head on the policy). */
    Path criticSource(OnlineSettings online) {
        if (valueHead) return null;
        return valueModel != null ? valueModel : online.rewardModel();
    }

    public Builder toBuilder() {
        return new Builder(this);
    }

    /** For Java callers: {@code PpoSettings.defaults().toBuilder().klCoef(0.01).numPpoEpochs(2).build()}. */
    public static final class Builder {
        private double klCoef, klTarget, klHorizon, gamma, lam, cliprange, cliprangeValue, vfCoef;
        private String klEstimator;
        private int numPpoEpochs, numMiniBatches;
        private boolean whitenRewards, valueHead;
        private Path valueModel;
        private List<String> goldRewardFunctions;

        private Builder(PpoSettings s) {
            klCoef = s.klCoef; klEstimator = s.klEstimator; klTarget = s.klTarget; klHorizon = s.klHorizon; gamma = s.gamma; lam = s.lam;
            cliprange = s.cliprange; cliprangeValue = s.cliprangeValue; vfCoef = s.vfCoef; numPpoEpochs = s.numPpoEpochs;
            numMiniBatches = s.numMiniBatches; whitenRewards = s.whitenRewards; valueModel = s.valueModel; valueHead = s.valueHead;
            goldRewardFunctions = s.goldRewardFunctions;
        }

        public Builder klCoef(double v) { klCoef = v; return this; }
        public Builder klEstimator(String v) { klEstimator = v; return this; }
        public Builder klTarget(double v) { klTarget = v; return this; }
        public Builder klHorizon(double v) { klHorizon = v; return this; }
        public Builder gamma(double v) { gamma = v; return this; }
        public Builder lam(double v) { lam = v; return this; }
        public Builder cliprange(double v) { cliprange = v; return this; }
        public Builder cliprangeValue(double v) { cliprangeValue = v; return this; }
        public Builder vfCoef(double v) { vfCoef = v; return this; }
        public Builder numPpoEpochs(int v) { numPpoEpochs = v; return this; }
        public Builder numMiniBatches(int v) { numMiniBatches = v; return this; }
        public Builder whitenRewards(boolean v) { whitenRewards = v; return this; }
        public Builder valueModel(Path v) { valueModel = v; return this; }
        public Builder valueHead(boolean v) { valueHead = v; return this; }
        public Builder goldRewardFunctions(List<String> v) { goldRewardFunctions = v; return this; }

        public PpoSettings build() {
            return new PpoSettings(klCoef, klEstimator, klTarget, klHorizon, gamma, lam, cliprange, cliprangeValue, vfCoef, numPpoEpochs, numMiniBatches,
                    whitenRewards, valueModel, valueHead, goldRewardFunctions);
        }
    }
}
