package io.tether.text;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** All 240 renderings that HF transformers produced (or the errors its templates raised) must match exactly. */
class ChatTemplateGoldenTest {
    static final Path FIXTURES = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures");
    static final ObjectMapper JSON = new ObjectMapper();
    /** Failures are written as \\u escapes: a rendering may hold a control character or half a surrogate pair. */
    private static final com.fasterxml.jackson.databind.ObjectWriter ASCII_JSON = JSON.writer().with(com.fasterxml.jackson.core.json.JsonWriteFeature.ESCAPE_NON_ASCII);

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
        List<String> failures = differences(lines);
        Files.write(Path.of("target/chat-template-golden-failures.txt"), failures);
        assertTrue(failures.isEmpty(), failures.size() + " of " + lines.size() + " renderings differ:\n" + String.join("\n", failures.subList(0, Math.min(Integer.getInteger("golden.show", 8), failures.size()))));
    }

    /**
     * Message contents, tool definitions and special tokens full of template syntax ({@code {{ 7*7 }}},
     * {@code {% raw %}}, {@code {% for %}}, {@code {#}, ...) on every template in the fixtures: jinja2 as transformers
     * sets it up prints them literally (make_hostile_golden.py made the expected renderings), and so must we.
     */
    @Test
    void hostileContentsRenderLiterallyAsHfDoes() throws IOException {
        List<String> lines = hostileGolden();
        List<String> failures = differences(lines);
        Files.write(Path.of("target/chat-template-hostile-failures.txt"), failures);
        assertTrue(failures.isEmpty(), failures.size() + " of " + lines.size() + " hostile renderings differ:\n" + String.join("\n", failures.subList(0, Math.min(Integer.getInteger("golden.show", 8), failures.size()))));
    }

    /** The hostile golden file covers every chat template the fixtures hold (a new fixture needs new renderings). */
    @Test
    void hostileGoldenCoversEveryTemplateInTheFixtures() throws IOException {
        Set<String> covered = new HashSet<>();
        for (String line : hostileGolden()) covered.add(JSON.readTree(line).get("source").asText());
        List<String> templates = new ArrayList<>();
        int ollama = Files.readAllLines(FIXTURES.resolve("chat_templates/ollama-templates.jsonl")).size();
        for (int i = 0; i < ollama; i++) templates.add("chat_templates/ollama-templates.jsonl#" + i);
        try (Stream<Path> files = Files.walk(FIXTURES)) {
            for (Path f : files.filter(p -> p.getFileName().toString().matches(".*tokenizer_config.*\\.json")).toList()) {
                if (JSON.readTree(f.toFile()).has("chat_template")) templates.add(FIXTURES.relativize(f).toString());
            }
        }
        assertTrue(templates.size() > 40 && templates.stream().anyMatch(t -> t.contains("gemma3")), templates.toString());
        List<String> missing = templates.stream().filter(t -> !covered.contains(t)).toList();
        assertTrue(missing.isEmpty(), "templates without hostile renderings: " + missing);
    }

    /**
     * A megabyte of template delimiters as one message, on every template: it renders as the same conversation
     * with a short placeholder does, the placeholder replaced by the megabyte (built here, not stored).
     */
    @Test
    void aMegabyteOfBracesRendersLiterallyOnEveryTemplate() throws IOException {
        String unit = "{{ {% {# }} %} #} {%- -%} {{- -}} }}{{";
        String braces = unit.repeat((1 << 20) / unit.length() + 1).substring(0, 1 << 20);
        String placeholder = "PLACEHOLDER7f3a";
        Set<String> sources = new LinkedHashSet<>();
        for (String line : hostileGolden()) sources.add(JSON.readTree(line).get("source").asText());
        sources.removeIf(s -> s.startsWith("paths#"));
        List<String> failures = new ArrayList<>();
        for (String source : sources) {
            ChatTemplate t = new ChatTemplate(template(source), Map.of("bos_token", "<s>", "eos_token", "</s>"), source);
            for (boolean assistant : new boolean[] {false, true}) {
                String expected = render(t, conversation(placeholder, assistant)).replace(placeholder, braces);
                String got = render(t, conversation(braces, assistant));
                if (!expected.equals(got)) failures.add(source + (assistant ? " (assistant)" : " (user)") + ": " + got.substring(0, Math.min(200, got.length())));
            }
        }
        assertTrue(sources.size() > 40, sources.toString());
        assertTrue(failures.isEmpty(), failures.size() + " templates alter a megabyte of braces:\n" + String.join("\n", failures));
    }

    private static List<Map<String, Object>> conversation(String content, boolean asAssistant) {
        if (!asAssistant) return List.of(Map.of("role", "user", "content", content));
        return List.of(Map.of("role", "user", "content", "Hi"), Map.of("role", "assistant", "content", content));
    }

    private static String render(ChatTemplate t, List<Map<String, Object>> messages) {
        try {
            return t.render(messages, !messages.get(messages.size() - 1).get("role").equals("assistant"));
        } catch (ChatTemplateException e) {
            return "ERROR " + e.getMessage();
        }
    }

    private static List<String> hostileGolden() throws IOException {
        try (var in = ChatTemplateGoldenTest.class.getResourceAsStream("/chat-templates/hostile-renderings.jsonl")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        }
    }

    /** Renders each golden case (messages, tools, special tokens) and lists the ones that differ from the expected text or error. */
    static List<String> differences(List<String> lines) throws IOException {
        Map<String, String> templates = new HashMap<>();
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            JsonNode c = JSON.readTree(lines.get(i));
            String source = c.get("source").asText();
            String tpl = c.has("template") ? c.get("template").asText() : templates.computeIfAbsent(source, s -> {
                try {
                    return template(s);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            Map<String, String> specials = JSON.convertValue(c.get("special_tokens"), new TypeReference<Map<String, String>>() {});
            List<Map<String, Object>> messages = JSON.convertValue(c.get("messages"), new TypeReference<List<Map<String, Object>>>() {});
            Map<String, Object> extra = c.has("tools") ? Map.of("tools", JSON.convertValue(c.get("tools"), new TypeReference<List<Object>>() {})) : Map.of();
            ChatTemplate t = new ChatTemplate(tpl, specials, source);
            String got;
            try {
                got = t.render(messages, c.get("add_generation_prompt").asBoolean(), extra).text();
            } catch (ChatTemplateException e) {
                got = "ERROR " + e.getMessage();
            }
            String expected = c.has("expected_error") ? "ERROR " + c.get("expected_error").asText() : c.get("expected").asText();
            String label = c.has("family") ? c.get("family").asText() : source + " " + c.get("case").asText();
            if (!expected.equals(got)) failures.add("#" + i + " " + label + "\n  expected: " + ASCII_JSON.writeValueAsString(expected) + "\n  got:      " + ASCII_JSON.writeValueAsString(got));
        }
        return failures;
    }
}
