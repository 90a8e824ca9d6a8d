package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.CheckpointException;
import io.tether.engine.DType;
import io.tether.engine.Safetensors;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.reference.ReferenceDecoder;

/**
 * Qwen3 (per-head q/k RMSNorm, explicit head_dim), OLMo 2 (RMSNorm on the full q and k projections, norms after
 * each sublayer) and SmolLM3 (layers without RoPE) on random-weight checkpoints scaled down from each family's real
 * config.json ({@link TinyConfigs}): parity with the float64 reference, cached decoding, batching, byte-exact
 * save/load, LoRA target names and config errors. Norm weights are drawn away from one, so a decoder that swapped
 * q_norm and k_norm, or applied a norm to the wrong tensor, would not match the reference.
 */
class BlockLayoutTest {
    @TempDir Path tmp;

    private static final long[] TOKENS = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};

    private static ModelConfig withJson(ModelConfig c, String name, java.util.function.Consumer<ObjectNode> edit) {
        ObjectNode j = c.json().deepCopy();
        edit.accept(j);
        return ModelConfig.parse(j, Path.of(name + "/config.json"));
    }

    /** Every family of this change, and its sliding-window variants (Qwen3 as Qwen2; SmolLM3 on its no-RoPE layers). */
    private static Map<String, ModelConfig> configs() {
        Map<String, ModelConfig> all = new java.util.LinkedHashMap<>(gemmaConfigs());
        all.putAll(Map.of(
                "qwen3", TinyConfigs.qwen3(),
                "qwen3-untied", TinyConfigs.qwen3Untied(),
                "qwen3-sliding", withJson(TinyConfigs.qwen3(), "qwen3-sliding", j -> {
                    j.put("use_sliding_window", true);
                    j.put("sliding_window", 4);
                    j.put("max_window_layers", 1);
                }),
                "olmo2", TinyConfigs.olmo2(),
                "smollm3", TinyConfigs.smollm3(),
                "smollm3-sliding", withJson(TinyConfigs.smollm3(), "smollm3-sliding", j -> {
                    j.put("use_sliding_window", true);
                    j.put("sliding_window", 4);
                }),
                "phi3", TinyConfigs.phi3(),
                "phi3-mini", TinyConfigs.phi3Mini()));
        return all;
    }

    /**
     * Gemma 2 and Gemma 3 (scaled from gemma-2-2b and gemma-3-1b-it), and two variants that make each Gemma knob
     * bite: Gemma 3 as its 4B and larger models configure it (rope_scaling linear 8 on the global layers only,
     * query_pre_attn_scalar unlike head_dim as in 27B, layer_types listed, attention bias), and Gemma 2 with
     * soft-caps small enough that every score and logit is bent by them.
     */
    private static Map<String, ModelConfig> gemmaConfigs() {
        return Map.of(
                "gemma2", TinyConfigs.gemma2(),
                "gemma3", TinyConfigs.gemma3(),
                "gemma3-scaled", withJson(TinyConfigs.gemma3(), "gemma3-scaled", j -> {
                    j.putObject("rope_scaling").put("rope_type", "linear").put("factor", 8.0);
                    j.put("query_pre_attn_scalar", 6);
                    j.put("attention_bias", true);
                    var types = j.putArray("layer_types");
                    for (int i = 0; i < 7; i++) types.add(i == 2 || i == 5 ? "full_attention" : "sliding_attention");
                }),
                "gemma2-tight-caps", withJson(TinyConfigs.gemma2(), "gemma2-tight-caps", j -> {
                    j.put("attn_logit_softcapping", 0.5);
                    j.put("final_logit_softcapping", 0.7);
                    j.put("tie_word_embeddings", false);
                }));
    }

    /** A model of {@code config} whose norm weights are drawn around one (HF initialises them to exactly one). */
    static CausalLM randomModel(ModelConfig config, DType dtype, long seed) {
        CausalLM m = Models.create(config, dtype, seed);
        Torch.seeded(seed + 1, () -> {
            try (NoGradGuard g = new NoGradGuard()) {
                for (Map.Entry<String, Tensor> e : m.parameters().entrySet())
                    if (e.getKey().contains("norm")) e.getValue().add_(torch.randn(Tensors.shape(e.getValue()), Tensors.options(dtype)).mul(Tensors.scalar(0.3)));
            }
            return null;
        });
        return m;
    }

    private Path saved(String name, ModelConfig config) {
        Path dir = tmp.resolve(name);
        try (CausalLM m = randomModel(config, DType.F32, 13)) {
            Models.save(m, dir, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
        }
        return dir;
    }

    private static double worstRelativeError(double[][] expected, double[] actual) {
        int vocab = expected[0].length;
        double worst = 0;
        for (int t = 0; t < expected.length; t++)
            for (int v = 0; v < vocab; v++)
                worst = Math.max(worst, Math.abs(expected[t][v] - actual[t * vocab + v]) / (1 + Math.abs(expected[t][v])));
        return worst;
    }

    /** Tokens a longrope config can take without switching to its long factors (original_max_position_embeddings). */
    private static int shortLength(ModelConfig c) {
        return c.ropeScaling().type().equals("longrope") ? c.ropeScaling().originalMaxPositionEmbeddings() : TOKENS.length;
    }

    /** Parity on the 20 test tokens, and for longrope also on as many as stay within the short factors' range. */
    @Test
    void everyNewFamilyMatchesTheReferenceInFp64AndFp32() {
        for (Map.Entry<String, ModelConfig> e : configs().entrySet()) {
            Path dir = saved(e.getKey(), e.getValue());
            for (int length : new int[] {TOKENS.length, shortLength(e.getValue())}) {
                long[] tokens = java.util.Arrays.copyOf(TOKENS, length);
                double[][] expected = ReferenceDecoder.logits(dir, tokens);
                for (DType dtype : new DType[] {DType.F64, DType.F32}) {
                    try (Models.LoadedModel m = Models.load(dir, dtype); StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                        double worst = worstRelativeError(expected, Tensors.toDoubles(m.model().forward(Tensors.longs(tokens, 1, length))));
                        assertTrue(worst < (dtype == DType.F64 ? 1e-10 : 1e-4), e.getKey() + " " + dtype + " on " + length + " tokens: worst relative logit error " + worst);
                    }
                }
            }
        }
    }

    /**
     * Phi-3's longrope: past original_max_position_embeddings the reference switches to the long factors, and the
     * logits of the first tokens move by far more than the tolerance; the decoder follows (parity above on both).
     */
    @Test
    void longropeSwitchesToTheLongFactorsPastTheOriginalContext() {
        Path dir = saved("phi3", TinyConfigs.phi3());
        int original = TinyConfigs.phi3().ropeScaling().originalMaxPositionEmbeddings();
        double[][] within = ReferenceDecoder.logits(dir, java.util.Arrays.copyOf(TOKENS, original));
        double[][] beyond = ReferenceDecoder.logits(dir, java.util.Arrays.copyOf(TOKENS, original + 1));
        assertTrue(largestDifference(within, java.util.Arrays.copyOf(beyond, original)) > 1e-3, "long factors rotate the same positions differently");
        assertEquals(Math.sqrt(1 + Math.log(32) / Math.log(8)), TinyConfigs.phi3().ropeScaling().attentionFactor(), 1e-15,
                "attention_factor sqrt(1 + ln(max/original) / ln(original))");
    }

    /**
     * The reference itself depends on SmolLM3's no-RoPE layers: the same weights with RoPE on every layer give
     * logits far from the real layout's, so parity above could not pass by ignoring no_rope_layers.
     */
    @Test
    void noRopeLayersMoveTheReferenceLogits() throws IOException {
        Path smol = saved("smollm3", TinyConfigs.smollm3());
        Path allRope = Files.createDirectories(tmp.resolve("smollm3-all-rope"));
        Files.copy(smol.resolve("model.safetensors"), allRope.resolve("model.safetensors"));
        ObjectNode j = (ObjectNode) Models.jsonMapper().readTree(smol.resolve("config.json").toFile());
        var list = j.putArray("no_rope_layers");
        for (int i = 0; i < 8; i++) list.add(1);
        Files.writeString(allRope.resolve("config.json"), j.toString());
        assertTrue(largestDifference(ReferenceDecoder.logits(smol, TOKENS), ReferenceDecoder.logits(allRope, TOKENS)) > 1e-3,
                "SmolLM3's no-RoPE layers change the logits");
    }

    private static double largestDifference(double[][] a, double[][] b) {
        double largest = 0;
        for (int t = 0; t < a.length; t++)
            for (int v = 0; v < a[t].length; v++) largest = Math.max(largest, Math.abs(a[t][v] - b[t][v]));
        return largest;
    }

    /** Prefill then one token at a time through the KV cache gives the full forward's logits (fp64, 1e-10). */
    @Test
    void cachedDecodingEqualsTheFullForward() {
        for (Map.Entry<String, ModelConfig> e : configs().entrySet()) {
            // longrope switches factors per forward, as HF does, so cached = full holds within the original context.
            long[] tokens = java.util.Arrays.copyOf(TOKENS, shortLength(e.getValue()));
            try (CausalLM m = randomModel(e.getValue(), DType.F64, 5); KvCache cache = m.newCache(1, tokens.length);
                 StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                double[] full = Tensors.toDoubles(m.forward(Tensors.longs(tokens, 1, tokens.length)));
                int vocab = e.getValue().vocabSize(), prefill = 6;
                double[] step = Tensors.toDoubles(m.forward(Tensors.longs(java.util.Arrays.copyOf(tokens, prefill), 1, prefill), null, null, cache));
                for (int i = 0; i < prefill * vocab; i++) assertEquals(full[i], step[i], 1e-10, e.getKey() + " prefill");
                for (int t = prefill; t < tokens.length; t++) {
                    double[] one = Tensors.toDoubles(m.forward(Tensors.longs(new long[] {tokens[t]}, 1, 1), null, null, cache));
                    for (int v = 0; v < vocab; v++) assertEquals(full[t * vocab + v], one[v], 1e-10, e.getKey() + " decode step at " + t);
                }
            }
        }
    }

    /**
     * A left-padded row in a batch gets the logits it gets alone (fp64, 1e-10), sliding windows included; with
     * longrope the 12-token row uses the long factors and the 7-token row the short ones, in the batch as alone.
     */
    @Test
    void aLeftPaddedRowInABatchMatchesItselfAlone() {
        long[] a = java.util.Arrays.copyOf(TOKENS, 12), b = {7, 2, 9, 4, 1, 8, 3};
        int t = a.length, pad = t - b.length;
        for (Map.Entry<String, ModelConfig> e : configs().entrySet()) {
            try (CausalLM m = randomModel(e.getValue(), DType.F64, 6); StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                long[] ids = new long[2 * t], mask = new long[2 * t];
                for (int i = 0; i < t; i++) {
                    ids[i] = a[i];
                    mask[i] = 1;
                    ids[t + i] = i < pad ? 0 : b[i - pad];
                    mask[t + i] = i < pad ? 0 : 1;
                }
                Tensor attention = Tensors.longs(mask, 2, t);
                Tensor positions = attention.cumsum(1).sub(Tensors.scalar(1L)).clamp_min(Tensors.scalar(0L));
                double[] batch = Tensors.toDoubles(m.forward(Tensors.longs(ids, 2, t), positions, attention, null));
                double[] aloneA = Tensors.toDoubles(m.forward(Tensors.longs(a, 1, t)));
                double[] aloneB = Tensors.toDoubles(m.forward(Tensors.longs(b, 1, b.length)));
                int vocab = e.getValue().vocabSize();
                for (int i = 0; i < t * vocab; i++) assertEquals(aloneA[i], batch[i], 1e-10, e.getKey() + " row 0");
                for (int i = 0; i < b.length * vocab; i++) assertEquals(aloneB[i], batch[(t + pad) * vocab + i], 1e-10, e.getKey() + " row 1");
            }
        }
    }

    /** Load and save again gives the same bytes, stored as F32 or as BF16; the q/k norms are stored under HF's names. */
    @Test
    void saveLoadRoundTripIsByteExact() throws IOException {
        for (Map.Entry<String, ModelConfig> e : configs().entrySet()) {
            for (DType stored : new DType[] {DType.F32, DType.BF16}) {
                Path first = tmp.resolve(e.getKey() + "-" + stored), second = tmp.resolve(e.getKey() + "-" + stored + "-again");
                try (CausalLM m = randomModel(e.getValue(), DType.F32, 3)) {
                    Models.save(m, first, stored, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
                }
                try (Models.LoadedModel back = Models.load(first, DType.F32)) {
                    Models.save(back, second, null);
                }
                assertArrayEquals(Files.readAllBytes(first.resolve("model.safetensors")), Files.readAllBytes(second.resolve("model.safetensors")), e.getKey() + " " + stored);
                assertEquals(Models.jsonMapper().readTree(first.resolve("config.json").toFile()), Models.jsonMapper().readTree(second.resolve("config.json").toFile()));
            }
        }
        var qwen3 = Safetensors.open(tmp.resolve("qwen3-F32/model.safetensors")).entries();
        assertArrayEquals(new long[] {8}, qwen3.get("model.layers.0.self_attn.q_norm.weight").shape(), "Qwen3's q_norm is head_dim wide");
        assertFalse(qwen3.containsKey("lm_head.weight"), "tied head");
        var olmo2 = Safetensors.open(tmp.resolve("olmo2-F32/model.safetensors")).entries();
        assertArrayEquals(new long[] {16}, olmo2.get("model.layers.1.self_attn.q_norm.weight").shape(), "OLMo 2's q_norm spans every query head");
        assertArrayEquals(new long[] {8}, olmo2.get("model.layers.1.self_attn.k_norm.weight").shape(), "and k_norm every KV head");
        assertTrue(olmo2.containsKey("model.layers.1.post_feedforward_layernorm.weight"));
        assertFalse(olmo2.containsKey("model.layers.1.input_layernorm.weight"), "OLMo 2 has no pre-norm");
    }

    /**
     * all-linear adapts every projection under PEFT's names (q_proj ... down_proj; Phi-3's fused qkv_proj and
     * gate_up_proj) and never a norm; merged = unmerged.
     */
    @Test
    void loraTargetsProjectionsAsPeftNamesThemAndNeverNorms() throws IOException {
        for (ModelConfig config : new ModelConfig[] {TinyConfigs.qwen3(), TinyConfigs.olmo2(), TinyConfigs.smollm3(), TinyConfigs.phi3(),
                TinyConfigs.gemma2(), TinyConfigs.gemma3()}) {
            try (CausalLM m = randomModel(config, DType.F32, 3)) {
                float[] base = LoraTest.logits(m);
                LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.0, List.of("all-linear"), false), 1);
                boolean fused = config.layout().fused();
                assertEquals(config.numHiddenLayers() * (fused ? 4 : 7) * 2, l.parameters().size(), config.architecture() + ": " + l.parameters().keySet());
                assertTrue(l.parameters().keySet().stream().noneMatch(k -> k.contains("norm")), l.parameters().keySet().toString());
                assertTrue(l.parameters().containsKey("base_model.model.model.layers.0.self_attn." + (fused ? "qkv_proj" : "q_proj") + ".lora_A.weight"));
                assertTrue(l.parameters().containsKey("base_model.model.model.layers.0.mlp." + (fused ? "gate_up_proj" : "gate_proj") + ".lora_B.weight"));
                assertArrayEquals(base, LoraTest.logits(m), 0f, "B = 0 changes nothing");
                LoraTest.perturb(l);
                float[] adapted = LoraTest.logits(m);
                l.merge();
                assertArrayEquals(adapted, LoraTest.logits(m), 2e-5f, config.architecture() + ": merged = unmerged");
                l.unmerge();
                Path dir = tmp.resolve(config.modelType() + "-adapter");
                l.save(dir, "tiny");
                var saved = Models.jsonMapper().readTree(dir.resolve("adapter_config.json").toFile()).get("target_modules");
                saved.forEach(n -> assertTrue(n.asText().matches(".*(q|k|v|o|qkv|gate|up|gate_up|down)_proj"), config.architecture() + " target " + n));
            }
            try (CausalLM m = Models.create(config, DType.F32, 3)) {
                var e = assertThrows(IllegalArgumentException.class, () -> LoraAdapters.attach(m, new LoraAdapters.Config(2, 4, 0, List.of("q_norm"), false), 1));
                assertTrue(e.getMessage().contains("matches no projection"), e.getMessage());
            }
        }
    }

    // ---- Gemma 2 / Gemma 3 ----

    /** Reference logits of {@code dir}'s weights under an edited config.json (same weights, one knob changed). */
    private double[][] referenceWith(Path dir, String name, java.util.function.Consumer<ObjectNode> edit) throws IOException {
        Path other = Files.createDirectories(tmp.resolve(name));
        Files.copy(dir.resolve("model.safetensors"), other.resolve("model.safetensors"));
        ObjectNode j = (ObjectNode) Models.jsonMapper().readTree(dir.resolve("config.json").toFile());
        edit.accept(j);
        Files.writeString(other.resolve("config.json"), j.toString());
        return ReferenceDecoder.logits(other, TOKENS);
    }

    /**
     * Each Gemma knob moves the reference's logits far beyond the parity tolerance, so parity could not pass with a
     * decoder that ignored it: both soft-caps, query_pre_attn_scalar, the sliding layers (a window longer than the
     * sequence), Gemma 3's local RoPE base and its q/k norms' weights.
     */
    @Test
    void everyGemmaKnobMovesTheReferenceLogits() throws IOException {
        Path g2 = saved("gemma2", TinyConfigs.gemma2()), g3 = saved("gemma3", TinyConfigs.gemma3());
        double[][] base2 = ReferenceDecoder.logits(g2, TOKENS), base3 = ReferenceDecoder.logits(g3, TOKENS);
        Map<String, double[][]> moved = new java.util.LinkedHashMap<>();
        moved.put("gemma2 attn_logit_softcapping off", referenceWith(g2, "g2-a", j -> j.putNull("attn_logit_softcapping")));
        moved.put("gemma2 final_logit_softcapping off", referenceWith(g2, "g2-f", j -> j.putNull("final_logit_softcapping")));
        moved.put("gemma2 query_pre_attn_scalar 16", referenceWith(g2, "g2-q", j -> j.put("query_pre_attn_scalar", 16)));
        moved.put("gemma2 no window", referenceWith(g2, "g2-w", j -> j.put("sliding_window", 64)));
        moved.put("gemma3 local base = global base", referenceWith(g3, "g3-r", j -> j.put("rope_local_base_freq", 1000000.0)));
        moved.put("gemma3 no window", referenceWith(g3, "g3-w", j -> j.put("sliding_window", 64)));
        moved.put("gemma3 pattern 2", referenceWith(g3, "g3-p", j -> j.put("sliding_window_pattern", 2)));
        for (Map.Entry<String, double[][]> e : moved.entrySet()) {
            double d = largestDifference(e.getKey().startsWith("gemma2") ? base2 : base3, e.getValue());
            assertTrue(d > 1e-4, e.getKey() + " moves the logits by only " + d);
        }
    }

    /** Gemma's norms are stored as HF stores them: four per block, q_norm/k_norm of head_dim (Gemma 3), zero-initialised. */
    @Test
    void gemmaCheckpointsHoldFourNormsPerBlockUnderHfNames() throws IOException {
        Path g3 = tmp.resolve("gemma3-fresh");
        try (CausalLM m = Models.create(TinyConfigs.gemma3(), DType.F32, 3)) {
            Models.save(m, g3, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            assertEquals(0.0, Tensors.toDoubles(m.parameters().get("model.layers.0.pre_feedforward_layernorm.weight"))[0], 0.0,
                    "HF initialises Gemma's (1 + weight) norms to zero");
        }
        var names = Safetensors.open(g3.resolve("model.safetensors")).entries();
        for (String n : new String[] {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"})
            assertArrayEquals(new long[] {24}, names.get("model.layers.6." + n + ".weight").shape(), n);
        assertArrayEquals(new long[] {8}, names.get("model.layers.0.self_attn.q_norm.weight").shape());
        assertArrayEquals(new long[] {8}, names.get("model.layers.0.self_attn.k_norm.weight").shape());
        assertArrayEquals(new long[] {32, 24}, names.get("model.layers.0.self_attn.q_proj.weight").shape(), "4 heads x head_dim 8, wider than hidden 24");
        assertFalse(names.containsKey("lm_head.weight"), "tied head");
        try (CausalLM m = Models.create(TinyConfigs.gemma2(), DType.F32, 3)) {
            assertFalse(m.parameters().containsKey("model.layers.0.self_attn.q_norm.weight"), "Gemma 2 has no q/k norms");
            assertEquals(4 * 11 + 2, m.parameters().size(), "embedding, final norm, and per layer 4 projections + 3 MLP + 4 norms");
        }
    }

    @Test
    void gemmaConfigDefaultsFollowGemma2ConfigAndGemma3TextConfig() {
        ModelConfig g2 = withJson(TinyConfigs.gemma2(), "gemma2-defaults", j -> {
            for (String key : new String[] {"head_dim", "query_pre_attn_scalar", "sliding_window", "attn_logit_softcapping",
                    "final_logit_softcapping", "rope_theta", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id",
                    "hidden_activation", "hidden_act", "rms_norm_eps", "max_position_embeddings"}) j.remove(key);
        });
        assertEquals(256, g2.headDim());
        assertEquals(new ModelConfig.Gemma(2, 256, 50, 30, 0), g2.gemma(), "query_pre_attn_scalar 256, soft-caps 50 and 30, one RoPE");
        assertEquals(4096, g2.slidingWindow());
        for (int i = 0; i < 4; i++) assertEquals(i % 2 == 0, g2.slidingAt(i), "Gemma 2 slides on even layers: " + i);
        assertEquals(10000.0, g2.ropeTheta());
        assertEquals(8192, g2.maxPositionEmbeddings());
        assertEquals(1e-6, g2.normEps());
        assertTrue(g2.tieWordEmbeddings());
        assertEquals(2L, g2.bosTokenId());
        assertEquals(List.of(1L), g2.eosTokenIds());
        assertEquals(0L, g2.padTokenId());
        assertEquals("gelu_pytorch_tanh", g2.hiddenAct());
        ModelConfig g2Off = withJson(TinyConfigs.gemma2(), "gemma2-caps-off", j -> { j.putNull("attn_logit_softcapping"); j.putNull("final_logit_softcapping"); });
        assertEquals(0.0, g2Off.gemma().attnLogitSoftcapping(), "an explicit null turns soft-capping off");
        assertEquals(0.0, g2Off.gemma().finalLogitSoftcapping());

        ModelConfig g3 = withJson(TinyConfigs.gemma3(), "gemma3-defaults", j -> {
            for (String key : new String[] {"sliding_window_pattern", "rope_theta", "rope_local_base_freq", "attn_logit_softcapping",
                    "final_logit_softcapping", "max_position_embeddings"}) j.remove(key);
        });
        assertEquals(new ModelConfig.Gemma(3, 8, 0, 0, 10000.0), g3.gemma(), "no soft-capping, local RoPE base 1e4");
        assertEquals(1_000_000.0, g3.ropeTheta());
        assertEquals(131072, g3.maxPositionEmbeddings());
        for (int i = 0; i < 7; i++) assertEquals(i != 5, g3.slidingAt(i), "sliding_window_pattern 6: layer 5 is global, layer " + i);
        assertEquals(ModelConfig.QkNorm.PER_HEAD, g3.layout().qkNorm());
        ModelConfig listed = configs().get("gemma3-scaled");
        for (int i = 0; i < 7; i++) assertEquals(i != 2 && i != 5, listed.slidingAt(i), "layer_types decides layer " + i);
        assertEquals("linear", listed.ropeScaling().type());
        assertEquals("Gemma3ForCausalLM", ModelConfig.parse(noArchitectures(TinyConfigs.gemma3()), Path.of("c.json")).architecture());
        assertEquals("Gemma2ForCausalLM", ModelConfig.parse(noArchitectures(TinyConfigs.gemma2()), Path.of("c.json")).architecture());
    }

    @Test
    void gemmaConfigErrorsNameTheKey() {
        String msg = parseError(TinyConfigs.gemma3(), j -> j.put("hidden_activation", "silu"));
        assertTrue(msg.contains("'hidden_activation': 'silu' is not supported"), msg);
        msg = parseError(TinyConfigs.gemma3(), j -> j.putArray("layer_types").add("sliding_attention"));
        assertTrue(msg.contains("'layer_types': expected a list of 7 entries"), msg);
        msg = parseError(TinyConfigs.gemma3(), j -> j.put("sliding_window_pattern", 0));
        assertTrue(msg.contains("'sliding_window_pattern'"), msg);
        msg = parseError(TinyConfigs.gemma2(), j -> j.put("query_pre_attn_scalar", -1));
        assertTrue(msg.contains("'query_pre_attn_scalar'"), msg);
        msg = parseError(TinyConfigs.gemma2(), j -> j.put("attn_logit_softcapping", "fifty"));
        assertTrue(msg.contains("'attn_logit_softcapping'"), msg);
        msg = parseError(TinyConfigs.gemma2(), j -> j.put("final_logit_softcapping", 0));
        assertTrue(msg.contains("'final_logit_softcapping'"), msg);
        msg = parseError(TinyConfigs.gemma2(), j -> j.put("sliding_window", 0));
        assertTrue(msg.contains("'sliding_window'"), msg);
        msg = parseError(TinyConfigs.gemma3(), j -> j.put("rope_local_base_freq", "x"));
        assertTrue(msg.contains("'rope_local_base_freq'"), msg);
        msg = parseError(TinyConfigs.gemma3(), j -> j.putObject("rope_scaling").put("rope_type", "yarn"));
        assertTrue(msg.contains("'rope_scaling.rope_type'"), msg);
        msg = parseError(TinyConfigs.gemma3(), j -> j.putArray("architectures").add("Gemma3ForConditionalGeneration"));
        assertTrue(msg.contains("'architectures': 'Gemma3ForConditionalGeneration'") && msg.contains("Gemma3ForCausalLM"), msg);
        var e = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.gemma3().asProcessRewardModel());
        assertTrue(e.getMessage().contains("Gemma3TextForTokenClassification"), e.getMessage());
        msg = parseError(TinyConfigs.gemma3(), j -> j.putArray("architectures").add("Gemma3ForSequenceClassification"));
        assertTrue(msg.contains("'architectures': 'Gemma3ForSequenceClassification' is not supported") && msg.contains("Gemma3TextForSequenceClassification"), msg);
    }

    /**
     * Gemma 2's reward head (Gemma2ForSequenceClassification) scores hidden states without the LM's final soft-cap;
     * Gemma 3's is the text-only Gemma3TextForSequenceClassification.
     */
    @Test
    void gemmaCarriesRewardHeadsWithoutTheFinalSoftcap() {
        try (CausalLM lm = randomModel(TinyConfigs.gemma3(), DType.F32, 3); CausalLM rm = Models.withRewardHead(lm, 4); StepScope s = new StepScope()) {
            assertEquals("Gemma3TextForSequenceClassification", rm.config().architecture());
            ModelConfig reread = ModelConfig.parse(rm.config().json().deepCopy(), Path.of("rm/config.json"));
            assertEquals(TinyConfigs.gemma3().layout(), reread.layout());
            assertEquals(1, reread.numLabels());
            assertArrayEquals(new long[] {1, 4, 1}, Tensors.shape(rm.forward(Tensors.longs(new long[] {1, 2, 3, 4}, 1, 4))));
        }
        ModelConfig tight = configs().get("gemma2-tight-caps");
        try (CausalLM lm = randomModel(tight, DType.F64, 3); CausalLM rm = Models.withRewardHead(lm, 4); StepScope s = new StepScope();
             NoGradGuard g = new NoGradGuard()) {
            assertEquals("Gemma2ForSequenceClassification", rm.config().architecture());
            assertEquals(tight.layout(), ModelConfig.parse(rm.config().json().deepCopy(), Path.of("rm/config.json")).layout());
            Tensor ids = Tensors.longs(new long[] {1, 2, 3, 4}, 1, 4);
            double[] scores = Tensors.toDoubles(rm.forward(ids));
            double[] direct = Tensors.toDoubles(Tensors.linear(rm.hiddenStates(ids, null, null, null), rm.parameters().get("score.weight"), null));
            assertArrayEquals(direct, scores, 0.0);
            assertTrue(java.util.Arrays.stream(Tensors.toDoubles(lm.forward(ids))).allMatch(v -> Math.abs(v) < 0.7), "the LM's logits are capped at 0.7");
        }
    }

    /**
     * Under bf16 autocast (training's mixed precision on fp32 masters) Gemma's float32 norms, its soft-capped eager
     * attention (kept out of autocast like SDPA) and its scaled embeddings give logits close to fp32's, and every
     * parameter gets a gradient.
     */
    @Test
    void gemmaTrainsUnderBf16Autocast() {
        for (ModelConfig config : new ModelConfig[] {configs().get("gemma2-tight-caps"), TinyConfigs.gemma3()}) {
            try (CausalLM m = randomModel(config, DType.F32, 9); StepScope s = new StepScope()) {
                m.setTrainable(true);
                Tensor ids = Tensors.longs(java.util.Arrays.copyOf(TOKENS, 12), 1, 12);
                double[] fp32 = Tensors.toDoubles(m.forward(ids));
                Tensor logits;
                try (io.tether.engine.Autocast region = io.tether.engine.Autocast.bf16(true)) {
                    logits = m.forward(ids);
                }
                double[] bf16 = Tensors.toDoubles(logits);
                double worst = 0;
                for (int i = 0; i < fp32.length; i++) worst = Math.max(worst, Math.abs(fp32[i] - bf16[i]));
                assertTrue(worst > 0 && worst < 0.1, config.architecture() + ": bf16 autocast logits differ from fp32 by " + worst);
                logits.to(DType.F32.scalarType).logsumexp(new long[] {-1}, false).sum().backward();
                for (Map.Entry<String, Tensor> e : m.parameters().entrySet()) {
                    assertTrue(e.getValue().grad().defined(), e.getKey() + " has no gradient");
                    assertTrue(java.util.Arrays.stream(Tensors.toDoubles(e.getValue().grad())).allMatch(Double::isFinite), e.getKey());
                }
            }
        }
    }

    // ---- config.json: each family's defaults, and errors that name the key ----

    private static String parseError(ModelConfig base, java.util.function.Consumer<ObjectNode> edit) {
        return assertThrows(CheckpointException.class, () -> withJson(base, "bad", edit)).getMessage();
    }

    @Test
    void configDefaultsFollowEachConfigClass() {
        ModelConfig qwen3 = withJson(TinyConfigs.qwen3(), "qwen3-no-head-dim", j -> j.remove("head_dim"));
        assertEquals(128, qwen3.headDim(), "Qwen3Config's head_dim default is 128, not hidden / heads");
        ModelConfig olmo2 = withJson(TinyConfigs.olmo2(), "olmo2-no-eps", j -> j.remove("rms_norm_eps"));
        assertEquals(1e-5, olmo2.normEps(), "Olmo2Config's rms_norm_eps default");
        ModelConfig smol = withJson(TinyConfigs.smollm3(), "smollm3-defaults", j -> {
            j.remove("no_rope_layers");
            j.put("no_rope_layer_interval", 3);
            j.remove("rope_theta");
            j.remove("tie_word_embeddings");
        });
        for (int i = 0; i < 8; i++) assertEquals((i + 1) % 3 != 0, smol.ropeAt(i), "layer " + i + " with no_rope_layer_interval 3");
        assertEquals(2_000_000.0, smol.ropeTheta(), "SmolLM3Config's rope_theta default");
        assertTrue(smol.tieWordEmbeddings(), "SmolLM3Config ties by default");
        ModelConfig smolSliding = withJson(TinyConfigs.smollm3(), "smollm3-sliding", j -> { j.put("use_sliding_window", true); j.put("sliding_window", 4); });
        for (int i = 0; i < 8; i++) assertEquals(!smolSliding.ropeAt(i), smolSliding.slidingAt(i), "SmolLM3 slides on its no-RoPE layers, layer " + i);
        assertEquals("qwen3", ModelConfig.parse(noArchitectures(TinyConfigs.qwen3()), Path.of("c.json")).modelType());
        assertEquals("Olmo2ForCausalLM", ModelConfig.parse(noArchitectures(TinyConfigs.olmo2()), Path.of("c.json")).architecture());
    }

    private static ObjectNode noArchitectures(ModelConfig c) {
        ObjectNode j = c.json().deepCopy();
        j.remove("architectures");
        return j;
    }

    @Test
    void configErrorsNameTheKey() {
        // (Gemma3ForCausalLM, this check's unsupported architecture before Gemma landed, is supported now.)
        String msg = parseError(TinyConfigs.qwen3(), j -> j.putArray("architectures").add("MixtralForCausalLM"));
        assertTrue(msg.contains("'architectures': 'MixtralForCausalLM' is not supported") && msg.contains("Qwen3ForCausalLM")
                && msg.contains("Olmo2ForCausalLM") && msg.contains("SmolLM3ForCausalLM"), msg);
        msg = parseError(TinyConfigs.smollm3(), j -> j.putArray("no_rope_layers").add(1).add(0));
        assertTrue(msg.contains("'no_rope_layers'") && msg.contains("8 layers"), msg);
        msg = parseError(TinyConfigs.smollm3(), j -> {
            var list = j.putArray("no_rope_layers");
            for (int i = 0; i < 8; i++) list.add(i == 5 ? 2 : 1);
        });
        assertTrue(msg.contains("'no_rope_layers': entry 5"), msg);
        msg = parseError(TinyConfigs.smollm3(), j -> { j.remove("no_rope_layers"); j.put("no_rope_layer_interval", 0); });
        assertTrue(msg.contains("'no_rope_layer_interval'"), msg);
        msg = parseError(TinyConfigs.qwen3(), j -> j.put("head_dim", 7));
        assertTrue(msg.contains("'head_dim'"), msg);
        msg = parseError(TinyConfigs.qwen3(), j -> { j.put("use_sliding_window", true); j.put("sliding_window", 4); j.putArray("layer_types").add("full_attention"); });
        assertTrue(msg.contains("'layer_types'"), msg);
        msg = parseError(TinyConfigs.olmo2(), j -> j.putArray("architectures").add("Olmo2ForSequenceClassification"));
        assertTrue(msg.contains("'architectures': 'Olmo2ForSequenceClassification' is not supported"), msg);
        msg = parseError(TinyConfigs.phi3(), j -> ((ObjectNode) j.get("rope_scaling")).putArray("long_factor").add(1.0));
        assertTrue(msg.contains("'rope_scaling.long_factor': expected 3 numbers"), msg);
        msg = parseError(TinyConfigs.phi3(), j -> ((ObjectNode) j.get("rope_scaling")).remove("short_factor"));
        assertTrue(msg.contains("'rope_scaling.short_factor': missing"), msg);
        msg = parseError(TinyConfigs.phi3(), j -> j.put("partial_rotary_factor", 0.7));
        assertTrue(msg.contains("'partial_rotary_factor'"), msg);
        var e = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.olmo2().asRewardModel());
        assertTrue(e.getMessage().contains("Olmo2ForSequenceClassification"), e.getMessage());
    }

    /** Reward heads on the families transformers gives them (Qwen3, SmolLM3, Phi-3), under HF's class names. */
    @Test
    void qwen3SmolLm3AndPhi3CarryRewardHeads() {
        for (ModelConfig config : new ModelConfig[] {TinyConfigs.qwen3(), TinyConfigs.smollm3(), TinyConfigs.phi3()}) {
            try (CausalLM lm = randomModel(config, DType.F32, 3); CausalLM rm = Models.withRewardHead(lm, 4); StepScope s = new StepScope()) {
                assertEquals(config.architecture().replace("ForCausalLM", "ForSequenceClassification"), rm.config().architecture());
                ModelConfig reread = ModelConfig.parse(rm.config().json().deepCopy(), Path.of("rm/config.json"));
                assertEquals(config.layout(), reread.layout());
                assertArrayEquals(new long[] {1, 4, 1}, Tensors.shape(rm.forward(Tensors.longs(new long[] {1, 2, 3, 4}, 1, 4))));
            }
        }
    }
}
