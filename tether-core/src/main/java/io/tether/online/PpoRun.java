package io.tether.online;

import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.run.ConfigTree;
import io.tether.train.GradientSync;
import io.tether.train.Trainer;

/**
 * {@code tether ppo}: policy, frozen reference (or the policy with LoRA adapters off), reward model and/or reward
 * functions, and a critic: {@code value_model} (defaults to a copy of the reward model, as TRL initialises it) or,
 * with {@code value_head: true} or no reward model, a value head on the policy's backbone. TRL PPOConfig names.
 */
public final class PpoRun {
    private PpoRun() {}

    /**
     * @param goldRewards named reward functions (offered to {@link #run}) that judge the same samples independently of
     *                    the proxy and are logged, never optimised, as objective/gold_scores (key gold_reward_functions)
     */
    public record Config(OnlineRun.Common common, PpoTraining.Config ppo, Path valueModel, boolean valueHead, List<String> goldRewards,
                         Map<String, Object> resolved) {
        public static Config from(ConfigTree c) {
            OnlineRun.Common common = OnlineRun.Common.read(c, new OnlineRun.Defaults(0.7, 53, null, io.tether.train.LearningRateDefault.PPO));
            PpoTraining.Config d = PpoTraining.Config.defaults();
            double klCoef = c.number("kl_coef", d.klCoef()), target = c.number("kl_target", d.klTarget()), horizon = c.number("kl_horizon", d.klHorizon());
            String estimator = c.string("kl_estimator", d.klEstimator());
            double gamma = c.number("gamma", d.gamma()), lam = c.number("lam", d.lam()), clip = c.number("cliprange", d.cliprange());
            double clipValue = c.number("cliprange_value", d.cliprangeValue()), vf = c.number("vf_coef", d.vfCoef());
            int epochs = c.integer("num_ppo_epochs", d.numPpoEpochs()), mini = c.integer("num_mini_batches", d.numMiniBatches());
            boolean whiten = c.bool("whiten_rewards", d.whitenRewards());
            Path valueModel = c.path("value_model");
            boolean valueHead = c.bool("value_head", false);
            List<String> gold = OnlineRun.Common.strings(c.raw("gold_reward_functions"), "gold_reward_functions");
            c.rejectUnknownKeys();
            if (valueHead && valueModel != null) throw new ConfigException("keys 'value_head' and 'value_model': choose one critic");
            PpoTraining.Config ppo = c.validated(() -> new PpoTraining.Config(klCoef, estimator, target, horizon, gamma, lam, clip, clipValue, vf, epochs, mini, whiten));
            c.validated(() -> new io.tether.train.TrainingMethod.Reuse(epochs, mini));
            return new Config(common, ppo, valueModel, valueHead, gold, c.resolved());
        }

        public Path outputDir() {
            return common.outputDir();
        }

        /** Where the critic starts: the value model, else the reward model, else none (a head on the policy). */
        Path criticSource() {
            if (valueHead) return null;
            return valueModel != null ? valueModel : common.rewardModel();
        }
    }

    /** @param rewards reward functions offered by name to the config's {@code reward_functions} */
    public static Trainer.Result run(Config c, boolean resume, Trainer.Listener listener, Map<String, RewardFunction> rewards) throws IOException {
        List<RewardFunction> goldFunctions = new java.util.ArrayList<>();
        for (String name : c.goldRewards()) {
            RewardFunction f = rewards.get(name);
            if (f == null) throw new ConfigException("key 'gold_reward_functions': no reward function named '" + name + "'; known: "
                    + new java.util.TreeSet<>(rewards.keySet()));
            goldFunctions.add(f);
        }
        try (OnlineRun.Session s = new OnlineRun.Session(c.common(), resume, rewards)) {
            CausalLM reference = c.common().lora() == null ? s.loadCopy(c.common().model()) : null;
            CausalLM critic = c.criticSource() == null ? null : s.loadCopy(c.criticSource());
            if (critic != null && (!critic.config().isClassifier() || critic.config().numLabels() != 1))
                throw new ConfigException(c.criticSource() + ": the value model must be a sequence-classification model with num_labels 1, got "
                        + critic.config().architecture());
            Rollouts.Scorer gold = goldFunctions.isEmpty() ? null
                    : Rollouts.of(RewardFunction.weightedSum(goldFunctions, java.util.Collections.nCopies(goldFunctions.size(), 1.0 / goldFunctions.size())), s.decoder());
            var settings = new PpoTraining.Settings(c.ppo(), s.sampling(), s.scorer(), c.common().shaping(), reference, critic, s.decoder(), gold);
            PpoTraining method = new PpoTraining(settings, s.policy.model(), c.common().trainer().seed());
            s.writeRecords(c.resolved(), resume, listener);
            Trainer.Result r = new Trainer<>(s.policy.model(), method, s.prompts, List.of(), c.common().trainer(), s.run, GradientSync.SINGLE_PROCESS,
                    listener, c.common().model()).train(resume);
            s.saveResult();
            // The trained critic is kept beside the policy (HF layout), e.g. to resume PPO from it later.
            if (critic != null) Models.save(critic, s.run.root().resolve("value_model"), null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            return r;
        }
    }
}
