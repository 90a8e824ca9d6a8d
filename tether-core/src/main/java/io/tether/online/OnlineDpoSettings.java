package io.tether.online;

import java.nio.file.Path;

import io.tether.engine.ConfigException;
import io.tether.objective.DpoLoss;
import io.tether.run.ConfigTree;
import io.tether.run.RunConfig;
import io.tether.run.RunSpec;
import io.tether.train.LearningRateDefault;

/**
 * {@code tether online-dpo}'s own keys, named and defaulted as TRL's OnlineDPOConfig (v0.29.1); the shared online keys
 * are {@link OnlineSettings} (TRL's {@code max_new_tokens} is read as the completion budget, 64), the rest the
 * {@link RunSpec}. {@code num_rounds} (iterative DPO) and {@code tie_policy} are Tether's.
 *
 * @param beta      TRL {@code beta}
 * @param lossType  TRL {@code loss_type}: sigmoid or ipo
 * @param numRounds iterative rounds; the reference is reset to the policy at the start of each
 * @param tiePolicy what a pair whose scores tie trains: "drop" (nothing) or "first" (the first sample wins, as TRL)
 * @param judgeModel  a causal LM directory that labels each pair ({@link io.tether.rollout.LocalModelJudge}: "A or B?" in
 *                    both orders, from next-token log-probs) instead of the reward sources' scores; null for none. TRL's
 *                    OnlineDPOConfig {@code judge} names a judge class (pair_rm, hf, openai); this names a local model.
 * @param judgePrompt a judging prompt file with {prompt}, {answer_a}, {answer_b} (null: the built-in prompt)
 * @param judgeMargin a judged pair ties (and follows tie_policy) when |P(first better) − 0.5| ≤ this
 * @param judgeEndpoint an OpenAI-compatible chat endpoint that labels each pair instead
 *                    ({@link io.tether.rollout.OpenAiEndpointJudge}, the same question and reading); null for none
 */
