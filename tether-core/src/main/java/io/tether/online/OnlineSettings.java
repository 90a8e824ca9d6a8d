package io.tether.online;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;

import io.tether.engine.ConfigException;
import io.tether.generate.SamplingConfig;
import io.tether.rollout.Rollouts;
import io.tether.run.ConfigTree;

/**
 * The keys every online method (grpo, rloo, ppo, online-dpo) shares beside the {@link io.tether.run.RunSpec}: sampling,
 * reward sources (built-in functions, named functions and/or a reward model, weighted), reward shaping and the prompt
 * budget, named as TRL's GRPOConfig / RLOOConfig / PPOConfig / OnlineDPOConfig (v0.29.1) where TRL has the knob. Each
 * default is written once, in {@link #defaults}; temperature, max_completion_length and the exact-answer field default
 * per method ({@link Defaults}), as TRL's configs differ.
 *
 * @param maxCompletionLength TRL {@code max_completion_length} (online DPO: {@code max_new_tokens}): tokens sampled at most
 * @param temperature         sampling temperature (0: greedy)
 * @param topK                top-k filter (0: off)
 * @param topP                nucleus filter (1: off)
 * @param stopStrings         strings that end a completion (decoded with the model's tokenizer)
 * @param maxPromptLength     TRL {@code max_prompt_length}: a prompt keeps its last tokens; 0 unset (min(512, positions - 1))
 * @param rewardAnswerField   record field with the verifiable answer (exact-answer reward), null for none
 * @param rewardFormatRegex   reward {@code rewardFormatWeight} when the completion matches, null for none
 * @param rewardLengthLimit   completion tokens past which {@code rewardLengthPenalty} is charged per token
 * @param rewardModel         a sequence-classification checkpoint scoring prompt + completion, null for none
 * @param rewardModelWeight   the reward model's weight against the functions' sum
 * @param rewardFunctions     named reward functions the caller offers (the CLI: the refund world's {@code refund-rubric})
 * @param missingEosPenalty   TRL {@code missing_eos_penalty}: subtracted from a completion that did not end with EOS
 * @param rewardClipRange     [low, high] the reward is clipped to, null for none
 * @param normalizeRewards    standardise rewards over the batch
 */
