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
import io.tether.text.TextAssets;

/**
 * Prompts to generate from (tether generate, GRPO), one JSONL record each: {@code prompt_ids}; or, with a tokenizer,
 * chat {@code messages} (or a message-list {@code prompt}) rendered with the generation prompt, or a text
 * {@code prompt} (GSM8K's {@code question} also works). Errors name the file, line and field.
 */
public final class PromptRecords {
    private PromptRecords() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A prompt's token ids, the record it came from, and its text (null for {@code prompt_ids} records). */
    public record PromptRecord(long line, ObjectNode source, long[] ids, String text) {}

    /** {@code text} may be null: then only {@code prompt_ids} records are accepted. */
    public static List<PromptRecord> read(Path file, TextAssets text, int vocab) {
        List<PromptRecord> out = new ArrayList<>();
        JsonLines.forEach(file, (line, o) -> out.add(parse(file, line, o, text, vocab)));
        if (out.isEmpty()) throw new DataFormatException(file, 0, "no prompts: the file is empty");
        return out;
    }

    private static PromptRecord parse(Path file, long line, ObjectNode o, TextAssets text, int vocab) {
        if (o.has("prompt_ids")) {
            long[] ids = TokenRecords.ids(file, line, o, "prompt_ids", vocab);
            if (ids.length == 0) throw new DataFormatException(file, line, "'prompt_ids' is empty: generation needs at least one prompt token");
            return new PromptRecord(line, o, ids, null);
        }
        String field = o.has("messages") ? "messages" : o.has("prompt") ? "prompt" : o.has("question") ? "question" : null;
        if (field == null) throw new DataFormatException(file, line, "expected 'prompt_ids', a text 'prompt' (or 'question') or chat 'messages'");
        if (text == null) throw new DataFormatException(file, line, "text prompts need a model directory with a tokenizer.json");
        JsonNode p = o.get(field);
        String rendered;
        long[] ids;
        if (p.isArray()) {
            if (text.template() == null) throw new DataFormatException(file, line, "chat messages need a chat template, and the model directory has none");
            List<Map<String, Object>> messages = JSON.convertValue(p, new TypeReference<List<Map<String, Object>>>() {});
            try {
                rendered = text.template().render(messages, true);
            } catch (ChatTemplateException e) {
                throw new DataFormatException(file, line, "chat template: " + e.getMessage());
            }
            ids = text.tokenizer().encode(rendered, false);   // the template writes BOS itself
        } else if (p.isTextual()) {
            rendered = p.asText();
            ids = text.tokenizer().encode(rendered, true);
        } else {
            throw new DataFormatException(file, line, "'" + field + "' must be text or a list of {role, content} messages");
        }
        if (ids.length == 0) throw new DataFormatException(file, line, "'" + field + "' is empty: generation needs at least one prompt token");
        for (int j = 0; j < ids.length; j++)
            if (ids[j] < 0 || ids[j] >= vocab)
                throw new DataFormatException(file, line, "'" + field + "' token " + j + " = " + ids[j] + " is outside the vocabulary [0, " + vocab + ")");
        return new PromptRecord(line, o, ids, rendered);
    }
}
