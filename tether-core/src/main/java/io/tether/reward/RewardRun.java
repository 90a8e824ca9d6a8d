package io.tether.reward;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.DataFormatException;
import io.tether.data.JsonLines;
import io.tether.data.Problems;
import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.rollout.RewardScorer;
import io.tether.run.RunConfig;
import io.tether.run.RunSession;
import io.tether.run.RunSpec;
import io.tether.text.TextAssets;
import io.tether.train.DataSplit;
import io.tether.train.Trainer;

/** {@code tether rm train}: a Bradley-Terry reward model on preference pairs, saved in HF sequence-classification layout. */
public final class RewardRun {
    private RewardRun() {}

    /** At most this many training pairs (a seeded sample) give the reward normalisation statistics. */
    static final int NORMALIZATION_PAIRS = 1024;

    /** The training result and the held-out evaluation (null without eval pairs). */
    public record Result(Trainer.Result training, RewardEvaluation.Report eval, double rewardMean, double rewardStd) {}

    public static Result run(RunSpec spec, RewardSettings rm, boolean resume, Trainer.Listener listener) throws IOException {
        return run(new RunConfig<>(spec, rm), resume, listener);
    }

    public static Result run(RunConfig<RewardSettings> c, boolean resume, Trainer.Listener listener) throws IOException {
        if (c.method().kind() == RewardSettings.Kind.PROCESS) return runProcess(c, resume, listener);
        RunSpec spec = c.spec();
        RewardSettings rm = c.method();
        long seed = spec.trainer().seed();
        try (RunSession s = RunSession.open(c, resume, listener)) {
            // The data first, read and checked as `tether data validate` reads it: a bad record stops the run before any
            // model is loaded or any file written.
            Truncation truncation = s.truncation(false);
            var records = s.read(spec.data(), TokenRecords.Use.PAIRS);
            var evalRecords = spec.evalData() == null ? null : s.read(spec.evalData(), TokenRecords.Use.PAIRS);
            List<RewardTraining.Pair> all = pairs(records.records(), rm, truncation);
            List<RewardTraining.Pair> fromFile = evalRecords == null ? null : pairs(evalRecords.records(), rm, truncation);
            if (all.isEmpty()) throw new DataFormatException(spec.data(), 0, "every pair is longer than max_length " + truncation.maxLength()
                    + " and was left out (truncation_mode: drop, as TRL's RewardTrainer); set truncation_mode: keep_start to truncate them instead");
            // A causal LM gets a fresh score head; an existing reward model is trained further.
            CausalLM model = s.loadPolicy(m -> m.config().isClassifier() ? m : replaced(m, Models.withRewardHead(m, seed))).model();
            List<List<RewardTraining.Pair>> split = DataSplit.trainAndHeldOut(all, fromFile, spec.evalFraction(), seed);
            List<RewardTraining.Pair> train = split.get(0), eval = split.get(1);
            boolean margins = train.stream().anyMatch(p -> p.margin() != 0);
            s.provenance().put("base_model", spec.model().toString());
            s.provenance().put("train_pairs", train.size());
            s.provenance().put("eval_pairs", eval.size());
            s.provenance().put("margins", margins);
            s.writeRecords(true);
            Trainer.Result result = s.trainer(model, new RewardTraining(rm.centerRewardsCoefficient(), margins), train, eval).train(resume);
            // Normalisation statistics of the training rewards travel with the model (config.json), so that scores
            // from different runs can be put on one scale. A mean and a std need a sample, not every pair: scoring all
            // 5,400 pairs of the refund demo took two minutes, longer than training; 1,024 pairs pin them to ~3%.
            List<RewardTraining.Pair> sample = new ArrayList<>(train);
            if (sample.size() > NORMALIZATION_PAIRS) {
                java.util.Collections.shuffle(sample, new java.util.Random(seed));
                sample = sample.subList(0, NORMALIZATION_PAIRS);
            }
            List<long[]> seqs = new ArrayList<>();
            for (RewardTraining.Pair p : sample) {
                seqs.add(p.chosen());
                seqs.add(p.rejected());
            }
            double[] r = RewardScorer.score(model, seqs, spec.trainer().perDeviceTrainBatchSize());
            double mean = 0, var = 0;
            for (double v : r) mean += v;
            mean /= r.length;
            for (double v : r) var += (v - mean) * (v - mean);
            double std = Math.sqrt(var / r.length);
            ObjectNode norm = model.config().json().putObject("tether_reward_normalization");
            norm.put("mean", mean);
            norm.put("std", std);
            norm.put("pairs", sample.size());
            s.saveResult(model, null);
            RewardEvaluation.Report report = eval.isEmpty() ? null : RewardEvaluation.evaluate(model, eval, spec.trainer().perDeviceTrainBatchSize(), 10);
            if (report != null) io.tether.engine.AtomicFiles.write(s.directory().root().resolve("eval.json"), w -> w.write(EvalJson.of(report)));
            return new Result(result, report, mean, std);
        }
    }

