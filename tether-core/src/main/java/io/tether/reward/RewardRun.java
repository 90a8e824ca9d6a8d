package io.tether.reward;

import io.tether.rollout.RewardScorer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.DataFormatException;
import io.tether.data.JsonLines;
import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.text.TextAssets;
import io.tether.run.ConfigTree;
import io.tether.run.DataSettings;
import io.tether.run.Provenance;
import io.tether.train.DataSplit;
import io.tether.train.GradientSync;
import io.tether.run.PeftSettings;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

/** {@code tether rm train}: a Bradley-Terry reward model on preference pairs, saved in HF sequence-classification layout. */
public final class RewardRun {
    private RewardRun() {}

    /**
     * @param model                    an HF causal LM (gets a fresh score head) or an existing reward model directory
     * @param centerRewardsCoefficient TRL {@code center_rewards_coefficient} (0 disables)
     * @param sliceField               record field that names a pair's slice in evaluation (default "source")
     */
    public record Config(Path model, Path data, Path evalData, double evalFraction, Path outputDir, DataSettings reading,
                         double centerRewardsCoefficient, String sliceField, String dtype, TrainerConfig trainer,
                         boolean process, String stepSeparator, boolean trainOnLastStepOnly, io.tether.model.LoraAdapters.Config lora,
                         Map<String, Object> resolved) {
        public Config {
            if (model == null) throw new ConfigException("key 'model': missing");
            if (data == null) throw new ConfigException("key 'data': missing");
            if (outputDir == null) throw new ConfigException("key 'output_dir': missing");
            if (!(evalFraction >= 0 && evalFraction < 1)) throw new ConfigException("key 'eval_fraction': must be in [0, 1)");
            if (centerRewardsCoefficient < 0) throw new ConfigException("key 'center_rewards_coefficient': must be >= 0");
            DType.parse(dtype);
        }

        public static Config from(ConfigTree c) {
            Path model = c.path("model"), data = c.path("data"), evalData = c.path("eval_data"), out = c.path("output_dir");
            double evalFraction = c.number("eval_fraction", 0.1);
            // TRL's RewardTrainer (v0.24) leaves out pairs longer than max_length; keep_start/keep_end truncate them instead.
            DataSettings reading = DataSettings.from(c, Truncation.Mode.DROP, true, false);
            double center = c.number("center_rewards_coefficient", 0.0);
            String slice = c.string("slice_field", "source"), dtype = c.string("dtype", "fp32");
            String kind = c.string("kind", "bradley_terry");
            if (!kind.equals("bradley_terry") && !kind.equals("process"))
                throw new ConfigException("key 'kind': expected bradley_terry or process, got '" + kind + "'");
            String separator = c.string("step_separator", "\n");
            boolean lastOnly = c.bool("train_on_last_step_only", false);
            TrainerConfig t = c.trainerConfig(kind.equals("process") ? io.tether.train.LearningRateDefault.PRM : io.tether.train.LearningRateDefault.REWARD);
            io.tether.model.LoraAdapters.Config lora = io.tether.run.PeftSettings.from(c);
            c.rejectUnknownKeys();
            Map<String, Object> resolved = c.resolved();
            if (evalData != null) resolved.put("eval_fraction", 0.0);   // eval_data replaces the default split
            return c.validated(() -> new Config(model, data, evalData, evalData == null ? evalFraction : 0, out, reading, center, slice, dtype, t,
                    kind.equals("process"), separator, lastOnly, lora, resolved));
        }
    }

    /** At most this many training pairs (a seeded sample) give the reward normalisation statistics. */
    static final int NORMALIZATION_PAIRS = 1024;

    /** The training result and the held-out evaluation (null without eval pairs). */
    public record Result(Trainer.Result training, RewardEvaluation.Report eval, double rewardMean, double rewardStd) {}

