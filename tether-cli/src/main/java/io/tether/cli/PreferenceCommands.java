package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

import io.tether.run.ConfigTree;
import io.tether.run.PreferenceMethod;
import io.tether.run.PreferenceRun;
import io.tether.run.RunConfig;
import io.tether.train.Trainer;

/** {@code tether dpo|kto|orpo|simpo|cpo}: one shape, the method named by the command (its entry in {@link PreferenceMethod#METHODS}). */
final class PreferenceCommands {
    private PreferenceCommands() {}

    abstract static class Base implements Callable<Integer> {
        @ParentCommand TetherCommand root;
        @Mixin RunOptions run;

        abstract String method();

        @Override
        public Integer call() throws IOException {
            root.initEngine();
            ConfigTree settings = run.settings();
            RunConfig<? extends PreferenceMethod> c = PreferenceMethod.config(method(), settings);
            PrintWriter err = root.spec.commandLine().getErr();
            Trainer.Result r = PreferenceRun.run(c, run.resume, new ProgressBar(err, settings) {
                @Override
                public void onStep(int step, int total, Map<String, Object> m) {
                    super.onStep(step, total, m);
                    if (step == total && m.get("rewards/accuracies") != null)
                        line(String.format(Locale.ROOT, "  rewards/accuracies %.3f  rewards/margins %.3f", (Double) m.get("rewards/accuracies"), (Double) m.get("rewards/margins")));
                }
            });
            ProgressBar.done(err, r, c.spec().outputDir());
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
