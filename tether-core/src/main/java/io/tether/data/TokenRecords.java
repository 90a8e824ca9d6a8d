package io.tether.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.PreferenceReader.BadRecord;
import io.tether.data.PreferenceReader.Format;
import io.tether.data.PreferenceRecord.Origin;
import io.tether.engine.ConfigException;
import io.tether.text.ChatTemplate;
import io.tether.text.ChatTemplateException;
import io.tether.text.PromptCompletion;
import io.tether.text.Tokenizer;

/**
 * Training data as token ids, read through the same reader and checks as {@code tether data validate}: every format
 * {@link PreferenceReader} reads (JSONL or JSON arrays, gzip), each record checked by {@link PreferenceValidator},
 * then tokenized as TRL does ({@link PromptCompletion}: the prompt alone, the completion as what follows it in
 * prompt+completion; chat records through the template). Pre-tokenized records ({@code prompt_ids} with
 * {@code completion_ids}, or with {@code chosen_ids} and {@code rejected_ids}) are read beside them and get the
 * same checks. A record validate rejects is never trained on: under {@link InvalidRecords#ERROR} the read fails
 * naming the first one (file:line) and how many there are; under {@link InvalidRecords#SKIP} each is left out and
 * named in {@link Read#problems()}. Pairs that settle nothing (a tie, unresolved votes, ratings that all tie) are
 * left out and counted, never guessed.
 */
public final class TokenRecords {
    private TokenRecords() {}

    /**
     * One record. {@code completion} is set for demonstrations and unpaired feedback (with {@code desirable});
     * {@code chosen}/{@code rejected} for pairs. {@code mismatch} describes a prompt whose tokens are not a prefix of
     * prompt+completion (null when they are).
     */
    public record TokenRecord(Origin origin, ObjectNode source, long[] prompt, long[] completion, long[] chosen, long[] rejected, Boolean desirable,
                              String mismatch) {
        public long line() { return origin.line(); }

        public boolean isPreference() { return chosen != null; }

        /** The prompt followed by {@code part} (chosen, rejected or completion): the whole sequence a reward model scores. */
        public long[] withPrompt(long[] part) {
            long[] all = Arrays.copyOf(prompt, prompt.length + part.length);
            System.arraycopy(part, 0, all, prompt.length, part.length);
            return all;
        }
    }

    /** How text and chats become tokens: the tokenizer, the chat template (for message lists) and EOS policy. */
    public record TextEncoder(Tokenizer tokenizer, ChatTemplate template, boolean appendEos) {}

    /** What a trainer does with a record {@code tether data validate} rejects (config key {@code invalid_records}). */
    public enum InvalidRecords {
        /** Refuse the data, naming the first bad record and how many there are (the default). */
        ERROR,
        /** Leave each bad record out, named with file:line and code, and counted. */
        SKIP;

        public static InvalidRecords parse(String s) {
            return switch (s) {
                case "error" -> ERROR;
                case "skip" -> SKIP;
                default -> throw new ConfigException("key 'invalid_records': expected error or skip, got '" + s + "'");
            };
        }
    }

    /** The records a consumer can use. */
    public enum Use {
        /** Chosen/rejected pairs (rated completions are binarized best against worst). */
        PAIRS("preference pairs (chosen and rejected)"),
        /** Unpaired feedback with a boolean label; pairs become a desirable and an undesirable example. */
        UNPAIRED("unpaired feedback (a completion with a boolean label) or pairs"),
        /** Demonstrations: prompt and completion, text, or a conversation. */
        COMPLETIONS("demonstrations (prompt and completion, text or messages)"),
        /** Anything with a completion to score (tether logprobs). */
        ANY("records with a completion");

        final String wants;

        Use(String wants) {
            this.wants = wants;
        }
    }

    /**
     * The records read, the problems of the ones left out (under SKIP; counts cover all, details the first
     * {@link Problems#DETAILS_KEPT}), and how many settled nothing (ties, unresolved, all-tied ratings).
     */
    public record Read<T>(List<T> records, Problems problems, long unsettled) {
        public long skipped() {
            return problems.errors();
        }

