package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.ConfigException;
import io.tether.scenario.DemoData;
import io.tether.scenario.NoisyAnnotator;
import io.tether.text.ByteTokenizer;

/** {@code tether world}: the refund-policy world of the demo, as files the other commands read. */
@Command(name = "world", mixinStandardHelpOptions = true, description = "The refund-policy world: write its datasets.",
        subcommands = {WorldCommand.Data.class})
final class WorldCommand implements Runnable {
    @ParentCommand TetherCommand root;

    @Override
    public void run() {
        root.spec.commandLine().getSubcommands().get("world").usage(root.spec.commandLine().getOut());
    }

    @Command(name = "data", mixinStandardHelpOptions = true,
            description = {"Writes the world's datasets (sft, pairs, kto, grpo, corpus; .train/.eval split by prompt; manifest.json) and,",
                    "under tokenizer/, the byte-level tokenizer models trained from scratch on them use."})
    static final class Data implements Callable<Integer> {
        @ParentCommand WorldCommand world;

        @Option(names = "--out", required = true) Path out;
        @Option(names = "--cases", defaultValue = "2000", description = "support cases (default: ${DEFAULT-VALUE})") int cases;
        @Option(names = "--seed", defaultValue = "1") long seed;
        @Option(names = "--noise", defaultValue = "0.1", description = "the annotator's label-flip rate (default: ${DEFAULT-VALUE})") double noise;
        @Option(names = "--length-bias", defaultValue = "0.3", description = "how often the annotator just picks the longer answer (default: ${DEFAULT-VALUE})")
        double lengthBias;

        @Override
        public Integer call() throws IOException {
            if (!(noise >= 0 && noise <= 1) || !(lengthBias >= 0 && lengthBias <= 1))
                throw new ConfigException("--noise and --length-bias are probabilities in [0, 1]");
            DemoData.Summary s = DemoData.write(out, cases, seed, new NoisyAnnotator(noise, lengthBias, seed));
            new ByteTokenizer().save(out.resolve("tokenizer"));
            PrintWriter o = world.root.spec.commandLine().getOut();
            o.printf("%s: %d train and %d eval cases; rows %s; tokenizer in %s%n", out, s.trainCases(), s.evalCases(), s.rows(), out.resolve("tokenizer"));
            o.flush();
            return 0;
        }
    }
}
