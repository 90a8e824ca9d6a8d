package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

import io.tether.run.ConfigTree;
import io.tether.run.RunConfig;
import io.tether.run.SftSettings;
import io.tether.run.SftRun;
import io.tether.train.Trainer;

@Command(name = "sft", mixinStandardHelpOptions = true,
        description = {"Supervised fine-tuning (or training from scratch) with completion-only loss, packing, exact resume.",
                "Settings come from --config (YAML, TRL SFTConfig names) and --set key=value overrides; every",
                "resolved setting, provenance, metrics.jsonl and checkpoints/step-N land in output_dir."})
final class SftCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Mixin RunOptions run;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        ConfigTree settings = run.settings();
        RunConfig<SftSettings> c = SftSettings.config(settings);
        PrintWriter err = root.spec.commandLine().getErr();
        Trainer.Result r = SftRun.run(c, run.resume, new ProgressBar(err, settings));
        ProgressBar.done(err, r, c.spec().outputDir());
        return 0;
    }
}