    /**
     * A process reward model on TRL's stepwise-supervision records {@code {"prompt", "completions": [steps],
     * "labels": [bool]}}; held-out step accuracy is reported as the evaluation's accuracy.
     */
    static Result runProcess(RunConfig<RewardSettings> c, boolean resume, Trainer.Listener listener) throws IOException {
        RunSpec spec = c.spec();
        RewardSettings rm = c.method();
        long seed = spec.trainer().seed();
        try (RunSession s = RunSession.open(c, resume, listener)) {
            TextAssets text = s.text();
            if (text == null) throw new ConfigException("key 'model': process reward models need a tokenizer.json in " + spec.model());
            // The stepwise records first (TRL's format, read by their own reader), before any model is loaded.
            var records = s.recordRead(spec.data(), stepwise(spec.data(), text, spec, rm));
            var evalRecords = spec.evalData() == null ? null : s.recordRead(spec.evalData(), stepwise(spec.evalData(), text, spec, rm));
            CausalLM model = s.loadPolicy(m -> m.config().isTokenClassifier() ? m : replaced(m, Models.withProcessRewardHead(m, seed))).model();
            List<List<ProcessReward.Example>> split = DataSplit.trainAndHeldOut(records.records(),
                    evalRecords == null ? null : evalRecords.records(), spec.evalFraction(), seed);
            List<ProcessReward.Example> all = split.get(0), eval = split.get(1);
            s.provenance().put("base_model", spec.model().toString());
            s.provenance().put("stepwise_records", records.records().size() + (evalRecords == null ? 0 : evalRecords.records().size()));
            s.provenance().put("train_examples", all.size());
            s.provenance().put("eval_examples", eval.size());
            s.provenance().put("train_labelled_steps", new ProcessReward().units(all));
            s.writeRecords(false);
            Trainer.Result result = s.trainer(model, new ProcessReward(), all, eval).train(resume);
            s.saveResult(model, null);
            double accuracy = Double.NaN;
            if (!eval.isEmpty()) {
                double correct = 0, total = 0;
                List<double[]> scores = ProcessReward.stepScores(model, eval);
                for (int i = 0; i < eval.size(); i++)
                    for (int k = 0; k < scores.get(i).length; k++) {
                        correct += (scores.get(i)[k] > 0.5) == (eval.get(i).labels()[k] == 1) ? 1 : 0;
                        total++;
                    }
                accuracy = correct / total;
                double acc = accuracy;
                io.tether.engine.AtomicFiles.write(s.directory().root().resolve("eval.json"), w -> w.write("{\"step_accuracy\": " + acc + ", \"examples\": " + eval.size() + "}\n"));
            }
            return new Result(result, null, accuracy, Double.NaN);
        }
    }

    /** {@code converted} in place of {@code lm}, which is closed: the session keeps only the model it trains. */
    private static CausalLM replaced(CausalLM lm, CausalLM converted) {
        lm.close();
        return converted;
    }

    /**
     * Stepwise records, tokenized as TRL's PRMTrainer does; errors name file and line. The first bad record stops the
     * read (nothing is skipped), so the read reports no problems.
     */
    static TokenRecords.Read<ProcessReward.Example> stepwise(Path file, TextAssets text, RunSpec spec, RewardSettings c) {
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
            int maxLength = spec.reading().maxLength() > 0 ? spec.reading().maxLength() : 1024;
            if (e.ids().length > maxLength) throw new DataFormatException(file, line, e.ids().length + " tokens exceed max_length " + maxLength);
            out.add(e);
        });
        if (out.isEmpty()) throw new DataFormatException(file, 0, "no records");
        return new TokenRecords.Read<>(out, Problems.failFast(), 0);
    }

    /**
     * Preference records as full chosen and rejected sequences within max_length: a pair with a side over it is left
     * out (truncation_mode drop, TRL's RewardTrainer filter) or truncated (keep_start, keep_end); the truncation counts.
     */
    static List<RewardTraining.Pair> pairs(List<TokenRecords.TokenRecord> records, RewardSettings c, Truncation t) {
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
