package io.tether.model.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * Independent float64 reference for Hugging Face causal-LM forward passes, used only by parity tests.
 *
 * <p>Pure Java, no libtorch and no project main classes: weights come from {@link SafetensorsLite},
 * the config from Jackson, and every operation is written out as plain loops in {@code double}. It is
 * meant to be obviously correct rather than fast; use it on tiny checkpoints and short sequences.
 *
 * <p>Supported {@code model_type}s: {@code llama}, {@code mistral}, {@code qwen2}, {@code qwen3}, {@code olmo2},
 * {@code smollm3}, {@code phi3}, {@code gemma2}, {@code gemma3_text} (mirroring {@code modeling_llama.py} / {@code modeling_mistral.py} /
 * {@code modeling_qwen2.py} / {@code modeling_qwen3.py} / {@code modeling_olmo2.py} / {@code modeling_smollm3.py} /
 * {@code modeling_phi3.py} / {@code modeling_gemma2.py} / {@code modeling_gemma3.py}) and {@code gpt2}
 * (mirroring {@code modeling_gpt2.py}), in eval mode (no dropout), for one unpadded sequence whose
 * positions are {@code 0..T-1}, without KV cache.
 */
public final class ReferenceDecoder {

    private static final ObjectMapper JSON = new ObjectMapper();

    private ReferenceDecoder() {}

    /**
     * Logits {@code [T][vocab]} of the checkpoint in {@code modelDir} for one unpadded sequence.
     *
     * @param modelDir directory with {@code config.json} and {@code model.safetensors} (or a sharded
     *     {@code model.safetensors.index.json})
     * @param tokenIds the token ids; position of token {@code t} is {@code t}
     */
    public static double[][] logits(Path modelDir, long[] tokenIds) {
        try {
            JsonNode config = JSON.readTree(modelDir.resolve("config.json").toFile());
            SafetensorsLite.Tensors weights = SafetensorsLite.readModelDir(modelDir);
            return logits(config, weights, tokenIds);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load reference model from " + modelDir, e);
        }
    }

    /** As {@link #logits(Path, long[])} with an already-parsed config and already-loaded weights. */
    public static double[][] logits(JsonNode config, SafetensorsLite.Tensors weights, long[] tokenIds) {
        if (tokenIds.length == 0) {
            throw new IllegalArgumentException("empty token sequence");
        }
        String modelType = text(config, "model_type", null);
        if (modelType == null) {
            throw new IllegalArgumentException("config.json has no model_type");
        }
        switch (modelType) {
            case "llama":
            case "mistral":
            case "qwen2":
            case "qwen3":
            case "olmo2":
            case "smollm3":
            case "phi3":
                return llamaFamily(modelType, config, weights, tokenIds);
            case "gemma2":
            case "gemma3_text":
                return gemma(modelType, config, weights, tokenIds);
            case "gpt2":
                return gpt2(config, weights, tokenIds);
            default:
                throw new UnsupportedOperationException("reference decoder does not support model_type " + modelType);
        }
    }

    // =====================================================================================
    // Llama / Mistral / Qwen2  (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)
    // =====================================================================================

