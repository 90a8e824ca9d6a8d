package io.tether.online;

import java.io.IOException;
import java.util.Map;

import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;
import io.tether.rollout.LlmJudge;
import io.tether.rollout.LocalModelJudge;
import io.tether.rollout.OpenAiEndpointJudge;
import io.tether.rollout.RewardFunction;
import io.tether.run.RunConfig;
import io.tether.run.RunSession;
import io.tether.train.Trainer;

/**
 * {@code tether online-dpo}: prompts and reward sources as for grpo, TRL's OnlineDPOConfig names and defaults
 * (beta 0.1, loss_type sigmoid or ipo, temperature 0.9, max_new_tokens 64, missing_eos_penalty), plus
 * {@code num_rounds} for iterative DPO (the reference reset to the policy at the start of each round) and
 * {@code tie_policy} (drop, the default, or first as TRL) for pairs whose scores tie ({@link OnlineDpoSettings}).
 */
public final class OnlineDpoRun {
    private OnlineDpoRun() {}

    /** @param rewards reward functions offered by name to the config's {@code reward_functions} */
    public static Trainer.Result run(RunConfig<Online<OnlineDpoSettings>> c, boolean resume, Trainer.Listener listener,
                                     Map<String, RewardFunction> rewards) throws IOException {
        OnlineSettings o = c.method().online();
        OnlineDpoSettings d = c.method().method();
        if (d.numRounds() > 1 && c.spec().lora() != null)
            throw new ConfigException("key 'num_rounds': with use_peft the reference is the policy without adapters, which cannot be "
                    + "reset to the policy without merging; LoRA runs support num_rounds 1 only");
        var named = OnlineRun.named(o, rewards, d.judgeModel() != null || d.judgeEndpoint() != null);
        // The judge before the run opens: a wrong judge_model or judge_url writes nothing.
        try (LlmJudge judge = d.judgeEndpoint() != null ? openEndpointJudge(d) : d.judgeModel() == null ? null : openJudge(d);
             RunSession s = RunSession.open(c, resume, listener)) {
            // A reference that moves between rounds is not checkpointed: resuming mid-run would train against the wrong one.
            if (resume && d.numRounds() > 1 && s.directory().latestCheckpoint().isPresent())
                throw new ConfigException("key 'num_rounds': resuming an iterative run (num_rounds > 1) is not supported: the round's reference is not checkpointed");
            OnlineRun.Rollout r = OnlineRun.start(s, o, named);
            // The reference: a frozen copy, or with LoRA the policy with adapters off.
            CausalLM reference = c.spec().lora() == null ? s.loadFrozen(c.spec().model(), "reference") : null;
            if (judge != null && r.decoder() == null)
                throw new ConfigException("key '" + (d.judgeEndpoint() != null ? "judge_url" : "judge_model") + "': the judge reads text, and " + c.spec().model() + " has no tokenizer.json to decode completions with");
            var settings = new OnlineDpoTraining.Settings(d.dpo(), r.sampling(), r.scorer(), o.shaping(), reference, r.decoder(), d.numRounds(),
                    judge, d.tiePolicy());
            OnlineDpoTraining method = new OnlineDpoTraining(settings);
            if (d.judgeEndpoint() != null) {
                // Where the labels came from (never the key): the endpoint and the model it was asked to run.
                s.provenance().put("judge_url", ((OpenAiEndpointJudge) judge).endpoint().toString());
                s.provenance().put("judge_url_model", d.judgeEndpoint().model());
            } else if (judge != null) {
                s.provenance().put("judge_model", d.judgeModel().toString());
                s.provenance().put("judge_weights", s.weightsHash(d.judgeModel()));
            }
            return OnlineRun.train(s, r, method, resume, trainer -> method.rounds(trainer.totalSteps()));
        }
    }

    /** The endpoint judge, its errors named by the key that chose it. */
    private static OpenAiEndpointJudge openEndpointJudge(OnlineDpoSettings d) {
        OnlineDpoSettings.JudgeEndpoint e = d.judgeEndpoint();
        var o = OpenAiEndpointJudge.Options.defaults(e.url(), e.model()).withApiKeyEnv(e.apiKeyEnv()).withPrompt(d.judgePrompt(), d.judgeMargin())
                .withCache(e.cache()).withTopLogprobs(e.topLogprobs());
        try {
            return OpenAiEndpointJudge.open(o);
        } catch (ConfigException | io.tether.data.DataFormatException ex) {
            throw new ConfigException("key 'judge_url': " + ex.getMessage(), ex);
        }
    }

    /** The model judge, its errors named by the key that chose it. */
    private static LocalModelJudge openJudge(OnlineDpoSettings d) {
        try {
            return LocalModelJudge.open(d.judgeModel(), d.judgePrompt(), d.judgeMargin());
        } catch (ConfigException | io.tether.engine.CheckpointException e) {
            throw new ConfigException("key 'judge_model': " + e.getMessage(), e);
        }
    }
}