        /** Each skipped record as "file:line: error [code] message", then the counts, for a run's log. */
        public List<String> report(Path file) {
            List<String> out = new ArrayList<>();
            for (Problems.Problem p : problems.details()) if (p.severity() == Problems.Severity.ERROR) out.add("skipped " + p);
            if (skipped() > 0) out.add(String.format(Locale.ROOT, "%s: skipped %d invalid records %s (invalid_records: skip)%s", file, skipped(), problems.errorCounts(),
                    skipped() > problems.details().size() ? "; the first " + problems.details().size() + " are named above" : ""));
            if (unsettled > 0) out.add(file + ": left out " + unsettled + " pairs that settle no preference (ties, unresolved votes, ratings that all tie)");
            return out;
        }
    }

    /** Reads a file for {@code tether logprobs}: any record with a completion; the first invalid record fails the read. */
    public static List<TokenRecord> read(Path file, int vocabSize, TextEncoder encoder) {
        return collect(file, InvalidRecords.ERROR, false, new long[1], parser(vocabSize, encoder, Use.ANY, null, new long[1])).records();
    }

    public static List<TokenRecord> read(Path file, int vocabSize) {
        return read(file, vocabSize, null);
    }

    /** Reads {@code file} ({@code format} null: detected per record) for {@code use}, under {@code policy}. */
    public static Read<TokenRecord> read(Path file, int vocab, TextEncoder encoder, Use use, InvalidRecords policy, Format format) {
        long[] unsettled = {0};
        return collect(file, policy, true, unsettled, parser(vocab, encoder, use, format, unsettled));
    }

    private static Parser<TokenRecord> parser(int vocab, TextEncoder encoder, Use use, Format format, long[] unsettled) {
        return (at, o, problems, validator) -> {
            if (o.has("prompt_ids")) return ids(at, o, vocab, use, problems);
            Format f = format != null ? format : detect(o);
            if (encoder == null) throw new BadRecord("missing-field", "missing field 'prompt_ids' (text and chat records need a model directory with a tokenizer.json)");
            PreferenceRecord record = PreferenceReader.parse(f, o, at);
            long before = problems.errors();
            validator.accept(record);
            if (problems.errors() > before) return null;
            if (record instanceof RatedCompletions rc) {
                if (use != Use.PAIRS && use != Use.UNPAIRED) throw wrongKind(use, "rated completions");
                record = Binarize.pair(rc, Binarize.Strategy.BEST_WORST, 0);
                if (record == null) {
                    unsettled[0]++;
                    return null;
                }
            }
            if (record instanceof PreferencePair p && p.label() != PreferencePair.Label.CHOSEN) {
                unsettled[0]++;
                return null;
            }
            return tokenize(at, o, record, f, encoder, vocab, use);
        };
    }

    /** The format of one record: its keys as {@code tether data} detects them; a record without a completion is a demonstration's error. */
    static Format detect(ObjectNode o) {
        Format f = PreferenceReader.detect(o);
        if (f == null && (o.has("chosen") || o.has("rejected"))) return Format.TRL;
        return f == null || f == Format.PROMPTS ? Format.COMPLETIONS : f;
    }

    /** Parses one record into a T, or returns null to leave it out (having reported why, or counted it). */
    @FunctionalInterface
    interface Parser<T> {
        T parse(Origin at, ObjectNode o, Problems problems, PreferenceValidator validator);
    }

    /**
     * The one reading loop of every trainer's data: {@link RawRecords} (line-level problems), the parser (record
     * problems, as {@link BadRecord}s or reported to the problems directly), then the policy.
     */
    static <T> Read<T> collect(Path file, InvalidRecords policy, boolean offerSkip, long[] unsettled, Parser<T> parser) {
        Problems problems = new Problems(Long.MAX_VALUE);
        PreferenceValidator validator = new PreferenceValidator(problems, null, null, 0);
        List<T> out = new ArrayList<>();
        long[] seen = {0};
        RawRecords.forEach(file, problems, (line, column, index, text, o) -> {
            seen[0]++;
            Origin at = new Origin(file, line, index);
            long before = problems.errors();
            T t;
            try {
                t = parser.parse(at, o, problems, validator);
            } catch (BadRecord bad) {
                long col = bad.field != null && text != null ? PreferenceReader.columnOf(text, bad.field) : 0;
                problems.error(at, col, bad.code, bad.getMessage());
                return;
            }
            if (t != null && problems.errors() == before) out.add(t);
        });
        long invalid = problems.errors();
        if (invalid > 0 && policy == InvalidRecords.ERROR) {
            Problems.Problem first = problems.details().stream().filter(p -> p.severity() == Problems.Severity.ERROR).findFirst().orElseThrow();
            throw new DataFormatException(first.file(), first.line(), first.column(), first.message() + " [" + first.code() + "]"
                    + (first.record() > 0 && first.record() != first.line() ? " (record " + first.record() + ")" : "")
                    + (invalid > 1 ? "; " + invalid + " invalid records in all " + problems.errorCounts() : "")
                    + (invalid > 1 || offerSkip ? "; `tether data validate " + file + "` lists each" : "")
                    + (offerSkip ? " (invalid_records: skip trains without them)" : ""));
        }
        if (seen[0] == 0 && invalid == 0) throw new DataFormatException(file, 0, "no records: the file is empty");
        if (out.isEmpty()) throw new DataFormatException(file, 0, "no usable records: of " + Math.max(seen[0], invalid) + ", " + invalid + " are invalid "
                + problems.errorCounts() + " and " + unsettled[0] + " settle no preference (ties, unresolved votes)");
        return new Read<>(out, problems, unsettled[0]);
    }

