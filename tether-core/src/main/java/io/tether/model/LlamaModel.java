package io.tether.model;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * The Llama decoder, which with config switches is also Qwen2 (q/k/v biases), Mistral (sliding window), Qwen3
 * (RMSNorm on each head of q and k before RoPE), OLMo 2 (RMSNorm on the full q and k projections, and norms after
 * the attention and the MLP instead of before), SmolLM3 (some layers without RoPE) and Phi-3 (fused qkv_proj and
 * gate_up_proj, RoPE on part of each head, longrope): pre-norm blocks of RMSNorm,
 * grouped-query attention with rotary positions, RMSNorm, SwiGLU MLP. Gemma 2 and Gemma 3 are the same skeleton with
 * (1 + weight) norms in float32 before and after each sublayer, scaled embeddings, GeGLU, query_pre_attn_scalar,
 * soft-capping and (Gemma 3) a second RoPE table for the sliding layers ({@link ModelConfig.Gemma}).
 */
public final class LlamaModel implements CausalLM {
    private final ModelConfig config;
    private final DType dtype;
    private final Map<String, Tensor> parameters;
    private final Tensor embedTokens;  // (vocab, hidden)
    private final Layer[] layers;
    private final Tensor norm;         // (hidden)
    private final Tensor lmHead;       // (vocab, hidden); the embedding when tied; (labels, hidden) for classifiers
    private final Tensor headBias;     // token classifiers' (labels); null otherwise
    private final Rope rope;
    /** Gemma 3's sliding layers' RoPE (rope_local_base_freq, no scaling); null where every layer uses {@link #rope}. */
    private final Rope localRope;
    private final ModelConfig.Gemma gemma;
    private LoraAdapters lora;

    /**
     * One decoder block's weights; biases and norms are null where the architecture has none (OLMo 2 has no
     * input_layernorm, only it has post_feedforward_layernorm, only Qwen3 and OLMo 2 have q_norm and k_norm).
     */
    private record Layer(String prefix, Tensor inputNorm, Tensor q, Tensor qBias, Tensor k, Tensor kBias, Tensor v, Tensor vBias,
                         Tensor o, Tensor oBias, Tensor postNorm, Tensor gate, Tensor up, Tensor down,
                         Tensor gateBias, Tensor upBias, Tensor downBias, Tensor qNorm, Tensor kNorm, Tensor feedForwardNorm,
                         Tensor qkv, Tensor gateUp, Tensor preFeedForwardNorm) {}

    LlamaModel(ModelConfig config, DType dtype, Map<String, Tensor> parameters) {
        this.config = config;
        this.dtype = dtype;
        this.parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
        embedTokens = parameters.get("model.embed_tokens.weight");
        norm = parameters.get("model.norm.weight");
        lmHead = config.isClassifier() ? parameters.get("score.weight")
                : config.tieWordEmbeddings() ? embedTokens : parameters.get("lm_head.weight");
        headBias = parameters.get("score.bias");
        layers = new Layer[config.numHiddenLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "model.layers." + i + ".";
            layers[i] = new Layer(p, parameters.get(p + "input_layernorm.weight"),
                    parameters.get(p + "self_attn.q_proj.weight"), parameters.get(p + "self_attn.q_proj.bias"),
                    parameters.get(p + "self_attn.k_proj.weight"), parameters.get(p + "self_attn.k_proj.bias"),
                    parameters.get(p + "self_attn.v_proj.weight"), parameters.get(p + "self_attn.v_proj.bias"),
                    parameters.get(p + "self_attn.o_proj.weight"), parameters.get(p + "self_attn.o_proj.bias"),
                    parameters.get(p + "post_attention_layernorm.weight"),
                    parameters.get(p + "mlp.gate_proj.weight"), parameters.get(p + "mlp.up_proj.weight"),
                    parameters.get(p + "mlp.down_proj.weight"), parameters.get(p + "mlp.gate_proj.bias"),
                    parameters.get(p + "mlp.up_proj.bias"), parameters.get(p + "mlp.down_proj.bias"),
                    parameters.get(p + "self_attn.q_norm.weight"), parameters.get(p + "self_attn.k_norm.weight"),
                    parameters.get(p + "post_feedforward_layernorm.weight"),
                    parameters.get(p + "self_attn.qkv_proj.weight"), parameters.get(p + "mlp.gate_up_proj.weight"),
                    parameters.get(p + "pre_feedforward_layernorm.weight"));
        }
        rope = new Rope(config, dtype);
        gemma = config.gemma();
        localRope = gemma != null && gemma.ropeLocalBaseFreq() > 0
                ? new Rope(config, dtype, gemma.ropeLocalBaseFreq(), ModelConfig.RopeScaling.NONE) : null;
    }

