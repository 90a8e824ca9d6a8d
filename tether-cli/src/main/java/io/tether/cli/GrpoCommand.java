package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

import io.tether.reward.GrpoRun;
import io.tether.train.Trainer;

@Command(name = "grpo", mixinStandardHelpOptions = true,
        description = {"GRPO against verifiable rewards: G samples per prompt, group-standardised rewards, clipped updates (TRL GRPOConfig names).",
                "Rewards: exact answer against a record field (GSM8K's '#### n'), optional format regex and length penalty."})
final class GrpoCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;
    @Mixin RunOptions run;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        GrpoRun.Config c = GrpoRun.Config.from(run.settings());
        PrintWriter err = root.spec.commandLine().getErr();
        Trainer.Result r = GrpoRun.run(c, run.resume, new ProgressBar(err));
        ProgressBar.done(err, r, c.outputDir());
        return 0;
    }
}