    public static Result run(Config c, boolean resume, Trainer.Listener listener) throws IOException {
        Torch.init();
        if (c.process()) return runProcess(c, resume, listener);
        DType dtype = DType.parse(c.dtype());
        RunDirectory run = RunDirectory.open(c.outputDir(), resume);
        // The data first, read and checked as `tether data validate` reads it: a bad record stops the run before any
        // model is loaded or any file written.
        io.tether.model.ModelConfig modelConfig = DataSettings.modelConfig(c.model());
        Truncation truncation = c.reading().truncation(modelConfig.maxPositionEmbeddings(), false);
        TextAssets text = TextAssets.load(c.model()).orElse(null);
        TokenRecords.Read<TokenRecords.TokenRecord> records, evalRecords;
        List<RewardTraining.Pair> all, fromFile;
        try {
            TokenRecords.TextEncoder encoder = text == null ? null : new TokenRecords.TextEncoder(text.tokenizer(), text.template(), true);
            int vocab = modelConfig.vocabSize();
            records = TokenRecords.read(c.data(), vocab, encoder, TokenRecords.Use.PAIRS, c.reading().invalidRecords(), null);
            evalRecords = c.evalData() == null ? null : TokenRecords.read(c.evalData(), vocab, encoder, TokenRecords.Use.PAIRS, c.reading().invalidRecords(), null);
            all = pairs(records.records(), c, truncation);
            fromFile = evalRecords == null ? null : pairs(evalRecords.records(), c, truncation);
        } catch (RuntimeException e) {
            if (text != null) text.close();
            throw e;
        }
        Models.LoadedModel loaded = Models.load(c.model(), dtype);
        CausalLM model;
        if (loaded.model().config().isClassifier()) {
            model = loaded.model();   // already a reward model: train it further
        } else {
            model = Models.withRewardHead(loaded.model(), c.trainer().seed());
            loaded.close();
        }
        if (c.lora() != null) io.tether.model.LoraAdapters.attach(model, c.lora(), c.trainer().seed());
        try {
            if (all.isEmpty()) throw new DataFormatException(c.data(), 0, "every pair is longer than max_length " + truncation.maxLength()
                    + " and was left out (truncation_mode: drop, as TRL's RewardTrainer); set truncation_mode: keep_start to truncate them instead");
            List<List<RewardTraining.Pair>> split = DataSplit.trainAndHeldOut(all, fromFile, c.evalFraction(), c.trainer().seed());
            List<RewardTraining.Pair> train = split.get(0), eval = split.get(1);
            boolean margins = train.stream().anyMatch(p -> p.margin() != 0);
            Map<String, Object> provenance = Provenance.start(c.trainer().seed(), c.data(), c.evalData(), resume);
            Map<Path, TokenRecords.Read<?>> reads = new java.util.LinkedHashMap<>();
            reads.put(c.data(), records);
            if (evalRecords != null) reads.put(c.evalData(), evalRecords);
            DataSettings.report(listener, provenance, c.reading(), truncation, reads);
            run.writeConfig(DataSettings.resolved(c.resolved(), truncation, true));
            provenance.put("base_model", c.model().toString());
            provenance.put("train_pairs", train.size());
            provenance.put("eval_pairs", eval.size());
            provenance.put("margins", margins);
            run.writeProvenance(provenance);
            Trainer<RewardTraining.Pair> trainer = new Trainer<>(model, new RewardTraining(c.centerRewardsCoefficient(), margins), train, eval,
                    c.trainer(), run, GradientSync.SINGLE_PROCESS, listener, c.model());
            Trainer.Result result = trainer.train(resume);
            // Normalisation statistics of the training rewards travel with the model (config.json), so that scores
            // from different runs can be put on one scale. A mean and a std need a sample, not every pair: scoring all
            // 5,400 pairs of the refund demo took two minutes, longer than training; 1,024 pairs pin them to ~3%.
            List<RewardTraining.Pair> sample = new ArrayList<>(train);
            if (sample.size() > NORMALIZATION_PAIRS) {
                java.util.Collections.shuffle(sample, new java.util.Random(c.trainer().seed()));
                sample = sample.subList(0, NORMALIZATION_PAIRS);
            }
            List<long[]> seqs = new ArrayList<>();
            for (RewardTraining.Pair p : sample) {
                seqs.add(p.chosen());
                seqs.add(p.rejected());
            }
            double[] r = RewardScorer.score(model, seqs, c.trainer().perDeviceTrainBatchSize());
            double mean = 0, var = 0;
            for (double v : r) mean += v;
            mean /= r.length;
            for (double v : r) var += (v - mean) * (v - mean);
            double std = Math.sqrt(var / r.length);
            ObjectNode norm = model.config().json().putObject("tether_reward_normalization");
            norm.put("mean", mean);
            norm.put("std", std);
            norm.put("pairs", sample.size());
            PeftSettings.saveResult(model, run.root(), c.model(), c.model(), null);
            RewardEvaluation.Report report = eval.isEmpty() ? null : RewardEvaluation.evaluate(model, eval, c.trainer().perDeviceTrainBatchSize(), 10);
            if (report != null) io.tether.engine.AtomicFiles.write(run.root().resolve("eval.json"), w -> w.write(EvalJson.of(report)));
            return new Result(result, report, mean, std);
        } finally {
            model.close();
            if (text != null) text.close();
        }
    }

