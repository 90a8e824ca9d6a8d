package io.tether.online;

import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.LoraAdapters;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.text.TextAssets;
import io.tether.run.ConfigTree;
import io.tether.run.DataSettings;
import io.tether.run.Provenance;
import io.tether.run.PeftSettings;
import io.tether.train.RunDirectory;
import io.tether.train.TrainerConfig;

/**
 * What the online commands (grpo, rloo, ppo, online-dpo) share: prompts, sampling knobs, reward sources (built-in
 * functions and/or a reward model, weighted), reward shaping, and a session that loads the policy, its tokenizer
 * and the reward model, and records the run's config and provenance.
 */
final class OnlineRun {
    private OnlineRun() {}

    /** Per-method defaults of the shared keys (TRL's differ: GRPO samples at 1.0, PPO at 0.7, online DPO at 0.9). */
    record Defaults(double temperature, int maxCompletionLength, String answerField, io.tether.train.LearningRateDefault learningRate) {}

    /**
     * @param answerField   record field with the verifiable answer (exact-answer reward), null for none
     * @param rewardModel   a sequence-classification checkpoint scoring prompt + completion, null for none
     */
    record Common(Path model, Path data, Path outputDir, int maxCompletionLength, double temperature, int topK, double topP,
                  String answerField, String formatRegex, double formatWeight, int lengthLimit, double lengthPenalty,
                  Path rewardModel, double rewardModelWeight, List<String> rewardFunctions, Rollouts.Shaping shaping, List<String> stopStrings,
                  String dtype, TrainerConfig trainer, LoraAdapters.Config lora, TokenRecords.InvalidRecords invalidRecords, int maxPromptLength) {

        static Common read(ConfigTree c, Defaults d) {
            Path model = c.path("model"), data = c.path("data"), out = c.path("output_dir");
            int maxCompletion = c.integer("max_completion_length", d.maxCompletionLength());
            double temperature = c.number("temperature", d.temperature()), topP = c.number("top_p", 1.0);
            int topK = c.integer("top_k", 0);
            String answer = c.string("reward_answer_field", d.answerField()), regex = c.string("reward_format_regex", null);
            double formatWeight = c.number("reward_format_weight", 0.5), lengthPenalty = c.number("reward_length_penalty", 0.0);
            int lengthLimit = c.integer("reward_length_limit", maxCompletion);
            Path rm = c.path("reward_model");
            double rmWeight = c.number("reward_model_weight", 1.0);
            List<String> named = strings(c.raw("reward_functions"), "reward_functions");
            double eosPenalty = c.number("missing_eos_penalty", 0.0);
            double[] clip = clipRange(c.raw("reward_clip_range"));
            boolean normalize = c.bool("normalize_rewards", false);
            List<String> stops = strings(c.raw("stop_strings"), "stop_strings");
            String dtype = c.string("dtype", "fp32");
            TokenRecords.InvalidRecords invalid = TokenRecords.InvalidRecords.parse(c.string("invalid_records", "error"));
            // TRL's max_prompt_length (GRPOConfig/RLOOConfig v0.24: 512); unset, it also leaves room for the completion in the model's positions.
            int maxPrompt = c.raw("max_prompt_length") == null ? 0 : c.integer("max_prompt_length", 0);
            if (c.raw("max_prompt_length") != null && maxPrompt < 1) throw new ConfigException("key 'max_prompt_length': must be >= 1, got " + maxPrompt);
            TrainerConfig t = c.trainerConfig(d.learningRate());
            LoraAdapters.Config lora = PeftSettings.from(c);
            if (model == null) throw new ConfigException("key 'model': missing");
            if (data == null) throw new ConfigException("key 'data': missing");
            if (out == null) throw new ConfigException("key 'output_dir': missing");
            if (answer == null && rm == null && regex == null && named.isEmpty())
                throw new ConfigException("no reward source: set 'reward_model', 'reward_functions', 'reward_answer_field' or 'reward_format_regex'");
            Rollouts.Shaping shaping = c.validated(() -> new Rollouts.Shaping(eosPenalty, clip[0], clip[1], normalize));
            c.validated(() -> new SamplingConfig(maxCompletion, temperature, topK, topP, 0, List.of(), stops, true));
            return new Common(model, data, out, maxCompletion, temperature, topK, topP, answer, regex, formatWeight, lengthLimit, lengthPenalty,
                    rm, rmWeight, named, shaping, stops, dtype, t, lora, invalid, maxPrompt);
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

        private static double[] clipRange(JsonNode n) {
            if (n == null || n.isNull()) return new double[] {Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY};
            if (!n.isArray() || n.size() != 2 || !n.get(0).isNumber() || !n.get(1).isNumber())
                throw new ConfigException("key 'reward_clip_range': expected [low, high], got " + n);
            return new double[] {n.get(0).asDouble(), n.get(1).asDouble()};
        }
    }

    /** The loaded pieces of a run; closes them all. */
    static final class Session implements AutoCloseable {
        final Common common;
        final RunDirectory run;
        final Models.LoadedModel policy;
        final TextAssets text;
        final CausalLM rewardModel;
        final List<OnlinePrompt> prompts;
        private final TokenRecords.Read<?> promptRead;
        private final Truncation promptTruncation;
        private final List<AutoCloseable> owned = new ArrayList<>();
        private final List<RewardFunction> namedRewards = new ArrayList<>();

        /**
         * @param available reward functions the caller offers by name (the CLI offers the refund world's rubric);
         *                  the config's {@code reward_functions} picks among them
         */
        Session(Common c, boolean resume, Map<String, RewardFunction> available) throws IOException {
            for (String name : c.rewardFunctions()) {
                RewardFunction f = available.get(name);
                if (f == null) throw new ConfigException("key 'reward_functions': no reward function '" + name + "'; available: "
                        + (available.isEmpty() ? "none" : String.join(", ", new java.util.TreeSet<>(available.keySet()))));
                namedRewards.add(f);
            }
            Torch.init();
            this.common = c;
            this.run = RunDirectory.open(c.outputDir(), resume);
            // The prompts first, read and checked as `tether data validate --format prompts` reads them: a bad record
            // stops the run before any model is loaded or any file written.
            ModelConfig modelConfig = DataSettings.modelConfig(c.model());
            this.text = TextAssets.load(c.model()).orElse(null);
            if (text != null) owned.add(text);
            try {
                this.promptTruncation = promptTruncation(c, modelConfig.maxPositionEmbeddings());
                TokenRecords.Read<OnlinePrompt> read = OnlinePrompt.read(c.data(), text, modelConfig.vocabSize(), c.invalidRecords(), promptTruncation);
                this.promptRead = read;
                this.prompts = read.records();
                this.policy = Models.load(c.model(), dtype());
                owned.add(policy);
                if (c.lora() != null) LoraAdapters.attach(policy.model(), c.lora(), c.trainer().seed());
                this.rewardModel = c.rewardModel() == null ? null : Models.load(c.rewardModel(), dtype()).model();
                if (rewardModel != null) owned.add(rewardModel);
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        /**
         * max_prompt_length as set (it and max_completion_length must fit the model's positions), else min(TRL's 512,
         * positions - 1); a prompt keeps its last tokens. The default does not subtract max_completion_length, since most
         * completions stop well before it (the refund demo's prompts of up to 314 tokens sample up to 200 in 512 positions).
         */
        static Truncation promptTruncation(Common c, int positions) {
            if (c.maxPromptLength() > 0 && c.maxPromptLength() + c.maxCompletionLength() > positions)
                throw new ConfigException("key 'max_prompt_length': " + c.maxPromptLength() + " + max_completion_length " + c.maxCompletionLength()
                        + " is more than the model's " + positions + " positions");
            int maxPrompt = c.maxPromptLength() > 0 ? c.maxPromptLength() : Math.min(512, positions - 1);
            return new Truncation(positions, maxPrompt, 0, Truncation.Mode.KEEP_END);
        }

        DType dtype() {
            return DType.parse(common.dtype());
        }

        /** A second copy of the policy's starting weights (frozen reference or critic initialisation). */
        CausalLM loadCopy(Path dir) {
            CausalLM m = Models.load(dir, dtype()).model();
            owned.add(m);
            return m;
        }

        void own(AutoCloseable c) {
            owned.add(c);
        }

        java.util.function.Function<long[], String> decoder() {
            return text == null ? null : ids -> text.tokenizer().decode(ids, true);
        }

        SamplingConfig sampling() {
            if (!common.stopStrings().isEmpty() && text == null)
                throw new ConfigException("key 'stop_strings': " + common.model() + " has no tokenizer to decode completions with");
            return new SamplingConfig(common.maxCompletionLength(), common.temperature(), common.topK(), common.topP(), common.trainer().seed(),
                    policy.defaultStopIds(), common.stopStrings(), true);
        }

        /** The weighted reward sources the config names. */
        Rollouts.Scorer scorer() {
            List<RewardFunction> fns = new ArrayList<>();
            List<Double> fnWeights = new ArrayList<>();
            if (common.answerField() != null) { fns.add(RewardFunction.exactAnswer(common.answerField())); fnWeights.add(1.0); }
            if (common.formatRegex() != null) { fns.add(RewardFunction.matches(common.formatRegex())); fnWeights.add(common.formatWeight()); }
            if (common.lengthPenalty() > 0) { fns.add(RewardFunction.lengthPenalty(common.lengthLimit(), common.lengthPenalty())); fnWeights.add(1.0); }
            for (RewardFunction f : namedRewards) { fns.add(f); fnWeights.add(1.0); }
            List<Rollouts.Scorer> parts = new ArrayList<>();
            List<Double> weights = new ArrayList<>();
            if (!fns.isEmpty()) { parts.add(Rollouts.of(RewardFunction.weightedSum(fns, fnWeights), decoder())); weights.add(1.0); }
            if (rewardModel != null) { parts.add(Rollouts.rewardModel(rewardModel, 16)); weights.add(common.rewardModelWeight()); }
            return Rollouts.weightedSum(parts, weights);
        }

        void writeRecords(Map<String, Object> resolved, boolean resume, io.tether.train.Trainer.Listener listener) throws IOException {
            Map<String, Object> provenance = Provenance.start(common.trainer().seed(), common.data(), null, resume);
            DataSettings.report(listener, provenance, new DataSettings(common.invalidRecords(), 0, promptTruncation.maxPromptLength(), 0, Truncation.Mode.KEEP_END),
                    promptTruncation, Map.of(common.data(), promptRead));
            run.writeConfig(DataSettings.resolved(resolved, promptTruncation, false));
            provenance.put("initial_weights", Provenance.weightsHash(common.model()));
            if (common.rewardModel() != null) provenance.put("reward_model_weights", Provenance.weightsHash(common.rewardModel()));
            provenance.put("prompts", prompts.size());
            run.writeProvenance(provenance);
        }

        void saveResult() throws IOException {
            PeftSettings.saveResult(policy.model(), run.root(), common.model(), common.model(), policy.storedDtypes());
        }

        @Override
        public void close() {
            for (int i = owned.size() - 1; i >= 0; i--) {
                try {
                    owned.get(i).close();
                } catch (Exception e) {
                    throw e instanceof RuntimeException re ? re : new IllegalStateException(e);
                }
            }
            owned.clear();
        }
    }

}
