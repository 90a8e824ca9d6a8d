package io.tether.model;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * GPT-2: learned positions, pre-norm blocks of LayerNorm, multi-head attention and a GELU MLP, LM head tied to
 * the token embedding. GPT-2's projections are "Conv1D" layers whose weights are stored transposed, [in, out];
 * they are kept as stored (so a save is byte-exact) and used through transposed views.
 */
public final class Gpt2Model implements CausalLM {
    private final ModelConfig config;
    private final DType dtype;
    private final Map<String, Tensor> parameters;
    private final Tensor wte;   // (vocab, hidden)
    private final Tensor wpe;   // (positions, hidden)
    private final Block[] blocks;
    private final Tensor lnFWeight, lnFBias;
    private final Tensor head;      // wte (tied LM head) or, for a classifier, its head weight
    private final Tensor headBias;  // token classifiers' bias; null otherwise
    private LoraAdapters lora;

    /**
     * One block; projection weights as stored, (in, out). They are transposed at use, not here: a view taken
     * before training turns on requires_grad would not carry gradients back to the stored tensor.
     */
    private record Block(String prefix, Tensor ln1Weight, Tensor ln1Bias, Tensor attnWeight, Tensor attnBias, Tensor attnProjWeight,
                         Tensor attnProjBias, Tensor ln2Weight, Tensor ln2Bias, Tensor fcWeight, Tensor fcBias,
                         Tensor projWeight, Tensor projBias) {}

    Gpt2Model(ModelConfig config, DType dtype, Map<String, Tensor> parameters, String prefix) {
        this.config = config;
        this.dtype = dtype;
        this.parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
        wte = parameters.get(prefix + "wte.weight");
        wpe = parameters.get(prefix + "wpe.weight");
        lnFWeight = parameters.get(prefix + "ln_f.weight");
        lnFBias = parameters.get(prefix + "ln_f.bias");
        head = config.isClassifier() ? parameters.get(config.headName() + ".weight") : wte;
        headBias = parameters.get(config.headName() + ".bias");
        blocks = new Block[config.numHiddenLayers()];
        for (int i = 0; i < blocks.length; i++) {
            String p = prefix + "h." + i + ".";
            blocks[i] = new Block(p, parameters.get(p + "ln_1.weight"), parameters.get(p + "ln_1.bias"),
                    parameters.get(p + "attn.c_attn.weight"), parameters.get(p + "attn.c_attn.bias"),
                    parameters.get(p + "attn.c_proj.weight"), parameters.get(p + "attn.c_proj.bias"),
                    parameters.get(p + "ln_2.weight"), parameters.get(p + "ln_2.bias"),
                    parameters.get(p + "mlp.c_fc.weight"), parameters.get(p + "mlp.c_fc.bias"),
                    parameters.get(p + "mlp.c_proj.weight"), parameters.get(p + "mlp.c_proj.bias"));
        }
    }

    /** Checkpoint names and shapes; {@code prefix} is "transformer." (GPT2LMHeadModel files) or "" (GPT2Model). */
    static Map<String, long[]> parameterShapes(ModelConfig c, String prefix) {
        Map<String, long[]> s = new LinkedHashMap<>();
        long h = c.hiddenSize(), inner = c.intermediateSize();
        s.put(prefix + "wte.weight", new long[] {c.vocabSize(), h});
        s.put(prefix + "wpe.weight", new long[] {c.maxPositionEmbeddings(), h});
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = prefix + "h." + i + ".";
            s.put(p + "ln_1.weight", new long[] {h});
            s.put(p + "ln_1.bias", new long[] {h});
            s.put(p + "attn.c_attn.weight", new long[] {h, 3 * h});
            s.put(p + "attn.c_attn.bias", new long[] {3 * h});
            s.put(p + "attn.c_proj.weight", new long[] {h, h});
            s.put(p + "attn.c_proj.bias", new long[] {h});
            s.put(p + "ln_2.weight", new long[] {h});
            s.put(p + "ln_2.bias", new long[] {h});
            s.put(p + "mlp.c_fc.weight", new long[] {h, inner});
            s.put(p + "mlp.c_fc.bias", new long[] {inner});
            s.put(p + "mlp.c_proj.weight", new long[] {inner, h});
            s.put(p + "mlp.c_proj.bias", new long[] {h});
        }
        s.put(prefix + "ln_f.weight", new long[] {h});
        s.put(prefix + "ln_f.bias", new long[] {h});
        if (c.isClassifier()) s.put(c.headName() + ".weight", new long[] {c.numLabels(), h});
        if (c.isTokenClassifier()) s.put(c.headName() + ".bias", new long[] {c.numLabels()});
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

