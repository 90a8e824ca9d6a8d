package io.tether.text;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ByteTokenizerTest {
    @TempDir Path tmp;

    static final List<String> TEXTS = List.of("", "hello world", "Refund after 7 days — café, naïve, 東京, Привет, 🙂👍🏽",
            "tabs\tand\nnew lines\r\n  spaces  ", "<|bos|>system<|eos|> then <|pad|><|pad|>", "half <|eos", "\u0000\u0001\u007f control",
            "مرحبا بالعالم", "a".repeat(500));

    @Test
    void savedTokenizerJsonEncodesIdenticallyInHfTokenizers() throws IOException {
        ByteTokenizer bytes = new ByteTokenizer();
        bytes.save(tmp);
        try (HfTokenizer hf = HfTokenizer.load(tmp)) {
            assertEquals(bytes.vocabSize(), hf.vocabSize());
            assertEquals(bytes.specialTokens().eosId(), hf.specialTokens().eosId());
            for (String t : TEXTS) {
                for (boolean special : new boolean[] {true, false}) {
                    long[] ours = bytes.encode(t, special);
                    assertArrayEquals(ours, hf.encode(t, special), "'" + t + "' special=" + special);
                    assertEquals(bytes.decode(ours, false), hf.decode(ours, false), "decode '" + t + "'");
                }
                assertEquals(t, bytes.decode(bytes.encode(t, false), false));
            }
            for (long id = 0; id < bytes.vocabSize(); id++) assertEquals(bytes.idToToken(id), hf.idToToken(id), "id " + id);
        }
    }

    @Test
    void bytesSpecialsOffsetsAndBadIds() {
        ByteTokenizer t = new ByteTokenizer();
        assertArrayEquals(new long[] {256, 104, 105, 257}, t.encode("hi<|eos|>", true));
        assertArrayEquals(new long[] {0xc3, 0xa9}, t.encode("é", false));
        assertEquals("\uFFFD", t.decode(new long[] {0xc3}, false), "a cut multi-byte character decodes as U+FFFD");
        assertEquals("hi", t.decode(new long[] {256, 104, 105, 257}, true));
        Tokenizer.Encoding e = t.encodeWithOffsets("aé<|eos|>", false);
        assertArrayEquals(new int[] {0, 1, 1, 2}, e.starts());
        assertArrayEquals(new int[] {1, 2, 2, 9}, e.ends());
        assertEquals(257, t.tokenToId("<|eos|>").getAsLong());
        assertEquals(65, t.tokenToId("A").getAsLong());
        var ex = assertThrows(IllegalArgumentException.class, () -> t.decode(new long[] {259}, false));
        assertTrue(ex.getMessage().contains("259"));
    }

    @Test
    void badTokenizerFilesNameTheFile() throws IOException {
        var e = assertThrows(io.tether.engine.CheckpointException.class, () -> HfTokenizer.load(tmp.resolve("none")));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("not found"), e.getMessage());
        Files.writeString(tmp.resolve("tokenizer.json"), "{\"model\": ");
        e = assertThrows(io.tether.engine.CheckpointException.class, () -> HfTokenizer.load(tmp));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        new ByteTokenizer().save(tmp);
        Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"eos_token\": \"<|nope|>\"}");
        e = assertThrows(io.tether.engine.CheckpointException.class, () -> HfTokenizer.load(tmp));
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("'<|nope|>' is not in the vocabulary"), e.getMessage());
    }
}
