package io.tether.text;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChatTemplateTest {
    @TempDir Path tmp;
    static final Path FIXTURES = ChatTemplateGoldenTest.FIXTURES;
    static final List<Map<String, Object>> CHAT = List.of(
            Map.of("role", "system", "content", "Refunds after 7 days."),
            Map.of("role", "user", "content", "Where is my order?"),
            Map.of("role", "assistant", "content", "It is late; I can refund it."),
            Map.of("role", "user", "content", "Please do."));

    private static ChatTemplate of(String template) {
        return new ChatTemplate(template, Map.of("bos_token", "<s>", "eos_token", "</s>"), "test-template");
    }

    @Test
    void generationBlocksMarkExactlyTheAssistantText() {
        ChatTemplate t = of("{% for m in messages %}<{{ m['role'] }}>{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}{% else %}{{ m['content'] }}{% endif %}\n{% endfor %}");
        ChatTemplate.Rendered r = t.render(CHAT, false, Map.of());
        assertEquals(1, r.generationSpans().size());
        int[] span = r.generationSpans().get(0);
        assertEquals("It is late; I can refund it.</s>", r.text().substring(span[0], span[1]));
        assertFalse(r.text().contains("\uE000") || r.text().contains("\uE001"));
    }

    @Test
    void pythonisms() {
        assertEquals("{\"a\": 1, \"b\": [true, null, \"é\"]}", of("{{ x | tojson }}").render(List.of(), false, Map.of("x", Map.of("a", 1, "b", java.util.Arrays.asList(true, null, "é")))).text()
                .replace("{\"b\": [true, null, \"é\"], \"a\": 1}", "{\"a\": 1, \"b\": [true, null, \"é\"]}"));
        assertEquals("[\n  1,\n  2\n]", of("{{ x | tojson(indent=2) }}").render(List.of(), false, Map.of("x", List.of(1, 2))).text());
        assertEquals("yes|Hello World|ab|x-y|2|3", of("{{ 'yes' if 'abc'.startswith('ab') }}|{{ 'hello world'.title() }}|{{ '  ab  '.strip() }}|{{ 'x y'.replace(' ', '-') }}|{{ 'a,b'.split(',') | length }}|{{ messages | length }}")
                .render(CHAT.subList(0, 3), false));
        assertEquals("lo", of("{{ 'hello'[3:] }}").render(List.of(), false));
        var e = assertThrows(ChatTemplateException.class, () -> of("{{ 'abc'.getClass() }}").render(List.of(), false));
        assertTrue(e.getMessage().contains("getClass"), e.getMessage());
    }

    @Test
    void raisedErrorsAndSyntaxErrorsAreClear() {
        var e = assertThrows(ChatTemplateException.class, () -> of("{{ raise_exception('Only user and assistant roles') }}").render(CHAT, false));
        assertEquals("TemplateError: Only user and assistant roles", e.getMessage());
        e = assertThrows(ChatTemplateException.class, () -> of("line one\n{% for m in messages %}{{ m['role'] }").render(CHAT, false));
        assertTrue(e.getMessage().startsWith("test-template"), e.getMessage());
    }

    /**
     * Each runaway is stopped by a bound on work (range size, range items per render, template steps, string
     * length, macro depth), whatever the machine's speed: the render deadline is set out of reach here, so a
     * runaway that only the deadline could stop would fail the test instead of passing slowly.
     */
    @Test
    void runawayTemplatesAreStoppedByWorkBoundsNotTheJvm() {
        Map<String, String> runaways = new java.util.LinkedHashMap<>();
        runaways.put("{% for i in range(100000000) %}{{ i }}{% endfor %}", "range of 100000000 items exceeds the sandbox limit of " + ChatTemplate.RANGE_LIMIT);
        runaways.put("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion");
        runaways.put("{% set s = 'x' %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}{{ s }}", "over limit of " + ChatTemplate.MAX_OUTPUT);
        runaways.put("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "exceed the sandbox limit of " + ChatTemplate.MAX_RANGE_ITEMS + " per render");
        // Nothing printed, one range: only the step bound can stop this one (here at 20,000 steps, to keep the test cheap).
        runaways.put("{% set xs = range(99999) %}{% for i in xs %}{% for j in xs %}{{ '' }}{% endfor %}{% endfor %}", "sandbox limit of 20000 template steps");
        for (var r : runaways.entrySet()) {
            ChatTemplate t = of(r.getKey()).withTimeout(600_000);
            ChatTemplate bounded = r.getValue().contains("template steps") ? t.withMaxSteps(20_000) : t;
            var e = assertThrows(ChatTemplateException.class, () -> bounded.render(List.of(), false), r.getKey());
            assertTrue(e.getMessage().toLowerCase(java.util.Locale.ROOT).contains(r.getValue()), r.getKey() + ": " + e.getMessage());
        }
        // The default step bound leaves room for long conversations: 5,000 messages through a ChatML-style loop.
        List<Map<String, Object>> longChat = new java.util.ArrayList<>();
        for (int i = 0; i < 5_000; i++) longChat.add(Map.of("role", i % 2 == 0 ? "user" : "assistant", "content", "message " + i));
        String chatml = "{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|im_start|>user\\n' + m['content'] + '<|im_end|>\\n' }}{% else %}{{ '<|im_start|>assistant\\n' + m['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}";
        assertTrue(of(chatml).withTimeout(600_000).render(longChat, false).endsWith("message 4999<|im_end|>\n"));
        // The worker threads really stopped: none keeps burning a core after the render gave up (a wait for them
        // to end, not a bound on how long anything took).
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < deadline && Thread.getAllStackTraces().keySet().stream().anyMatch(th -> th.getName().equals("chat-template") && th.isAlive())) {
            try { Thread.sleep(50); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        }
        assertFalse(Thread.getAllStackTraces().keySet().stream().anyMatch(th -> th.getName().equals("chat-template") && th.isAlive()), "a render thread is still running");
    }

    /** The deadline stays as a safety net: 100,000 steps of work cannot finish within 1 ms on any machine. */
    @Test
    void theRenderDeadlineStillStopsALongRender() {
        var e = assertThrows(ChatTemplateException.class, () -> of("{% for i in range(99999) %}{{ i }}{% endfor %}").withTimeout(1).render(List.of(), false));
        assertTrue(e.getMessage().contains("took longer than 1 ms"), e.getMessage());
    }

    /** Data never names a template to load: include/import find nothing, as in transformers' loader-less jinja2. */
    @Test
    void dataCannotIncludeOrRenderTemplates() {
        // A resource on the test class path: Jinjava's default loader would have read and rendered it.
        List<Map<String, Object>> chat = List.of(Map.of("role", "user", "content", "chat-templates/make_hostile_golden.py"));
        for (String t : new String[] {"{% include messages[0]['content'] %}", "{% import messages[0]['content'] as m %}{{ m }}",
                "{% from messages[0]['content'] import x %}{{ x }}"}) {
            var e = assertThrows(ChatTemplateException.class, () -> of(t).render(chat, false), t);
            assertFalse(e.getMessage().contains("jinja2"), e.getMessage());
        }
        List<Map<String, Object>> code = List.of(Map.of("role", "user", "content", "{{ 7*7 }}"));
        assertThrows(ChatTemplateException.class, () -> of("{{ messages[0]['content'] | render }}").render(code, false));
    }

    /**
     * The private-use characters that used to mark {@code {% generation %}} are ordinary data now: a user message
     * holding them keeps them, and the assistant span is still exactly the assistant's text.
     */
    @Test
    void messagesCannotForgeOrEraseGenerationMarks() {
        ChatTemplate t = of("{% for m in messages %}<{{ m['role'] }}>{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{% endgeneration %}{% else %}{{ m['content'] }}{% endif %}\n{% endfor %}");
        String forged = "a\uE000forged\uE001b\uE000";
        ChatTemplate.Rendered r = t.render(List.of(Map.of("role", "user", "content", forged), Map.of("role", "assistant", "content", "Refund \uE001sent.")), false, Map.of());
        assertEquals("<user>" + forged + "<assistant>Refund \uE001sent.", r.text()); // trim_blocks eats the newlines
        assertEquals(1, r.generationSpans().size());
        int[] span = r.generationSpans().get(0);
        assertEquals("Refund \uE001sent.", r.text().substring(span[0], span[1]));
    }

    @Test
    void realTemplatesFromTokenizerConfigs() throws IOException {
        ChatTemplate qwen3 = ChatTemplate.fromTokenizerConfig(FIXTURES.resolve("tokenizers/qwen3/qwen3-30b-a3b.tokenizer_config.json"), null);
        // Insertion-ordered, as a parsed JSON tool definition is: tojson keeps key order (json.dumps, sort_keys=False).
        Map<String, Object> function = new java.util.LinkedHashMap<>();
        function.put("name", "refund");
        function.put("description", "Refund an order");
        function.put("parameters", Map.of("type", "object"));
        Map<String, Object> tool = new java.util.LinkedHashMap<>();
        tool.put("type", "function");
        tool.put("function", function);
        String withTools = qwen3.render(CHAT.subList(1, 2), true, Map.of("tools", List.of(tool))).text();
        assertTrue(withTools.startsWith("<|im_start|>system\n# Tools"), withTools);
        assertTrue(withTools.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"refund\", \"description\": \"Refund an order\", \"parameters\": {\"type\": \"object\"}}}\n</tools>"), withTools);
        assertTrue(withTools.endsWith("<|im_start|>assistant\n"), withTools);
        String noThinking = qwen3.render(CHAT.subList(1, 2), true, Map.of("enable_thinking", false)).text();
        assertTrue(noThinking.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n"), noThinking);
        ChatTemplate llama3 = ChatTemplate.fromTokenizerConfig(FIXTURES.resolve("tokenizers/llama3/meta-llama-3-8b-instruct.tokenizer_config.json"), null);
        String l = llama3.render(CHAT, true);
        assertTrue(l.startsWith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nRefunds after 7 days.<|eot_id|>"), l);
        assertTrue(l.endsWith("<|start_header_id|>assistant<|end_header_id|>\n\n"), l);
    }

    @Test
    void namedListFormAndMissingTemplates() throws IOException {
        Path cfg = tmp.resolve("tokenizer_config.json");
        Files.writeString(cfg, "{\"bos_token\": {\"content\": \"<s>\"}, \"chat_template\": [{\"name\": \"default\", \"template\": \"{{ bos_token }}D\"}, {\"name\": \"tool_use\", \"template\": \"T\"}]}");
        assertEquals("<s>D", ChatTemplate.fromTokenizerConfig(cfg, null).render(List.of(), false));
        assertEquals("T", ChatTemplate.fromTokenizerConfig(cfg, "tool_use").render(List.of(), false));
        var e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.fromTokenizerConfig(cfg, "rag"));
        assertTrue(e.getMessage().contains("no template named 'rag'"));
        Files.writeString(cfg, "{\"bos_token\": \"<s>\"}");
        e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.fromTokenizerConfig(cfg, null));
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("no chat template"), e.getMessage());
    }
}
