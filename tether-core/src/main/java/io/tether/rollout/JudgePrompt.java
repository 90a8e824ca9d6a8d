package io.tether.rollout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.engine.ConfigException;

/**
 * The judging prompt the pairwise LLM judges share ({@link LocalModelJudge}, {@link OpenAiEndpointJudge}): the
 * default text or a file with {@code {prompt}}, {@code {answer_a}} and {@code {answer_b}} exactly once each, split
 * around its placeholders so the untrusted values are substituted in one pass (an answer containing "{answer_b}"
 * stays literal).
 */
public final class JudgePrompt {
    public static final String PROMPT = "{prompt}", ANSWER_A = "{answer_a}", ANSWER_B = "{answer_b}";
    public static final String LABEL_A = "A", LABEL_B = "B";
    /** The default judging prompt; a prompt file replaces it and must hold each placeholder exactly once. */
    public static final String DEFAULT = """
            Compare two answers to the user's prompt.

            [User prompt]
            {prompt}

            [Answer A]
            {answer_a}

            [Answer B]
            {answer_b}

            Which answer is better? Answer with A or B.
            """;

    private final List<String> pieces = new ArrayList<>();   // p0 X p1 Y p2 Z p3
    private final List<String> slots = new ArrayList<>();    // X, Y, Z in order

    /** @param text the judging prompt (null: the default); {@code source} names it in errors */
    public JudgePrompt(String text, String source) {
        String p = text == null ? DEFAULT : text;
        for (String s : List.of(PROMPT, ANSWER_A, ANSWER_B)) {
            int first = p.indexOf(s);
            if (first < 0 || p.indexOf(s, first + 1) >= 0)
                throw new ConfigException(source + ": the judging prompt must contain " + s + " exactly once");
        }
        int at = 0;
        while (true) {
            int next = -1;
            String which = null;
            for (String s : List.of(PROMPT, ANSWER_A, ANSWER_B)) {
                int i = p.indexOf(s, at);
                if (i >= 0 && (next < 0 || i < next)) { next = i; which = s; }
            }
            if (next < 0) break;
            pieces.add(p.substring(at, next));
            slots.add(which);
            at = next + which.length();
        }
        pieces.add(p.substring(at));
    }

    /** The default prompt, or the file's (named in its errors). */
    public static JudgePrompt read(Path file) {
        if (file == null) return new JudgePrompt(null, "judging prompt");
        try {
            return new JudgePrompt(Files.readString(file), file.toString());
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read the judging prompt: " + e.getMessage(), e);
        }
    }

    /** The literal text around the placeholders: one more than {@link #slots}. */
    public List<String> pieces() {
        return List.copyOf(pieces);
    }

    /** The placeholders in the order they appear. */
    public List<String> slots() {
        return List.copyOf(slots);
    }

    /** The value a slot takes for one pair (null values as empty text). */
    public static String value(String slot, String userPrompt, String answerA, String answerB) {
        String v = switch (slot) {
            case PROMPT -> userPrompt;
            case ANSWER_A -> answerA;
            default -> answerB;
        };
        return v == null ? "" : v;
    }

    /** The filled-in prompt with {@code answerA} shown as A and {@code answerB} as B (one pass: values are never re-scanned). */
    public String fill(String userPrompt, String answerA, String answerB) {
        StringBuilder b = new StringBuilder(pieces.get(0));
        for (int i = 0; i < slots.size(); i++) b.append(value(slots.get(i), userPrompt, answerA, answerB)).append(pieces.get(i + 1));
        return b.toString();
    }

    /**
     * What the judge shows as the user's prompt: the record's text prompt or question; a conversation as "role: content"
     * lines (not the policy's chat template, which is markup the judge need not read); else the prompt's own text.
     */
    public static String userPrompt(OnlinePrompt p) {
        Map<String, Object> r = p.record();
        if (r != null) {
            for (String k : List.of("prompt", "question")) if (r.get(k) instanceof String s) return s;
            for (String k : List.of("messages", "conversations", "prompt")) {
                if (r.get(k) instanceof List<?> turns) {
                    StringBuilder b = new StringBuilder();
                    JsonNode n = new ObjectMapper().valueToTree(turns);
                    for (JsonNode m : n) {
                        String role = m.has("role") ? m.path("role").asText() : m.path("from").asText();
                        String content = m.has("content") ? m.path("content").asText() : m.path("value").asText();
                        if (b.length() > 0) b.append('\n');
                        b.append(role).append(": ").append(content);
                    }
                    return b.toString();
                }
            }
        }
        return p.text() == null ? "" : p.text();
    }
}