    private static BadRecord wrongKind(Use use, String found) {
        return new BadRecord("wrong-kind", "needs " + use.wants + ", found " + found);
    }

    // ---- text and chat records ----

    private static TokenRecord tokenize(Origin at, ObjectNode o, PreferenceRecord record, Format f, TextEncoder enc, int vocab, Use use) {
        try {
            if (record instanceof PreferencePair p) {
                if (use == Use.COMPLETIONS) throw wrongKind(use, "a preference pair");
                Turns prompt = p.prompt(), chosen = p.chosen(), rejected = p.rejected();
                if (f == Format.HH) {
                    // HH-RLHF is text: as TRL's extract_prompt, the prompt is the transcripts' common prefix.
                    String c = o.get("chosen").asText(), r = o.get("rejected").asText();
                    Turns[] split = PreferenceReader.splitText(c, r);
                    boolean swapped = !c.endsWith(p.chosen().flat());
                    prompt = split[0];
                    chosen = split[swapped ? 2 : 1];
                    rejected = split[swapped ? 1 : 2];
                }
                PromptCompletion.Tokenized tc = encode(enc, prompt, chosen), tr = encode(enc, prompt, rejected);
                String mismatch = tc.mismatch() != null ? tc.mismatch().detail() : tr.mismatch() != null ? tr.mismatch().detail() : null;
                return check(at, o, tc.promptIds(), null, tc.completionIds(), tr.completionIds(), null, mismatch, vocab);
            }
            if (record instanceof UnpairedFeedback u) {
                if (use == Use.PAIRS || use == Use.COMPLETIONS) throw wrongKind(use, "unpaired feedback (a completion with a boolean label)");
                PromptCompletion.Tokenized t = encode(enc, u.prompt(), u.completion());
                return check(at, o, t.promptIds(), t.completionIds(), null, null, u.desirable(), t.mismatch() == null ? null : t.mismatch().detail(), vocab);
            }
            if (record instanceof Demonstration d) {
                if (use == Use.PAIRS || use == Use.UNPAIRED) throw wrongKind(use, "a demonstration without a preference");
                if (!d.prompt().isChat() && d.prompt().text().isEmpty()) {
                    long[] ids = enc.tokenizer().encode(d.completion().text() + (enc.appendEos() ? eos(enc) : ""), true);
                    if (ids.length < 2) throw new BadRecord("empty-text", "text", "\'text\' tokenizes to fewer than 2 tokens");
                    // The first token (BOS, or the first word) has no prediction: it plays the prompt.
                    return check(at, o, new long[] {ids[0]}, Arrays.copyOfRange(ids, 1, ids.length), null, null, null, null, vocab);
                }
                PromptCompletion.Tokenized t = encode(enc, d.prompt(), d.completion());
                return check(at, o, t.promptIds(), t.completionIds(), null, null, null, t.mismatch() == null ? null : t.mismatch().detail(), vocab);
            }
            throw wrongKind(use, "a prompt without a completion");
        } catch (ChatTemplateException e) {
            throw new BadRecord("chat-template", "chat template: " + e.getMessage());
        }
    }

    private static PromptCompletion.Tokenized encode(TextEncoder enc, Turns prompt, Turns completion) {
        if (prompt.isChat() != completion.isChat()) throw new BadRecord("wrong-type", "the prompt and the completion must both be text or both be messages");
        if (!prompt.isChat()) return PromptCompletion.text(enc.tokenizer(), prompt.text(), completion.text(), enc.appendEos() && eos(enc) != null);
        if (enc.template() == null) throw new BadRecord("no-chat-template", "message lists need a chat template, and the tokenizer has none");
        return PromptCompletion.chat(enc.tokenizer(), enc.template(), maps(prompt), maps(completion), Map.of());
    }

