package io.tether.online;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;

import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.engine.ProcessGroup;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import io.tether.run.RunSession;
import io.tether.train.Trainer;
import io.tether.train.TrainingMethod;

/**
 * What the online methods (grpo, rloo, ppo, online-dpo) add to a {@link RunSession}: prompts read and cut under
 * max_prompt_length, the sampling config, and the scorer assembled from the reward sources (built-in functions, the
 * named functions the caller offers, a reward model), weighted.
 */
final class OnlineRun {
    private OnlineRun() {}

    /**
     * The named reward functions, looked up before the run opens so that a wrong name writes nothing.
     *
     * @param available reward functions the caller offers by name (the CLI offers the refund world's rubric);
     *                  the config's {@code reward_functions} picks among them
     */
    static List<RewardFunction> named(OnlineSettings o, Map<String, RewardFunction> available) {
        return named(o, available, false);
    }

    /** As {@link #named(OnlineSettings, Map)}; {@code judged}: a pairwise judge labels the samples, so no other reward source is needed. */
    static List<RewardFunction> named(OnlineSettings o, Map<String, RewardFunction> available, boolean judged) {
        if (!judged) o.requireRewardSource();
        List<RewardFunction> out = new ArrayList<>();
        for (String name : o.rewardFunctions()) {
            RewardFunction f = available.get(name);
            if (f == null) throw new ConfigException("key 'reward_functions': no reward function '" + name + "'; available: "
                    + (available.isEmpty() ? "none" : String.join(", ", new java.util.TreeSet<>(available.keySet()))));
            out.add(f);
        }
        return out;
    }

    /**
     * The prompts, read and checked as {@code tether data validate --format prompts} reads them (before any model is
     * loaded: a bad record stops the run with nothing written), cut to the prompt budget.
     */
    static List<OnlinePrompt> prompts(RunSession s, OnlineSettings o) {
        Truncation t = s.truncation(promptTruncation(o, s.modelConfig().maxPositionEmbeddings()));
        var read = OnlinePrompt.read(s.spec().data(), s.text(), s.modelConfig().vocabSize(), s.spec().reading().invalidRecords(), t);
        return s.recordRead(s.spec().data(), read).records();
    }

    /**
     * max_prompt_length as set (it and max_completion_length must fit the model's positions), else min(TRL's 512,
     * positions - 1); a prompt keeps its last tokens. The default does not subtract max_completion_length, since most
     * completions stop well before it (the refund demo's prompts of up to 314 tokens sample up to 200 in 512 positions).
     */
    static Truncation promptTruncation(OnlineSettings o, int positions) {
        if (o.maxPromptLength() > 0 && o.maxPromptLength() + o.maxCompletionLength() > positions)
            throw new ConfigException("key 'max_prompt_length': " + o.maxPromptLength() + " + max_completion_length " + o.maxCompletionLength()
                    + " is more than the model's " + positions + " positions");
        int maxPrompt = o.maxPromptLength() > 0 ? o.maxPromptLength() : Math.min(512, positions - 1);
        return new Truncation(positions, maxPrompt, 0, Truncation.Mode.KEEP_END);
    }

    static Function<long[], String> decoder(RunSession s) {
        return s.text() == null ? null : ids -> s.text().tokenizer().decode(ids, true);
    }

    static SamplingConfig sampling(RunSession s, OnlineSettings o, Models.LoadedModel policy) {
        if (!o.stopStrings().isEmpty() && s.text() == null)
            throw new ConfigException("key 'stop_strings': " + s.spec().model() + " has no tokenizer to decode completions with");
        return new SamplingConfig(o.maxCompletionLength(), o.temperature(), o.topK(), o.topP(), s.spec().trainer().seed(), policy.defaultStopIds(),
                o.stopStrings(), true);
    }

    /** The weighted reward sources the config names. */
    static Rollouts.Scorer scorer(RunSession s, OnlineSettings o, List<RewardFunction> named, CausalLM rewardModel) {
        List<RewardFunction> fns = new ArrayList<>();
        List<Double> fnWeights = new ArrayList<>();
        if (o.rewardAnswerField() != null) { fns.add(RewardFunction.exactAnswer(o.rewardAnswerField())); fnWeights.add(1.0); }
        if (o.rewardFormatRegex() != null) { fns.add(RewardFunction.matches(o.rewardFormatRegex())); fnWeights.add(o.rewardFormatWeight()); }
        if (o.rewardLengthPenalty() > 0) { fns.add(RewardFunction.lengthPenalty(o.rewardLengthLimit(), o.rewardLengthPenalty())); fnWeights.add(1.0); }
        for (RewardFunction f : named) { fns.add(f); fnWeights.add(1.0); }
        List<Rollouts.Scorer> parts = new ArrayList<>();
        List<Double> weights = new ArrayList<>();
        if (!fns.isEmpty()) { parts.add(Rollouts.of(RewardFunction.weightedSum(fns, fnWeights), decoder(s))); weights.add(1.0); }
        if (rewardModel != null) { parts.add(Rollouts.rewardModel(rewardModel, 16)); weights.add(o.rewardModelWeight()); }
        return Rollouts.weightedSum(parts, weights);
    }

    /** What every online run has once its session is open: the prompts, the policy, how it samples and how samples are scored. */
    record Rollout(List<OnlinePrompt> prompts, Models.LoadedModel policy, SamplingConfig sampling, Rollouts.Scorer scorer,
                   Function<long[], String> decoder) {
        CausalLM model() {
            return policy.model();
        }
    }

    /** Reads the prompts (before any model), then loads the policy (LoRA attached) and the reward model, in that order. */
    static Rollout start(RunSession s, OnlineSettings o, List<RewardFunction> named) throws IOException {
        // Checked before any rank joins a group or loads a model.
        if (ProcessGroup.Env.read(System.getenv()) != null)
            throw new ConfigException("environment variable WORLD_SIZE: the online methods (grpo, rloo, ppo, online-dpo) run in one process "
                    + "today: their batch statistics (advantage whitening, batch-scaled rewards, PPO's adaptive KL coefficient) are not yet "
                    + "reduced across ranks, so ranks would drift apart; run them without `tether launch`");
        List<OnlinePrompt> prompts = prompts(s, o);
        Models.LoadedModel policy = s.loadPolicy();
        CausalLM rewardModel = o.rewardModel() == null ? null : s.loadFrozen(o.rewardModel(), "reward_model");
        return new Rollout(prompts, policy, sampling(s, o, policy), scorer(s, o, named, rewardModel), decoder(s));
    }

    /**
     * Writes the run's records (config, provenance with the prompt count, what reading skipped and cut), trains and
     * saves the policy; {@code beforeTraining} sees the trainer first (online DPO sizes its rounds by its steps).
     */
    static Trainer.Result train(RunSession s, Rollout r, TrainingMethod<OnlinePrompt> method, boolean resume,
                                Consumer<Trainer<OnlinePrompt>> beforeTraining) throws IOException {
        s.provenance().put("prompts", r.prompts().size());
        s.writeRecords(false);
        Trainer<OnlinePrompt> trainer = s.trainer(r.model(), method, r.prompts(), List.of());
        beforeTraining.accept(trainer);
        Trainer.Result result = trainer.train(resume);
        s.saveResult(r.model(), r.policy().storedDtypes());
        return result;
    }
}
