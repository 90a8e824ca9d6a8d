package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Safetensors;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * Checkpoints as they come at real size, on small random models: sharded bf16 files that a frozen model maps
 * instead of copying, computes on in bf16, and saves back byte for byte.
 */
class RealSizeCheckpointTest {
    @TempDir Path tmp;
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Small enough that every tiny model below spreads over several shards. */
    private static final long TINY_SHARD = 3_000;

    private static List<ModelConfig> families() {
        return List.of(TinyConfigs.llama(), TinyConfigs.qwen3(), TinyConfigs.olmo2(), TinyConfigs.phi3(), TinyConfigs.gemma3(), TinyConfigs.gemma2());
    }

    /** A random model saved as a sharded bf16 checkpoint, as HF publishes them. */
    private Path bf16Checkpoint(ModelConfig config, String name) {
        Path dir = tmp.resolve(name);
        try (CausalLM m = Models.create(config, DType.F32, 7)) {
            // Gemma initialises its norms to zero (weight + 1): give them values so bf16 rounding shows there too.
            try (NoGradGuard g = new NoGradGuard()) {
                for (Map.Entry<String, Tensor> e : m.parameters().entrySet())
                    if (e.getKey().contains("norm")) e.getValue().add_(Tensors.doubles(new double[] {0.1}, 1).to(e.getValue().scalar_type()));
            }
            Models.save(m, dir, DType.BF16, null, null, TINY_SHARD);
        }
        return dir;
    }

