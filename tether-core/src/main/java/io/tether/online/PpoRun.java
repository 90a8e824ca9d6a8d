package io.tether.online;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import io.tether.run.RunConfig;
import io.tether.run.RunSession;
import io.tether.train.Trainer;

/**
 * {@code tether ppo}: policy, frozen reference (or the policy with LoRA adapters off), reward model and/or reward
 * functions, and a critic: {@code value_model} (defaults to a copy of the reward model, as TRL initialises it) or,
 * with {@code value_head: true} or no reward model, a value head on the policy's backbone. TRL PPOConfig names
 * ({@link PpoSettings}, {@link OnlineSettings}).
 */
public final class PpoRun {
    private PpoRun() {}

    /** @param rewards reward functions offered by name to the config's {@code reward_functions} and {@code gold_reward_functions} */
    public static Trainer.Result run(RunConfig<Online<PpoSettings>> c, boolean resume, Trainer.Listener listener, Map<String, RewardFunction> rewards)
            throws IOException {
        OnlineSettings o = c.method().online();
        PpoSettings p = c.method().method();
        List<RewardFunction> goldFunctions = new java.util.ArrayList<>();
        for (String name : p.goldRewardFunctions()) {
            RewardFunction f = rewards.get(name);
            if (f == null) throw new ConfigException("key 'gold_reward_functions': no reward function named '" + name + "'; known: "
                    + new java.util.TreeSet<>(rewards.keySet()));
            goldFunctions.add(f);
        }
        var named = OnlineRun.named(o, rewards);
        try (RunSession s = RunSession.open(c, resume, listener)) {
            OnlineRun.Rollout r = OnlineRun.start(s, o, named);
            CausalLM reference = c.spec().lora() == null ? s.loadFrozen(c.spec().model(), "reference") : null;
            Path criticSource = p.criticSource(o);
            CausalLM critic = criticSource == null ? null : s.loadTrainable(criticSource, "value_model");
            if (critic != null && (!critic.config().isClassifier() || critic.config().numLabels() != 1))
                throw new ConfigException(criticSource + ": the value model must be a sequence-classification model with num_labels 1, got "
                        + critic.config().architecture());
            Rollouts.Scorer gold = goldFunctions.isEmpty() ? null
                    : Rollouts.of(RewardFunction.weightedSum(goldFunctions, java.util.Collections.nCopies(goldFunctions.size(), 1.0 / goldFunctions.size())), r.decoder());
            var settings = new PpoTraining.Settings(p, r.sampling(), r.scorer(), o.shaping(), reference, critic, r.decoder(), gold);
            PpoTraining method = new PpoTraining(settings, r.model(), c.spec().trainer().seed());
            Trainer.Result result = OnlineRun.train(s, r, method, resume, t -> {});
            // The trained critic is kept beside the policy (HF layout), e.g. to resume PPO from it later.
            if (critic != null) Models.save(critic, s.directory().root().resolve("value_model"), null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            return result;
        }
    }
}
