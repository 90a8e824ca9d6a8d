package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.eval.HeadToHead;
import io.tether.eval.ReleaseGate;
import io.tether.eval.WinRate;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.rollout.OnlinePrompt;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import io.tether.text.TextAssets;

/** {@code tether eval}: a candidate against a baseline on held-out prompts, judged pairwise, with the release gate. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Head to head on held-out prompts: one completion per prompt from each model (same seed), judged pairwise by a",
                "verifiable answer (--answer-field) or a reward model (--reward-model); win rate with its 95% interval, mean lengths,",
                "KL of the candidate to the baseline, proxy scores, and the release gate (win delta > 0, length delta < 20 tokens)."})
final class EvalCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Option(names = "--model", required = true, description = "the candidate checkpoint") Path model;
    @Option(names = "--baseline", required = true, description = "the checkpoint to beat (e.g. the SFT model)") Path baseline;
    @Option(names = "--data", required = true, description = "prompts JSONL ('prompt' text or messages, or 'prompt_ids')") Path data;
    @Option(names = "--answer-field", description = "judge by exact answer against this record field (GSM8K's '#### n')") String answerField;
    @Option(names = "--reward-model", description = "judge by this reward model's scores (and report them as the proxy)") Path rewardModel;
    @Option(names = "--judge", description = "refund-rubric: the refund world's gold rubric, reading each case from its prompt record "
            + "(tether world data's grpo files); overrides the reward model as judge") String judgeName;
    @Option(names = "--max-new-tokens", defaultValue = "64") int maxNewTokens;
    @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (default)") double temperature;
    @Mixin SharedOptions.SamplingSeed seed;
    @Option(names = "--limit", defaultValue = "0", description = "evaluate the first N prompts (0: all)") int limit;
    @Mixin SharedOptions.BatchSize batchSize;
    @Option(names = "--out", description = "also write the result as JSON") Path out;
    @Option(names = "--samples", description = "also write every prompt's two completions (and their scores) as JSONL") Path samples;
    @Option(names = "--fail-on-gate", description = "exit 1 when the release gate fails") boolean failOnGate;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        if (answerField == null && rewardModel == null && judgeName == null)
            throw new ConfigException("choose a judge: --answer-field, --reward-model or --judge refund-rubric");
        if (judgeName != null && !judgeName.equals("refund-rubric")) throw new ConfigException("--judge: only 'refund-rubric' is built in, got '" + judgeName + "'");
        int batchSize = this.batchSize.get();
        // Evaluation only reads the models: frozen loads, fp32 as before.
        try (Models.LoadedModel candidate = Models.loadFrozen(model, DType.F32); Models.LoadedModel base = Models.loadFrozen(baseline, DType.F32);
             TextAssets text = TextAssets.load(model).orElse(null);
             CausalLM rm = rewardModel == null ? null : Models.loadFrozen(rewardModel, DType.F32).model()) {
            if (candidate.model().config().vocabSize() != base.model().config().vocabSize())
                throw new ConfigException(baseline + ": vocabulary of " + base.model().config().vocabSize() + " tokens, the candidate has "
                        + candidate.model().config().vocabSize());
            List<OnlinePrompt> prompts = OnlinePrompt.read(data, text, candidate.model().config().vocabSize());
            if (limit > 0 && prompts.size() > limit) prompts = prompts.subList(0, limit);
            java.util.function.Function<long[], String> decoder = text == null ? null : ids -> text.tokenizer().decode(ids, true);
            Rollouts.Scorer proxy = rm == null ? null : Rollouts.rewardModel(rm, 16);
            // Judged by the reward model alone (no --answer-field or --judge): null, so each completion is scored once, as the proxy.
            RewardFunction rubric = judgeName != null ? new io.tether.scenario.GoldRubric().asReward() : null;
            PairwiseJudge judge = rubric != null ? HeadToHead.byScore(Rollouts.of(rubric, decoder))
                    : answerField != null ? HeadToHead.byScore(Rollouts.of(RewardFunction.exactAnswer(answerField), decoder)) : null;
            SamplingConfig sampling = new SamplingConfig(maxNewTokens, temperature, 0, 1.0, seed.value, candidate.defaultStopIds(), List.of(), true);
            HeadToHead.Result r = HeadToHead.compare(candidate.model(), base.model(), prompts, judge, sampling, decoder, proxy, batchSize);
            ReleaseGate.Verdict gate = ReleaseGate.SEED.check(r.winRate(), r.lengthDelta(), List.of());
            WinRate w = r.winRate();
            double[] ci = w.interval95();
            PrintWriter o = root.spec.commandLine().getOut();
            o.printf("prompts %d, judge %s%n", w.total(), judgeName != null ? "the refund world's gold rubric"
                    : answerField != null ? "exact answer ('" + answerField + "')" : "reward model " + rewardModel);
            o.printf("win rate %.3f (95%% CI %.3f-%.3f): %d wins, %d ties, %d losses%n", w.rate(), ci[0], ci[1], w.wins(), w.ties(), w.losses());
            o.printf("mean length %.1f tokens vs %.1f (%+.1f); KL to baseline %.3f%n", r.candidateLength(), r.baselineLength(), r.lengthDelta(), r.klToBaseline());
            if (rm != null) o.printf("reward-model score %.4f vs %.4f%n", r.candidateScore(), r.baselineScore());
            o.println("release gate: " + gate.line());
            o.flush();
            if (out != null) {
                ObjectMapper json = new ObjectMapper();
                ObjectNode n = json.createObjectNode();
                n.put("model", model.toString());
                n.put("baseline", baseline.toString());
                n.put("prompts", w.total());
                n.put("wins", w.wins());
                n.put("ties", w.ties());
                n.put("losses", w.losses());
                n.put("win_rate", w.rate());
                n.put("win_rate_ci_low", ci[0]);
                n.put("win_rate_ci_high", ci[1]);
                n.put("mean_length", r.candidateLength());
                n.put("baseline_mean_length", r.baselineLength());
                n.put("kl_to_baseline", r.klToBaseline());
                if (rm != null) {
                    n.put("reward_model_score", r.candidateScore());
                    n.put("baseline_reward_model_score", r.baselineScore());
                }
                n.put("gate", gate.pass() ? "PASS" : "FAIL");
                var reasons = n.putArray("gate_reasons");
                gate.reasons().forEach(reasons::add);
                AtomicFiles.write(out, wr -> wr.write(json.writerWithDefaultPrettyPrinter().writeValueAsString(n) + "\n"));
            }
            if (samples != null) writeSamples(samples, r, decoder, rubric);
            return failOnGate && !gate.pass() ? 1 : 0;
        }
    }

    /** One row per prompt: its text, both completions, the proxy's scores and, judged by the rubric, both gold scores as the judge saw them. */
    private static void writeSamples(Path file, HeadToHead.Result r, java.util.function.Function<long[], String> decoder, RewardFunction rubric)
            throws IOException {
        ObjectMapper json = new ObjectMapper();
        AtomicFiles.write(file, w -> {
            for (int i = 0; i < r.candidateSamples().size(); i++) {
                OnlinePrompt p = r.candidateSamples().get(i);
                var a = p.experiences().get(0);
                var b = r.baselineSamples().get(i).experiences().get(0);
                ObjectNode n = json.createObjectNode();
                n.put("prompt", p.text());
                String ca = decoder == null ? "" : decoder.apply(a.tokens), cb = decoder == null ? "" : decoder.apply(b.tokens);
                n.put("candidate", ca);
                n.put("baseline", cb);
                if (!Double.isNaN(a.score)) n.put("candidate_proxy", a.score);
                if (!Double.isNaN(b.score)) n.put("baseline_proxy", b.score);
                if (rubric != null) {
                    n.put("candidate_gold", rubric.score(p.text(), ca, a.tokens, p.record()).orElse(Double.NaN));
                    n.put("baseline_gold", rubric.score(p.text(), cb, b.tokens, p.record()).orElse(Double.NaN));
                }
                w.write(json.writeValueAsString(n));
                w.write('\n');
            }
        });
    }
}
