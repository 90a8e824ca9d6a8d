package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.data.TokenRecords;
import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.model.Models;
import io.tether.reward.EvalJson;
import io.tether.reward.RewardEvaluation;
import io.tether.reward.RewardRun;
import io.tether.reward.RewardSettings;
import io.tether.rollout.RewardScorer;
import io.tether.reward.RewardTraining;
import io.tether.run.ConfigTree;
import io.tether.run.RunConfig;
import io.tether.text.TextAssets;

@Command(name = "rm", mixinStandardHelpOptions = true, description = "Bradley-Terry reward models: train, score, evaluate.",
        subcommands = {RmCommand.Train.class, RmCommand.Score.class, RmCommand.Eval.class})
final class RmCommand implements Runnable {
    @ParentCommand TetherCommand root;

    @Override
    public void run() {
        root.spec.commandLine().getSubcommands().get("rm").usage(root.spec.commandLine().getOut());
    }

    static final ObjectMapper JSON = new ObjectMapper();

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = {"Train a reward model on preference pairs (token ids, or TRL text/chat formats with the model's tokenizer).",
                    "Starts from a causal LM (a fresh score head) or an existing reward model; saves HF *ForSequenceClassification."})
    static final class Train implements Callable<Integer> {
        @ParentCommand RmCommand rm;
        @Mixin RunOptions run;

        @Override
        public Integer call() throws IOException {
            rm.root.initEngine();
            ConfigTree settings = run.settings();
            RunConfig<RewardSettings> c = RewardSettings.config(settings);
            PrintWriter err = rm.root.spec.commandLine().getErr();
            RewardRun.Result r = RewardRun.run(c, run.resume, new ProgressBar(err, settings));
            Path model = c.spec().outputDir().resolve("model");
            if (c.method().kind() == RewardSettings.Kind.PROCESS) err.printf("%sdone: %d steps; held-out step accuracy %.4f; model saved to %s%n", ProgressBar.afterProgress(), r.training().steps(), r.rewardMean(), model);
            else err.printf("%sdone: %d steps; training rewards mean %.4f std %.4f; model saved to %s%n", ProgressBar.afterProgress(), r.training().steps(), r.rewardMean(), r.rewardStd(), model);
            if (r.eval() != null) rm.root.spec.commandLine().getOut().print(EvalJson.table(r.eval()));
            rm.root.spec.commandLine().getOut().flush();
            return 0;
        }
    }

    /** Records as pairs (chosen/rejected) or single sequences (prompt + completion). */
    static List<TokenRecords.TokenRecord> records(Path data, int vocab, TextAssets text) {
        TokenRecords.TextEncoder enc = text == null ? null : new TokenRecords.TextEncoder(text.tokenizer(), text.template(), true);
        return TokenRecords.read(data, vocab, enc);
    }

    @Command(name = "score", mixinStandardHelpOptions = true, description = "Reward of every record: chosen_reward/rejected_reward for pairs, reward otherwise.")
    static final class Score implements Callable<Integer> {
        @ParentCommand RmCommand rm;
        @Mixin SharedOptions.Model model;
        @Option(names = "--data", required = true) Path data;
        @Mixin JsonlOutput out;
        @Mixin SharedOptions.BatchSize batchSize;

        @Override
        public Integer call() throws IOException {
            rm.root.initEngine();
            int batchSize = this.batchSize.get();
            try (Models.LoadedModel m = Models.load(model.path, DType.F32); TextAssets text = TextAssets.load(model.path).orElse(null)) {
                if (m.model().config().isTokenClassifier()) return scoreSteps(rm, data, out, m, text);
                List<TokenRecords.TokenRecord> records = records(data, m.model().config().vocabSize(), text);
                List<long[]> seqs = new ArrayList<>();
                for (TokenRecords.TokenRecord r : records) {
                    if (r.isPreference()) {
                        seqs.add(r.withPrompt(r.chosen()));
                        seqs.add(r.withPrompt(r.rejected()));
                    } else {
                        seqs.add(r.withPrompt(r.completion()));
                    }
                }
                double[] scores = RewardScorer.score(m.model(), seqs, batchSize);
                JsonNode norm = m.model().config().json().get("tether_reward_normalization");
                List<String> lines = new ArrayList<>();
                int k = 0;
                for (TokenRecords.TokenRecord r : records) {
                    ObjectNode o = JsonlOutput.lineFor(r);
                    if (r.isPreference()) {
                        double c = scores[k++], rej = scores[k++];
                        o.put("chosen_reward", c).put("rejected_reward", rej).put("p_chosen", 1 / (1 + Math.exp(-(c - rej))));
                    } else {
                        double s = scores[k++];
                        o.put("reward", s);
                        if (norm != null && norm.path("std").asDouble() > 0)
                            o.put("normalized_reward", (s - norm.get("mean").asDouble()) / norm.get("std").asDouble());
                    }
                    lines.add(JSON.writeValueAsString(o));
                }
                out.write(rm.root, lines);
            }
            return 0;
        }
    }

    /** A process reward model: per-step P(good) for every stepwise record, and the weakest step's score. */
    static Integer scoreSteps(RmCommand rm, Path data, JsonlOutput out, Models.LoadedModel m, TextAssets text) throws IOException {
        if (text == null) throw new ConfigException("scoring steps needs a tokenizer.json beside the model");
        List<io.tether.reward.ProcessReward.Example> examples = new ArrayList<>();
        io.tether.data.JsonLines.forEach(data, (line, n) -> {
            if (!n.path("prompt").isTextual() || !n.path("completions").isArray())
                throw new io.tether.data.DataFormatException(data, line, "expected {\"prompt\": text, \"completions\": [steps]}");
            List<String> steps = new ArrayList<>();
            n.get("completions").forEach(x -> steps.add(x.asText()));
            examples.add(io.tether.reward.ProcessReward.tokenize(text.tokenizer(), n.get("prompt").asText(), steps, null, "\n", false));
        });
        List<String> outLines = new ArrayList<>();
        for (double[] scores : io.tether.reward.ProcessReward.stepScores(m.model(), examples)) {
            ObjectNode o = JSON.createObjectNode();
            var a = o.putArray("step_scores");
            double min = Double.POSITIVE_INFINITY;
            for (double v : scores) {
                a.add(v);
                min = Math.min(min, v);
            }
            o.put("min_step_score", min);
            outLines.add(JSON.writeValueAsString(o));
        }
        out.write(rm.root, outLines);
        return 0;
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Accuracy (overall and by slice), calibration and length correlation on preference pairs; a table on stdout, JSON with --out.")
    static final class Eval implements Callable<Integer> {
        @ParentCommand RmCommand rm;
        @Mixin SharedOptions.Model model;
        @Option(names = "--data", required = true) Path data;
        @Option(names = "--slice-field", defaultValue = "source") String sliceField;
        @Option(names = "--out", description = "write the report as JSON") Path out;
        @Mixin SharedOptions.BatchSize batchSize;

        @Override
        public Integer call() throws IOException {
            rm.root.initEngine();
            int batchSize = this.batchSize.get();
            try (Models.LoadedModel m = Models.load(model.path, DType.F32); TextAssets text = TextAssets.load(model.path).orElse(null)) {
                List<RewardTraining.Pair> pairs = new ArrayList<>();
                for (TokenRecords.TokenRecord r : records(data, m.model().config().vocabSize(), text)) {
                    if (!r.isPreference()) throw new io.tether.data.DataFormatException(data, r.line(), "evaluation needs preference records (chosen and rejected)");
                    String slice = r.source().has(sliceField) ? r.source().get(sliceField).asText() : null;
                    pairs.add(new RewardTraining.Pair(r.withPrompt(r.chosen()), r.withPrompt(r.rejected()), r.source().path("margin").asDouble(0), slice));
                }
                RewardEvaluation.Report report = RewardEvaluation.evaluate(m.model(), pairs, batchSize, 10);
                if (out != null) AtomicFiles.write(out, w -> w.write(EvalJson.of(report)));
                rm.root.spec.commandLine().getOut().print(EvalJson.table(report));
                rm.root.spec.commandLine().getOut().flush();
            }
            return 0;
        }
    }
}
