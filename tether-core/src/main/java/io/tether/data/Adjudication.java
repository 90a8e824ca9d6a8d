package io.tether.data;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

import io.tether.data.PreferencePair.Label;

/**
 * Decisions on flagged pairs kept beside the data instead of edits to it: JSONL of
 * {@code {"prompt_id": ..., "label": ...}} or {@code {"line": N, "label": ...}} (N = the pair's line in its source
 * file) or {@code {"record": N, ...}} (its position among the file's records, for one-line JSON arrays), label one of {@code chosen} (keep as stored), {@code rejected} (swap), {@code tie} or {@code drop}.
 */
public final class Adjudication {
    private enum Decision { CHOSEN, REJECTED, TIE, DROP }

    private final Map<String, Decision> byPromptId = new HashMap<>();
    private final Map<Long, Decision> byLine = new HashMap<>(), byRecord = new HashMap<>();
    private long applied, dropped;

    public static Adjudication load(Path file) {
        Adjudication a = new Adjudication();
        JsonLines.forEach(file, (line, o) -> {
            String label = o.path("label").asText("");
            Decision d;
            try {
                d = Decision.valueOf(label.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new DataFormatException(file, line, "'label' must be chosen, rejected, tie or drop, found \"" + label + "\"");
            }
            if (o.hasNonNull("prompt_id")) a.byPromptId.put(o.get("prompt_id").asText(), d);
            else if (o.path("line").isIntegralNumber()) a.byLine.put(o.get("line").asLong(), d);
            else if (o.path("record").isIntegralNumber()) a.byRecord.put(o.get("record").asLong(), d);
            else throw new DataFormatException(file, line, "an adjudication names its pair by 'prompt_id', 'line' or 'record'");
        });
        return a;
    }

    /** The record as decided: relabelled, swapped, or null when dropped; records without a decision pass unchanged. */
    public PreferenceRecord apply(PreferenceRecord r) {
        if (!(r instanceof PreferencePair p)) return r;
        Decision d = p.promptId() != null && byPromptId.containsKey(p.promptId()) ? byPromptId.get(p.promptId())
                : byLine.containsKey(p.origin().line()) ? byLine.get(p.origin().line()) : byRecord.get(p.origin().index());
        if (d == null) return r;
        applied++;
        return switch (d) {
            case CHOSEN -> p.withLabel(Label.CHOSEN);
            case REJECTED -> p.swapped().withLabel(Label.CHOSEN);
            case TIE -> p.withLabel(Label.TIE);
            case DROP -> {
                dropped++;
                yield null;
            }
        };
    }

    /** How many records a decision matched (dropped ones included). */
    public long applied() {
        return applied;
    }

    public long dropped() {
        return dropped;
    }
}
