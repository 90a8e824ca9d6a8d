package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.train.ConfigTree;
import io.tether.train.PreferenceRun;
import io.tether.train.Trainer;

/** {@code tether dpo|kto|orpo|simpo|cpo}: one shape, the method named by the command. */
final class PreferenceCommands {
    private PreferenceCommands() {}

    abstract static class Base implements Callable<Integer> {
        @ParentCommand TetherCommand root;
        @Option(names = "--config", description = "YAML settings (TRL DPOConfig names: beta, loss_type, loss_weights, label_smoothing, ...)") Path config;
        @Option(names = "--set", description = "key=value override (repeatable)") List<String> overrides = new ArrayList<>();
        @Option(names = "--model", description = "the policy to start from (HF directory)") Path model;
        @Option(names = "--data", description = "preference records (ids, or TRL text/chat formats)") Path data;
        @Option(names = "--output-dir") Path outputDir;
        @Option(names = "--resume", description = "continue from the newest checkpoint") boolean resume;

        abstract String method();

        @Override
        public Integer call() throws IOException {
            root.initEngine();
            List<String> all = new ArrayList<>(overrides);
            if (model != null) all.add("model=" + model);
            if (data != null) all.add("data=" + data);
            if (outputDir != null) all.add("output_dir=" + outputDir);
            PreferenceRun.Config c = PreferenceRun.Config.from(method(), ConfigTree.load(config, all));
            PrintWriter err = root.spec.commandLine().getErr();
            Trainer.Result r = PreferenceRun.run(c, resume, new SftCommand.ProgressBar(err) {
                @Override
                public void onStep(int step, int total, Map<String, Object> m) {
                    super.onStep(step, total, m);
                    if (step == total && m.get("rewards/accuracies") != null)
                        err.printf("%n  rewards/accuracies %.3f  rewards/margins %.3f", (Double) m.get("rewards/accuracies"), (Double) m.get("rewards/margins"));
                }
            });
            err.printf("%ndone: %d steps, last loss %.4f; model saved to %s%n", r.steps(), r.lastLoss(), c.outputDir().resolve("model"));
            return 0;
        }
    }

    @Command(name = "dpo", mixinStandardHelpOptions = true, description = "Direct Preference Optimization and its loss family against a reference.")
    static final class Dpo extends Base { @Override String method() { return "dpo"; } }

    @Command(name = "kto", mixinStandardHelpOptions = true, description = "KTO on unpaired thumbs-up/down records (or pairs, unpaired).")
    static final class Kto extends Base { @Override String method() { return "kto"; } }

    @Command(name = "orpo", mixinStandardHelpOptions = true, description = "ORPO: odds-ratio preference optimisation, no reference.")
    static final class Orpo extends Base { @Override String method() { return "orpo"; } }

    @Command(name = "simpo", mixinStandardHelpOptions = true, description = "SimPO: length-normalised margin loss, no reference.")
    static final class Simpo extends Base { @Override String method() { return "simpo"; } }

    @Command(name = "cpo", mixinStandardHelpOptions = true, description = "CPO: contrastive preference optimisation with an NLL term, no reference.")
    static final class Cpo extends Base { @Override String method() { return "cpo"; } }
}