public record OnlineDpoSettings(double beta, String lossType, int numRounds, String tiePolicy, Path judgeModel, Path judgePrompt, double judgeMargin,
                                JudgeEndpoint judgeEndpoint) {
    /**
     * The endpoint judge's keys: {@code judge_url}, {@code judge_url_model} (the model the endpoint runs),
     * {@code judge_api_key_env} (the NAME of the variable holding the key), {@code judge_cache} (JSONL), {@code judge_top_logprobs}.
     */
    public record JudgeEndpoint(String url, String model, String apiKeyEnv, Path cache, int topLogprobs) {}

    /** Online DPO's shared online defaults: temperature 0.9, 64 new tokens, the exact answer in the record's {@code answer}. */
    public static final OnlineSettings.Defaults ONLINE = new OnlineSettings.Defaults(0.9, 64, "answer");
    /** The common keys' defaults: online DPO's learning rate; prompts are cut by max_prompt_length, not max_length. */
    public static final RunSpec.Defaults DEFAULTS = new RunSpec.Defaults(null, false, false, 0.0, LearningRateDefault.ONLINE_DPO, false, false);

    public OnlineDpoSettings {
        if (!OnlineDpoTraining.Settings.TIE_POLICIES.contains(tiePolicy))
            throw new ConfigException("key 'tie_policy': 'drop' (tied pairs train nothing) or 'first' (the first sample wins a tie, as TRL), got '"
                    + tiePolicy + "'");
        if (numRounds < 1) throw new ConfigException("key 'num_rounds': must be >= 1, got " + numRounds);
        if (!(judgeMargin >= 0 && judgeMargin < 0.5)) throw new ConfigException("key 'judge_margin': must be in [0, 0.5), got " + judgeMargin);
        if (judgeModel == null && judgeEndpoint == null && judgePrompt != null) throw new ConfigException("key 'judge_prompt': needs 'judge_model' or 'judge_url'");
        if (judgeModel != null && judgeEndpoint != null) throw new ConfigException("key 'judge_url': set either judge_model (a local judge) or judge_url, not both");
        if (judgeEndpoint != null && (judgeEndpoint.model() == null || judgeEndpoint.model().isBlank()))
            throw new ConfigException("key 'judge_url_model': needed with 'judge_url' (the model the endpoint runs)");
        OnlineDpoTraining.Settings.loss(beta, lossType);
    }

    public OnlineDpoSettings(double beta, String lossType, int numRounds, String tiePolicy) {
        this(beta, lossType, numRounds, tiePolicy, null, null, 0.0, null);
    }

    /** TRL's defaults: beta 0.1, sigmoid; one round; ties dropped; no judge. */
    public static OnlineDpoSettings defaults() {
        return new OnlineDpoSettings(0.1, "sigmoid", 1, "drop");
    }

    public static OnlineDpoSettings read(ConfigTree c) {
        OnlineDpoSettings d = defaults();
        double beta = c.number("beta", d.beta());
        String lossType = c.string("loss_type", d.lossType());
        int rounds = c.integer("num_rounds", d.numRounds());
        String tiePolicy = c.string("tie_policy", d.tiePolicy());
        Path judge = c.path("judge_model"), judgePrompt = c.path("judge_prompt");
        double judgeMargin = c.number("judge_margin", d.judgeMargin());
        String url = c.string("judge_url", null), urlModel = c.string("judge_url_model", null), keyEnv = c.string("judge_api_key_env", null);
        Path cache = c.path("judge_cache");
        int top = c.integer("judge_top_logprobs", 5);
        if (url == null)
            for (String k : java.util.List.of("judge_url_model", "judge_api_key_env", "judge_cache", "judge_top_logprobs"))
                if (c.raw(k) != null && !c.raw(k).isNull()) throw new ConfigException("key '" + k + "': needs 'judge_url'");
        JudgeEndpoint endpoint = url == null ? null : new JudgeEndpoint(url, urlModel, keyEnv, cache, top);
        return c.validated(() -> new OnlineDpoSettings(beta, lossType, rounds, tiePolicy, judge, judgePrompt, judgeMargin, endpoint));
    }

    /** The whole run's configuration from YAML and overrides. */
    public static RunConfig<Online<OnlineDpoSettings>> config(ConfigTree c) {
        return RunConfig.read(c, DEFAULTS, t -> {
            // TRL calls the completion budget max_new_tokens; max_completion_length (the other online methods' name) also works.
            boolean newTokensSet = t.raw("max_new_tokens") != null;
            int maxNew = t.integer("max_new_tokens", ONLINE.maxCompletionLength());
            if (newTokensSet && t.raw("max_completion_length") != null)
                throw new ConfigException("key 'max_new_tokens': set either max_new_tokens or max_completion_length, not both");
            // A judge is a reward source of its own: with judge_model the other sources may all be unset.
            OnlineSettings online = OnlineSettings.read(t, new OnlineSettings.Defaults(ONLINE.temperature(), maxNew, ONLINE.answerField()),
                    (t.raw("judge_model") != null && !t.raw("judge_model").isNull()) || (t.raw("judge_url") != null && !t.raw("judge_url").isNull()));
            return new Online<>(online, read(t));
        });
    }

    /** The DPO loss settings (sigmoid as TRL, ipo without length normalisation). */
    public DpoLoss.Config dpo() {
        return OnlineDpoTraining.Settings.loss(beta, lossType);
    }

    public OnlineDpoSettings withBeta(double beta) {
        return new OnlineDpoSettings(beta, lossType, numRounds, tiePolicy, judgeModel, judgePrompt, judgeMargin, judgeEndpoint);
    }

    public OnlineDpoSettings withJudge(Path model, Path prompt, double margin) {
        return new OnlineDpoSettings(beta, lossType, numRounds, tiePolicy, model, prompt, margin, judgeEndpoint);
    }
}
