package io.tether.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.text.ChatTemplateException;
import io.tether.text.PromptCompletion;

/** TRL's text and conversational record formats, tokenized through {@link PromptCompletion}. */
final class TextRecords {
    private TextRecords() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    static TokenRecords.TokenRecord parse(Path file, long line, ObjectNode o, TokenRecords.TextEncoder enc, int vocab) {
        try {
            if (o.has("messages")) {
                List<Map<String, Object>> messages = messages(file, line, o.get("messages"), "messages");
                if (messages.size() < 2) throw new DataFormatException(file, line, "'messages' needs a prompt and a final message to score");
                PromptCompletion.Tokenized t = tokenize(file, line, enc, messages.subList(0, messages.size() - 1), messages.subList(messages.size() - 1, messages.size()));
                return check(file, line, o, t.promptIds(), t.completionIds(), null, null, t, vocab);
            }
            if (o.has("text") && !o.has("prompt")) {
                String text = string(file, line, o, "text");
                long[] ids = enc.tokenizer().encode(text + (enc.appendEos() ? eos(file, line, enc) : ""), true);
                if (ids.length < 2) throw new DataFormatException(file, line, "'text' tokenizes to fewer than 2 tokens");
                // The first token (BOS, or the first word) has no prediction: it plays the prompt.
                return check(file, line, o, new long[] {ids[0]}, java.util.Arrays.copyOfRange(ids, 1, ids.length), null, null, null, vocab);
            }
            if (!o.has("prompt") && o.path("chosen").isTextual() && o.path("rejected").isTextual()) {
                // Implicit prompt (HH-RLHF style full transcripts): TRL's extract_prompt takes the longest common
                // prefix of chosen and rejected as the prompt.
                String c = o.get("chosen").asText(), r = o.get("rejected").asText();
                int k = 0;
                while (k < c.length() && k < r.length() && c.charAt(k) == r.charAt(k)) k++;
                ObjectNode explicit = o.deepCopy();
                explicit.put("prompt", c.substring(0, k));
                explicit.put("chosen", c.substring(k));
                explicit.put("rejected", r.substring(k));
                return parse(file, line, explicit, enc, vocab);
            }
            if (!o.has("prompt")) throw new DataFormatException(file, line, "missing field 'prompt'");
            boolean chat = o.get("prompt").isArray();
            if (o.has("completion")) {
                PromptCompletion.Tokenized t = pair(file, line, o, enc, chat, "completion");
                return check(file, line, o, t.promptIds(), t.completionIds(), null, null, t, vocab);
            }
            if (o.has("chosen") || o.has("rejected")) {
                if (!o.has("chosen") || !o.has("rejected")) throw new DataFormatException(file, line, "a preference record needs both 'chosen' and 'rejected'");
                PromptCompletion.Tokenized c = pair(file, line, o, enc, chat, "chosen"), r = pair(file, line, o, enc, chat, "rejected");
                return check(file, line, o, c.promptIds(), null, c.completionIds(), r.completionIds(), c.mismatch() != null ? c : r, vocab);
            }
            throw new DataFormatException(file, line, "expected 'completion', or 'chosen' and 'rejected', beside 'prompt'");
        } catch (ChatTemplateException e) {
            throw new DataFormatException(file, line, "chat template: " + e.getMessage());
        }
    }

    private static PromptCompletion.Tokenized pair(Path file, long line, ObjectNode o, TokenRecords.TextEncoder enc, boolean chat, String field) {
        if (chat) return tokenize(file, line, enc, messages(file, line, o.get("prompt"), "prompt"), messages(file, line, o.get(field), field));
        return PromptCompletion.text(enc.tokenizer(), string(file, line, o, "prompt"), string(file, line, o, field), enc.appendEos());
    }

    private static PromptCompletion.Tokenized tokenize(Path file, long line, TokenRecords.TextEncoder enc, List<Map<String, Object>> prompt, List<Map<String, Object>> completion) {
        if (enc.template() == null) throw new DataFormatException(file, line, "message lists need a chat template, and the tokenizer has none");
        return PromptCompletion.chat(enc.tokenizer(), enc.template(), prompt, completion, Map.of());
    }

    private static TokenRecords.TokenRecord check(Path file, long line, ObjectNode o, long[] prompt, long[] completion, long[] chosen, long[] rejected,
                                                  PromptCompletion.Tokenized t, int vocab) {
        if (prompt.length == 0) throw new DataFormatException(file, line, "the prompt tokenizes to nothing: at least one token (e.g. BOS) must precede the completion");
        for (long[] ids : new long[][] {prompt, completion, chosen, rejected}) {
            if (ids == null) continue;
            for (long id : ids) if (id >= vocab) throw new DataFormatException(file, line, "token id " + id + " from the tokenizer is outside the model's vocabulary [0, " + vocab + ")");
        }
        String mismatch = t == null || t.mismatch() == null ? null : t.mismatch().detail();
        return new TokenRecords.TokenRecord(line, o, prompt, completion, chosen, rejected, mismatch);
    }

    private static String string(Path file, long line, ObjectNode o, String field) {
        JsonNode n = o.get(field);
        if (n == null || !n.isTextual()) throw new DataFormatException(file, line, "'" + field + "' must be a string");
        return n.asText();
    }

    private static String eos(Path file, long line, TokenRecords.TextEncoder enc) {
        String eos = enc.tokenizer().specialTokens().eos();
        if (eos == null) throw new DataFormatException(file, line, "appending EOS needs a tokenizer with an eos_token");
        return eos;
    }

    private static List<Map<String, Object>> messages(Path file, long line, JsonNode n, String field) {
        if (n == null || !n.isArray()) throw new DataFormatException(file, line, "'" + field + "' must be a list of {role, content} messages");
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < n.size(); i++) {
            JsonNode m = n.get(i);
            if (!m.isObject() || !m.path("role").isTextual() || !m.has("content"))
                throw new DataFormatException(file, line, "'" + field + "'[" + i + "] must be an object with 'role' and 'content'");
            out.add(JSON.convertValue(m, new TypeReference<Map<String, Object>>() {}));
        }
        return out;
    }
}