    /** Checkpoint names and shapes this config needs, in the order HF's state dict lists them. */
    static Map<String, long[]> parameterShapes(ModelConfig c) {
        Map<String, long[]> s = new LinkedHashMap<>();
        long h = c.hiddenSize(), qDim = (long) c.numAttentionHeads() * c.headDim(), kvDim = (long) c.numKeyValueHeads() * c.headDim();
        s.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            if (c.layout().fused()) {
                // Phi-3: q, k and v rows in one projection, gate and up rows in another; no biases.
                s.put(p + "self_attn.qkv_proj.weight", new long[] {qDim + 2 * kvDim, h});
                s.put(p + "self_attn.o_proj.weight", new long[] {h, qDim});
                s.put(p + "mlp.gate_up_proj.weight", new long[] {2L * c.intermediateSize(), h});
                s.put(p + "mlp.down_proj.weight", new long[] {h, c.intermediateSize()});
                s.put(p + "input_layernorm.weight", new long[] {h});
                s.put(p + "post_attention_layernorm.weight", new long[] {h});
                continue;
            }
            s.put(p + "self_attn.q_proj.weight", new long[] {qDim, h});
            if (c.attentionBias()) s.put(p + "self_attn.q_proj.bias", new long[] {qDim});
            s.put(p + "self_attn.k_proj.weight", new long[] {kvDim, h});
            if (c.attentionBias()) s.put(p + "self_attn.k_proj.bias", new long[] {kvDim});
            s.put(p + "self_attn.v_proj.weight", new long[] {kvDim, h});
            if (c.attentionBias()) s.put(p + "self_attn.v_proj.bias", new long[] {kvDim});
            s.put(p + "self_attn.o_proj.weight", new long[] {h, qDim});
            // Llama's attention_bias also covers o_proj; Qwen2's biases stop at q/k/v.
            if (c.attentionBias() && !c.modelType().equals("qwen2")) s.put(p + "self_attn.o_proj.bias", new long[] {h});
            // Qwen3 normalises each head (weights of head_dim), OLMo 2 the whole projection.
            switch (c.layout().qkNorm()) {
                case PER_HEAD -> {
                    s.put(p + "self_attn.q_norm.weight", new long[] {c.headDim()});
                    s.put(p + "self_attn.k_norm.weight", new long[] {c.headDim()});
                }
                case FULL -> {
                    s.put(p + "self_attn.q_norm.weight", new long[] {qDim});
                    s.put(p + "self_attn.k_norm.weight", new long[] {kvDim});
                }
                case NONE -> { }
            }
            s.put(p + "mlp.gate_proj.weight", new long[] {c.intermediateSize(), h});
            if (c.mlpBias()) s.put(p + "mlp.gate_proj.bias", new long[] {c.intermediateSize()});
            s.put(p + "mlp.up_proj.weight", new long[] {c.intermediateSize(), h});
            if (c.mlpBias()) s.put(p + "mlp.up_proj.bias", new long[] {c.intermediateSize()});
            s.put(p + "mlp.down_proj.weight", new long[] {h, c.intermediateSize()});
            if (c.mlpBias()) s.put(p + "mlp.down_proj.bias", new long[] {h});
            if (!c.layout().normsAfter()) s.put(p + "input_layernorm.weight", new long[] {h});
            s.put(p + "post_attention_layernorm.weight", new long[] {h});
            // Gemma: a norm before and after each sublayer, four per block.
            if (c.gemma() != null) s.put(p + "pre_feedforward_layernorm.weight", new long[] {h});
            if (c.layout().normsAfter() || c.gemma() != null) s.put(p + "post_feedforward_layernorm.weight", new long[] {h});
        }
        s.put("model.norm.weight", new long[] {h});
        // A sequence classifier (reward model) has a score head instead of the LM head.
        if (c.isClassifier()) {
            s.put("score.weight", new long[] {c.numLabels(), h});
            if (c.isTokenClassifier()) s.put("score.bias", new long[] {c.numLabels()});
        } else if (!c.tieWordEmbeddings()) {
            s.put("lm_head.weight", new long[] {c.vocabSize(), h});
        }
        return s;
    }

    @Override public ModelConfig config() { return config; }

    @Override public Map<String, Tensor> parameters() { return parameters; }

    @Override public DType dtype() { return dtype; }

    @Override public LoraAdapters lora() { return lora; }

    @Override public void attachLora(LoraAdapters adapters) { lora = adapters; }

    private final GradientCheckpoints checkpoints = new GradientCheckpoints();

    @Override public void setGradientCheckpointing(boolean on) { checkpoints.setEnabled(on); }

    @Override public void backwardCheckpoints() { checkpoints.backward(); }

    /** A projection, plus its LoRA update when an adapter is attached to that module. */
    private Tensor project(String module, Tensor x, Tensor w, Tensor b) {
        Tensor y = Tensors.linear(x, w, b);
        return lora == null ? y : lora.apply(module, x, y);
    }

    @Override
    public Tensor hiddenStates(Tensor inputIds, Tensor positionIds, Tensor attentionMask, KvCache cache) {
        long b = inputIds.size(0), t = inputIds.size(1);
        int past = cache == null ? 0 : cache.length();
        if (positionIds == null) positionIds = Tensors.arange(t, DType.I64).add(Tensors.scalar(past)).view(1, t).expand(b, t);
        Tensor[] cosSin = rope.at(positionIds);                      // 2 x (B, 1, T, headDim)
        Tensor[] localCosSin = localRope == null ? cosSin : localRope.at(positionIds);
        Tensor fullMask = Attention.mask(b, t, past, attentionMask, 0);
        Tensor windowMask = config.slidingWindow() > 0 ? Attention.mask(b, t, past, attentionMask, config.slidingWindow()) : null;

        Tensor h = torch.embedding(embedTokens, inputIds);            // (B, T, hidden)
        if (gemma != null) h = h.mul(embeddingScale(h));
        // Each block in its own scope (its temporaries die with it), or checkpointed when that is on.
        h = cache == null ? checkpoints.run(h, layers.length, (i, x) -> block(i, x, config.slidingAt(i) ? localCosSin : cosSin, fullMask, windowMask, null, b, t, past))
                : GradientCheckpoints.eachInItsScope(h, layers.length, (i, x) -> block(i, x, config.slidingAt(i) ? localCosSin : cosSin, fullMask, windowMask, cache, b, t, past));
        if (cache != null) cache.advance((int) t);
        return norm(h, norm, config.normEps());
    }

    /**
     * sqrt(hidden_size) as HF's Gemma multiplies the embeddings by it: Gemma 2 makes a tensor of the hidden states'
     * dtype from the Python float (so bf16 rounds it: 48 stays 48, sqrt(1152) = 33.94 becomes 34); Gemma 3's scaled
     * embedding keeps it in a float32 buffer and casts that to the weight's dtype (float32 rounding first).
     */
    private Tensor embeddingScale(Tensor h) {
        double scale = Math.sqrt(config.hiddenSize());
        if (gemma.generation() == 3) scale = (float) scale;
        return Tensors.doubles(new double[] {scale}, 1).to(h.scalar_type());
    }

    /** The block's RMSNorm: Llama's, or Gemma's x / rms(x) x (1 + weight), computed in float32 and cast back. */
    private Tensor norm(Tensor x, Tensor weight, double eps) {
        if (gemma == null) return Tensors.rmsNorm(x, weight, eps);
        // HF computes in float32 (x.float(), weight.float()); a float64 model stays in float64 so it can match the
        // float64 reference to 1e-10 (HF would round it through float32).
        torch.ScalarType compute = Tensors.dtype(x) == DType.F64 ? DType.F64.scalarType : DType.F32.scalarType;
        Tensor normalised = torch.rms_norm(x.to(compute), new long[] {x.size(-1)}, new org.bytedeco.pytorch.TensorOptional(), new org.bytedeco.pytorch.DoubleOptional(eps));
        return normalised.mul(weight.to(compute).add(Tensors.scalar(1.0))).to(x.scalar_type());
    }

    /**
     * Decoder block {@code i}: attention then MLP, each with a residual; the norm comes before each sublayer (Llama)
     * or after it, on its output before the residual add (OLMo 2).
     */
    private Tensor block(int i, Tensor h, Tensor[] cosSin, Tensor fullMask, Tensor windowMask, KvCache cache, long b, long t, int past) {
        int heads = config.numAttentionHeads(), kvHeads = config.numKeyValueHeads(), hd = config.headDim();
        double eps = config.normEps();
        Layer l = layers[i];
        boolean normsAfter = config.layout().normsAfter();
        // Attention: RMSNorm, project, (normalise q and k), rotate q and k, attend over past and present, project back.
        Tensor x = normsAfter ? h : norm(h, l.inputNorm(), eps);
        Tensor q, k, vFlat;
        if (l.qkv() != null) {
            Tensor qkv = project(l.prefix() + "self_attn.qkv_proj", x, l.qkv(), null);
            long qDim = (long) heads * hd, kvDim = (long) kvHeads * hd;
            q = qkv.narrow(-1, 0, qDim);
            k = qkv.narrow(-1, qDim, kvDim);
            vFlat = qkv.narrow(-1, qDim + kvDim, kvDim);
        } else {
            q = project(l.prefix() + "self_attn.q_proj", x, l.q(), l.qBias());
            k = project(l.prefix() + "self_attn.k_proj", x, l.k(), l.kBias());
            vFlat = project(l.prefix() + "self_attn.v_proj", x, l.v(), l.vBias());
        }
        if (config.layout().qkNorm() == ModelConfig.QkNorm.FULL) {
            q = Tensors.rmsNorm(q, l.qNorm(), eps);
            k = Tensors.rmsNorm(k, l.kNorm(), eps);
        }
        q = q.reshape(b, t, heads, hd);
        k = k.reshape(b, t, kvHeads, hd);
        if (config.layout().qkNorm() == ModelConfig.QkNorm.PER_HEAD) {
            q = norm(q, l.qNorm(), eps);
            k = norm(k, l.kNorm(), eps);
        }
        q = q.transpose(1, 2);                                                                     // (B, H, T, hd)
        k = k.transpose(1, 2);                                                                     // (B, Hkv, T, hd)
        Tensor v = vFlat.reshape(b, t, kvHeads, hd).transpose(1, 2);                               // (B, Hkv, T, hd)
        if (config.ropeAt(i)) {
            q = Rope.apply(q, cosSin[0], cosSin[1]);
            k = Rope.apply(k, cosSin[0], cosSin[1]);
        }
        if (cache != null) {
            Tensor[] kv = cache.append(i, k, v);                                                   // (B, Hkv, past+T, hd)
            k = kv[0];
            v = kv[1];
        }
        Tensor mask = config.slidingAt(i) ? windowMask : fullMask;
        Tensor a;                                                                                  // (B, H, T, hd)
        if (gemma != null && gemma.attnLogitSoftcapping() > 0)
            a = Tensors.softcappedAttention(q, k, v, mask, Attention.causal(mask, past), 1 / Math.sqrt(gemma.queryPreAttnScalar()), gemma.attnLogitSoftcapping());
        else
            a = Tensors.attention(q, k, v, mask, Attention.causal(mask, past), heads != kvHeads, gemma == null ? null : 1 / Math.sqrt(gemma.queryPreAttnScalar()));
        a = a.transpose(1, 2).reshape(b, t, (long) heads * hd);
        Tensor attended = project(l.prefix() + "self_attn.o_proj", a, l.o(), l.oBias());
        if (gemma != null) {
            // Gemma: post_attention_layernorm on the attention output, then pre_feedforward_layernorm, GeGLU with
            // the tanh GELU, post_feedforward_layernorm on its output.
            h = h.add(norm(attended, l.postNorm(), eps));
            x = norm(h, l.preFeedForwardNorm(), eps);
            Tensor geglu = torch.gelu(project(l.prefix() + "mlp.gate_proj", x, l.gate(), null), "tanh").mul(project(l.prefix() + "mlp.up_proj", x, l.up(), null));
            return h.add(norm(project(l.prefix() + "mlp.down_proj", geglu, l.down(), null), l.feedForwardNorm(), eps));
        }
        h = h.add(normsAfter ? Tensors.rmsNorm(attended, l.postNorm(), eps) : attended);
        // MLP: RMSNorm, SwiGLU (OLMo 2: SwiGLU, RMSNorm).
        x = normsAfter ? h : Tensors.rmsNorm(h, l.postNorm(), eps);
        Tensor gated;
        if (l.gateUp() != null) {
            // Phi-3: the first intermediate_size outputs are the gate, the rest the up projection.
            Tensor gateUp = project(l.prefix() + "mlp.gate_up_proj", x, l.gateUp(), null);
            long inter = config.intermediateSize();
            gated = torch.silu(gateUp.narrow(-1, 0, inter)).mul(gateUp.narrow(-1, inter, inter));
        } else {
            gated = torch.silu(project(l.prefix() + "mlp.gate_proj", x, l.gate(), l.gateBias())).mul(project(l.prefix() + "mlp.up_proj", x, l.up(), l.upBias()));
        }
        Tensor fed = project(l.prefix() + "mlp.down_proj", gated, l.down(), l.downBias());
        h = h.add(normsAfter ? Tensors.rmsNorm(fed, l.feedForwardNorm(), eps) : fed);
        return h;
    }

    /** LM logits, or for a sequence classifier the score head's outputs at every position. */
    @Override
    public Tensor logits(Tensor hidden) {
        Tensor logits = Tensors.linear(hidden, lmHead, headBias);
        // Gemma 2's final_logit_softcapping: cap x tanh(logits / cap), on the LM head only (HF's sequence
        // classifiers score the hidden states without it).
        if (gemma != null && gemma.finalLogitSoftcapping() > 0 && !config.isClassifier()) {
            logits = logits.div(Tensors.scalar(gemma.finalLogitSoftcapping())).tanh().mul(Tensors.scalar(gemma.finalLogitSoftcapping()));
        }
        return logits;
    }

    @Override
    public void close() {
        CausalLM.super.close();
        rope.close();
        if (localRope != null) localRope.close();
    }
}