    private static double[][] llamaFamily(String type, JsonNode cfg, SafetensorsLite.Tensors w, long[] ids) {
        final int hidden = intReq(cfg, "hidden_size");
        final int nLayers = intReq(cfg, "num_hidden_layers");
        final int nHeads = intReq(cfg, "num_attention_heads");
        // GQA: num_key_value_heads defaults to num_attention_heads (HF config __init__).
        final int nKv = intOr(cfg, "num_key_value_heads", nHeads);
        // head_dim: explicit config value wins, else hidden_size // num_attention_heads; Qwen3Config's default is 128.
        final int headDim = intOr(cfg, "head_dim", type.equals("qwen3") ? 128 : hidden / nHeads);
        final int inter = intReq(cfg, "intermediate_size");
        final int vocab = intReq(cfg, "vocab_size");
        // Olmo2Config and Phi3Config: 1e-5
        final double eps = dblOr(cfg, "rms_norm_eps", type.equals("olmo2") || type.equals("phi3") ? 1e-5 : 1e-6);
        final String act = text(cfg, "hidden_act", "silu");
        if (nHeads % nKv != 0) {
            throw new IllegalArgumentException("num_attention_heads " + nHeads + " not divisible by num_key_value_heads " + nKv);
        }
        final int groups = nHeads / nKv; // repeat_kv: query head h uses kv head h / groups

        // Bias switches, as each HF attention/MLP module constructs its nn.Linear layers.
        final boolean qkvBias;
        final boolean oBias;
        final boolean mlpBias;
        switch (type) {
            case "llama": // LlamaAttention: q,k,v AND o_proj use bias=config.attention_bias; LlamaMLP: bias=config.mlp_bias
                qkvBias = bool(cfg, "attention_bias", false);
                oBias = qkvBias;
                mlpBias = bool(cfg, "mlp_bias", false);
                break;
            case "qwen2": // Qwen2Attention: q,k,v bias=True, o_proj bias=False; MLP without bias
                qkvBias = true;
                oBias = false;
                mlpBias = false;
                break;
            case "qwen3": // Qwen3Attention / Olmo2Attention / SmolLM3 (LlamaAttention): q,k,v,o bias=config.attention_bias
            case "olmo2":
            case "smollm3":
                qkvBias = bool(cfg, "attention_bias", false);
                oBias = qkvBias;
                // Qwen3MLP and Olmo2MLP are built with bias=False; SmolLM3 uses LlamaMLP (bias=config.mlp_bias).
                mlpBias = type.equals("smollm3") && bool(cfg, "mlp_bias", false);
                break;
            case "phi3": // Phi3Attention: qkv_proj and o_proj bias=False; Phi3MLP: gate_up_proj and down_proj bias=False
            default: // MistralAttention / MistralMLP: no biases
                qkvBias = false;
                oBias = false;
                mlpBias = false;
        }

        // Qwen3: q_norm/k_norm of head_dim applied to each head; OLMo 2: q_norm over all query heads and k_norm over
        // all key heads, applied before the reshape to heads. Both before RoPE.
        final boolean headNorm = type.equals("qwen3");
        final boolean fullNorm = type.equals("olmo2");
        // OLMo 2's block: x + post_attention_layernorm(attn(x)), then x + post_feedforward_layernorm(mlp(x)).
        final boolean normsAfter = type.equals("olmo2");
        boolean[] rope = ropeLayers(type, cfg, nLayers);

        // Sliding window per layer (null entry = full causal attention).
        Integer[] window = slidingWindows(type, cfg, nLayers, rope);

        // Phi-3: RoPE on the first int(head_dim * partial_rotary_factor) dimensions of each head; longrope picks
        // its long factors when the sequence (max position + 1 = T here) exceeds original_max_position_embeddings.
        final int rotaryDim = type.equals("phi3") ? (int) (headDim * dblOr(cfg, "partial_rotary_factor", 1.0)) : headDim;
        final boolean phi3 = type.equals("phi3");
        double[] invFreq = phi3 ? phi3InvFreq(cfg, rotaryDim, ids.length) : ropeInvFreq(cfg, headDim);
        final double ropeScale = phi3 ? phi3AttentionFactor(cfg) : 1.0;

        String p = "model.";
        double[] embed = w.get(p + "embed_tokens.weight", vocab, hidden);
        // LM head: tied to embed_tokens when tie_word_embeddings (default False for these configs),
        // else lm_head.weight; a checkpoint without lm_head.weight falls back to the embedding.
        boolean tie = bool(cfg, "tie_word_embeddings", type.equals("smollm3")); // SmolLM3Config ties by default
        double[] head = (!tie && w.has("lm_head.weight")) ? w.get("lm_head.weight", vocab, hidden) : embed;

        final int T = ids.length;
        // Embedding lookup (LlamaModel.embed_tokens).
        double[][] h = new double[T][];
        for (int t = 0; t < T; t++) {
            h[t] = row(embed, checkToken(ids[t], vocab), hidden);
        }

        for (int l = 0; l < nLayers; l++) {
            String lp = p + "layers." + l + ".";
            double[] ln1 = normsAfter ? null : w.get(lp + "input_layernorm.weight", hidden);
            double[] wq, wk, wv;
            if (phi3) { // qkv_proj rows: the query heads, then the key heads, then the value heads
                double[] qkv = w.get(lp + "self_attn.qkv_proj.weight", (long) (nHeads + 2 * nKv) * headDim, hidden);
                int qRows = nHeads * headDim * hidden, kvRows = nKv * headDim * hidden;
                wq = java.util.Arrays.copyOfRange(qkv, 0, qRows);
                wk = java.util.Arrays.copyOfRange(qkv, qRows, qRows + kvRows);
                wv = java.util.Arrays.copyOfRange(qkv, qRows + kvRows, qRows + 2 * kvRows);
            } else {
                wq = w.get(lp + "self_attn.q_proj.weight", (long) nHeads * headDim, hidden);
                wk = w.get(lp + "self_attn.k_proj.weight", (long) nKv * headDim, hidden);
                wv = w.get(lp + "self_attn.v_proj.weight", (long) nKv * headDim, hidden);
            }
            double[] wo = w.get(lp + "self_attn.o_proj.weight", hidden, (long) nHeads * headDim);
            double[] bq = qkvBias ? w.get(lp + "self_attn.q_proj.bias", (long) nHeads * headDim) : null;
            double[] bk = qkvBias ? w.get(lp + "self_attn.k_proj.bias", (long) nKv * headDim) : null;
            double[] bv = qkvBias ? w.get(lp + "self_attn.v_proj.bias", (long) nKv * headDim) : null;
            double[] bo = oBias ? w.get(lp + "self_attn.o_proj.bias", hidden) : null;
            double[] ln2 = w.get(lp + "post_attention_layernorm.weight", hidden);
            double[] wg, wu;
            if (phi3) { // gate_up_proj output chunked in two: gate first, then up
                double[] gu = w.get(lp + "mlp.gate_up_proj.weight", 2L * inter, hidden);
                wg = java.util.Arrays.copyOfRange(gu, 0, inter * hidden);
                wu = java.util.Arrays.copyOfRange(gu, inter * hidden, 2 * inter * hidden);
            } else {
                wg = w.get(lp + "mlp.gate_proj.weight", inter, hidden);
                wu = w.get(lp + "mlp.up_proj.weight", inter, hidden);
            }
            double[] wd = w.get(lp + "mlp.down_proj.weight", hidden, inter);
            double[] bg = mlpBias ? w.get(lp + "mlp.gate_proj.bias", inter) : null;
            double[] bu = mlpBias ? w.get(lp + "mlp.up_proj.bias", inter) : null;
            double[] bd = mlpBias ? w.get(lp + "mlp.down_proj.bias", hidden) : null;
            double[] qn = headNorm ? w.get(lp + "self_attn.q_norm.weight", headDim)
                    : fullNorm ? w.get(lp + "self_attn.q_norm.weight", (long) nHeads * headDim) : null;
            double[] kn = headNorm ? w.get(lp + "self_attn.k_norm.weight", headDim)
                    : fullNorm ? w.get(lp + "self_attn.k_norm.weight", (long) nKv * headDim) : null;
            double[] ln3 = normsAfter ? w.get(lp + "post_feedforward_layernorm.weight", hidden) : null;

            // --- LlamaDecoderLayer: residual + self_attn(input_layernorm(x)) ---
            double[][] q = new double[T][];
            double[][] k = new double[T][];
            double[][] v = new double[T][];
            for (int t = 0; t < T; t++) {
                double[] x = normsAfter ? h[t] : rmsNorm(h[t], ln1, eps);
                q[t] = linear(x, wq, bq, nHeads * headDim, hidden);
                k[t] = linear(x, wk, bk, nKv * headDim, hidden);
                v[t] = linear(x, wv, bv, nKv * headDim, hidden);
                if (fullNorm) {
                    q[t] = rmsNorm(q[t], qn, eps);
                    k[t] = rmsNorm(k[t], kn, eps);
                }
                if (headNorm) {
                    rmsNormEachHead(q[t], qn, nHeads, headDim, eps);
                    rmsNormEachHead(k[t], kn, nKv, headDim, eps);
                }
                // apply_rotary_pos_emb after the projections (and their biases), per head, position t;
                // SmolLM3's NoPE layers skip it.
                if (!rope[l]) {
                    continue;
                }
                for (int hh = 0; hh < nHeads; hh++) {
                    applyRopeInPlace(q[t], hh * headDim, rotaryDim, t, invFreq, ropeScale);
                }
                for (int hh = 0; hh < nKv; hh++) {
                    applyRopeInPlace(k[t], hh * headDim, rotaryDim, t, invFreq, ropeScale);
                }
            }
            double scale = 1.0 / Math.sqrt(headDim); // self.scaling = head_dim ** -0.5
            double[][] attn = attention(q, k, v, nHeads, groups, headDim, scale, window[l]);
            for (int t = 0; t < T; t++) {
                double[] o = linear(attn[t], wo, bo, hidden, nHeads * headDim);
                addInPlace(h[t], normsAfter ? rmsNorm(o, ln2, eps) : o);
            }

            // --- residual + mlp(post_attention_layernorm(x)); LlamaMLP: down(act(gate(x)) * up(x)) ---
            for (int t = 0; t < T; t++) {
                double[] x = normsAfter ? h[t] : rmsNorm(h[t], ln2, eps);
                double[] g = linear(x, wg, bg, inter, hidden);
                double[] u = linear(x, wu, bu, inter, hidden);
                for (int i = 0; i < inter; i++) {
                    g[i] = activation(act, g[i]) * u[i];
                }
                double[] m = linear(g, wd, bd, hidden, inter);
                addInPlace(h[t], normsAfter ? rmsNorm(m, ln3, eps) : m);
            }
        }

        // Final LlamaModel.norm then lm_head (no bias).
        double[] normW = w.get(p + "norm.weight", hidden);
        double[][] logits = new double[T][];
        for (int t = 0; t < T; t++) {
            logits[t] = linear(rmsNorm(h[t], normW, eps), head, null, vocab, hidden);
        }
        return logits;
    }

