package io.tether.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.data.PreferenceReader;
import io.tether.eval.MethodAdvisor;

/** {@code tether advise}: which method a dataset's signal suits, with settings and reasons. */
@Command(name = "advise", mixinStandardHelpOptions = true,
        description = {"Reads a dataset (any format tether data reads) and recommends a method and its settings from the signal it carries:",
                "pairs -> DPO (IPO for near-deterministic labels, ORPO/SimPO under --memory-tight), thumbs -> KTO, ratings -> binarize,",
                "verifiable answers -> GRPO, prompts alone -> online methods; adjusted for size, balance and length bias."})
final class AdviseCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Option(names = "--data", required = true) Path data;
    @Option(names = "--format", description = "override the detected format (${COMPLETION-CANDIDATES})") String format;
    @Option(names = "--memory-tight", description = "prefer methods without a reference model") boolean memoryTight;

    @Override
    public Integer call() {
        MethodAdvisor.Advice a = MethodAdvisor.advise(data, format == null ? null : PreferenceReader.Format.parse(format), memoryTight);
        PrintWriter o = root.spec.commandLine().getOut();
        o.printf("%s: %d records, signal: %s%n", data, a.records(), a.signal());
        o.println("recommended: " + a.method());
        for (String s : a.settings()) o.println("  " + s);
        o.println("why:");
        for (String r : a.reasons()) o.println("  - " + r);
        if (!a.warnings().isEmpty()) {
            o.println("watch:");
            for (String w : a.warnings()) o.println("  - " + w);
        }
        o.flush();
        return 0;
    }
}