    static List<Map<String, Object>> maps(Turns t) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Turns.Message m : t.messages()) out.add(Map.of("role", m.role(), "content", m.content()));
        return out;
    }

    private static String eos(TextEncoder enc) {
        String eos = enc.tokenizer().specialTokens().eos();
        if (eos == null) throw new BadRecord("no-eos", "appending EOS needs a tokenizer with an eos_token");
        return eos;
    }

    private static TokenRecord check(Origin at, ObjectNode o, long[] prompt, long[] completion, long[] chosen, long[] rejected, Boolean desirable,
                                     String mismatch, int vocab) {
        if (prompt.length == 0) throw new BadRecord("empty-text", "the prompt tokenizes to nothing: at least one token (e.g. BOS) must precede the completion");
        for (long[] ids : new long[][] {prompt, completion, chosen, rejected}) {
            if (ids == null) continue;
            for (long id : ids) if (id >= vocab) throw new BadRecord("bad-token", "token id " + id + " from the tokenizer is outside the model's vocabulary [0, " + vocab + ")");
        }
        return new TokenRecord(at, o, prompt, completion, chosen, rejected, desirable, mismatch);
    }

    // ---- pre-tokenized records ----

    private static TokenRecord ids(Origin at, ObjectNode o, int vocab, Use use, Problems problems) {
        long[] prompt = ids(o, "prompt_ids", vocab);
        if (prompt.length == 0) throw new BadRecord("empty-text", "prompt_ids", "\'prompt_ids' is empty: at least one token (e.g. BOS) must precede the completion");
        boolean plain = o.has("completion_ids"), pair = o.has("chosen_ids") || o.has("rejected_ids");
        if (plain && pair) throw new BadRecord("wrong-type", "has both 'completion_ids' and 'chosen_ids'/'rejected_ids'; expected one kind of record");
        if (pair) {
            if (!o.has("chosen_ids") || !o.has("rejected_ids")) throw new BadRecord("missing-field", "a preference record needs both 'chosen_ids' and 'rejected_ids'");
            if (use == Use.COMPLETIONS) throw wrongKind(use, "a preference pair");
            long[] chosen = ids(o, "chosen_ids", vocab), rejected = ids(o, "rejected_ids", vocab);
            // The checks validate makes of text pairs, on tokens.
            if (chosen.length == 0 || rejected.length == 0) throw new BadRecord("empty-text", chosen.length == 0 ? "chosen_ids" : "rejected_ids",
                    (chosen.length == 0 ? "chosen" : "rejected") + "_ids is empty");
            if (Arrays.equals(chosen, rejected)) throw new BadRecord("identical-completions", "chosen_ids", "chosen_ids and rejected_ids are the same tokens: the pair teaches nothing");
            return new TokenRecord(at, o, prompt, null, chosen, rejected, null, null);
        }
        if (!plain) throw new BadRecord("missing-field", "expected 'completion_ids', or 'chosen_ids' and 'rejected_ids'");
        long[] completion = ids(o, "completion_ids", vocab);
        Boolean desirable = null;
        JsonNode label = o.get("label");
        if (use == Use.UNPAIRED) {
            if (label == null || !label.isBoolean()) throw new BadRecord("bad-label", label == null ? null : "label", "an unpaired record needs a boolean 'label' (thumbs up or down)");
            desirable = label.asBoolean();
        } else if (use == Use.PAIRS) {
            throw wrongKind(use, "a single completion");
        }
        if (completion.length == 0 && use != Use.ANY) throw new BadRecord("empty-text", "completion_ids", "\'completion_ids' is empty");
        return new TokenRecord(at, o, prompt, completion, null, null, desirable, null);
    }

    static long[] ids(ObjectNode o, String field, int vocab) {
        JsonNode n = o.get(field);
        if (n == null || !n.isArray()) throw new BadRecord("wrong-type", field, "\'" + field + "' must be an array of token ids");
        long[] ids = new long[n.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode v = n.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong()) throw new BadRecord("wrong-type", field, "\'" + field + "'[" + i + "] is not an integer: " + v);
            ids[i] = v.asLong();
            if (ids[i] < 0 || ids[i] >= vocab)
                throw new BadRecord("bad-token", field, "\'" + field + "'[" + i + "] = " + ids[i] + " is outside the vocabulary [0, " + vocab + ")");
        }
        return ids;
    }
}