    // =====================================================================================
    // Gemma 2 / Gemma 3 text  (Gemma2ForCausalLM, Gemma3ForCausalLM)
    // =====================================================================================

    /**
     * modeling_gemma2.py / modeling_gemma3.py (transformers v4.5x), eval mode, eager attention:
     * <pre>
     * h = embed_tokens(ids) * normalizer      (Gemma 2: sqrt(hidden) in the model dtype; Gemma 3: a float32 buffer)
     * per layer:  r = h; x = input_layernorm(h); x = self_attn(x); h = r + post_attention_layernorm(x)
     *             r = h; x = pre_feedforward_layernorm(h); x = mlp(x); h = r + post_feedforward_layernorm(x)
     * logits = lm_head(norm(h)); if final_logit_softcapping: logits = tanh(logits / cap) * cap
     * </pre>
     * GemmaRMSNorm is {@code x / sqrt(mean(x^2) + eps) * (1 + w)}. Attention: q/k/v (and o) with
     * bias=attention_bias; Gemma 3 normalises each q and k head with q_norm/k_norm (GemmaRMSNorm of head_dim) before
     * RoPE; scores scaled by query_pre_attn_scalar^-0.5, soft-capped by attn_logit_softcapping when set, then masked.
     * Layer i slides (window sliding_window) when layer_types[i] is sliding_attention, else when
     * (i + 1) % pattern != 0 with pattern 2 (Gemma 2) or sliding_window_pattern (Gemma 3, default 6). Gemma 3's
     * sliding layers rotate with base rope_local_base_freq and no scaling, its global layers with rope_theta and
     * rope_scaling. MLP: down(gelu_tanh(gate(x)) * up(x)).
     */
    private static double[][] gemma(String type, JsonNode cfg, SafetensorsLite.Tensors w, long[] ids) {
        final boolean g3 = type.equals("gemma3_text");
        final int hidden = intReq(cfg, "hidden_size");
        final int nLayers = intReq(cfg, "num_hidden_layers");
        final int nHeads = intReq(cfg, "num_attention_heads");
        final int nKv = intOr(cfg, "num_key_value_heads", nHeads);
        final int headDim = intOr(cfg, "head_dim", 256);
        final int inter = intReq(cfg, "intermediate_size");
        final int vocab = intReq(cfg, "vocab_size");
        final double eps = dblOr(cfg, "rms_norm_eps", 1e-6);
        final String act = text(cfg, "hidden_activation", "gelu_pytorch_tanh");
        final double scale = Math.pow(dblOr(cfg, "query_pre_attn_scalar", 256), -0.5);
        // Gemma2Config: attn 50, final 30; Gemma3TextConfig: None. An explicit null turns either off.
        final Double attnCap = present(cfg, "attn_logit_softcapping") ? Double.valueOf(cfg.get("attn_logit_softcapping").asDouble())
                : g3 || cfg.has("attn_logit_softcapping") ? null : Double.valueOf(50.0);
        final Double finalCap = present(cfg, "final_logit_softcapping") ? Double.valueOf(cfg.get("final_logit_softcapping").asDouble())
                : g3 || cfg.has("final_logit_softcapping") ? null : Double.valueOf(30.0);
        final int window = intOr(cfg, "sliding_window", 4096);
        final boolean bias = bool(cfg, "attention_bias", false);
        final int groups = nHeads / nKv;
        boolean[] sliding = new boolean[nLayers];
        JsonNode layerTypes = cfg.get("layer_types");
        int pattern = g3 ? intOr(cfg, "sliding_window_pattern", 6) : 2;
        for (int i = 0; i < nLayers; i++) {
            sliding[i] = layerTypes != null && layerTypes.isArray() ? layerTypes.get(i).asText().equals("sliding_attention")
                    : (i + 1) % pattern != 0;
        }
        double[] globalInv = ropeInvFreq(cfg, headDim);
        double[] localInv = g3 ? defaultInvFreq(dblOr(cfg, "rope_local_base_freq", 10000.0), headDim) : globalInv;
        // Gemma 2: torch.tensor(hidden ** 0.5, dtype=hidden_states.dtype); Gemma 3: a float32 buffer cast to the
        // weights' dtype, so float64 sees sqrt(hidden) rounded to float32.
        final double normalizer = g3 ? (double) (float) Math.sqrt(hidden) : Math.sqrt(hidden);

        String p = "model.";
        double[] embed = w.get(p + "embed_tokens.weight", vocab, hidden);
        boolean tie = bool(cfg, "tie_word_embeddings", true);
        double[] head = (!tie && w.has("lm_head.weight")) ? w.get("lm_head.weight", vocab, hidden) : embed;
        final int T = ids.length;
        double[][] h = new double[T][];
        for (int t = 0; t < T; t++) {
            h[t] = row(embed, checkToken(ids[t], vocab), hidden);
            for (int i = 0; i < hidden; i++) {
                h[t][i] *= normalizer;
            }
        }
        for (int l = 0; l < nLayers; l++) {
            String lp = p + "layers." + l + ".";
            double[] wq = w.get(lp + "self_attn.q_proj.weight", (long) nHeads * headDim, hidden);
            double[] wk = w.get(lp + "self_attn.k_proj.weight", (long) nKv * headDim, hidden);
            double[] wv = w.get(lp + "self_attn.v_proj.weight", (long) nKv * headDim, hidden);
            double[] wo = w.get(lp + "self_attn.o_proj.weight", hidden, (long) nHeads * headDim);
            double[] bq = bias ? w.get(lp + "self_attn.q_proj.bias", (long) nHeads * headDim) : null;
            double[] bk = bias ? w.get(lp + "self_attn.k_proj.bias", (long) nKv * headDim) : null;
            double[] bv = bias ? w.get(lp + "self_attn.v_proj.bias", (long) nKv * headDim) : null;
            double[] bo = bias ? w.get(lp + "self_attn.o_proj.bias", hidden) : null;
            double[] qn = g3 ? w.get(lp + "self_attn.q_norm.weight", headDim) : null;
            double[] kn = g3 ? w.get(lp + "self_attn.k_norm.weight", headDim) : null;
            double[] lnIn = w.get(lp + "input_layernorm.weight", hidden);
            double[] lnPostAttn = w.get(lp + "post_attention_layernorm.weight", hidden);
            double[] lnPreFf = w.get(lp + "pre_feedforward_layernorm.weight", hidden);
            double[] lnPostFf = w.get(lp + "post_feedforward_layernorm.weight", hidden);
            double[] wg = w.get(lp + "mlp.gate_proj.weight", inter, hidden);
            double[] wu = w.get(lp + "mlp.up_proj.weight", inter, hidden);
            double[] wd = w.get(lp + "mlp.down_proj.weight", hidden, inter);
            double[] inv = sliding[l] ? localInv : globalInv;

            double[][] q = new double[T][];
            double[][] k = new double[T][];
            double[][] v = new double[T][];
            for (int t = 0; t < T; t++) {
                double[] x = gemmaRmsNorm(h[t], lnIn, eps);
                q[t] = linear(x, wq, bq, nHeads * headDim, hidden);
                k[t] = linear(x, wk, bk, nKv * headDim, hidden);
                v[t] = linear(x, wv, bv, nKv * headDim, hidden);
                for (int hh = 0; g3 && hh < nHeads; hh++) {
                    normHead(q[t], qn, hh * headDim, headDim, eps);
                }
                for (int hh = 0; g3 && hh < nKv; hh++) {
                    normHead(k[t], kn, hh * headDim, headDim, eps);
                }
                for (int hh = 0; hh < nHeads; hh++) {
                    applyRopeInPlace(q[t], hh * headDim, headDim, t, inv);
                }
                for (int hh = 0; hh < nKv; hh++) {
                    applyRopeInPlace(k[t], hh * headDim, headDim, t, inv);
                }
            }
            double[][] attn = attention(q, k, v, nHeads, groups, headDim, scale, sliding[l] ? Integer.valueOf(window) : null, attnCap);
            for (int t = 0; t < T; t++) {
                addInPlace(h[t], gemmaRmsNorm(linear(attn[t], wo, bo, hidden, nHeads * headDim), lnPostAttn, eps));
            }
            for (int t = 0; t < T; t++) {
                double[] x = gemmaRmsNorm(h[t], lnPreFf, eps);
                double[] g = linear(x, wg, null, inter, hidden);
                double[] u = linear(x, wu, null, inter, hidden);
                for (int i = 0; i < inter; i++) {
                    g[i] = activation(act, g[i]) * u[i];
                }
                addInPlace(h[t], gemmaRmsNorm(linear(g, wd, null, hidden, inter), lnPostFf, eps));
            }
        }
        double[] normW = w.get(p + "norm.weight", hidden);
        double[][] logits = new double[T][];
        for (int t = 0; t < T; t++) {
            logits[t] = linear(gemmaRmsNorm(h[t], normW, eps), head, null, vocab, hidden);
            if (finalCap != null) {
                for (int i = 0; i < vocab; i++) {
                    logits[t][i] = Math.tanh(logits[t][i] / finalCap) * finalCap;
                }
            }
        }
        return logits;
    }

