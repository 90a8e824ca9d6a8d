package io.tether.online;

import io.tether.rollout.RewardFunction;
import java.io.IOException;
import java.util.Map;

import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;
import io.tether.objective.DpoLoss;
import io.tether.run.ConfigTree;
import io.tether.train.GradientSync;
import io.tether.train.Trainer;

/**
 * {@code tether online-dpo}: prompts and reward sources as for grpo, TRL's OnlineDPOConfig names and defaults
 * (beta 0.1, loss_type sigmoid or ipo, temperature 0.9, max_new_tokens 64, missing_eos_penalty), plus
 * {@code num_rounds} for iterative DPO (the reference reset to the policy at the start of each round) and
 * {@code tie_policy} (drop, the default, or first as TRL) for pairs whose scores tie.
 */
public final class OnlineDpoRun {
    private OnlineDpoRun() {}

    public record Config(OnlineRun.Common common, DpoLoss.Config dpo, int numRounds, String tiePolicy, Map<String, Object> resolved) {

        public static Config from(ConfigTree c) {
            // TRL calls the completion budget max_new_tokens; max_completion_length (the other online methods' name) also works.
            boolean newTokensSet = c.raw("max_new_tokens") != null;
            int maxNew = c.integer("max_new_tokens", 64);
            if (newTokensSet && c.raw("max_completion_length") != null)
                throw new ConfigException("key 'max_new_tokens': set either max_new_tokens or max_completion_length, not both");
            OnlineRun.Common common = OnlineRun.Common.read(c, new OnlineRun.Defaults(0.9, maxNew, "answer", io.tether.train.LearningRateDefault.ONLINE_DPO));
            double beta = c.number("beta", 0.1);
            String lossType = c.string("loss_type", "sigmoid");
            int rounds = c.integer("num_rounds", 1);
            String tiePolicy = c.string("tie_policy", "drop");
            c.rejectUnknownKeys();
            if (!OnlineDpoTraining.Settings.TIE_POLICIES.contains(tiePolicy))
                throw new ConfigException("key 'tie_policy': 'drop' (tied pairs train nothing) or 'first' (the first sample wins a tie, as TRL), got '"
                        + tiePolicy + "'");
            if (rounds < 1) throw new ConfigException("key 'num_rounds': must be >= 1, got " + rounds);
            if (rounds > 1 && common.lora() != null)
                throw new ConfigException("key 'num_rounds': with use_peft the reference is the policy without adapters, which cannot be "
                        + "reset to the policy without merging; LoRA runs support num_rounds 1 only");
            DpoLoss.Config dpo = c.validated(() -> OnlineDpoTraining.Settings.loss(beta, lossType));
            return new Config(common, dpo, rounds, tiePolicy, c.resolved());
        }

        public java.nio.file.Path outputDir() {
            return common.outputDir();
        }
    }

    /** @param rewards reward functions offered by name to the config's {@code reward_functions} */
    public static Trainer.Result run(Config c, boolean resume, Trainer.Listener listener, Map<String, RewardFunction> rewards) throws IOException {
        try (OnlineRun.Session s = new OnlineRun.Session(c.common(), resume, rewards)) {
            // A reference that moves between rounds is not checkpointed: resuming mid-run would train against the wrong one.
            if (resume && c.numRounds() > 1 && s.run.latestCheckpoint().isPresent())
                throw new ConfigException("key 'num_rounds': resuming an iterative run (num_rounds > 1) is not supported: the round's reference is not checkpointed");
            // The reference: a frozen copy, or with LoRA the policy with adapters off.
            CausalLM reference = c.common().lora() == null ? s.loadCopy(c.common().model()) : null;
            var settings = new OnlineDpoTraining.Settings(c.dpo(), s.sampling(), s.scorer(), c.common().shaping(), reference, s.decoder(), c.numRounds(),
                    null, c.tiePolicy());
            OnlineDpoTraining method = new OnlineDpoTraining(settings);
            s.writeRecords(c.resolved(), resume, listener);
            var trainer = new Trainer<>(s.policy.model(), method, s.prompts, java.util.List.of(), c.common().trainer(), s.run,
                    GradientSync.SINGLE_PROCESS, listener, c.common().model());
            method.rounds(trainer.totalSteps());
            Trainer.Result r = trainer.train(resume);
            s.saveResult();
            return r;
        }
    }
}
