package io.tether.run;

import io.tether.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;
import io.tether.model.ModelConfig;

/**
 * How a trainer reads its data, the keys every trainer shares: {@code invalid_records} (error or skip: what happens to
 * a record {@code tether data validate} rejects) and TRL's length limits {@code max_length}, {@code max_prompt_length},
 * {@code max_completion_length} and {@code truncation_mode} (see {@link Truncation}). A length left unset (0 here)
 * comes from the model: max_length is min(TRL's 1024, the model's max_position_embeddings), so a model is never fed
 * positions it does not have; max_prompt_length is min(TRL's 512, max_length).
 */
public record DataSettings(TokenRecords.InvalidRecords invalidRecords, int maxLength, int maxPromptLength, int maxCompletionLength, Truncation.Mode truncationMode) {

    /**
     * Reads the keys; {@code mode} is the method's TRL default truncation_mode (null: invalid_records only, for methods
     * that cut their own inputs), {@code dropAllowed} whether {@code drop} is one.
     */
    public static DataSettings from(ConfigTree c, Truncation.Mode mode, boolean dropAllowed, boolean promptLimits) {
        TokenRecords.InvalidRecords invalid = TokenRecords.InvalidRecords.parse(c.string("invalid_records", "error"));
        // No mode: the method cuts its own inputs (online prompts keep their end under max_prompt_length) and takes none of these keys.
        if (mode == null) return new DataSettings(invalid, 0, 0, 0, Truncation.Mode.KEEP_END);
        int maxLength = optional(c, "max_length");
        int maxPrompt = promptLimits ? optional(c, "max_prompt_length") : 0;
        int maxCompletion = promptLimits ? optional(c, "max_completion_length") : 0;
        Truncation.Mode m = Truncation.Mode.parse(c.string("truncation_mode", mode.key()), dropAllowed);
        if (maxLength != 0 && maxLength < 2) throw new ConfigException("key 'max_length': must be >= 2, got " + maxLength);
        if (maxPrompt < 0 || maxCompletion < 0) throw new ConfigException("key '" + (maxPrompt < 0 ? "max_prompt_length" : "max_completion_length") + "': must be >= 1");
        return new DataSettings(invalid, maxLength, maxPrompt, maxCompletion, m);
    }

    /** The same settings with an explicit max_length (tests, the demo's stages). */
    public static DataSettings of(int maxLength) {
        return new DataSettings(TokenRecords.InvalidRecords.ERROR, maxLength, 0, 0, Truncation.Mode.KEEP_START);
    }

    private static int optional(ConfigTree c, String key) {
        return c.raw(key) == null ? 0 : c.integer(key, 0);
    }

    /** The limits in force for a model of {@code positions} positions; {@code promptLimits} adds TRL's max_prompt_length default. */
    public Truncation truncation(int positions, boolean promptLimits) {
        int length = maxLength > 0 ? maxLength : Truncation.defaultMaxLength(positions);
        if (length > positions)
            throw new ConfigException("key 'max_length': " + length + " is more than the model's " + positions + " positions (max_position_embeddings)");
        int prompt = !promptLimits ? 0 : maxPromptLength > 0 ? maxPromptLength : Truncation.defaultMaxPromptLength(length);
        return new Truncation(length, prompt, maxCompletionLength, truncationMode);
    }

    /** The model's config, read before its weights: the data is read and checked before any model is loaded. */
    public static ModelConfig modelConfig(Path dir) {
        if (!Files.isDirectory(dir)) throw new CheckpointException(dir, null, "model directory not found");
        return ModelConfig.read(dir);
    }

    /** What reading left out and cut, for the log ({@code listener}) and the run's provenance and config. */
    public static void report(Trainer.Listener listener, Map<String, Object> provenance, DataSettings s, Truncation t,
                              Map<Path, TokenRecords.Read<?>> reads) {
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("invalid_records", s.invalidRecords().name().toLowerCase(java.util.Locale.ROOT));
        long skipped = 0, unsettled = 0;
        Map<String, Long> codes = new java.util.TreeMap<>();
        java.util.List<String> named = new java.util.ArrayList<>();
        for (var e : reads.entrySet()) {
            if (e.getValue() == null) continue;
            skipped += e.getValue().skipped();
            unsettled += e.getValue().unsettled();
            e.getValue().problems().errorCounts().forEach((k, v) -> codes.merge(k, v, Long::sum));
            for (var p : e.getValue().problems().details()) if (p.severity() == io.tether.data.Problems.Severity.ERROR) named.add(p.toString());
            if (listener != null) for (String line : e.getValue().report(e.getKey())) listener.onNotice(line);
        }
        data.put("records_skipped", skipped);
        if (skipped > 0) {
            data.put("skipped_by_code", codes);
            data.put("skipped", named);
        }
        data.put("pairs_unsettled", unsettled);
        if (t != null) {
            data.putAll(t.report());
            if (listener != null && (t.truncated() > 0 || t.dropped() > 0)) listener.onNotice(t.summary("data"));
        }
        provenance.put("data_reading", data);
    }

    /** The run's resolved config with the length limits in force (those left unset came from the model). */
    public static Map<String, Object> resolved(Map<String, Object> resolved, Truncation t, boolean withMaxLength) {
        Map<String, Object> out = new LinkedHashMap<>(resolved);
        if (withMaxLength) out.put("max_length", t.maxLength());
        if (t.maxPromptLength() > 0) out.put("max_prompt_length", t.maxPromptLength());
        return out;
    }
}
