package io.tether.text;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** All 240 renderings that HF transformers produced (or the errors its templates raised) must match exactly. */
class ChatTemplateGoldenTest {
    static final Path FIXTURES = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures");
    static final ObjectMapper JSON = new ObjectMapper();

    /** The template a golden case names: an entry of ollama-templates.jsonl (by line), or a tokenizer_config.json. */
    static String template(String source) throws IOException {
        String[] parts = source.split("#");
        Path file = FIXTURES.resolve(parts[0]);
        if (parts.length == 2) {
            List<String> lines = Files.readAllLines(file);
            JsonNode row = JSON.readTree(lines.get(Integer.parseInt(parts[1])));
            return row.elements().next().asText();
        }
        JsonNode t = JSON.readTree(file.toFile()).get("chat_template");
        if (t.isTextual()) return t.asText();
        for (JsonNode n : t) if ("default".equals(n.path("name").asText())) return n.path("template").asText();
        throw new IllegalStateException("no default template in " + file);
    }

    @Test
    void everyGoldenRenderingMatches() throws IOException {
        List<String> lines = Files.readAllLines(FIXTURES.resolve("chat_templates/golden-renderings.jsonl"));
        Map<String, String> templates = new HashMap<>();
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            JsonNode c = JSON.readTree(lines.get(i));
            String source = c.get("source").asText();
            String tpl = templates.computeIfAbsent(source, s -> {
                try {
                    return template(s);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            Map<String, String> specials = JSON.convertValue(c.get("special_tokens"), new TypeReference<Map<String, String>>() {});
            List<Map<String, Object>> messages = JSON.convertValue(c.get("messages"), new TypeReference<List<Map<String, Object>>>() {});
            ChatTemplate t = new ChatTemplate(tpl, specials, source);
            String got;
            try {
                got = t.render(messages, c.get("add_generation_prompt").asBoolean());
            } catch (ChatTemplateException e) {
                got = "ERROR " + e.getMessage();
            }
            String expected = c.has("expected_error") ? "ERROR " + c.get("expected_error").asText() : c.get("expected").asText();
            if (!expected.equals(got)) failures.add("#" + i + " " + c.get("family").asText() + "\n  expected: " + JSON.writeValueAsString(expected) + "\n  got:      " + JSON.writeValueAsString(got));
        }
        Files.write(Path.of("target/chat-template-golden-failures.txt"), failures);
        assertTrue(failures.isEmpty(), failures.size() + " of " + lines.size() + " renderings differ:\n" + String.join("\n", failures.subList(0, Math.min(Integer.getInteger("golden.show", 8), failures.size()))));
    }
}