    /** A Conv1D projection (weight stored [in, out]), plus its LoRA update when one is attached. */
    private Tensor project(String module, Tensor x, Tensor w, Tensor b) {
        Tensor y = Tensors.linear(x, w.t(), b);
        return lora == null ? y : lora.apply(module, x, y);
    }

    @Override
    public Tensor hiddenStates(Tensor inputIds, Tensor positionIds, Tensor attentionMask, KvCache cache) {
        long b = inputIds.size(0), t = inputIds.size(1);
        int past = cache == null ? 0 : cache.length();
        if (positionIds == null) positionIds = Tensors.arange(t, DType.I64).add(Tensors.scalar(past)).view(1, t).expand(b, t);
        long maxPos = positionIds.max().item_long();
        if (maxPos >= config.maxPositionEmbeddings())
            throw new ConfigException("position " + maxPos + " exceeds n_positions " + config.maxPositionEmbeddings());
        Tensor mask = Attention.mask(b, t, past, attentionMask, 0);

        Tensor h = torch.embedding(wte, inputIds).add(torch.embedding(wpe, positionIds));   // (B, T, hidden)
        // Each block in its own scope (its temporaries die with it), or checkpointed when that is on.
        h = cache == null ? checkpoints.run(h, blocks.length, (i, x) -> block(i, x, mask, null, b, t, past))
                : GradientCheckpoints.eachInItsScope(h, blocks.length, (i, x) -> block(i, x, mask, cache, b, t, past));
        if (cache != null) cache.advance((int) t);
        return Tensors.layerNorm(h, lnFWeight, lnFBias, config.normEps());
    }

    /** Block {@code i}: attention then MLP, each with a pre-norm and a residual. */
    private Tensor block(int i, Tensor h, Tensor mask, KvCache cache, long b, long t, int past) {
        int heads = config.numAttentionHeads(), hd = config.headDim();
        long hidden = config.hiddenSize();
        Block l = blocks[i];
        Tensor x = Tensors.layerNorm(h, l.ln1Weight(), l.ln1Bias(), config.normEps());
        Tensor qkv = project(l.prefix() + "attn.c_attn", x, l.attnWeight(), l.attnBias());                      // (B, T, 3*hidden)
        Tensor q = qkv.narrow(2, 0, hidden).view(b, t, heads, hd).transpose(1, 2);           // (B, H, T, hd)
        Tensor k = qkv.narrow(2, hidden, hidden).view(b, t, heads, hd).transpose(1, 2);
        Tensor v = qkv.narrow(2, 2 * hidden, hidden).view(b, t, heads, hd).transpose(1, 2);
        if (cache != null) {
            Tensor[] kv = cache.append(i, k, v);
            k = kv[0];
            v = kv[1];
        }
        Tensor a = Tensors.attention(q, k, v, mask, Attention.causal(mask, past), false, attentionScale(i));
        a = a.transpose(1, 2).reshape(b, t, hidden);
        h = h.add(project(l.prefix() + "attn.c_proj", a, l.attnProjWeight(), l.attnProjBias()));
        x = Tensors.layerNorm(h, l.ln2Weight(), l.ln2Bias(), config.normEps());
        Tensor m = activation(project(l.prefix() + "mlp.c_fc", x, l.fcWeight(), l.fcBias()));
        h = h.add(project(l.prefix() + "mlp.c_proj", m, l.projWeight(), l.projBias()));
        return h;
    }

    /** HF's GPT2Attention: 1/sqrt(head_dim) if scale_attn_weights, divided by (layer+1) if scale_attn_by_inverse_layer_idx. */
    private Double attentionScale(int layer) {
        double scale = config.scaleAttnWeights() ? 1.0 / Math.sqrt(config.headDim()) : 1.0;
        if (config.scaleAttnByInverseLayerIdx()) scale /= (layer + 1);
        return scale;
    }

    private Tensor activation(Tensor x) {
        return switch (config.hiddenAct()) {
            case "gelu_new", "gelu_pytorch_tanh" -> torch.gelu(x, "tanh");
            case "gelu" -> torch.gelu(x);
            case "relu" -> torch.relu(x);
            default -> throw new IllegalStateException("activation " + config.hiddenAct());
        };
    }

    @Override
    public Tensor logits(Tensor hidden) {
        return Tensors.linear(hidden, head, headBias);
    }
}
