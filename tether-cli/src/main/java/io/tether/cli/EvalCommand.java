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
import io.tether.rollout.LocalModelJudge;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import io.tether.text.TextAssets;

/** {@code tether eval}: a candidate against a baseline on held-out prompts, judged pairwise, with the release gate. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Head to head on held-out prompts: one completion per prompt from each model (same seed), judged pairwise by a",
                "verifiable answer (--answer-field), a reward model (--reward-model), the refund rubric or a local model (--judge); win rate with its 95% interval, mean lengths,",
                "KL of the candidate to the baseline, proxy scores, and the release gate (win delta > 0, length delta < 20 tokens)."})
final class EvalCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Option(names = "--model", required = true, description = "the candidate checkpoint") Path model;
    @Option(names = "--baseline", required = true, description = "the checkpoint to beat (e.g. the SFT model)") Path baseline;
    @Option(names = "--data", required = true, description = "prompts JSONL ('prompt' text or messages, or 'prompt_ids')") Path data;
    @Option(names = "--answer-field", description = "judge by exact answer against this record field (GSM8K's '#### n')") String answerField;
    @Option(names = "--reward-model", description = "judge by this reward model's scores (and report them as the proxy)") Path rewardModel;
    @Option(names = "--judge", description = {"refund-rubric: the refund world's gold rubric, reading each case from its prompt record "
            + "(tether world data's grpo files); model:DIR: a local causal LM asked 'Which answer is better? Answer with A or B.' in both orders, "
            + "read from its next-token log-probs (position bias reported); either overrides the reward model as judge"}) String judgeName;
    @Option(names = "--judge-prompt", description = "with --judge model:DIR: a judging prompt file with {prompt}, {answer_a} and {answer_b} once each "
            + "(default: the built-in prompt)") Path judgePrompt;
    @Option(names = "--judge-margin", defaultValue = "0", description = "with --judge model:DIR: a tie when |P(candidate better) - 0.5| <= this "
            + "(default 0: only an exact 0.5)") double judgeMargin;
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
            throw new ConfigException("choose a judge: --answer-field, --reward-model, --judge refund-rubric or --judge model:DIR");
        boolean modelJudge = judgeName != null && judgeName.startsWith(MODEL_JUDGE);
        if (judgeName != null && !judgeName.equals("refund-rubric") && !modelJudge)
            throw new ConfigException("--judge: 'refund-rubric' or 'model:DIR', got '" + judgeName + "'");
        if (!modelJudge && (judgePrompt != null || judgeMargin != 0)) throw new ConfigException("--judge-prompt and --judge-margin need --judge model:DIR");
        int batchSize = this.batchSize.get();
        // The judge first: a wrong path stops the run before any policy is loaded or sampled.
        // Evaluation only reads the models: frozen loads, fp32 as before.
        try (LocalModelJudge llmJudge = modelJudge ? openJudge() : null;
             Models.LoadedModel candidate = Models.loadFrozen(model, DType.F32); Models.LoadedModel base = Models.loadFrozen(baseline, DType.F32);
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
            if (llmJudge != null && decoder == null)
                throw new ConfigException("--judge " + judgeName + ": the judge reads text, and " + model + " has no tokenizer.json to decode completions with");
            RewardFunction rubric = judgeName != null && !modelJudge ? new io.tether.scenario.GoldRubric().asReward() : null;
            PairwiseJudge judge = llmJudge != null ? llmJudge : rubric != null ? HeadToHead.byScore(Rollouts.of(rubric, decoder))
                    : answerField != null ? HeadToHead.byScore(Rollouts.of(RewardFunction.exactAnswer(answerField), decoder)) : null;
            SamplingConfig sampling = new SamplingConfig(maxNewTokens, temperature, 0, 1.0, seed.value, candidate.defaultStopIds(), List.of(), true);
            HeadToHead.Result r = HeadToHead.compare(candidate.model(), base.model(), prompts, judge, sampling, decoder, proxy, batchSize);
            ReleaseGate.Verdict gate = ReleaseGate.SEED.check(r.winRate(), r.lengthDelta(), List.of());
            WinRate w = r.winRate();
            double[] ci = w.interval95();
            PrintWriter o = root.spec.commandLine().getOut();
            o.printf("prompts %d, judge %s%n", w.total(), llmJudge != null ? "model " + judgeName.substring(MODEL_JUDGE.length()) + " (both orders)"
                    : judgeName != null ? "the refund world's gold rubric"
                    : answerField != null ? "exact answer ('" + answerField + "')" : "reward model " + rewardModel);
            o.printf("win rate %.3f (95%% CI %.3f-%.3f): %d wins, %d ties, %d losses%n", w.rate(), ci[0], ci[1], w.wins(), w.ties(), w.losses());
            o.printf("mean length %.1f tokens vs %.1f (%+.1f); KL to baseline %.3f%n", r.candidateLength(), r.baselineLength(), r.lengthDelta(), r.klToBaseline());
            if (llmJudge != null) o.printf("judge position bias %.3f (share of pairs whose two orders named different winners)%n", llmJudge.positionBias());
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
                if (judgeName != null) n.put("judge", judgeName);
                if (llmJudge != null) {
                    n.put("judge_margin", judgeMargin);
                    n.put("position_bias", llmJudge.positionBias());
                }
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

    static final String MODEL_JUDGE = "model:";

    /** The model judge, its errors named by the option that chose it. */
    private LocalModelJudge openJudge() {
        String dir = judgeName.substring(MODEL_JUDGE.length());
        if (dir.isEmpty()) throw new ConfigException("--judge model:DIR: no directory given");
        try {
            return LocalModelJudge.open(Path.of(dir), judgePrompt, judgeMargin);
        } catch (ConfigException | io.tether.engine.CheckpointException e) {
            throw new ConfigException("--judge " + judgeName + ": " + e.getMessage(), e);
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