    /**
     * A process reward model on TRL's stepwise-supervision records {@code {"prompt", "completions": [steps],
     * "labels": [bool]}}; held-out step accuracy is reported as the evaluation's accuracy.
     */
    static Result runProcess(Config c, boolean resume, Trainer.Listener listener) throws IOException {
        DType dtype = DType.parse(c.dtype());
        RunDirectory run = RunDirectory.open(c.outputDir(), resume);
        TextAssets text = TextAssets.load(c.model()).orElseThrow(() -> new ConfigException("key 'model': process reward models need a tokenizer.json in " + c.model()));
        Models.LoadedModel loaded = Models.load(c.model(), dtype);
        CausalLM model;
        if (loaded.model().config().isTokenClassifier()) {
            model = loaded.model();
        } else {
            model = Models.withProcessRewardHead(loaded.model(), c.trainer().seed());
            loaded.close();
        }
        if (c.lora() != null) io.tether.model.LoraAdapters.attach(model, c.lora(), c.trainer().seed());
        try {
            List<List<ProcessReward.Example>> split = DataSplit.trainAndHeldOut(stepwise(c.data(), text, c),
                    c.evalData() == null ? null : stepwise(c.evalData(), text, c), c.evalFraction(), c.trainer().seed());
            List<ProcessReward.Example> all = split.get(0), eval = split.get(1);
            run.writeConfig(c.resolved());
            Map<String, Object> provenance = Provenance.start(c.trainer().seed(), c.data(), c.evalData(), resume);
            provenance.put("base_model", c.model().toString());
            provenance.put("train_examples", all.size());
            provenance.put("eval_examples", eval.size());
            run.writeProvenance(provenance);
            Trainer.Result result = new Trainer<>(model, new ProcessReward(), all, eval, c.trainer(), run, GradientSync.SINGLE_PROCESS, listener, c.model()).train(resume);
            PeftSettings.saveResult(model, run.root(), c.model(), c.model(), null);
            double accuracy = Double.NaN;
            if (!eval.isEmpty()) {
                double correct = 0, total = 0;
                List<double[]> scores = ProcessReward.stepScores(model, eval);
                for (int i = 0; i < eval.size(); i++)
                    for (int s = 0; s < scores.get(i).length; s++) {
                        correct += (scores.get(i)[s] > 0.5) == (eval.get(i).labels()[s] == 1) ? 1 : 0;
                        total++;
                    }
                accuracy = correct / total;
                double acc = accuracy;
                io.tether.engine.AtomicFiles.write(run.root().resolve("eval.json"), w -> w.write("{\"step_accuracy\": " + acc + ", \"examples\": " + eval.size() + "}\n"));
            }
            return new Result(result, null, accuracy, Double.NaN);
        } finally {
            model.close();
            text.close();
        }
    }

    /** Stepwise records, tokenized as TRL's PRMTrainer does; errors name file and line. */
    static List<ProcessReward.Example> stepwise(Path file, TextAssets text, Config c) {
        List<ProcessReward.Example> out = new ArrayList<>();
        JsonLines.forEach(file, (line, n) -> {
            if (!n.path("prompt").isTextual() || !n.path("completions").isArray() || !n.path("labels").isArray())
                throw new DataFormatException(file, line, "expected {\"prompt\": text, \"completions\": [steps], \"labels\": [true/false per step]}");
            List<String> steps = new ArrayList<>();
            n.get("completions").forEach(x -> steps.add(x.asText()));
            List<Boolean> labels = new ArrayList<>();
            n.get("labels").forEach(x -> labels.add(x.asBoolean()));
            if (steps.size() != labels.size() || steps.isEmpty())
                throw new DataFormatException(file, line, steps.size() + " steps but " + labels.size() + " labels");
            ProcessReward.Example e = ProcessReward.tokenize(text.tokenizer(), n.get("prompt").asText(), steps, labels, c.stepSeparator(), c.trainOnLastStepOnly());
            int maxLength = c.reading().maxLength() > 0 ? c.reading().maxLength() : 1024;
            if (e.ids().length > maxLength) throw new DataFormatException(file, line, e.ids().length + " tokens exceed max_length " + maxLength);
            out.add(e);
        });
        if (out.isEmpty()) throw new DataFormatException(file, 0, "no records");
        return out;
    }

    /**
     * Preference records as full chosen and rejected sequences within max_length: a pair with a side over it is left
     * out (truncation_mode drop, TRL's RewardTrainer filter) or truncated (keep_start, keep_end); the truncation counts.
     */
    static List<RewardTraining.Pair> pairs(List<TokenRecords.TokenRecord> records, Config c, Truncation t) {
        List<RewardTraining.Pair> out = new ArrayList<>();
        for (TokenRecords.TokenRecord r : records) {
            double margin = r.source().path("margin").asDouble(0);
            String slice = r.source().has(c.sliceField()) ? r.source().get(c.sliceField()).asText() : null;
            long[] chosen = r.withPrompt(r.chosen()), rejected = r.withPrompt(r.rejected());
            if (t.mode() == Truncation.Mode.DROP && (chosen.length > t.maxLength() || rejected.length > t.maxLength())) {
                t.sequence(chosen.length > t.maxLength() ? chosen : rejected);   // counts the pair as dropped
                continue;
            }
            out.add(new RewardTraining.Pair(t.sequence(chosen), t.sequence(rejected), margin, slice));
        }
        return out;
    }
}
