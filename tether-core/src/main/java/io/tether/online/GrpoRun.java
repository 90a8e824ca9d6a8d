package io.tether.online;

import java.io.IOException;
import java.util.Map;

import io.tether.model.CausalLM;
import io.tether.rollout.RewardFunction;
import io.tether.run.RunConfig;
import io.tether.run.RunSession;
import io.tether.train.Trainer;

/**
 * {@code tether grpo} and {@code tether rloo}: prompts from JSONL ({@code prompt} text rendered with the chat template
 * when it is a message list, or {@code prompt_ids}), rewards from built-in functions and/or a reward model, TRL's
 * GRPOConfig / RLOOConfig names and defaults ({@link GrpoSettings}, {@link OnlineSettings}).
 */
public final class GrpoRun {
    private GrpoRun() {}

    /** @param rewards reward functions offered by name to the config's {@code reward_functions} */
    public static Trainer.Result run(RunConfig<Online<GrpoSettings>> c, boolean resume, Trainer.Listener listener, Map<String, RewardFunction> rewards)
            throws IOException {
        OnlineSettings o = c.method().online();
        GrpoSettings g = c.method().method();
        var named = OnlineRun.named(o, rewards);
        try (RunSession s = RunSession.open(c, resume, listener)) {
            OnlineRun.Rollout r = OnlineRun.start(s, o, named);
            // The KL reference: a frozen copy, or with LoRA the policy with adapters off; none when beta is 0.
            CausalLM reference = g.beta() > 0 && c.spec().lora() == null ? s.loadFrozen(c.spec().model(), "reference") : null;
            var settings = new GrpoTraining.Settings(g.estimator(), g.grpo(o.maxCompletionLength()), g.numGenerations(), r.sampling(), r.scorer(),
                    o.shaping(), reference, r.decoder(), g.numIterations(), g.maskTruncatedCompletions(), g.normalizeAdvantages());
            return OnlineRun.train(s, r, new GrpoTraining(settings), resume, t -> {});
        }
    }
}
