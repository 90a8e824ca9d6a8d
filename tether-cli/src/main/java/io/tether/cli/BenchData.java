package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Random;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * Preference-data throughput: writes a synthetic JSONL of --pairs pairs (prompt ids repeat, a few duplicates, votes
 * on a tenth) to a temp file, then validates and describes it in one streaming pass. Reports pairs/s and the peak
 * Java heap used (run with -Xmx512m to check the bounded-memory claim).
 */
@Command(name = "data", mixinStandardHelpOptions = true, description = "Validate+stats throughput on a generated preference file.")
final class BenchData implements Callable<Integer> {
    @ParentCommand BenchCommand bench;
    @Option(names = "--pairs", defaultValue = "1000000") int pairs;
    @Mixin JsonFile out;

    @Override
    public Integer call() throws IOException {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("tether-bench-data", ".jsonl");
        try {
            Random r = new Random(0);
            String[] words = {"the", "model", "answer", "question", "careful", "quick", "because", "data", "policy", "reward", "length", "prompt"};
            try (var w = java.nio.file.Files.newBufferedWriter(file)) {
                for (int i = 0; i < pairs; i++) {
                    ObjectNode o = JSON.createObjectNode();
                    int prompt = r.nextInt(Math.max(1, pairs / 2));
                    o.put("prompt_id", "p" + prompt);
                    o.put("prompt", "Question " + prompt + ": " + sentence(r, words, 8));
                    o.put("chosen", sentence(r, words, 10 + r.nextInt(20)));
                    o.put("rejected", sentence(r, words, 5 + r.nextInt(20)));
                    o.put("source", i % 3 == 0 ? "web" : "books");
                    if (i % 10 == 0) {
                        var v = o.putArray("votes");
                        v.addObject().put("annotator", "a" + r.nextInt(3)).put("label", "chosen");
                        v.addObject().put("annotator", "b" + r.nextInt(3)).put("label", r.nextInt(4) == 0 ? "rejected" : "chosen");
                    }
                    w.write(o.toString());
                    w.write('\n');
                }
            }
            long bytes = java.nio.file.Files.size(file);
            System.gc();
            for (var pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans()) pool.resetPeakUsage();
            long t0 = System.nanoTime();
            io.tether.data.Problems problems = new io.tether.data.Problems(Long.MAX_VALUE);
            io.tether.data.PreferenceValidator validator = new io.tether.data.PreferenceValidator(problems, null, null, 0);
            io.tether.data.PreferenceStats stats = new io.tether.data.PreferenceStats(null);
            long read = io.tether.data.PreferenceReader.read(file, null, problems, (rec, raw) -> {
                validator.accept(rec);
                stats.accept(rec);
            });
            stats.report(new ArrayList<>());
            double seconds = (System.nanoTime() - t0) / 1e9;
            long peakHeap = 0;
            for (var pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans())
                if (pool.getType() == java.lang.management.MemoryType.HEAP) peakHeap += pool.getPeakUsage().getUsed();
            ObjectNode o = JSON.createObjectNode();
            o.put("benchmark", "data validate+stats");
            o.put("pairs", read);
            o.put("file_mib", round(bytes / 1048576.0));
            o.put("seconds", round(seconds));
            o.put("pairs_per_second", round(read / seconds));
            o.put("peak_heap_mib", round(peakHeap / 1048576.0));
            o.put("max_heap_mib", round(Runtime.getRuntime().maxMemory() / 1048576.0));
            o.put("problems", problems.total());
            o.put("cores", Runtime.getRuntime().availableProcessors());
            report(bench.root.spec.commandLine().getOut(), out.path, o);
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
        return 0;
    }

    private static String sentence(Random r, String[] words, int n) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) b.append(i > 0 ? " " : "").append(words[r.nextInt(words.length)]);
        return b.append('.').toString();
    }
}
