package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.reward.GrpoRun;
import io.tether.train.ConfigTree;
import io.tether.train.Trainer;

@Command(name = "grpo", mixinStandardHelpOptions = true,
        description = {"GRPO against verifiable rewards: G samples per prompt, group-standardised rewards, clipped updates (TRL GRPOConfig names).",
                "Rewards: exact answer against a record field (GSM8K's '#### n'), optional format regex and length penalty."})
final class GrpoCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;
    @Option(names = "--config", description = "YAML settings") Path config;
    @Option(names = "--set", description = "key=value override (repeatable)") List<String> overrides = new ArrayList<>();
    @Option(names = "--model") Path model;
    @Option(names = "--data", description = "prompts JSONL ('prompt', 'question' or 'prompt_ids', plus the answer field)") Path data;
    @Option(names = "--output-dir") Path outputDir;
    @Option(names = "--resume") boolean resume;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        List<String> all = new ArrayList<>(overrides);
        if (model != null) all.add("model=" + model);
        if (data != null) all.add("data=" + data);
        if (outputDir != null) all.add("output_dir=" + outputDir);
        GrpoRun.Config c = GrpoRun.Config.from(ConfigTree.load(config, all));
        PrintWriter err = root.spec.commandLine().getErr();
        Trainer.Result r = GrpoRun.run(c, resume, new SftCommand.ProgressBar(err));
        err.printf("%ndone: %d steps, last loss %.4f; model saved to %s%n", r.steps(), r.lastLoss(), c.outputDir().resolve("model"));
        return 0;
    }
}
