package io.tether.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.text.ChatTemplate;
import io.tether.text.Tokenizer;

/**
 * JSONL records turned into token ids: pre-tokenized ({@code prompt_ids} with {@code completion_ids}, or with
 * {@code chosen_ids} and {@code rejected_ids}), or, given a {@link TextEncoder}, TRL's text and conversational
 * formats: {@code prompt}/{@code completion}, {@code prompt}/{@code chosen}/{@code rejected} (strings or message
 * lists), {@code messages} (the last message is the completion) and {@code text} (an empty prompt: every token is
 * completion). Every line is validated before anything is computed, and errors name the file, line and field.
 */
public final class TokenRecords {
    private TokenRecords() {}

    /**
     * One input line. {@code completion} is set for plain records; {@code chosen}/{@code rejected} for pairs.
     * {@code mismatch} describes a prompt whose tokens are not a prefix of prompt+completion (null when they are).
     */
    public record TokenRecord(long line, ObjectNode source, long[] prompt, long[] completion, long[] chosen, long[] rejected, String mismatch) {
        public boolean isPreference() { return chosen != null; }

        /** The prompt followed by {@code part} (chosen, rejected or completion): the whole sequence a reward model scores. */
        public long[] withPrompt(long[] part) {
            long[] all = java.util.Arrays.copyOf(prompt, prompt.length + part.length);
            System.arraycopy(part, 0, all, prompt.length, part.length);
            return all;
        }
    }

    /** How text and chats become tokens: the tokenizer, the chat template (for message lists) and EOS policy. */
    public record TextEncoder(Tokenizer tokenizer, ChatTemplate template, boolean appendEos) {}

    public static List<TokenRecord> read(Path file, int vocabSize) {
        return read(file, vocabSize, null);
    }

    public static List<TokenRecord> read(Path file, int vocabSize, TextEncoder encoder) {
        List<TokenRecord> out = new ArrayList<>();
        JsonLines.forEach(file, (line, o) -> out.add(parse(file, line, o, vocabSize, encoder)));
        if (out.isEmpty()) throw new DataFormatException(file, 0, "no records: the file is empty");
        return out;
    }

    private static TokenRecord parse(Path file, long line, ObjectNode o, int vocab, TextEncoder encoder) {
        if (!o.has("prompt_ids")) {
            boolean textual = o.has("prompt") || o.has("messages") || o.has("chosen") || o.has("text");
            if (textual && encoder != null) return TextRecords.parse(file, line, o, encoder, vocab);
            String hint = textual ? " (text and chat records need a model directory with a tokenizer.json)" : "";
            throw new DataFormatException(file, line, "missing field 'prompt_ids'" + hint);
        }
        long[] prompt = ids(file, line, o, "prompt_ids", vocab);
        if (prompt.length == 0) throw new DataFormatException(file, line, "'prompt_ids' is empty: at least one token (e.g. BOS) must precede the completion");
        boolean plain = o.has("completion_ids"), pair = o.has("chosen_ids") || o.has("rejected_ids");
        if (plain && pair) throw new DataFormatException(file, line, "has both 'completion_ids' and 'chosen_ids'/'rejected_ids'; expected one kind of record");
        if (plain) return new TokenRecord(line, o, prompt, ids(file, line, o, "completion_ids", vocab), null, null, null);
        if (pair) {
            if (!o.has("chosen_ids") || !o.has("rejected_ids"))
                throw new DataFormatException(file, line, "a preference record needs both 'chosen_ids' and 'rejected_ids'");
            return new TokenRecord(line, o, prompt, null, ids(file, line, o, "chosen_ids", vocab), ids(file, line, o, "rejected_ids", vocab), null);
        }
        throw new DataFormatException(file, line, "expected 'completion_ids', or 'chosen_ids' and 'rejected_ids'");
    }

    static long[] ids(Path file, long line, ObjectNode o, String field, int vocab) {
        JsonNode n = o.get(field);
        if (n == null || !n.isArray()) throw new DataFormatException(file, line, "'" + field + "' must be an array of token ids");
        long[] ids = new long[n.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode v = n.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong())
                throw new DataFormatException(file, line, "'" + field + "'[" + i + "] is not an integer: " + v);
            ids[i] = v.asLong();
            if (ids[i] < 0 || ids[i] >= vocab)
                throw new DataFormatException(file, line, "'" + field + "'[" + i + "] = " + ids[i] + " is outside the vocabulary [0, " + vocab + ")");
        }
        return ids;
    }
}
