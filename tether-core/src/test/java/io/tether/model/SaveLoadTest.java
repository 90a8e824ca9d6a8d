package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.CheckpointException;
import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

class SaveLoadTest {
    @TempDir Path tmp;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long[] PROMPT = {1, 2, 3, 4, 5, 6};

    private static float[] logits(CausalLM m) {
        try (StepScope s = new StepScope()) {
            return Tensors.toFloats(m.forward(Tensors.longs(PROMPT, 1, PROMPT.length)));
        }
    }

    @Test
    void fixtureRoundTripIsByteExact() throws IOException {
        for (String name : new String[] {Fixtures.LLAMA, Fixtures.GPT2, Fixtures.GPT2_BACKBONE}) {
            Path src = Fixtures.checkpoint(name), out = tmp.resolve(name);
            try (Models.LoadedModel m = Models.load(src, DType.F32)) {
                Models.save(m, out, null);
            }
            assertArrayEquals(Files.readAllBytes(src.resolve("model.safetensors")), Files.readAllBytes(out.resolve("model.safetensors")), name);
            assertEquals(JSON.readTree(src.resolve("config.json").toFile()), JSON.readTree(out.resolve("config.json").toFile()), name + " config.json");
            for (String f : List.of("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "generation_config.json"))
                if (Files.exists(src.resolve(f))) assertArrayEquals(Files.readAllBytes(src.resolve(f)), Files.readAllBytes(out.resolve(f)), name + " " + f);
            try (Models.LoadedModel a = Models.load(src, DType.F32); Models.LoadedModel b = Models.load(out, DType.F32)) {
                assertArrayEquals(logits(a.model()), logits(b.model()));
            }
        }
    }

    @Test
    void bf16WeightsLoadAsExactWideningAndSaveInEitherDtype() throws IOException {
        Path src = Fixtures.checkpoint(Fixtures.LLAMA);
        try (Models.LoadedModel m = Models.load(src, DType.F32)) {
            assertEquals(DType.F32, m.model().dtype());
            assertEquals(DType.BF16, m.storedDtypes().get("lm_head.weight"));
            Models.save(m, tmp.resolve("f32"), DType.F32);
            Models.save(m, tmp.resolve("bf16"), DType.BF16);
        }
        assertEquals("float32", JSON.readTree(tmp.resolve("f32/config.json").toFile()).get("torch_dtype").asText());
        assertArrayEquals(Files.readAllBytes(src.resolve("model.safetensors")), Files.readAllBytes(tmp.resolve("bf16/model.safetensors")));
        try (Models.LoadedModel a = Models.load(src, DType.F32); Models.LoadedModel b = Models.load(tmp.resolve("f32"), DType.F32)) {
            assertArrayEquals(logits(a.model()), logits(b.model()));
        }
    }

    @Test
    void freshModelsSaveShardedAndLoadBack() throws IOException {
        for (ModelConfig config : TinyConfigs.all()) {
            Path dir = tmp.resolve(config.modelType() + "-sharded");
            try (CausalLM m = Models.create(config, DType.F32, 5)) {
                Models.save(m, dir, null, null, null, 2_000);
                assertTrue(Files.exists(dir.resolve("model.safetensors.index.json")));
                try (Stream<Path> files = Files.list(dir)) {
                    assertTrue(files.filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors")).count() > 1);
                }
                try (Models.LoadedModel back = Models.load(dir, DType.F32)) {
                    assertEquals(m.parameters().keySet(), back.model().parameters().keySet());
                    assertArrayEquals(logits(m), logits(back.model()), config.architecture());
                }
            }
        }
    }

    @Test
    void sameSeedSameWeights() {
        try (CausalLM a = Models.create(TinyConfigs.llama(), DType.F32, 9); CausalLM b = Models.create(TinyConfigs.llama(), DType.F32, 9);
             CausalLM c = Models.create(TinyConfigs.llama(), DType.F32, 10)) {
            assertArrayEquals(logits(a), logits(b));
            assertFalse(java.util.Arrays.equals(logits(a), logits(c)));
        }
    }

    @Test
    void savingOverAnExistingDirectoryReplacesItWhole() throws IOException {
        Path dir = tmp.resolve("model");
        try (CausalLM m = Models.create(TinyConfigs.llama(), DType.F32, 1)) {
            Models.save(m, dir, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            Files.writeString(dir.resolve("stale.txt"), "from an earlier run");
            Models.save(m, dir, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
        }
        assertFalse(Files.exists(dir.resolve("stale.txt")));
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(List.of(dir), left.toList(), "no temporary or old directories remain");
        }
    }

    // ---- bad input: one clear message naming the file and the field ----

    private Path copyFixture(String name) throws IOException {
        Path dst = tmp.resolve("copy-" + name);
        Files.createDirectories(dst);
        try (Stream<Path> files = Files.list(Fixtures.checkpoint(name))) {
            for (Path f : files.toList()) Files.copy(f, dst.resolve(f.getFileName()));
        }
        return dst;
    }

    private static void editConfig(Path dir, java.util.function.Consumer<ObjectNode> edit) throws IOException {
        ObjectNode c = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        edit.accept(c);
        Files.writeString(dir.resolve("config.json"), c.toString());
    }

    private static String loadError(Path dir) {
        return assertThrows(CheckpointException.class, () -> Models.load(dir, DType.F32)).getMessage();
    }

    @Test
    void refusesPickleCheckpoints() throws IOException {
        Path dir = tmp.resolve("pickle");
        Files.createDirectories(dir);
        Files.copy(Fixtures.checkpoint(Fixtures.LLAMA).resolve("config.json"), dir.resolve("config.json"));
        Files.write(dir.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2, 'c', 'o', 's', '\n'});
        String msg = loadError(dir);
        assertTrue(msg.contains("pytorch_model.bin") && msg.contains("pickle"), msg);
    }

    @Test
    void wrongVocabSizeNamesTheTensor() throws IOException {
        Path dir = copyFixture(Fixtures.LLAMA);
        editConfig(dir, c -> c.put("vocab_size", 32));
        String msg = loadError(dir);
        assertTrue(msg.contains("model.embed_tokens.weight") && msg.contains("[16, 128]") && msg.contains("[32, 128]"), msg);
    }

    @Test
    void missingAndUnexpectedTensorsAreNamed() throws IOException {
        Path dir = copyFixture(Fixtures.LLAMA);
        editConfig(dir, c -> c.put("num_hidden_layers", 5));
        String msg = loadError(dir);
        assertTrue(msg.contains("model.layers.4.") && msg.contains("missing"), msg);
        editConfig(dir, c -> c.put("num_hidden_layers", 3));
        msg = loadError(dir);
        assertTrue(msg.contains("model.layers.3.") && msg.contains("unexpected"), msg);
    }

    @Test
    void configErrorsNameTheKey() throws IOException {
        Path dir = copyFixture(Fixtures.LLAMA);
        editConfig(dir, c -> c.putArray("architectures").add("FalconForCausalLM"));
        assertTrue(loadError(dir).contains("'architectures': 'FalconForCausalLM' is not supported"));
        editConfig(dir, c -> { c.putArray("architectures").add("LlamaForCausalLM"); c.remove("architectures"); c.putArray("architectures").add("LlamaForCausalLM"); c.put("num_key_value_heads", 3); });
        assertTrue(loadError(dir).contains("'num_key_value_heads': 3 does not divide num_attention_heads 4"));
        editConfig(dir, c -> { c.put("num_key_value_heads", 4); c.put("hidden_size", "128"); });
        assertTrue(loadError(dir).contains("'hidden_size': expected a positive integer"));
        editConfig(dir, c -> { c.put("hidden_size", 128); c.putObject("rope_scaling").put("rope_type", "yarn"); });
        assertTrue(loadError(dir).contains("'rope_scaling.rope_type': 'yarn' is not supported"));
        Files.writeString(dir.resolve("config.json"), "{not json");
        String msg = loadError(dir);
        assertTrue(msg.contains("config.json") && msg.contains("not valid JSON"), msg);
        Files.delete(dir.resolve("config.json"));
        assertTrue(loadError(dir).contains("config.json not found"));
        assertTrue(loadError(tmp.resolve("does-not-exist")).contains("model directory not found"));
    }

    @Test
    void truncatedWeightsAreRefused() throws IOException {
        Path dir = copyFixture(Fixtures.GPT2);
        byte[] all = Files.readAllBytes(dir.resolve("model.safetensors"));
        Files.write(dir.resolve("model.safetensors"), java.util.Arrays.copyOf(all, all.length - 100));
        String msg = loadError(dir);
        assertTrue(msg.contains("model.safetensors") && msg.contains("transformer.wte.weight"), msg);
    }

    @Test
    void gpt2BackboneLoadsWithTiedHeadAndNoPrefix() {
        try (Models.LoadedModel m = Models.load(Fixtures.checkpoint(Fixtures.GPT2_BACKBONE), DType.F32)) {
            assertTrue(m.model().parameters().containsKey("wte.weight"));
            assertEquals(21, m.model().config().vocabSize());
            Tensor any = m.model().parameters().get("wte.weight");
            assertEquals(DType.F32, Tensors.dtype(any));
        }
    }
}
