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
import io.tether.rollout.LlmJudge;
import io.tether.rollout.LocalModelJudge;
import io.tether.rollout.OpenAiEndpointJudge;
import io.tether.rollout.PairwiseJudge;
import io.tether.rollout.RewardFunction;
import io.tether.rollout.Rollouts;
import io.tether.text.TextAssets;

/** {@code tether eval}: a candidate against a baseline on held-out prompts, judged pairwise, with the release gate. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Head to head on held-out prompts: one completion per prompt from each model (same seed), judged pairwise by a",
                "verifiable answer (--answer-field), a reward model (--reward-model), the refund rubric, a local model or an OpenAI-compatible endpoint (--judge); win rate with its 95% interval, mean lengths,",
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
            + "read from its next-token log-probs (position bias reported); url:URL: the same question to an OpenAI-compatible chat endpoint "
            + "(https unless loopback; read from top_logprobs, else the text answer; needs --judge-model); any of these overrides the reward model as judge"}) String judgeName;
    @Option(names = "--judge-model", description = "with --judge url:URL: the model name the endpoint runs") String judgeModelName;
    @Option(names = "--judge-api-key-env", description = "with --judge url:URL: the NAME of the environment variable holding the API key "
            + "(sent as a Bearer token; the key itself never goes on the command line)") String judgeApiKeyEnv;
    @Option(names = "--judge-cache", description = "with --judge url:URL: a JSONL cache of the endpoint's answers, keyed by SHA-256 of (URL, model, request); "
            + "a rerun over the same pairs sends nothing") Path judgeCache;
    @Option(names = "--judge-rps", defaultValue = "0", description = "with --judge url:URL: at most this many requests per second (default 0: no limit)") double judgeRps;
    @Option(names = "--judge-timeout", defaultValue = "60", description = "with --judge url:URL: seconds per request (default 60)") double judgeTimeout;
    @Option(names = "--judge-max-attempts", defaultValue = "5", description = "with --judge url:URL: tries per request on 429, 5xx, timeouts "
            + "(exponential backoff from 1 s, Retry-After honoured; default 5)") int judgeMaxAttempts;
    @Option(names = "--judge-top-logprobs", defaultValue = "5", description = "with --judge url:URL: top_logprobs asked for (0-20; 0: judge by the text answer; default 5)") int judgeTopLogprobs;
    @Option(names = "--judge-prompt", description = "with --judge model:DIR or url:URL: a judging prompt file with {prompt}, {answer_a} and {answer_b} once each "
            + "(default: the built-in prompt)") Path judgePrompt;
    @Option(names = "--judge-margin", defaultValue = "0", description = "with --judge model:DIR or url:URL: a tie when |P(candidate better) - 0.5| <= this "
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
            throw new ConfigException("choose a judge: --answer-field, --reward-model, --judge refund-rubric, --judge model:DIR or --judge url:URL");
        boolean urlJudge = judgeName != null && judgeName.startsWith(URL_JUDGE);
        boolean modelJudge = judgeName != null && (judgeName.startsWith(MODEL_JUDGE) || urlJudge);
        if (judgeName != null && !judgeName.equals("refund-rubric") && !modelJudge)
            throw new ConfigException("--judge: 'refund-rubric', 'model:DIR' or 'url:URL', got '" + judgeName + "'");
        if (!modelJudge && (judgePrompt != null || judgeMargin != 0)) throw new ConfigException("--judge-prompt and --judge-margin need --judge model:DIR or url:URL");
        if (!urlJudge && (judgeModelName != null || judgeApiKeyEnv != null || judgeCache != null))
            throw new ConfigException("--judge-model, --judge-api-key-env and --judge-cache need --judge url:URL");
        int batchSize = this.batchSize.get();
        // The judge first: a wrong path stops the run before any policy is loaded or sampled.
        // Evaluation only reads the models: frozen loads, fp32 as before.
        try (LlmJudge llmJudge = urlJudge ? openEndpointJudge() : modelJudge ? openJudge() : null;
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
            o.printf("prompts %d, judge %s%n", w.total(), llmJudge instanceof OpenAiEndpointJudge ej ? ej.describe()
                    : llmJudge != null ? "model " + judgeName.substring(MODEL_JUDGE.length()) + " (both orders)"
                    : judgeName != null ? "the refund world's gold rubric"
                    : answerField != null ? "exact answer ('" + answerField + "')" : "reward model " + rewardModel);
            o.printf("win rate %.3f (95%% CI %.3f-%.3f): %d wins, %d ties, %d losses%n", w.rate(), ci[0], ci[1], w.wins(), w.ties(), w.losses());
            o.printf("mean length %.1f tokens vs %.1f (%+.1f); KL to baseline %.3f%n", r.candidateLength(), r.baselineLength(), r.lengthDelta(), r.klToBaseline());
            if (llmJudge != null) o.printf("judge position bias %.3f (share of pairs whose two orders named different winners)%n", llmJudge.positionBias());
            if (llmJudge instanceof OpenAiEndpointJudge ej)
                o.printf("judge requests %d sent (%d retries), %d from the cache; %d answers unscorable, %d bounded (a label outside top_logprobs)%n",
                        ej.requestsSent(), ej.retries(), ej.cacheHits(), ej.unscorable(), ej.bounded());
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
                if (llmJudge instanceof OpenAiEndpointJudge ej) {
                    n.put("judge_model", judgeModelName);
                    n.put("judge_requests", ej.requestsSent());
                    n.put("judge_retries", ej.retries());
                    n.put("judge_cache_hits", ej.cacheHits());
                    n.put("judge_unscorable", ej.unscorable());
                    n.put("judge_bounded", ej.bounded());
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

    static final String MODEL_JUDGE = "model:", URL_JUDGE = "url:";

    /** The endpoint judge, its errors named by the option that chose it. */
    private OpenAiEndpointJudge openEndpointJudge() {
        String url = judgeName.substring(URL_JUDGE.length());
        if (url.isEmpty()) throw new ConfigException("--judge url:URL: no URL given");
        if (judgeModelName == null || judgeModelName.isBlank()) throw new ConfigException("--judge " + judgeName + ": --judge-model NAME is required (the model the endpoint runs)");
        if (!(judgeTimeout > 0)) throw new ConfigException("--judge-timeout must be > 0, got " + judgeTimeout);
        var o = OpenAiEndpointJudge.Options.defaults(url, judgeModelName).withApiKeyEnv(judgeApiKeyEnv).withPrompt(judgePrompt, judgeMargin)
                .withRetries(judgeMaxAttempts, java.time.Duration.ofSeconds(1))
                .withRate(judgeRps, java.time.Duration.ofMillis((long) (judgeTimeout * 1000))).withCache(judgeCache).withTopLogprobs(judgeTopLogprobs);
        try {
            return OpenAiEndpointJudge.open(o);
        } catch (ConfigException | io.tether.data.DataFormatException e) {
            throw new ConfigException("--judge " + judgeName + ": " + e.getMessage(), e);
        }
    }

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
