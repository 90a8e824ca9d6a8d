package io.tether.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/**
 * Benchmarks on the shared bench shape (Llama layout, d=512, 8 layers, 8 heads, FFN 1376, vocab 4096, batch 8,
 * sequence 256). Each reports the 1024x1024 fp32 matmul peak measured in the same process, because the host is
 * shared and only a same-run peak makes a fraction meaningful. One class per benchmark; what they share is in
 * {@link Bench}.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Measure throughput on the shared bench shape.",
        subcommands = {BenchStep.Forward.class, BenchStep.Train.class, BenchGenerate.class, BenchSft.class, BenchTokenize.class, BenchDpo.class, BenchData.class, BenchRollout.class, BenchLoad.class, BenchServe.class, BenchDp.class})
final class BenchCommand implements Runnable {
    @ParentCommand TetherCommand root;

    @Override
    public void run() {
        root.spec.commandLine().getSubcommands().get("bench").usage(root.spec.commandLine().getOut());
    }
}