    /** GemmaRMSNorm: {@code x / sqrt(mean(x^2) + eps) * (1 + w)}. */
    public static double[] gemmaRmsNorm(double[] x, double[] w, double eps) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double r = 1.0 / Math.sqrt(ss / x.length + eps);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * r * (1.0 + w[i]);
        }
        return out;
    }

    private static void normHead(double[] x, double[] w, int off, int headDim, double eps) {
        double[] head = java.util.Arrays.copyOfRange(x, off, off + headDim);
        System.arraycopy(gemmaRmsNorm(head, w, eps), 0, x, off, headDim);
    }

    /**
     * Sliding window per layer (null = full causal attention):
     * <ul>
     *   <li>llama: never.
     *   <li>mistral: {@code sliding_window} on every layer; MistralConfig's default is 4096 when the key
     *       is absent, an explicit null disables it.
     *   <li>qwen2: {@code layer_types[i] == "sliding_attention"} when the config lists layer types,
     *       otherwise the rule that produces them: {@code use_sliding_window && i >= max_window_layers}
     *       (Qwen2Config defaults: use_sliding_window False, sliding_window 4096, max_window_layers 28);
     *       with use_sliding_window False the window is None, so no layer slides.
     * </ul>
     */
    static Integer[] slidingWindows(String type, JsonNode cfg, int nLayers, boolean[] rope) {
        Integer[] out = new Integer[nLayers];
        if (type.equals("phi3")) { // Phi3Config: sliding_window None by default; when set, on every layer
            java.util.Arrays.fill(out, nullableInt(cfg, "sliding_window"));
        } else if (type.equals("mistral")) {
            Integer sw = cfg.has("sliding_window") ? nullableInt(cfg, "sliding_window") : Integer.valueOf(4096);
            java.util.Arrays.fill(out, sw);
        } else if (type.equals("smollm3")) {
            // SmolLM3Config: layer_types, else sliding where use_sliding_window, a sliding_window and no RoPE; the
            // attention slides only when use_sliding_window and the layer's type is sliding_attention.
            boolean use = bool(cfg, "use_sliding_window", false);
            Integer sw = nullableInt(cfg, "sliding_window");
            JsonNode layerTypes = cfg.get("layer_types");
            for (int i = 0; i < nLayers; i++) {
                boolean sliding = layerTypes != null && layerTypes.isArray()
                        ? layerTypes.get(i).asText().equals("sliding_attention")
                        : use && sw != null && !rope[i];
                out[i] = use && sliding ? sw : null;
            }
        } else if (type.equals("qwen2") || type.equals("qwen3")) {
            boolean use = bool(cfg, "use_sliding_window", false);
            // Qwen2Config: self.sliding_window = sliding_window if use_sliding_window else None
            Integer sw = !use ? null
                    : cfg.has("sliding_window") ? nullableInt(cfg, "sliding_window") : Integer.valueOf(4096);
            JsonNode layerTypes = cfg.get("layer_types");
            int maxWindowLayers = intOr(cfg, "max_window_layers", 28);
            for (int i = 0; i < nLayers; i++) {
                boolean sliding;
                if (layerTypes != null && layerTypes.isArray() && layerTypes.size() == nLayers) {
                    sliding = layerTypes.get(i).asText().equals("sliding_attention");
                } else {
                    sliding = use && i >= maxWindowLayers;
                }
                out[i] = sliding ? sw : null;
            }
        }
        return out;
    }

    /**
     * Whether each layer applies RoPE. SmolLM3: {@code no_rope_layers[i] == 1} (RoPE) or 0 (NoPE), else
     * generated by SmolLM3Config as {@code (i + 1) % no_rope_layer_interval != 0} (interval default 4). Every
     * other family rotates in every layer.
     */
    static boolean[] ropeLayers(String type, JsonNode cfg, int nLayers) {
        boolean[] out = new boolean[nLayers];
        java.util.Arrays.fill(out, true);
        if (!type.equals("smollm3")) {
            return out;
        }
        JsonNode list = cfg.get("no_rope_layers");
        int interval = intOr(cfg, "no_rope_layer_interval", 4);
        for (int i = 0; i < nLayers; i++) {
            out[i] = list != null && list.isArray() ? list.get(i).asInt() != 0 : (i + 1) % interval != 0;
        }
        return out;
    }

    /** Qwen3RMSNorm over each head of {@code x} ({@code heads} blocks of {@code headDim}), in place, one shared weight. */
    public static void rmsNormEachHead(double[] x, double[] w, int heads, int headDim, double eps) {
        for (int hh = 0; hh < heads; hh++) {
            double[] head = java.util.Arrays.copyOfRange(x, hh * headDim, (hh + 1) * headDim);
            System.arraycopy(rmsNorm(head, w, eps), 0, x, hh * headDim, headDim);
        }
    }

    /**
     * Causal (optionally sliding-window) scaled-dot-product attention for all heads.
     *
     * <p>Query {@code i} attends key {@code j} iff {@code j <= i} and, with window {@code W},
     * {@code i - j < W} (HF's sliding_window_causal mask: {@code kv_idx > q_idx - sliding_window}).
     * Query head {@code h} reads KV head {@code h / groups} (repeat_kv). Softmax is computed stably.
     *
     * @return {@code [T][nHeads * headDim]}, heads concatenated (transpose + reshape before o_proj)
     */
    static double[][] attention(double[][] q, double[][] k, double[][] v, int nHeads, int groups, int headDim,
                                double scale, Integer window) {
        return attention(q, k, v, nHeads, groups, headDim, scale, window, null);
    }

    /** As above, with each score soft-capped to {@code cap * tanh(score / cap)} (after scaling, before the mask) when cap is set. */
    static double[][] attention(double[][] q, double[][] k, double[][] v, int nHeads, int groups, int headDim,
                                double scale, Integer window, Double cap) {
        int T = q.length;
        double[][] out = new double[T][nHeads * headDim];
        double[] scores = new double[T];
        for (int hh = 0; hh < nHeads; hh++) {
            int qo = hh * headDim;
            int ko = (hh / groups) * headDim;
            for (int i = 0; i < T; i++) {
                int jStart = window == null ? 0 : Math.max(0, i - window + 1);
                double max = Double.NEGATIVE_INFINITY;
                for (int j = jStart; j <= i; j++) {
                    double s = 0;
                    for (int d = 0; d < headDim; d++) {
                        s += q[i][qo + d] * k[j][ko + d];
                    }
                    scores[j] = cap == null ? s * scale : Math.tanh(s * scale / cap) * cap;
                    max = Math.max(max, scores[j]);
                }
                double sum = 0;
                for (int j = jStart; j <= i; j++) {
                    scores[j] = Math.exp(scores[j] - max);
                    sum += scores[j];
                }
                for (int j = jStart; j <= i; j++) {
                    double pj = scores[j] / sum;
                    for (int d = 0; d < headDim; d++) {
                        out[i][qo + d] += pj * v[j][ko + d];
                    }
                }
            }
        }
        return out;
    }

    // ---------------------------------------------------------------------------------------
    // RoPE (LlamaRotaryEmbedding + ROPE_INIT_FUNCTIONS + apply_rotary_pos_emb)
    // ---------------------------------------------------------------------------------------

    /**
     * Rotary inverse frequencies {@code [headDim/2]} for a llama-family config.
     *
     * <p>Base: {@code inv_freq[j] = 1 / rope_theta^(2j/head_dim)} (_compute_default_rope_parameters).
     * {@code rope_scaling} (or transformers v5 {@code rope_parameters}) with {@code rope_type}/{@code type}:
     * "default" (none), "linear" (inv_freq / factor, i.e. positions / factor) or "llama3"
     * (_compute_llama3_parameters). Other types are rejected rather than silently approximated.
     */
    public static double[] ropeInvFreq(JsonNode cfg, int headDim) {
        JsonNode scaling = cfg.get("rope_scaling");
        if (scaling == null || scaling.isNull()) {
            JsonNode params = cfg.get("rope_parameters"); // transformers >= 5 layout
            scaling = (params != null && params.isObject()) ? params : null;
        }
        double theta = dblOr(cfg, "rope_theta", Double.NaN);
        // SmolLM3Config's default base is 2e6; every other family's 1e4.
        // Gemma3TextConfig's is 1e6.
        String mt = text(cfg, "model_type", "");
        double defaultTheta = "smollm3".equals(mt) || "gemma3_text".equals(mt) ? ("smollm3".equals(mt) ? 2_000_000.0 : 1_000_000.0) : 10000.0;
        if (Double.isNaN(theta)) {
            theta = scaling != null ? dblOr(scaling, "rope_theta", defaultTheta) : defaultTheta;
        }
        double[] inv = defaultInvFreq(theta, headDim);
        if (scaling == null) {
            return inv;
        }
        String ropeType = text(scaling, "rope_type", text(scaling, "type", "default"));
        switch (ropeType) {
            case "default":
                return inv;
            case "linear": {
                double factor = dblReq(scaling, "factor");
                for (int j = 0; j < inv.length; j++) {
                    inv[j] /= factor;
                }
                return inv;
            }
            case "llama3":
                return llama3InvFreq(inv, dblReq(scaling, "factor"), dblReq(scaling, "low_freq_factor"),
                        dblReq(scaling, "high_freq_factor"), dblReq(scaling, "original_max_position_embeddings"));
            default:
                throw new UnsupportedOperationException("reference decoder does not support rope_type " + ropeType);
        }
    }

    /**
     * Phi-3's inverse frequencies over the rotary dimensions: default RoPE, or with {@code rope_scaling} type
     * longrope {@code 1 / (ext[j] * theta^(2j / rotaryDim))}, ext being {@code long_factor} when the sequence length
     * exceeds original_max_position_embeddings (rope_scaling's, else the config's, Phi3Config default 4096) and
     * {@code short_factor} otherwise.
     */
    static double[] phi3InvFreq(JsonNode cfg, int rotaryDim, int seqLen) {
        double[] inv = defaultInvFreq(dblOr(cfg, "rope_theta", 10000.0), rotaryDim);
        JsonNode rs = cfg.get("rope_scaling");
        if (rs == null || rs.isNull()) {
            return inv;
        }
        String ropeType = text(rs, "rope_type", text(rs, "type", "default"));
        if (!ropeType.equals("longrope")) {
            throw new UnsupportedOperationException("reference decoder supports only longrope for phi3, got " + ropeType);
        }
        int original = intOr(rs, "original_max_position_embeddings", intOr(cfg, "original_max_position_embeddings", 4096));
        JsonNode ext = rs.get(seqLen > original ? "long_factor" : "short_factor");
        for (int j = 0; j < inv.length; j++) {
            inv[j] = 1.0 / (ext.get(j).asDouble() * Math.pow(dblOr(cfg, "rope_theta", 10000.0), (2.0 * j) / rotaryDim));
        }
        return inv;
    }

    /**
     * longrope's attention_factor: rope_scaling's, else sqrt(1 + ln(factor) / ln(original)) with factor =
     * max_position_embeddings / original_max_position_embeddings (1 when factor <= 1); 1 without longrope.
     */
    static double phi3AttentionFactor(JsonNode cfg) {
        JsonNode rs = cfg.get("rope_scaling");
        if (rs == null || rs.isNull()) {
            return 1.0;
        }
        if (present(rs, "attention_factor")) {
            return rs.get("attention_factor").asDouble();
        }
        int original = intOr(cfg, "original_max_position_embeddings", 4096);
        double factor = (double) intOr(cfg, "max_position_embeddings", 4096) / original;
        return factor <= 1.0 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(intOr(rs, "original_max_position_embeddings", original)));
    }

    /** {@code inv_freq[j] = 1 / theta^(2j / headDim)} for {@code j in [0, headDim/2)}. */
    public static double[] defaultInvFreq(double theta, int headDim) {
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for RoPE: " + headDim);
        }
        double[] inv = new double[headDim / 2];
        for (int j = 0; j < inv.length; j++) {
            inv[j] = 1.0 / Math.pow(theta, (2.0 * j) / headDim);
        }
        return inv;
    }

    /** HF _compute_llama3_parameters applied to base inverse frequencies (returns a new array). */
    public static double[] llama3InvFreq(double[] inv, double factor, double lowFreqFactor, double highFreqFactor,
                                         double originalMaxPositions) {
        double lowFreqWavelen = originalMaxPositions / lowFreqFactor;
        double highFreqWavelen = originalMaxPositions / highFreqFactor;
        double[] out = new double[inv.length];
        for (int j = 0; j < inv.length; j++) {
            double wavelen = 2 * Math.PI / inv[j];
            if (wavelen > lowFreqWavelen) {
                out[j] = inv[j] / factor; // low frequencies: fully interpolated
            } else if (wavelen < highFreqWavelen) {
                out[j] = inv[j]; // high frequencies: untouched
            } else { // medium band: blend
                double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                out[j] = (1 - smooth) * inv[j] / factor + smooth * inv[j];
            }
        }
        return out;
    }

    /**
     * Rotates {@code x[off .. off+D)} in place at position {@code pos} with HF's rotate_half convention:
     * {@code out = x * cos + rotate_half(x) * sin}, where {@code rotate_half(x) = cat(-x2, x1)} and
     * cos/sin of index {@code i} use angle {@code pos * invFreq[i mod D/2]}.
     */
    public static void applyRopeInPlace(double[] x, int off, int headDim, int pos, double[] invFreq) {
        applyRopeInPlace(x, off, headDim, pos, invFreq, 1.0);
    }

    /**
     * As above on the first {@code rotaryDim} entries of the head at {@code off} (the rest untouched), with cos and
     * sin multiplied by {@code scale} (HF's attention_scaling).
     */
    public static void applyRopeInPlace(double[] x, int off, int rotaryDim, int pos, double[] invFreq, double scale) {
        int half = rotaryDim / 2;
        for (int j = 0; j < half; j++) {
            double angle = pos * invFreq[j];
            double c = Math.cos(angle) * scale;
            double s = Math.sin(angle) * scale;
            double a = x[off + j];
            double b = x[off + j + half];
            x[off + j] = a * c - b * s;
            x[off + j + half] = b * c + a * s;
        }
    }

    // =====================================================================================
    // GPT-2  (GPT2LMHeadModel, or GPT2Model with the same tied wte head)
    // =====================================================================================

    private static double[][] gpt2(JsonNode cfg, SafetensorsLite.Tensors w, long[] ids) {
        final int hidden = intReq(cfg, "n_embd");
        final int nLayers = intReq(cfg, "n_layer");
        final int nHeads = intReq(cfg, "n_head");
        final int vocab = intReq(cfg, "vocab_size");
        final int nPositions = intOr(cfg, "n_positions", 1024);
        final int inner = intOr(cfg, "n_inner", 4 * hidden); // n_inner None -> 4 * n_embd
        final double eps = dblOr(cfg, "layer_norm_epsilon", 1e-5);
        final String act = text(cfg, "activation_function", "gelu_new");
        final boolean scaleWeights = bool(cfg, "scale_attn_weights", true);
        final boolean scaleByLayer = bool(cfg, "scale_attn_by_inverse_layer_idx", false);
        if (hidden % nHeads != 0) {
            throw new IllegalArgumentException("n_embd " + hidden + " not divisible by n_head " + nHeads);
        }
        final int headDim = hidden / nHeads;
        final int T = ids.length;
        if (T > nPositions) {
            throw new IllegalArgumentException("sequence length " + T + " exceeds n_positions " + nPositions);
        }
        // GPT2LMHeadModel stores the backbone under "transformer."; a bare GPT2Model has no prefix.
        String p = w.has("transformer.wte.weight") ? "transformer." : "";

        double[] wte = w.get(p + "wte.weight", vocab, hidden);
        double[] wpe = w.get(p + "wpe.weight", nPositions, hidden);

        // inputs_embeds + position_embeds (positions 0..T-1).
        double[][] h = new double[T][];
        for (int t = 0; t < T; t++) {
            h[t] = row(wte, checkToken(ids[t], vocab), hidden);
            addInPlace(h[t], row(wpe, t, hidden));
        }

        for (int l = 0; l < nLayers; l++) {
            String lp = p + "h." + l + ".";
            double[] ln1w = w.get(lp + "ln_1.weight", hidden);
            double[] ln1b = w.get(lp + "ln_1.bias", hidden);
            double[] attnW = w.get(lp + "attn.c_attn.weight", hidden, 3L * hidden); // Conv1D: [in, out]
            double[] attnB = w.get(lp + "attn.c_attn.bias", 3L * hidden);
            double[] projW = w.get(lp + "attn.c_proj.weight", hidden, hidden);
            double[] projB = w.get(lp + "attn.c_proj.bias", hidden);
            double[] ln2w = w.get(lp + "ln_2.weight", hidden);
            double[] ln2b = w.get(lp + "ln_2.bias", hidden);
            double[] fcW = w.get(lp + "mlp.c_fc.weight", hidden, inner);
            double[] fcB = w.get(lp + "mlp.c_fc.bias", inner);
            double[] mprojW = w.get(lp + "mlp.c_proj.weight", inner, hidden);
            double[] mprojB = w.get(lp + "mlp.c_proj.bias", hidden);

            // --- GPT2Block: residual + attn(ln_1(x)) ---
            double[][] q = new double[T][];
            double[][] k = new double[T][];
            double[][] v = new double[T][];
            for (int t = 0; t < T; t++) {
                double[] qkv = conv1d(layerNorm(h[t], ln1w, ln1b, eps), attnW, attnB, hidden, 3 * hidden);
                // c_attn output .split(n_embd, dim=2) -> query, key, value
                q[t] = java.util.Arrays.copyOfRange(qkv, 0, hidden);
                k[t] = java.util.Arrays.copyOfRange(qkv, hidden, 2 * hidden);
                v[t] = java.util.Arrays.copyOfRange(qkv, 2 * hidden, 3 * hidden);
            }
            // GPT2Attention._attn: divide by sqrt(head_dim) when scale_attn_weights, and additionally by
            // (layer_idx + 1) when scale_attn_by_inverse_layer_idx.
            double scale = 1.0;
            if (scaleWeights) {
                scale /= Math.sqrt(headDim);
            }
            if (scaleByLayer) {
                scale /= (l + 1);
            }
            double[][] attn = attention(q, k, v, nHeads, 1, headDim, scale, null);
            for (int t = 0; t < T; t++) {
                addInPlace(h[t], conv1d(attn[t], projW, projB, hidden, hidden));
            }

            // --- residual + mlp(ln_2(x)); GPT2MLP: c_proj(act(c_fc(x))) ---
            for (int t = 0; t < T; t++) {
                double[] m = conv1d(layerNorm(h[t], ln2w, ln2b, eps), fcW, fcB, hidden, inner);
                for (int i = 0; i < inner; i++) {
                    m[i] = activation(act, m[i]);
                }
                addInPlace(h[t], conv1d(m, mprojW, mprojB, inner, hidden));
            }
        }

        // ln_f, then lm_head tied to wte (no bias).
        double[] lnfW = w.get(p + "ln_f.weight", hidden);
        double[] lnfB = w.get(p + "ln_f.bias", hidden);
        double[][] logits = new double[T][];
        for (int t = 0; t < T; t++) {
            logits[t] = linear(layerNorm(h[t], lnfW, lnfB, eps), wte, null, vocab, hidden);
        }
        return logits;
    }

    // =====================================================================================
    // Elementary ops (public so tests can check them on hand-computed values)
    // =====================================================================================

    /** LlamaRMSNorm: {@code w * x / sqrt(mean(x^2) + eps)}. */
    public static double[] rmsNorm(double[] x, double[] w, double eps) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double r = 1.0 / Math.sqrt(ss / x.length + eps);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = w[i] * (x[i] * r);
        }
        return out;
    }

    /** nn.LayerNorm: {@code (x - mean) / sqrt(var + eps) * w + b} with biased variance. */
    public static double[] layerNorm(double[] x, double[] w, double[] b, double eps) {
        int n = x.length;
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        mean /= n;
        double var = 0;
        for (double v : x) {
            var += (v - mean) * (v - mean);
        }
        var /= n;
        double r = 1.0 / Math.sqrt(var + eps);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = (x[i] - mean) * r * w[i] + b[i];
        }
        return out;
    }

    /** nn.Linear: weight {@code [out, in]} row-major, {@code y = W x + b}. */
    public static double[] linear(double[] x, double[] weight, double[] bias, int out, int in) {
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            double s = bias == null ? 0 : bias[o];
            int base = o * in;
            for (int i = 0; i < in; i++) {
                s += weight[base + i] * x[i];
            }
            y[o] = s;
        }
        return y;
    }

    /** transformers Conv1D: weight {@code [in, out]} row-major, {@code y = x W + b}. */
    public static double[] conv1d(double[] x, double[] weight, double[] bias, int in, int out) {
        double[] y = new double[out];
        if (bias != null) {
            System.arraycopy(bias, 0, y, 0, out);
        }
        for (int i = 0; i < in; i++) {
            double xi = x[i];
            int base = i * out;
            for (int o = 0; o < out; o++) {
                y[o] += xi * weight[base + o];
            }
        }
        return y;
    }

    /** ACT2FN subset. */
    public static double activation(String name, double x) {
        switch (name) {
            case "silu":
            case "swish":
                return silu(x);
            case "gelu_new":
            case "gelu_pytorch_tanh": // same tanh formula, fused kernel
                return geluTanh(x);
            case "gelu":
                return geluErf(x);
            case "relu":
                return Math.max(0, x);
            default:
                throw new UnsupportedOperationException("reference decoder does not support activation " + name);
        }
    }

    /** {@code x * sigmoid(x)}. */
    public static double silu(double x) {
        return x / (1.0 + Math.exp(-x));
    }

    /** NewGELUActivation: {@code 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))}. */
    public static double geluTanh(double x) {
        return 0.5 * x * (1.0 + Math.tanh(Math.sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x)));
    }

    /** Exact GELU (nn.functional.gelu, approximate='none'): {@code 0.5 x (1 + erf(x / sqrt 2))}. */
    public static double geluErf(double x) {
        return 0.5 * x * (1.0 + erf(x / Math.sqrt(2.0)));
    }

    /**
     * Error function to ~1e-15 absolute accuracy.
     *
     * <p>For {@code |x| < 6}: the everywhere-convergent series with positive terms (no cancellation)
     * {@code erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))}. For
     * {@code |x| >= 6}, {@code 1 - erf(|x|) < 3e-17}, below double resolution near 1.
     */
    public static double erf(double x) {
        if (Double.isNaN(x)) {
            return Double.NaN;
        }
        double ax = Math.abs(x);
        if (ax >= 6.0) {
            return Math.copySign(1.0, x);
        }
        double x2 = ax * ax;
        double term = ax; // n = 0
        double sum = term;
        for (int n = 1; n < 500; n++) {
            term *= 2.0 * x2 / (2 * n + 1);
            sum += term;
            if (term < 1e-17 * sum) {
                break;
            }
        }
        double r = 2.0 / Math.sqrt(Math.PI) * Math.exp(-x2) * sum;
        return Math.copySign(Math.min(r, 1.0), x);
    }

    // =====================================================================================
    // Helpers
    // =====================================================================================

    private static int checkToken(long id, int vocab) {
        if (id < 0 || id >= vocab) {
            throw new IllegalArgumentException("token id " + id + " out of range [0, " + vocab + ")");
        }
        return (int) id;
    }

    private static double[] row(double[] m, int r, int cols) {
        return java.util.Arrays.copyOfRange(m, r * cols, (r + 1) * cols);
    }

    private static void addInPlace(double[] acc, double[] x) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += x[i];
        }
    }

    private static boolean present(JsonNode cfg, String key) {
        JsonNode n = cfg.get(key);
        return n != null && !n.isNull();
    }

    private static int intReq(JsonNode cfg, String key) {
        if (!present(cfg, key)) {
            throw new IllegalArgumentException("config missing " + key);
        }
        return cfg.get(key).asInt();
    }

    private static int intOr(JsonNode cfg, String key, int dflt) {
        return present(cfg, key) ? cfg.get(key).asInt() : dflt;
    }

    private static Integer nullableInt(JsonNode cfg, String key) {
        return present(cfg, key) ? Integer.valueOf(cfg.get(key).asInt()) : null;
    }

    private static double dblReq(JsonNode cfg, String key) {
        if (!present(cfg, key)) {
            throw new IllegalArgumentException("config missing " + key);
        }
        return cfg.get(key).asDouble();
    }

    private static double dblOr(JsonNode cfg, String key, double dflt) {
        return present(cfg, key) ? cfg.get(key).asDouble() : dflt;
    }

    private static boolean bool(JsonNode cfg, String key, boolean dflt) {
        return present(cfg, key) ? cfg.get(key).asBoolean() : dflt;
    }

    private static String text(JsonNode cfg, String key, String dflt) {
        return present(cfg, key) ? cfg.get(key).asText() : dflt;
    }
}
