package io.tether.data;

import java.io.IOException;
import java.io.Writer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;

/**
 * A train/eval split that no prompt crosses: records are grouped by prompt id (or, without one, by normalized prompt),
 * and whole groups go to eval. Deterministic for a seed: groups are ordered by a seeded hash and the first
 * round(fraction x groups) of each stratum go to eval. Two passes over the file; memory holds one key per group.
 * Records are copied as they are (JSON arrays come out as JSONL).
 */
public final class PreferenceSplit {
    private PreferenceSplit() {}

    public record Result(long trainRecords, long evalRecords, long trainGroups, long evalGroups, Map<String, long[]> groupsByStratum) {}

    /**
     * {@code problems} receives the unreadable records (they are in neither output); {@link Problems#failFast()} makes
     * the first one end the split before anything is written.
     */
    public static Result split(Path file, PreferenceReader.Format format, Path outDir, double evalFraction, long seed, boolean stratifyBySource,
            Problems problems) throws IOException {
        if (!(evalFraction > 0 && evalFraction < 1)) throw new ConfigException("--eval-fraction must be in (0, 1), got " + evalFraction);
        PreferenceReader.Format f = format != null ? format : PreferenceReader.detect(file);
        // Pass 1: every group's stratum (the stratum of its first record, so a group is never split between strata).
        LongLongMap groupStratum = new LongLongMap();
        Map<String, Integer> strata = new HashMap<>();
        List<String> strataNames = new ArrayList<>();
        PreferenceReader.read(file, f, problems, (r, raw) -> {
            String s = stratifyBySource ? String.valueOf(source(r)) : "all";
            int id = strata.computeIfAbsent(s, k -> {
                strataNames.add(k);
                return strataNames.size() - 1;
            });
            groupStratum.putIfAbsent(PromptKeys.group(r), id);
        });
        long[][] byStratum = new long[strataNames.size()][];
        int[] fill = new int[strataNames.size()];
        long[] keys = groupStratum.keys();
        for (long k : keys) fill[(int) groupStratum.get(k, -1)]++;
        for (int s = 0; s < byStratum.length; s++) byStratum[s] = new long[fill[s]];
        Arrays.fill(fill, 0);
        for (long k : keys) {
            int s = (int) groupStratum.get(k, -1);
            byStratum[s][fill[s]++] = k;
        }
        LongLongMap inEval = new LongLongMap();
        Map<String, long[]> counts = new HashMap<>();
        long evalGroups = 0;
        for (int s = 0; s < byStratum.length; s++) {
            long[] groups = byStratum[s];
            // Order by a seeded hash of the key: a seeded shuffle that does not depend on file order.
            Long[] order = new Long[groups.length];
            for (int i = 0; i < groups.length; i++) order[i] = groups[i];
            Arrays.sort(order, (x, y) -> Long.compare(PromptKeys.combine(seed, x), PromptKeys.combine(seed, y)));
            int take = (int) Math.round(evalFraction * groups.length);
            for (int i = 0; i < take; i++) inEval.putIfAbsent(order[i], 1);
            evalGroups += take;
            counts.put(strataNames.get(s), new long[] {groups.length - take, take});
        }
        // Pass 2: copy each record to its group's side.
        long[] written = new long[2];
        AtomicFiles.write(outDir.resolve("train.jsonl"), train -> AtomicFiles.write(outDir.resolve("eval.jsonl"), eval -> {
            // The second pass meets the same unreadable records; the first already reported them.
            PreferenceReader.read(file, f, new Problems(Long.MAX_VALUE), (r, raw) -> {
                boolean toEval = inEval.get(PromptKeys.group(r), 0) == 1;
                write(toEval ? eval : train, raw.toString());
                written[toEval ? 1 : 0]++;
            });
        }));
        return new Result(written[0], written[1], keys.length - evalGroups, evalGroups, counts);
    }

    private static String source(PreferenceRecord r) {
        if (r instanceof PreferencePair p) return p.source();
        if (r instanceof UnpairedFeedback u) return u.source();
        if (r instanceof RatedCompletions rc) return rc.source();
        return null;
    }

    private static void write(Writer w, String line) {
        try {
            w.write(line);
            w.write('\n');
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