    private static List<String> mappedFiles() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/maps"));
    }

    private static boolean mapped(Path file) throws IOException {
        String name = file.toAbsolutePath().toString();
        return mappedFiles().stream().anyMatch(l -> l.endsWith(name));
    }

    private static List<Path> shards(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        }
    }

    @Test
    void frozenBf16ModelStaysBf16AsViewsOfTheMappedShards() throws IOException {
        Path dir = bf16Checkpoint(TinyConfigs.qwen3(), "qwen3");
        List<Path> shards = shards(dir);
        assertTrue(shards.size() > 2, "the checkpoint must be sharded: " + shards);
        try (Models.LoadedModel frozen = Models.loadFrozen(dir)) {
            assertEquals(DType.BF16, frozen.model().dtype());
            for (Map.Entry<String, Tensor> e : frozen.model().parameters().entrySet()) {
                assertEquals(DType.BF16, Tensors.dtype(e.getValue()), e.getKey());
                assertFalse(e.getValue().requires_grad(), e.getKey());
            }
            // No fp32 copy and no bf16 copy: the weights are the files' pages.
            for (Path shard : shards) assertTrue(mapped(shard), shard + " is not mapped");
            // Copy-on-write: writing into a frozen weight (nothing should, but nothing breaks) never reaches the file.
            byte[] before = Files.readAllBytes(shards.get(0));
            try (NoGradGuard g = new NoGradGuard()) {
                frozen.model().parameters().values().iterator().next().add_(Tensors.doubles(new double[] {1.0}, 1).to(DType.BF16.scalarType));
            }
            assertArrayEquals(before, Files.readAllBytes(shards.get(0)));
        }
        // Closing the model releases the mapping; a trainable load copies and keeps nothing mapped.
        System.gc();
        try (Models.LoadedModel trainable = Models.load(dir, DType.F32)) {
            assertEquals(DType.F32, trainable.model().dtype());
            assertEquals(DType.BF16, trainable.storedDtypes().get("model.embed_tokens.weight"));
            for (Path shard : shards) assertFalse(mapped(shard), shard + " is still mapped");
        }
    }

    @Test
    void bf16LogProbsOfAFrozenModelAgreeWithTheFp32PathWithinBf16Rounding() throws IOException {
        List<LogProbs.Sequence> seqs = List.of(new LogProbs.Sequence(new long[] {1, 5, 2}, new long[] {7, 3, 9, 4, 11, 2, 8}),
                new LogProbs.Sequence(new long[] {3}, new long[] {12, 0, 6, 6, 1}));
        for (ModelConfig config : families()) {
            Path dir = bf16Checkpoint(config, config.architecture());
            try (Models.LoadedModel bf16 = Models.loadFrozen(dir); Models.LoadedModel fp32 = Models.load(dir, DType.F32);
                 Models.LoadedModel fp32Frozen = Models.loadFrozen(dir, DType.F32)) {
                assertEquals(DType.BF16, bf16.model().dtype());
                List<LogProbs.Result> a = LogProbs.score(bf16.model(), seqs, 2), b = LogProbs.score(fp32.model(), seqs, 2);
                // Asking a frozen load for fp32 keeps a caller's numbers exactly.
                List<LogProbs.Result> c = LogProbs.score(fp32Frozen.model(), seqs, 2);
                double worst = 0;
                boolean differ = false;
                for (int i = 0; i < seqs.size(); i++) {
                    assertArrayEquals(b.get(i).tokenLogprobs(), c.get(i).tokenLogprobs(), config.architecture());
                    for (int j = 0; j < a.get(i).numTokens(); j++) {
                        double x = a.get(i).tokenLogprobs()[j], y = b.get(i).tokenLogprobs()[j];
                        assertTrue(Double.isFinite(x), config.architecture());
                        worst = Math.max(worst, Math.abs(x - y) / (1 + Math.abs(y)));
                        differ |= x != y;
                    }
                }
                // bf16 keeps 8 significant bits (relative step 2^-8 = 0.0039); the roundings through the layers (measured
                // 0.003-0.008 here) and the bf16 log-softmax stay within a few steps of it. A wrong bf16 path (a lost norm upcast,
                // a bad rope table) is off by far more.
                assertTrue(worst < 0.02, config.architecture() + ": bf16 log-probs differ from fp32 by " + worst + " (relative)");
                assertTrue(differ, config.architecture() + ": bf16 log-probs are identical to fp32's, so bf16 was not computed in");
            }
        }
    }

    @Test
    void shardedBf16CheckpointRoundTripsByteForByte() throws IOException {
        for (ModelConfig config : List.of(TinyConfigs.qwen3(), TinyConfigs.gemma3())) {
            Path src = bf16Checkpoint(config, config.architecture() + "-src");
            Map<String, byte[]> original = files(src);
            assertTrue(original.containsKey("model.safetensors.index.json"));
            checkIndex(src);
            // Loaded frozen (bf16 views) or as fp32 masters, it saves back as the same bf16 shards.
            try (Models.LoadedModel frozen = Models.loadFrozen(src)) {
                Models.save(frozen, tmp.resolve(config.architecture() + "-frozen"), null, TINY_SHARD);
            }
            try (Models.LoadedModel trainable = Models.load(src, DType.F32)) {
                Models.save(trainable, tmp.resolve(config.architecture() + "-fp32"), null, TINY_SHARD);
            }
            for (String copy : List.of("-frozen", "-fp32")) {
                Map<String, byte[]> saved = files(tmp.resolve(config.architecture() + copy));
                assertEquals(original.keySet(), saved.keySet(), config.architecture() + copy);
                for (String f : original.keySet()) assertArrayEquals(original.get(f), saved.get(f), config.architecture() + copy + " " + f);
            }
            // Saving over the directory a frozen model maps is safe: the old files go, the mapped pages stay valid.
            try (Models.LoadedModel frozen = Models.loadFrozen(src)) {
                Models.save(frozen, src, null, TINY_SHARD);
                try (StepScope s = new StepScope()) {
                    assertTrue(Double.isFinite(Tensors.toDoubles(frozen.model().forward(Tensors.longs(new long[] {1, 2, 3}, 1, 3)).sum().to(DType.F64.scalarType))[0]));
                }
            }
            Map<String, byte[]> again = files(src);
            for (String f : original.keySet()) assertArrayEquals(original.get(f), again.get(f), config.architecture() + " in place " + f);
        }
    }

    /** HF's index: metadata.total_size (the tensors' bytes) and a weight_map naming each tensor's shard. */
    private static void checkIndex(Path dir) throws IOException {
        JsonNode index = JSON.readTree(dir.resolve("model.safetensors.index.json").toFile());
        long total = 0;
        Map<String, String> where = new TreeMap<>();
        for (Path shard : shards(dir)) {
            Safetensors.Reader r = Safetensors.open(shard);
            for (Safetensors.Entry e : r.entries().values()) {
                total += e.end() - e.begin();
                where.put(e.name(), shard.getFileName().toString());
                assertEquals(DType.BF16, e.dtype(), e.name());
            }
        }
        assertEquals(total, index.get("metadata").get("total_size").asLong());
        Map<String, String> listed = new TreeMap<>();
        index.get("weight_map").properties().forEach(e -> listed.put(e.getKey(), e.getValue().asText()));
        assertEquals(where, listed);
        assertEquals(new ArrayList<>(listed.keySet()), new ArrayList<>(where.keySet()));
        // Byte for byte what transformers writes: json.dumps(index, indent=2, sort_keys=True) + "\n".
        StringBuilder hf = new StringBuilder("{\n  \"metadata\": {\n    \"total_size\": " + total + "\n  },\n  \"weight_map\": {\n");
        List<String> rows = new ArrayList<>();
        listed.forEach((k, v) -> rows.add("    \"" + k + "\": \"" + v + "\""));
        hf.append(String.join(",\n", rows)).append("\n  }\n}\n");
        assertEquals(hf.toString(), Files.readString(dir.resolve("model.safetensors.index.json")));
    }

    @Test
    void aTensorOverTheShardLimitGetsAShardOfItsOwnAheadOfTheOneBeingFilledAsHfSplitsThem() throws IOException {
        // Tiny Qwen3, layer 0 in state-dict order: q 1024 bytes, k 512, v 512, o 1024, q_norm 16, k_norm 16,
        // gate/up/down 1536 each, input_layernorm 32, post_attention_layernorm 32 (bf16). With a 1,100-byte limit
        // the MLP matrices are over it: huggingface_hub (split_state_dict_into_shards_factory) gives each a shard
        // at once, while o_proj's shard is still filling, which then takes input_layernorm too.
        ModelConfig config = TinyConfigs.qwen3();
        Path dir = tmp.resolve("split");
        long limit = 1_100;
        try (CausalLM m = Models.create(config, DType.F32, 3)) {
            Models.save(m, dir, DType.BF16, null, null, limit);
        }
        JsonNode map = JSON.readTree(dir.resolve("model.safetensors.index.json").toFile()).get("weight_map");
        String p = "model.layers.0.";
        String oShard = map.get(p + "self_attn.o_proj.weight").asText();
        assertTrue(map.get(p + "mlp.gate_proj.weight").asText().compareTo(oShard) < 0, map.toString());
        assertEquals(oShard, map.get(p + "input_layernorm.weight").asText());
        for (Path shard : shards(dir)) {
            Safetensors.Reader r = Safetensors.open(shard);
            long bytes = r.entries().values().stream().mapToLong(e -> e.end() - e.begin()).sum();
            if (bytes > limit) assertEquals(1, r.entries().size(), shard + " holds " + bytes + " bytes in several tensors");
        }
        try (Models.LoadedModel back = Models.loadFrozen(dir)) {
            assertEquals(config.numHiddenLayers(), back.model().config().numHiddenLayers());
        }
    }

    @Test
    void aCheckpointWrittenShardByShardEqualsTheSavedModel() throws IOException {
        // createCheckpoint (the benchmark's writer, which never holds the model) draws what create draws.
        for (ModelConfig config : List.of(TinyConfigs.qwen3(), TinyConfigs.gemma3())) {
            for (long shard : new long[] {TINY_SHARD, Models.DEFAULT_MAX_SHARD_BYTES}) {
                Path saved = tmp.resolve("saved-" + shard + config.architecture()), written = tmp.resolve("written-" + shard + config.architecture());
                try (CausalLM m = Models.create(config, DType.BF16, 21)) {
                    Models.save(m, saved, null, null, null, shard);
                }
                Models.createCheckpoint(config, written, DType.BF16, 21, shard);
                Map<String, byte[]> a = files(saved), b = files(written);
                assertEquals(a.keySet(), b.keySet());
                assertEquals(shard == TINY_SHARD, a.containsKey("model.safetensors.index.json"));
                for (String f : a.keySet()) assertArrayEquals(a.get(f), b.get(f), config.architecture() + " " + f);
            }
        }
    }

    private static Map<String, byte[]> files(Path dir) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) out.put(p.getFileName().toString(), Files.readAllBytes(p));
        }
        return out;
    }
}
