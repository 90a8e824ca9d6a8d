package io.tether.data;

import java.util.ArrayList;
import java.util.List;
import java.nio.file.Path;

/**
 * Prompts of one file that also occur in another (eval prompts seen in training): exactly, or after normalizing case,
 * spacing and punctuation. The first file's prompts are held as 64-bit keys in two tables (exact and normalized), so a million prompts
 * take about 64 MiB.
 */
public final class Leakage {
    private Leakage() {}

    /** An overlapping prompt: its line in {@code b} and the line of its first match in {@code a}. */
    public record Overlap(long lineInB, long lineInA, boolean exact) {}

    /** Counts of records of {@code b} whose prompt occurs in {@code a}; up to {@code keep} examples. */
    public record Result(long recordsA, long recordsB, long exact, long normalizedOnly, List<Overlap> examples) {
        public boolean leaks() {
            return exact + normalizedOnly > 0;
        }
    }

    public static Result check(Path a, Path b, int keep) {
        LongLongMap exactA = new LongLongMap(), normalizedA = new LongLongMap();
        long recordsA = PreferenceReader.read(a, null, Problems.failFast(), (r, raw) -> {
            exactA.putIfAbsent(PromptKeys.exact(r.prompt()), r.origin().line());
            normalizedA.putIfAbsent(PromptKeys.normalized(r.prompt()), r.origin().line());
        });
        long[] counts = new long[2];
        List<Overlap> examples = new ArrayList<>();
        long recordsB = PreferenceReader.read(b, null, Problems.failFast(), (r, raw) -> {
            long exactLine = exactA.get(PromptKeys.exact(r.prompt()), -1);
            long line = exactLine >= 0 ? exactLine : normalizedA.get(PromptKeys.normalized(r.prompt()), -1);
            if (line < 0) return;
            counts[exactLine >= 0 ? 0 : 1]++;
            if (examples.size() < keep) examples.add(new Overlap(r.origin().line(), line, exactLine >= 0));
        });
        return new Result(recordsA, recordsB, counts[0], counts[1], examples);
    }
}
