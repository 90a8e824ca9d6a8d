package io.tether.model.reference;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sanity checks of the float64 reference decoder itself (it is the yardstick for parity tests). */
class ReferenceDecoderSelfTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static Path checkpoint(String name) {
        return Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/" + name);
    }

    // ---------------------------------------------------------------------------------------
    // Real fixtures: shape, finiteness, causality
    // ---------------------------------------------------------------------------------------

    @Test
    void llamaFixtureShapeFiniteAndCausal() {
        Path dir = checkpoint("verl-arithmetic-llama"); // LlamaForCausalLM, bf16, untied head, vocab 16
        long[] a = {3, 7, 1, 12, 5, 9};
        long[] b = {3, 7, 1, 0, 15, 2};
        double[][] la = ReferenceDecoder.logits(dir, a);
        double[][] lb = ReferenceDecoder.logits(dir, b);
        assertShapeAndFinite(la, a.length, 16);
        assertCausal(la, lb, a, b);
    }

    @Test
    void llamaFixtureUsesUntiedHead() throws IOException {
        Path dir = checkpoint("verl-arithmetic-llama");
        SafetensorsLite.Tensors w = SafetensorsLite.readModelDir(dir);
        assertFalse(Arrays.equals(w.get("lm_head.weight"), w.get("model.embed_tokens.weight")),
                "fixture expected to have a distinct lm_head");
        assertArrayEquals(new long[] {16, 128}, w.shape("lm_head.weight"));
        // bf16 values are exactly representable in float32, so every decoded value has <= 8 significant bits.
        for (double v : w.get("model.norm.weight")) {
            float f = (float) v;
            assertEquals(0, Float.floatToRawIntBits(f) & 0xFFFF, "bf16 decode produced low mantissa bits");
        }
    }

    @Test
    void fakeGpt2LmHeadFixtureShapeFiniteAndCausal() {
        Path dir = checkpoint("lm-buddy-fake-gpt2"); // GPT2LMHeadModel, "transformer." prefix, vocab 50257
        long[] a = {50256, 464, 2068, 7586, 21831};
        long[] b = {50256, 464, 0, 1, 50000};
        double[][] la = ReferenceDecoder.logits(dir, a);
        double[][] lb = ReferenceDecoder.logits(dir, b);
        assertShapeAndFinite(la, a.length, 50257);
        assertCausal(la, lb, a, b);
    }

    @Test
    void tinyGpt2BackboneFixtureShapeFiniteAndCausal() {
        Path dir = checkpoint("lm-buddy-tiny-gpt2"); // GPT2Model (no prefix), vocab 21, tied wte head
        long[] a = {20, 4, 9, 13, 2, 17, 6};
        long[] b = {20, 4, 9, 13, 19, 0, 1};
        double[][] la = ReferenceDecoder.logits(dir, a);
        double[][] lb = ReferenceDecoder.logits(dir, b);
        assertShapeAndFinite(la, a.length, 21);
        assertCausal(la, lb, a, b);
    }

    // ---------------------------------------------------------------------------------------
    // Hand-computed pieces
    // ---------------------------------------------------------------------------------------

    @Test
    void rmsNormHandComputed() {
        // x = [3, 4]: mean(x^2) = (9 + 16) / 2 = 12.5; + eps 0.5 = 13 -> scale 1/sqrt(13).
        // w = [1, 2]: out = [3/sqrt(13), 2*4/sqrt(13)] = [0.8320502943378437, 2.2188007849009166].
        double[] out = ReferenceDecoder.rmsNorm(new double[] {3, 4}, new double[] {1, 2}, 0.5);
        assertArrayEquals(new double[] {0.8320502943378437, 2.2188007849009166}, out, 1e-15);
    }

    @Test
    void layerNormHandComputed() {
        // x = [1,2,3,4]: mean 2.5, deviations [-1.5,-0.5,0.5,1.5], biased var = (2.25+0.25+0.25+2.25)/4 = 1.25.
        // eps 0: normalized = dev / sqrt(1.25) = [-1.34164..., -0.44721..., 0.44721..., 1.34164...].
        // w = [1,1,2,2], b = [0,1,0,-1] -> [-1.3416407864998738, 0.5527864045000421, 0.8944271909999159, 1.6832815729997477].
        double[] out = ReferenceDecoder.layerNorm(new double[] {1, 2, 3, 4}, new double[] {1, 1, 2, 2},
                new double[] {0, 1, 0, -1}, 0.0);
        assertArrayEquals(new double[] {-1.3416407864998738, 0.5527864045000421, 0.8944271909999159,
                1.6832815729997477}, out, 1e-15);
    }

    @Test
    void ropeHandComputed() {
        // head_dim 4, theta 100: inv_freq = [100^0, 100^(-2/4)] = [1, 0.1].
        double[] inv = ReferenceDecoder.defaultInvFreq(100.0, 4);
        assertArrayEquals(new double[] {1.0, 0.1}, inv, 1e-17);
        // rotate_half pairs x[j] with x[j + 2]. x = [1,2,3,4] at pos 1, angles [1, 0.1]:
        // out0 = 1 cos1 - 3 sin1   = -1.9841106485555495
        // out1 = 2 cos.1 - 4 sin.1 =  1.590674663968739
        // out2 = 3 cos1 + 1 sin1   =  2.4623779024123156
        // out3 = 4 cos.1 + 2 sin.1 =  4.17968349440576
        double[] x = {9, 1, 2, 3, 4}; // offset 1 exercises per-head offsets
        ReferenceDecoder.applyRopeInPlace(x, 1, 4, 1, inv);
        assertArrayEquals(new double[] {9, -1.9841106485555495, 1.590674663968739, 2.4623779024123156,
                4.17968349440576}, x, 1e-14);
        // Position 0 is the identity.
        double[] y = {1, 2, 3, 4};
        ReferenceDecoder.applyRopeInPlace(y, 0, 4, 0, inv);
        assertArrayEquals(new double[] {1, 2, 3, 4}, y, 0);
        // Relative-position property: <R(m) q, R(n) k> depends only on m - n.
        double d1 = dot(roped(new double[] {0.3, -1, 2, 0.5}, 7, inv), roped(new double[] {1, 0.2, -0.4, 3}, 4, inv));
        double d2 = dot(roped(new double[] {0.3, -1, 2, 0.5}, 13, inv), roped(new double[] {1, 0.2, -0.4, 3}, 10, inv));
        assertEquals(d1, d2, 1e-12);
    }

    @Test
    void llama3RopeScalingHandComputed() {
        // head_dim 6, theta 1000: inv = [1, 0.1, 0.01]; wavelen = 2 pi / inv = [6.283, 62.83, 628.3].
        // factor 8, low_freq_factor 1, high_freq_factor 4, original 64: low_freq_wavelen 64, high_freq_wavelen 16.
        //   6.283 < 16        -> unchanged: 1
        //   16 <= 62.83 <= 64 -> smooth = (64/62.83 - 1)/(4 - 1) = 0.0061972119293768;
        //                        (1 - smooth) * 0.1/8 + smooth * 0.1 = 0.013042256043820472
        //   628.3 > 64        -> 0.01 / 8 = 0.00125
        ObjectNode cfg = JSON.createObjectNode();
        cfg.put("rope_theta", 1000.0);
        ObjectNode rs = cfg.putObject("rope_scaling");
        rs.put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0).put("high_freq_factor", 4.0)
                .put("original_max_position_embeddings", 64);
        assertArrayEquals(new double[] {1.0, 0.013042256043820472, 0.00125}, ReferenceDecoder.ropeInvFreq(cfg, 6), 1e-15);
        // "linear" (legacy "type" key): inv / factor.
        ObjectNode lin = JSON.createObjectNode();
        lin.put("rope_theta", 1000.0);
        lin.putObject("rope_scaling").put("type", "linear").put("factor", 4.0);
        assertArrayEquals(new double[] {0.25, 0.025, 0.0025}, ReferenceDecoder.ropeInvFreq(lin, 6), 1e-15);
    }

    @Test
    void activationsAndErfHandComputed() {
        // erf reference values (tables / libm): erf(0.5), erf(1), erf(2), erf(3), erf(-0.1), erf(4.5), erf(1e-3).
        assertEquals(0.5204998778130465, ReferenceDecoder.erf(0.5), 1e-15);
        assertEquals(0.8427007929497149, ReferenceDecoder.erf(1.0), 1e-15);
        assertEquals(0.9953222650189527, ReferenceDecoder.erf(2.0), 1e-15);
        assertEquals(0.9999779095030014, ReferenceDecoder.erf(3.0), 1e-15);
        assertEquals(-0.1124629160182849, ReferenceDecoder.erf(-0.1), 1e-15);
        assertEquals(0.9999999998033839, ReferenceDecoder.erf(4.5), 1e-15);
        assertEquals(0.0011283787909692365, ReferenceDecoder.erf(1e-3), 1e-18);
        assertEquals(0.0, ReferenceDecoder.erf(0.0), 0);
        assertEquals(-1.0, ReferenceDecoder.erf(-7.0), 0);
        // gelu(1) = 0.5 (1 + erf(1/sqrt 2)) = 0.8413447460685429 (Phi(1)).
        assertEquals(0.8413447460685429, ReferenceDecoder.geluErf(1.0), 1e-15);
        // gelu_new(1) = 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906082768.
        assertEquals(0.8411919906082768, ReferenceDecoder.geluTanh(1.0), 1e-15);
        // gelu_new(-0.5) = -0.25 (1 + tanh(sqrt(2/pi) (-0.5 - 0.044715/8))) = -0.15428599017485606.
        assertEquals(-0.15428599017485606, ReferenceDecoder.geluTanh(-0.5), 1e-15);
        // silu(0) = 0; silu(2) = 2 / (1 + e^-2) = 1.7615941559557650.
        assertEquals(0.0, ReferenceDecoder.silu(0.0), 0);
        assertEquals(1.761594155955765, ReferenceDecoder.silu(2.0), 1e-15);
    }

    @Test
    void halfPrecisionDecoding() {
        // f16: 0x3C00 = 1.0, 0xC000 = -2.0, 0x3555 = 0.333251953125, 0x0001 = 2^-24 (subnormal), 0x7BFF = 65504.
        assertEquals(1.0, SafetensorsLite.f16ToDouble((short) 0x3C00), 0);
        assertEquals(-2.0, SafetensorsLite.f16ToDouble((short) 0xC000), 0);
        assertEquals(0.333251953125, SafetensorsLite.f16ToDouble((short) 0x3555), 0);
        assertEquals(0x1p-24, SafetensorsLite.f16ToDouble((short) 0x0001), 0);
        assertEquals(65504.0, SafetensorsLite.f16ToDouble((short) 0x7BFF), 0);
        assertEquals(Double.NEGATIVE_INFINITY, SafetensorsLite.f16ToDouble((short) 0xFC00), 0);
        // bf16: 0x3F80 = 1.0, 0xC040 = -3.0, 0x3EAB = 0.333984375.
        assertEquals(1.0, SafetensorsLite.bf16ToDouble((short) 0x3F80), 0);
        assertEquals(-3.0, SafetensorsLite.bf16ToDouble((short) 0xC040), 0);
        assertEquals(0.333984375, SafetensorsLite.bf16ToDouble((short) 0x3EAB), 0);
    }

    // ---------------------------------------------------------------------------------------
    // Synthetic Llama: GQA + attention_bias + llama3 rope scaling
    // ---------------------------------------------------------------------------------------

    private static final int H = 8, N_HEADS = 4, N_KV = 2, HEAD_DIM = 4, INTER = 12, VOCAB = 11, LAYERS = 2;

    /** Synthetic llama weights; head_dim 4 with hidden 8 and 4 heads, so q_proj is [16, 8]. */
    private static Map<String, SafetensorsLite.F32Tensor> syntheticLlamaWeights(long seed) {
        Random r = new Random(seed);
        Map<String, SafetensorsLite.F32Tensor> w = new LinkedHashMap<>();
        w.put("model.embed_tokens.weight", rand(r, VOCAB, H));
        w.put("lm_head.weight", rand(r, VOCAB, H));
        w.put("model.norm.weight", randAround1(r, H));
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            w.put(p + "input_layernorm.weight", randAround1(r, H));
            w.put(p + "post_attention_layernorm.weight", randAround1(r, H));
            w.put(p + "self_attn.q_proj.weight", rand(r, N_HEADS * HEAD_DIM, H));
            w.put(p + "self_attn.q_proj.bias", rand(r, N_HEADS * HEAD_DIM));
            w.put(p + "self_attn.k_proj.weight", rand(r, N_KV * HEAD_DIM, H));
            w.put(p + "self_attn.k_proj.bias", rand(r, N_KV * HEAD_DIM));
            w.put(p + "self_attn.v_proj.weight", rand(r, N_KV * HEAD_DIM, H));
            w.put(p + "self_attn.v_proj.bias", rand(r, N_KV * HEAD_DIM));
            w.put(p + "self_attn.o_proj.weight", rand(r, H, N_HEADS * HEAD_DIM));
            w.put(p + "self_attn.o_proj.bias", rand(r, H));
            w.put(p + "mlp.gate_proj.weight", rand(r, INTER, H));
            w.put(p + "mlp.up_proj.weight", rand(r, INTER, H));
            w.put(p + "mlp.down_proj.weight", rand(r, H, INTER));
        }
        return w;
    }

    private static ObjectNode syntheticLlamaConfig(int nKv) {
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama");
        c.put("hidden_size", H);
        c.put("num_attention_heads", N_HEADS);
        c.put("num_key_value_heads", nKv);
        c.put("head_dim", HEAD_DIM);
        c.put("intermediate_size", INTER);
        c.put("num_hidden_layers", LAYERS);
        c.put("vocab_size", VOCAB);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 500000.0);
        c.put("attention_bias", true);
        c.put("tie_word_embeddings", false);
        c.put("hidden_act", "silu");
        ObjectNode rs = c.putObject("rope_scaling");
        rs.put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0).put("high_freq_factor", 4.0)
                .put("original_max_position_embeddings", 16);
        return c;
    }

    private static Path writeCheckpoint(Path dir, ObjectNode config, Map<String, SafetensorsLite.F32Tensor> w)
            throws IOException {
        Files.createDirectories(dir);
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), config);
        SafetensorsLite.writeF32(dir.resolve("model.safetensors"), w);
        return dir;
    }

    @Test
    void syntheticLlamaGqaBiasLlama3RunsAndIsCausal(@TempDir Path tmp) throws IOException {
        Map<String, SafetensorsLite.F32Tensor> w = syntheticLlamaWeights(42);
        Path dir = writeCheckpoint(tmp.resolve("gqa"), syntheticLlamaConfig(N_KV), w);

        // The hand-written file reads back exactly.
        SafetensorsLite.Tensors back = SafetensorsLite.readModelDir(dir);
        assertEquals(w.keySet(), back.values().keySet());
        for (var e : w.entrySet()) {
            assertArrayEquals(e.getValue().shape(), back.shape(e.getKey()));
            double[] d = back.get(e.getKey());
            for (int i = 0; i < d.length; i++) {
                assertEquals(e.getValue().data()[i], d[i], 0);
            }
        }

        long[] a = {1, 5, 2, 9, 0, 3, 7, 10, 4, 6, 8, 2, 5, 1, 9, 3, 0, 7, 2, 4}; // 20 > original 16 positions
        long[] b = a.clone();
        for (int t = 9; t < b.length; t++) {
            b[t] = (b[t] + 3) % VOCAB;
        }
        double[][] la = ReferenceDecoder.logits(dir, a);
        double[][] lb = ReferenceDecoder.logits(dir, b);
        assertShapeAndFinite(la, a.length, VOCAB);
        assertCausal(la, lb, a, b);
    }

    @Test
    void syntheticGqaEqualsExplicitlyRepeatedKvHeads(@TempDir Path tmp) throws IOException {
        // repeat_kv semantics: query head h reads kv head h / (nHeads / nKv). Duplicating each kv head's
        // rows in k/v_proj (weight and bias) into an MHA checkpoint must give identical logits.
        Map<String, SafetensorsLite.F32Tensor> gqa = syntheticLlamaWeights(7);
        Map<String, SafetensorsLite.F32Tensor> mha = new LinkedHashMap<>(gqa);
        int groups = N_HEADS / N_KV;
        for (int l = 0; l < LAYERS; l++) {
            for (String kv : new String[] {"k_proj", "v_proj"}) {
                String p = "model.layers." + l + ".self_attn." + kv + ".";
                mha.put(p + "weight", repeatHeads(gqa.get(p + "weight"), groups, HEAD_DIM * H));
                mha.put(p + "bias", repeatHeads(gqa.get(p + "bias"), groups, HEAD_DIM));
            }
        }
        Path dGqa = writeCheckpoint(tmp.resolve("gqa"), syntheticLlamaConfig(N_KV), gqa);
        Path dMha = writeCheckpoint(tmp.resolve("mha"), syntheticLlamaConfig(N_HEADS), mha);
        long[] ids = {4, 0, 10, 3, 3, 8, 1};
        assertClose(ReferenceDecoder.logits(dGqa, ids), ReferenceDecoder.logits(dMha, ids), 1e-12);

        // The test discriminates: interleaving the copies ([kv0, kv1, kv0, kv1], i.e. the wrong mapping
        // h % nKv) gives different logits.
        Map<String, SafetensorsLite.F32Tensor> interleaved = new LinkedHashMap<>(gqa);
        for (int l = 0; l < LAYERS; l++) {
            for (String kv : new String[] {"k_proj", "v_proj"}) {
                String p = "model.layers." + l + ".self_attn." + kv + ".";
                interleaved.put(p + "weight", tile(gqa.get(p + "weight"), groups));
                interleaved.put(p + "bias", tile(gqa.get(p + "bias"), groups));
            }
        }
        Path dInter = writeCheckpoint(tmp.resolve("inter"), syntheticLlamaConfig(N_HEADS), interleaved);
        assertFalse(maxAbsDiff(ReferenceDecoder.logits(dGqa, ids), ReferenceDecoder.logits(dInter, ids)) < 1e-6);
    }

    @Test
    void syntheticTyingAndSlidingWindow(@TempDir Path tmp) throws IOException {
        Map<String, SafetensorsLite.F32Tensor> w = syntheticLlamaWeights(3);
        long[] ids = {2, 7, 1, 1, 9, 0, 5, 6};

        // tie_word_embeddings true: lm_head.weight in the file is ignored in favour of embed_tokens,
        // which equals an untied checkpoint whose lm_head is a copy of the embedding.
        ObjectNode tied = syntheticLlamaConfig(N_KV).put("tie_word_embeddings", true);
        Map<String, SafetensorsLite.F32Tensor> copyHead = new LinkedHashMap<>(w);
        copyHead.put("lm_head.weight", w.get("model.embed_tokens.weight"));
        assertClose(ReferenceDecoder.logits(writeCheckpoint(tmp.resolve("tied"), tied, w), ids),
                ReferenceDecoder.logits(writeCheckpoint(tmp.resolve("copy"), syntheticLlamaConfig(N_KV), copyHead), ids),
                0);

        // Mistral has no attention biases; drop them and compare sliding windows.
        Map<String, SafetensorsLite.F32Tensor> noBias = new LinkedHashMap<>(w);
        noBias.keySet().removeIf(k -> k.endsWith(".bias"));
        ObjectNode full = syntheticLlamaConfig(N_KV).put("model_type", "mistral");
        full.remove("attention_bias");
        full.putNull("sliding_window");
        ObjectNode win3 = full.deepCopy().put("sliding_window", 3);
        ObjectNode winBig = full.deepCopy().put("sliding_window", ids.length);
        double[][] lFull = ReferenceDecoder.logits(writeCheckpoint(tmp.resolve("mfull"), full, noBias), ids);
        double[][] lWin3 = ReferenceDecoder.logits(writeCheckpoint(tmp.resolve("mwin3"), win3, noBias), ids);
        double[][] lBig = ReferenceDecoder.logits(writeCheckpoint(tmp.resolve("mbig"), winBig, noBias), ids);
        assertClose(lFull, lBig, 0); // window >= T: i - j < T always holds
        // Window 3: query i sees keys i-2..i, so rows 0..2 match full attention, later rows differ.
        for (int t = 0; t < 3; t++) {
            assertArrayEquals(lFull[t], lWin3[t], 0);
        }
        for (int t = 3; t < ids.length; t++) {
            assertFalse(maxAbsDiff(new double[][] {lFull[t]}, new double[][] {lWin3[t]}) < 1e-9, "row " + t);
        }
        // Llama with the same weights (attention_bias false) equals Mistral without a window.
        ObjectNode llamaNoBias = syntheticLlamaConfig(N_KV).put("attention_bias", false);
        assertClose(lFull, ReferenceDecoder.logits(writeCheckpoint(tmp.resolve("lnb"), llamaNoBias, noBias), ids), 0);
    }

    // ---------------------------------------------------------------------------------------
    // helpers
    // ---------------------------------------------------------------------------------------

    private static void assertShapeAndFinite(double[][] logits, int t, int vocab) {
        assertEquals(t, logits.length);
        for (double[] row : logits) {
            assertEquals(vocab, row.length);
            for (double v : row) {
                assertTrue(Double.isFinite(v), "non-finite logit");
            }
        }
    }

    /**
     * Rows before the first position where the inputs differ are bit-identical; the row at that position
     * (whose own token changed) differs, so the check is not vacuous.
     */
    private static void assertCausal(double[][] la, double[][] lb, long[] a, long[] b) {
        int first = 0;
        while (a[first] == b[first]) {
            first++;
        }
        assertTrue(first > 0, "sequences should share a prefix");
        for (int t = 0; t < first; t++) {
            assertArrayEquals(la[t], lb[t], 0, "row " + t + " depends on later tokens");
        }
        assertFalse(Arrays.equals(la[first], lb[first]), "changed token had no effect");
    }

    private static void assertClose(double[][] a, double[][] b, double tol) {
        assertEquals(a.length, b.length);
        assertTrue(maxAbsDiff(a, b) <= tol, "max abs diff " + maxAbsDiff(a, b) + " > " + tol);
    }

    private static double maxAbsDiff(double[][] a, double[][] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i].length, b[i].length);
            for (int j = 0; j < a[i].length; j++) {
                m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
            }
        }
        return m;
    }

    private static double[] roped(double[] x, int pos, double[] inv) {
        double[] c = x.clone();
        ReferenceDecoder.applyRopeInPlace(c, 0, c.length, pos, inv);
        return c;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static SafetensorsLite.F32Tensor rand(Random r, int... shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (r.nextGaussian() * 0.5);
        }
        return new SafetensorsLite.F32Tensor(Arrays.stream(shape).asLongStream().toArray(), f);
    }

    private static SafetensorsLite.F32Tensor randAround1(Random r, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (1.0 + 0.2 * r.nextGaussian());
        }
        return new SafetensorsLite.F32Tensor(new long[] {n}, f);
    }

    /** Repeats each head block (of {@code block} floats) {@code groups} times along dim 0. */
    private static SafetensorsLite.F32Tensor repeatHeads(SafetensorsLite.F32Tensor t, int groups, int block) {
        float[] src = t.data();
        int heads = src.length / block;
        float[] dst = new float[src.length * groups];
        for (int h = 0; h < heads; h++) {
            for (int g = 0; g < groups; g++) {
                System.arraycopy(src, h * block, dst, (h * groups + g) * block, block);
            }
        }
        long[] shape = t.shape().clone();
        shape[0] *= groups;
        return new SafetensorsLite.F32Tensor(shape, dst);
    }

    /** Concatenates {@code times} copies of the whole tensor along dim 0. */
    private static SafetensorsLite.F32Tensor tile(SafetensorsLite.F32Tensor t, int times) {
        float[] src = t.data();
        float[] dst = new float[src.length * times];
        for (int i = 0; i < times; i++) {
            System.arraycopy(src, 0, dst, i * src.length, src.length);
        }
        long[] shape = t.shape().clone();
        shape[0] *= times;
        return new SafetensorsLite.F32Tensor(shape, dst);
    }
}
