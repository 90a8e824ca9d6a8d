package io.tether.data;

import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.PreferenceReader.BadRecord;
import io.tether.data.PreferenceRecord.Origin;
import io.tether.text.ChatTemplateException;
import io.tether.text.TextAssets;

/**
 * Prompts to generate from (tether generate, the online trainers), read as {@code tether data validate --format
 * prompts} reads them (JSONL or JSON arrays, gzip; {@code prompt}, {@code question}, {@code messages} or
 * {@code conversations}) or as {@code prompt_ids}. Chat prompts are rendered with the generation prompt, text
 * prompts tokenized with BOS. Problems name the file and line; {@link TokenRecords.InvalidRecords} decides
 * whether a bad record stops the read or is skipped and named.
 */
public final class PromptRecords {
    private PromptRecords() {}

    /** A prompt's token ids, the record it came from, and its text (null for {@code prompt_ids} records). */
    public record PromptRecord(Origin origin, ObjectNode source, long[] ids, String text) {
        public long line() { return origin.line(); }
    }

    /** {@code text} may be null: then only {@code prompt_ids} records are accepted. The first invalid record fails the read. */
    public static List<PromptRecord> read(Path file, TextAssets text, int vocab) {
        return TokenRecords.collect(file, TokenRecords.InvalidRecords.ERROR, false, new long[1], (at, o, problems, validator) -> parse(at, o, text, vocab, problems, validator)).records();
    }

    /** As {@link #read(Path, TextAssets, int)}, under {@code policy}; {@code truncation} (or null) cuts each prompt to its last max_prompt_length tokens. */
    public static TokenRecords.Read<PromptRecord> read(Path file, TextAssets text, int vocab, TokenRecords.InvalidRecords policy, Truncation truncation) {
        return TokenRecords.collect(file, policy, true, new long[1], (at, o, problems, validator) -> {
            PromptRecord r = parse(at, o, text, vocab, problems, validator);
            return r == null || truncation == null ? r : new PromptRecord(r.origin(), r.source(), truncation.prompt(r.ids()), r.text());
        });
    }

    private static PromptRecord parse(Origin at, ObjectNode o, TextAssets text, int vocab, Problems problems, PreferenceValidator validator) {
        if (o.has("prompt_ids")) {
            long[] ids = TokenRecords.ids(o, "prompt_ids", vocab);
            if (ids.length == 0) throw new BadRecord("empty-text", "prompt_ids", "\'prompt_ids' is empty: generation needs at least one prompt token");
            return new PromptRecord(at, o, ids, null);
        }
        PromptOnly p = (PromptOnly) PreferenceReader.parse(PreferenceReader.Format.PROMPTS, o, at);
        long before = problems.errors();
        validator.accept(p);
        if (problems.errors() > before) return null;
        if (text == null) throw new BadRecord("missing-field", "missing field 'prompt_ids' (text prompts need a model directory with a tokenizer.json)");
        String rendered;
        long[] ids;
        if (p.prompt().isChat()) {
            if (text.template() == null) throw new BadRecord("no-chat-template", "chat messages need a chat template, and the model directory has none");
            try {
                rendered = text.template().render(TokenRecords.maps(p.prompt()), true);
            } catch (ChatTemplateException e) {
                throw new BadRecord("chat-template", "chat template: " + e.getMessage());
            }
            ids = text.tokenizer().encode(rendered, false);   // the template writes BOS itself
        } else {
            rendered = p.prompt().text();
            ids = text.tokenizer().encode(rendered, true);
        }
        if (ids.length == 0) throw new BadRecord("empty-text", "the prompt tokenizes to nothing: generation needs at least one prompt token");
        for (int j = 0; j < ids.length; j++)
            if (ids[j] < 0 || ids[j] >= vocab) throw new BadRecord("bad-token", "prompt token " + j + " = " + ids[j] + " is outside the vocabulary [0, " + vocab + ")");
        return new PromptRecord(at, o, ids, rendered);
    }
}
