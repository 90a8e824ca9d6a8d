package io.tether.reward;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.data.PromptRecords;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.LoraAdapters;
import io.tether.model.Models;
import io.tether.objective.Grpo;
import io.tether.text.TextAssets;
import io.tether.train.ConfigTree;
import io.tether.train.GradientSync;
import io.tether.train.PeftSettings;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

/**
 * {@code tether grpo}: prompts from JSONL ({@code prompt} text rendered with the chat template when it is a message
 * list, or {@code prompt_ids}), rewards from built-in functions, TRL's GRPOConfig names.
 */
public final class GrpoRun {
    private GrpoRun() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    public record Config(Path model, Path data, Path outputDir, Grpo.Config grpo, int numGenerations, double temperature, int topK, double topP,
                         String answerField, String formatRegex, double formatWeight, int lengthLimit, double lengthPenalty, String dtype,
                         TrainerConfig trainer, LoraAdapters.Config lora, Map<String, Object> resolved) {

        public static Config from(ConfigTree c) {
            Path model = c.path("model"), data = c.path("data"), out = c.path("output_dir");
            double eps = c.number("epsilon", 0.2), epsHigh = c.number("epsilon_high", eps), beta = c.number("beta", 0.0);
            String lossType = c.string("loss_type", "dapo"), scale = c.string("scale_rewards", "group");
            int maxCompletion = c.integer("max_completion_length", 256), g = c.integer("num_generations", 8);
            double temperature = c.number("temperature", 1.0), topP = c.number("top_p", 1.0);
            int topK = c.integer("top_k", 0);
            String answer = c.string("reward_answer_field", "answer"), regex = c.string("reward_format_regex", null);
            double formatWeight = c.number("reward_format_weight", 0.5), lengthPenalty = c.number("reward_length_penalty", 0.0);
            int lengthLimit = c.integer("reward_length_limit", maxCompletion);
            String dtype = c.string("dtype", "fp32");
            TrainerConfig t = c.trainerConfig();
            LoraAdapters.Config lora = PeftSettings.from(c);
            c.rejectUnknownKeys();
            if (model == null) throw new IllegalArgumentException("key 'model': missing");
            if (data == null) throw new IllegalArgumentException("key 'data': missing");
            if (out == null) throw new IllegalArgumentException("key 'output_dir': missing");
            if (g < 2) throw new IllegalArgumentException("key 'num_generations': group-relative advantages need at least 2, got " + g);
            Grpo.Config grpo = c.validated(() -> new Grpo.Config(eps, epsHigh, beta, lossType, scale, maxCompletion));
            return new Config(model, data, out, grpo, g, temperature, topK, topP, answer, regex, formatWeight, lengthLimit, lengthPenalty, dtype, t, lora, c.resolved());
        }
    }

    public static Trainer.Result run(Config c, boolean resume, Trainer.Listener listener) throws IOException {
        Torch.init();
        DType dtype = DType.parse(c.dtype());
        RunDirectory run = RunDirectory.open(c.outputDir(), resume);
        Models.LoadedModel policy = Models.load(c.model(), dtype);
        if (c.lora() != null) LoraAdapters.attach(policy.model(), c.lora(), c.trainer().seed());
        TextAssets text = TextAssets.load(c.model()).orElse(null);
        CausalLM reference = null;
        try {
            List<GrpoTraining.Prompt> prompts = prompts(c.data(), text, policy.model().config().vocabSize());
            if (c.grpo().beta() > 0 && c.lora() == null) reference = Models.load(c.model(), dtype).model();
            List<RewardFunction> parts = new ArrayList<>(List.of(RewardFunction.exactAnswer(c.answerField())));
            List<Double> weights = new ArrayList<>(List.of(1.0));
            if (c.formatRegex() != null) { parts.add(RewardFunction.matches(c.formatRegex())); weights.add(c.formatWeight()); }
            if (c.lengthPenalty() > 0) { parts.add(RewardFunction.lengthPenalty(c.lengthLimit(), c.lengthPenalty())); weights.add(1.0); }
            List<Long> stops = policy.defaultStopIds();
            var sampling = new SamplingConfig(c.grpo().maxCompletionLength(), c.temperature(), c.topK(), c.topP(), c.trainer().seed(), stops, List.of(), true);
            var settings = new GrpoTraining.Settings(c.grpo(), c.numGenerations(), sampling, RewardFunction.weightedSum(parts, weights), reference,
                    text == null ? null : ids -> text.tokenizer().decode(ids, true));
            run.writeConfig(c.resolved());
            Map<String, Object> provenance = RunDirectory.provenance(c.trainer().seed(), c.data(), null, resume);
            provenance.put("initial_weights", RunDirectory.weightsHash(c.model()));
            provenance.put("prompts", prompts.size());
            run.writeProvenance(provenance);
            Trainer.Result r = new Trainer<>(policy.model(), new GrpoTraining(settings), prompts, List.of(), c.trainer(), run, GradientSync.SINGLE_PROCESS, listener, c.model()).train(resume);
            PeftSettings.saveResult(policy.model(), run.root(), c.model(), c.model(), policy.storedDtypes());
            return r;
        } finally {
            policy.close();
            if (reference != null) reference.close();
            if (text != null) text.close();
        }
    }

    /** Prompts as {@link PromptRecords} reads them; each keeps its whole record for the reward functions (e.g. 'answer'). */
    static List<GrpoTraining.Prompt> prompts(Path file, TextAssets text, int vocab) {
        List<GrpoTraining.Prompt> out = new ArrayList<>();
        for (PromptRecords.PromptRecord p : PromptRecords.read(file, text, vocab))
            out.add(new GrpoTraining.Prompt(p.ids(), JSON.convertValue(p.source(), new TypeReference<Map<String, Object>>() {}), p.text()));
        return out;
    }
}