public record OnlineSettings(int maxCompletionLength, double temperature, int topK, double topP, List<String> stopStrings, int maxPromptLength,
                             String rewardAnswerField, String rewardFormatRegex, double rewardFormatWeight, int rewardLengthLimit,
                             double rewardLengthPenalty, Path rewardModel, double rewardModelWeight, List<String> rewardFunctions,
                             double missingEosPenalty, List<Double> rewardClipRange, boolean normalizeRewards) {

    /** Per-method defaults of the shared keys (TRL's differ: GRPO samples at 1.0, PPO at 0.7, online DPO at 0.9). */
    public record Defaults(double temperature, int maxCompletionLength, String answerField) {}

    public OnlineSettings {
        stopStrings = List.copyOf(stopStrings);
        rewardFunctions = List.copyOf(rewardFunctions);
        if (maxPromptLength < 0) throw new ConfigException("key 'max_prompt_length': must be >= 1, got " + maxPromptLength);
        if (rewardClipRange != null && rewardClipRange.size() != 2) throw new ConfigException("key 'reward_clip_range': expected [low, high], got " + rewardClipRange);
        if (rewardClipRange != null) rewardClipRange = List.copyOf(rewardClipRange);
        shaping(missingEosPenalty, rewardClipRange, normalizeRewards);
        new SamplingConfig(maxCompletionLength, temperature, topK, topP, 0, List.of(), stopStrings, true);
    }

    /** Every shared default, with the method's temperature, completion budget and answer field; no other reward source. */
    public static OnlineSettings defaults(Defaults d) {
        return new OnlineSettings(d.maxCompletionLength(), d.temperature(), 0, 1.0, List.of(), 0, d.answerField(), null, 0.5, d.maxCompletionLength(),
                0.0, null, 1.0, List.of(), 0.0, null, false);
    }

    /** Reads the shared keys; {@code d} gives the method's defaults. */
    public static OnlineSettings read(ConfigTree c, Defaults d) {
        return read(c, d, false);
    }

    /** As {@link #read(ConfigTree, Defaults)}; {@code judged}: a pairwise judge labels the samples, so no other reward source is needed. */
    static OnlineSettings read(ConfigTree c, Defaults d, boolean judged) {
        OnlineSettings x = defaults(d);
        int maxCompletion = c.integer("max_completion_length", x.maxCompletionLength());
        double temperature = c.number("temperature", x.temperature()), topP = c.number("top_p", x.topP());
        int topK = c.integer("top_k", x.topK());
        String answer = c.string("reward_answer_field", x.rewardAnswerField()), regex = c.string("reward_format_regex", x.rewardFormatRegex());
        double formatWeight = c.number("reward_format_weight", x.rewardFormatWeight()), lengthPenalty = c.number("reward_length_penalty", x.rewardLengthPenalty());
        // The length limit follows the completion budget unless set.
        int lengthLimit = c.integer("reward_length_limit", maxCompletion);
        Path rm = c.path("reward_model");
        double rmWeight = c.number("reward_model_weight", x.rewardModelWeight());
        List<String> named = strings(c.raw("reward_functions"), "reward_functions");
        double eosPenalty = c.number("missing_eos_penalty", x.missingEosPenalty());
        List<Double> clip = clipRange(c.raw("reward_clip_range"));
        boolean normalize = c.bool("normalize_rewards", x.normalizeRewards());
        List<String> stops = strings(c.raw("stop_strings"), "stop_strings");
        // TRL's max_prompt_length (GRPOConfig/RLOOConfig v0.24: 512); unset, it also leaves room for the completion in the model's positions.
        int maxPrompt = c.raw("max_prompt_length") == null ? 0 : c.integer("max_prompt_length", 0);
        if (c.raw("max_prompt_length") != null && maxPrompt < 1) throw new ConfigException("key 'max_prompt_length': must be >= 1, got " + maxPrompt);
        OnlineSettings s = c.validated(() -> new OnlineSettings(maxCompletion, temperature, topK, topP, stops, maxPrompt, answer, regex, formatWeight,
                lengthLimit, lengthPenalty, rm, rmWeight, named, eosPenalty, clip, normalize));
        if (!judged) s.requireRewardSource();
        return s;
    }

    /** A run needs at least one reward source. */
    void requireRewardSource() {
        if (rewardAnswerField == null && rewardModel == null && rewardFormatRegex == null && rewardFunctions.isEmpty())
            throw new ConfigException("no reward source: set 'reward_model', 'reward_functions', 'reward_answer_field' or 'reward_format_regex'");
    }

    /** Reward shaping: the EOS penalty, the clip range (unbounded when unset) and batch normalisation. */
    public Rollouts.Shaping shaping() {
        return shaping(missingEosPenalty, rewardClipRange, normalizeRewards);
    }

    private static Rollouts.Shaping shaping(double missingEosPenalty, List<Double> clip, boolean normalize) {
        return new Rollouts.Shaping(missingEosPenalty, clip == null ? Double.NEGATIVE_INFINITY : clip.get(0), clip == null ? Double.POSITIVE_INFINITY : clip.get(1),
                normalize);
    }

    public Builder toBuilder() {
        return new Builder(this);
    }

    static List<String> strings(JsonNode n, String key) {
        if (n == null || n.isNull()) return List.of();
        if (n.isTextual()) return List.of(n.asText());
        if (!n.isArray()) throw new ConfigException("key '" + key + "': expected a string or a list of strings, got " + n);
        List<String> out = new ArrayList<>();
        for (JsonNode x : n) {
            if (!x.isTextual()) throw new ConfigException("key '" + key + "': expected strings, got " + x);
            out.add(x.asText());
        }
        return out;
    }

    private static List<Double> clipRange(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (!n.isArray() || n.size() != 2 || !n.get(0).isNumber() || !n.get(1).isNumber())
            throw new ConfigException("key 'reward_clip_range': expected [low, high], got " + n);
        return List.of(n.get(0).asDouble(), n.get(1).asDouble());
    }

    /**
     * For Java callers: {@code OnlineSettings.defaults(GrpoSettings.ONLINE).toBuilder().rewardFunctions(List.of("refund-rubric")).build()}.
     * rewardLengthLimit follows maxCompletionLength unless set.
     */
    public static final class Builder {
        private int maxCompletionLength, topK, maxPromptLength, rewardLengthLimit;
        private double temperature, topP, rewardFormatWeight, rewardLengthPenalty, rewardModelWeight, missingEosPenalty;
        private List<String> stopStrings, rewardFunctions;
        private String rewardAnswerField, rewardFormatRegex;
        private Path rewardModel;
        private List<Double> rewardClipRange;
        private boolean normalizeRewards, lengthLimitSet;

        private Builder(OnlineSettings s) {
            maxCompletionLength = s.maxCompletionLength; temperature = s.temperature; topK = s.topK; topP = s.topP; stopStrings = s.stopStrings;
            maxPromptLength = s.maxPromptLength; rewardAnswerField = s.rewardAnswerField; rewardFormatRegex = s.rewardFormatRegex;
            rewardFormatWeight = s.rewardFormatWeight; rewardLengthLimit = s.rewardLengthLimit; rewardLengthPenalty = s.rewardLengthPenalty;
            rewardModel = s.rewardModel; rewardModelWeight = s.rewardModelWeight; rewardFunctions = s.rewardFunctions;
            missingEosPenalty = s.missingEosPenalty; rewardClipRange = s.rewardClipRange; normalizeRewards = s.normalizeRewards;
            lengthLimitSet = s.rewardLengthLimit != s.maxCompletionLength;
        }

        public Builder maxCompletionLength(int v) { maxCompletionLength = v; return this; }
        public Builder temperature(double v) { temperature = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder topP(double v) { topP = v; return this; }
        public Builder stopStrings(List<String> v) { stopStrings = v; return this; }
        public Builder maxPromptLength(int v) { maxPromptLength = v; return this; }
        public Builder rewardAnswerField(String v) { rewardAnswerField = v; return this; }
        public Builder rewardFormatRegex(String v) { rewardFormatRegex = v; return this; }
        public Builder rewardFormatWeight(double v) { rewardFormatWeight = v; return this; }
        public Builder rewardLengthLimit(int v) { rewardLengthLimit = v; lengthLimitSet = true; return this; }
        public Builder rewardLengthPenalty(double v) { rewardLengthPenalty = v; return this; }
        public Builder rewardModel(Path v) { rewardModel = v; return this; }
        public Builder rewardModelWeight(double v) { rewardModelWeight = v; return this; }
        public Builder rewardFunctions(List<String> v) { rewardFunctions = v; return this; }
        public Builder missingEosPenalty(double v) { missingEosPenalty = v; return this; }
        public Builder rewardClipRange(double low, double high) { rewardClipRange = List.of(low, high); return this; }
        public Builder normalizeRewards(boolean v) { normalizeRewards = v; return this; }

        public OnlineSettings build() {
            return new OnlineSettings(maxCompletionLength, temperature, topK, topP, stopStrings, maxPromptLength, rewardAnswerField, rewardFormatRegex,
                    rewardFormatWeight, lengthLimitSet ? rewardLengthLimit : maxCompletionLength, rewardLengthPenalty, rewardModel, rewardModelWeight,
                    rewardFunctions, missingEosPenalty, rewardClipRange, normalizeRewards);
        }
    }
}
