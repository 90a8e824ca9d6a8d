package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

import io.tether.online.GrpoRun;
import io.tether.online.GrpoSettings;
import io.tether.online.GrpoTraining;
import io.tether.online.OnlineDpoRun;
import io.tether.online.OnlineDpoSettings;
import io.tether.online.PpoRun;
import io.tether.online.PpoSettings;
import io.tether.run.ConfigTree;
import io.tether.train.Trainer;

/** The online RL commands: each samples from the current policy, scores, and updates (TRL config names). */
final class OnlineCommands {
    private OnlineCommands() {}

    /** Reward functions a config can name in {@code reward_functions}: the refund world's gold rubric. */
    static final java.util.Map<String, io.tether.rollout.RewardFunction> NAMED_REWARDS =
            java.util.Map.of("refund-rubric", new io.tether.scenario.GoldRubric().asReward());

    abstract static class Base implements Callable<Integer> {
        @ParentCommand TetherCommand root;
        @Mixin RunOptions run;

        /** A finished run and where it wrote. */
        record Done(Trainer.Result result, Path outputDir) {}

        abstract Done train(ConfigTree settings, Trainer.Listener listener) throws IOException;

        @Override
        public Integer call() throws IOException {
            root.initEngine();
            PrintWriter err = root.spec.commandLine().getErr();
            ConfigTree settings = run.settings();
            Done d = train(settings, new ProgressBar(err, settings));
            ProgressBar.done(err, d.result(), d.outputDir());
            return 0;
        }
    }

    @Command(name = "grpo", mixinStandardHelpOptions = true,
            description = {"GRPO: G samples per prompt, group-standardised rewards, clipped updates (TRL GRPOConfig names).",
                    "Rewards: exact answer against a record field (GSM8K's '#### n'), format regex, length penalty, and/or 'reward_model'."})
    static final class Grpo extends Base {
        @Override
        Done train(ConfigTree settings, Trainer.Listener listener) throws IOException {
            var c = GrpoSettings.config(settings, GrpoTraining.Estimator.GRPO);
            return new Done(GrpoRun.run(c, run.resume, listener, NAMED_REWARDS), c.spec().outputDir());
        }
    }

    @Command(name = "rloo", mixinStandardHelpOptions = true,
            description = {"RLOO: leave-one-out baselines, sequence KL charged in the reward, sequence-level clipped ratios (TRL RLOOConfig names).",
                    "normalize_advantages=true whitens advantages over the batch (REINFORCE++ style). Rewards as for grpo."})
    static final class Rloo extends Base {
        @Override
        Done train(ConfigTree settings, Trainer.Listener listener) throws IOException {
            var c = GrpoSettings.config(settings, GrpoTraining.Estimator.RLOO);
            return new Done(GrpoRun.run(c, run.resume, listener, NAMED_REWARDS), c.spec().outputDir());
        }
    }

    @Command(name = "ppo", mixinStandardHelpOptions = true,
            description = {"PPO-RLHF: policy, frozen reference, reward model and/or functions, and a critic; per-token KL penalty, GAE,",
                    "clipped policy and value losses, num_ppo_epochs x num_mini_batches updates per rollout (TRL PPOConfig names).",
                    "kl_target turns on the adaptive KL controller."})
    static final class Ppo extends Base {
        @Override
        Done train(ConfigTree settings, Trainer.Listener listener) throws IOException {
            var c = PpoSettings.config(settings);
            return new Done(PpoRun.run(c, run.resume, listener, NAMED_REWARDS), c.spec().outputDir());
        }
    }

    @Command(name = "online-dpo", mixinStandardHelpOptions = true,
            description = {"Online DPO: two samples per prompt from the current policy, the higher-scored one chosen, DPO loss (sigmoid or ipo)",
                    "against a frozen or adapters-off reference (TRL OnlineDPOConfig names). num_rounds > 1: iterative DPO. Rewards as for grpo.",
                    "tie_policy: drop (default: a pair whose scores tie trains nothing; the loss is the mean over the pairs that count) or first",
                    "(the first sample wins a tie, as TRL); pairs/tie_fraction logs the share of ties."})
    static final class OnlineDpo extends Base {
        @Override
        Done train(ConfigTree settings, Trainer.Listener listener) throws IOException {
            var c = OnlineDpoSettings.config(settings);
            return new Done(OnlineDpoRun.run(c, run.resume, listener, NAMED_REWARDS), c.spec().outputDir());
        }
    }
}
