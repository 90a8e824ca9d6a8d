package io.tether.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;

/**
 * A Hugging Face {@code config.json}, read into the fields Tether's decoders use. Field names are HF's keys in
 * camelCase ({@code num_key_value_heads} is {@code numKeyValueHeads}) so one can grep from the file to the code.
 * GPT-2's own spellings ({@code n_embd}, {@code n_layer}, ...) are mapped onto the same fields.
 *
 * @param architecture            {@code architectures[0]}, e.g. LlamaForCausalLM
 * @param headDim                 {@code head_dim}, else hidden_size / num_attention_heads
 * @param normEps                 {@code rms_norm_eps} (Llama family) or {@code layer_norm_epsilon} (GPT-2)
 * @param slidingWindow           Mistral's {@code sliding_window}; 0 means full attention
 * @param slidingWindowFromLayer  first layer that uses the window (Qwen2's {@code max_window_layers}; 0 otherwise)
 * @param attentionBias           q/k/v projections carry biases (Qwen2 always; Llama's {@code attention_bias})
 * @param numLabels               0 for a causal LM; for *ForSequenceClassification (reward models) {@code num_labels},
 *                                the rows of the {@code score.weight} head read at the last real token
 * @param json                    the file as read, written back unchanged (but for torch_dtype) on save
 * @param layout                  where a Llama-family block departs from Llama's (Qwen3's and OLMo 2's q/k norms,
 *                                OLMo 2's norms after each sublayer, SmolLM3's layers without RoPE)
 */
public record ModelConfig(
        Family family,
        String architecture,
        String modelType,
        int vocabSize,
        int hiddenSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        int intermediateSize,
        int maxPositionEmbeddings,
        double normEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        boolean attentionBias,
        boolean mlpBias,
        int slidingWindow,
        int slidingWindowFromLayer,
        String hiddenAct,
        boolean tieWordEmbeddings,
        double initializerRange,
        boolean scaleAttnWeights,
        boolean scaleAttnByInverseLayerIdx,
        Long bosTokenId,
        List<Long> eosTokenIds,
        Long padTokenId,
        int numLabels,
        ObjectNode json,
        BlockLayout layout) {

    /** The decoder implementation a config maps to. */
    public enum Family { LLAMA, GPT2 }

    /**
     * {@code rope_scaling}. {@code type} is "default", "linear", "llama3" or "longrope"; the llama3 fields follow
     * Meta's frequency-band rescaling. longrope (Phi-3) divides each frequency by its {@code shortFactor} entry, or
     * by its {@code longFactor} entry in a forward whose positions reach past {@code originalMaxPositionEmbeddings},
     * and scales cos and sin by {@code attentionFactor}.
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositionEmbeddings, List<Double> shortFactor, List<Double> longFactor,
                              double attentionFactor) {
        public static final RopeScaling NONE = new RopeScaling("default", 1, 0, 0, 0, null, null, 1);

        RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings) {
            this(type, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings, null, null, 1);
        }
    }

    /** Where q and k are RMS-normalised before RoPE: not at all, per head (Qwen3), or over the full projection (OLMo 2). */
    public enum QkNorm { NONE, PER_HEAD, FULL }

    /**
     * A decoder block's departures from Llama's.
     *
     * @param qkNorm         q_norm / k_norm weights of head_dim (PER_HEAD) or of the projection's width (FULL)
     * @param normsAfter     OLMo 2: no pre-norms; post_attention_layernorm normalises the attention output and
     *                       post_feedforward_layernorm the MLP output, each before its residual add
     * @param ropeLayers     per layer, whether it rotates q and k (SmolLM3's no_rope_layers); null means every layer
     * @param slidingLayers  per layer, whether it uses the sliding window; null means Qwen2's rule
     *                       (every layer from {@code slidingWindowFromLayer} on)
     * @param fused          Phi-3: one {@code qkv_proj} (q rows, then k, then v) and one {@code gate_up_proj} (gate
     *                       rows, then up) instead of separate projections
     * @param rotaryDim      the leading dimensions of each head that RoPE rotates (Phi-3's
     *                       {@code partial_rotary_factor} x head_dim); the rest pass through; 0 means all of head_dim
     */
    public record BlockLayout(QkNorm qkNorm, boolean normsAfter, List<Boolean> ropeLayers, List<Boolean> slidingLayers,
                              boolean fused, int rotaryDim, Gemma gemma) {
        public static final BlockLayout LLAMA = new BlockLayout(QkNorm.NONE, false, null, null, false, 0, null);

        public BlockLayout(QkNorm qkNorm, boolean normsAfter, List<Boolean> ropeLayers, List<Boolean> slidingLayers, boolean fused, int rotaryDim) {
            this(qkNorm, normsAfter, ropeLayers, slidingLayers, fused, rotaryDim, null);
        }
    }

    /**
     * Gemma 2 and Gemma 3's departures, beyond q/k norms (Gemma 3, per head) and sliding layers: every RMSNorm
     * scales by (1 + weight) in float32, the embeddings are multiplied by sqrt(hidden_size) in the compute dtype,
     * each block normalises before and after both sublayers (input_layernorm, post_attention_layernorm,
     * pre_feedforward_layernorm, post_feedforward_layernorm), and the MLP is GeGLU with the tanh GELU.
     *
     * @param generation             2 or 3
     * @param queryPreAttnScalar     attention scores are scaled by {@code query_pre_attn_scalar ** -0.5}, not head_dim's
     * @param attnLogitSoftcapping   scores become cap x tanh(scores / cap) before masking; 0 means off
     * @param finalLogitSoftcapping  LM logits become cap x tanh(logits / cap); 0 means off
     * @param ropeLocalBaseFreq      Gemma 3: the sliding layers' RoPE base (without rope_scaling, which only the global
     *                               layers get); 0 for Gemma 2, whose layers all share rope_theta
     */
    public record Gemma(int generation, double queryPreAttnScalar, double attnLogitSoftcapping, double finalLogitSoftcapping,
                        double ropeLocalBaseFreq) {}

    static final ObjectMapper JSON = new ObjectMapper();

    public static ModelConfig read(Path dir) {
        return readFile(dir.resolve("config.json"));
    }

    /** Reads a config file by its own name (e.g. a config for a model to initialise from scratch). */
    public static ModelConfig readFile(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file, null, file.getFileName() + " not found" + (file.getFileName().toString().equals("config.json") ? ": a Hugging Face model directory needs one" : ""));
        } catch (IOException e) {
            throw new CheckpointException(file, null, "not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new CheckpointException(file, null, "config.json must hold a JSON object");
        return parse((ObjectNode) root, file);
    }

    /** Parses a config object; {@code file} only names the source in errors. */
    public static ModelConfig parse(ObjectNode json, Path file) {
        Keys k = new Keys(json, file);
        String arch = null;
        JsonNode archs = json.get("architectures");
        if (archs != null && archs.isArray() && archs.size() > 0) arch = archs.get(0).asText();
        String modelType = k.string("model_type", null);
        if (arch == null) {
            if (modelType == null) throw k.error("architectures", "missing, and no model_type to fall back on");
            arch = switch (modelType) {
                case "llama" -> "LlamaForCausalLM";
                case "mistral" -> "MistralForCausalLM";
                case "qwen2" -> "Qwen2ForCausalLM";
                case "qwen3" -> "Qwen3ForCausalLM";
                case "olmo2" -> "Olmo2ForCausalLM";
                case "smollm3" -> "SmolLM3ForCausalLM";
                case "phi3" -> "Phi3ForCausalLM";
                case "gemma2" -> "Gemma2ForCausalLM";
                case "gemma3_text" -> "Gemma3ForCausalLM";
                case "gpt2" -> "GPT2LMHeadModel";
                default -> throw k.error("model_type", "'" + modelType + "' is not supported (supported: llama, mistral, qwen2, qwen3, olmo2, smollm3, phi3, gemma2, gemma3_text, gpt2)");
            };
        }
        if (arch.endsWith("ForSequenceClassification") || arch.endsWith("ForTokenClassification")) {
            String base = arch.replace("ForSequenceClassification", "").replace("ForTokenClassification", "");
            ModelConfig lm = switch (base) {
                case "Llama", "Mistral", "Qwen2", "Qwen3", "SmolLM3", "Phi3" -> parseLlamaFamily(k, base + "ForCausalLM", json);
                case "Gemma2" -> parseGemma(k, "Gemma2ForCausalLM", json);
                // Gemma3TextForSequenceClassification: the text model under model.*, a score head (transformers has no
                // text-only Gemma 3 token classifier; Gemma3ForSequenceClassification is the image-text model's).
                case "Gemma3Text" -> {
                    if (arch.endsWith("ForTokenClassification"))
                        throw k.error("architectures", "'" + arch + "' is not supported: transformers has no text-only Gemma 3 token classifier");
                    yield parseGemma(k, "Gemma3ForCausalLM", json);
                }
                case "GPT2" -> parseGpt2(k, "GPT2Model", json);
                // transformers has no Olmo2ForSequenceClassification, so an OLMo 2 classifier is refused like any other.
                default -> throw k.error("architectures", "'" + arch + "' is not supported (supported: Llama, Qwen2, Qwen3, Mistral, SmolLM3, Phi3, Gemma2 and GPT2 with ForSequenceClassification or ForTokenClassification, and Gemma3TextForSequenceClassification)");
            };
            int labels = k.positive("num_labels", 2);
            if (!json.has("num_labels") && json.has("id2label") && json.get("id2label").isObject()) labels = json.get("id2label").size();
            return lm.withHead(arch, labels);
        }
        return switch (arch) {
            case "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Olmo2ForCausalLM",
                 "SmolLM3ForCausalLM", "Phi3ForCausalLM" -> parseLlamaFamily(k, arch, json);
            case "Gemma2ForCausalLM", "Gemma3ForCausalLM" -> parseGemma(k, arch, json);
            case "GPT2LMHeadModel", "GPT2Model" -> parseGpt2(k, arch, json);
            // The image-text model stores its language model under other names (and a vision tower beside it).
            case "Gemma3ForConditionalGeneration" -> throw k.error("architectures", "'" + arch + "' (Gemma 3 with its vision tower) is not supported: "
                    + "load a text-only Gemma3ForCausalLM checkpoint (supported: " + String.join(", ", CAUSAL_LM_ARCHITECTURES) + ")");
            default -> throw k.error("architectures", "'" + arch + "' is not supported (supported: " + String.join(", ", CAUSAL_LM_ARCHITECTURES) + ")");
        };
    }

    /** The causal-LM architectures Tether loads, as config.json's {@code architectures} names them. */
    public static final List<String> CAUSAL_LM_ARCHITECTURES = List.of("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
            "MistralForCausalLM", "Olmo2ForCausalLM", "SmolLM3ForCausalLM", "Phi3ForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM", "GPT2LMHeadModel", "GPT2Model");

    private static ModelConfig parseLlamaFamily(Keys k, String arch, ObjectNode json) {
        boolean qwen2 = arch.equals("Qwen2ForCausalLM");
        boolean qwen3 = arch.equals("Qwen3ForCausalLM");
        boolean olmo2 = arch.equals("Olmo2ForCausalLM");
        boolean smollm3 = arch.equals("SmolLM3ForCausalLM");
        boolean phi3 = arch.equals("Phi3ForCausalLM");
        boolean mistral = arch.equals("MistralForCausalLM");
        String defaultType = qwen2 ? "qwen2" : qwen3 ? "qwen3" : olmo2 ? "olmo2" : smollm3 ? "smollm3" : phi3 ? "phi3" : mistral ? "mistral" : "llama";
        int hidden = k.positive("hidden_size", null);
        int heads = k.positive("num_attention_heads", null);
        int kvHeads = k.positive("num_key_value_heads", heads);
        if (heads % kvHeads != 0)
            throw k.error("num_key_value_heads", kvHeads + " does not divide num_attention_heads " + heads);
        int headDim;
        if (k.has("head_dim")) {
            headDim = k.positive("head_dim", null);
        } else if (qwen3) {
            headDim = 128;   // Qwen3Config's default, not hidden_size / num_attention_heads
        } else {
            if (hidden % heads != 0) throw k.error("num_attention_heads", heads + " does not divide hidden_size " + hidden);
            headDim = hidden / heads;
        }
        if (headDim % 2 != 0) throw k.error("head_dim", "rotary embeddings need an even head dimension, got " + headDim);
        int rotaryDim = headDim;
        // transformers v5 keeps partial_rotary_factor inside rope_parameters (Phi3Config.convert_rope_params_to_dict).
        Keys partial = v5Rope(k) && ropeDict(k, FULL_ATTENTION) != null && ropeDict(k, FULL_ATTENTION).has("partial_rotary_factor") ? ropeDict(k, FULL_ATTENTION) : k;
        if (phi3 && partial.has("partial_rotary_factor")) {
            double f = partial.positiveDouble("partial_rotary_factor", null);
            rotaryDim = (int) (headDim * f);   // HF: int(head_dim * partial_rotary_factor)
            if (f > 1 || rotaryDim < 2 || rotaryDim % 2 != 0)
                throw partial.error("partial_rotary_factor", f + " x head_dim " + headDim + " must give an even rotary dimension of at least 2, got " + rotaryDim);
        }
        String act = k.string("hidden_act", "silu");
        if (!act.equals("silu")) throw k.error("hidden_act", "'" + act + "' is not supported for " + arch + " (expected silu)");
        int layers = k.positive("num_hidden_layers", null);
        int window = 0, windowFrom = 0;
        List<Boolean> ropeLayers = smollm3 ? smolLm3RopeLayers(k, layers) : null;
        List<Boolean> slidingLayers = null;
        if (mistral) {
            // MistralConfig defaults sliding_window to 4096 when the key is absent; an explicit null disables it.
            window = k.has("sliding_window") ? k.optionalPositive("sliding_window") : 4096;
        } else if ((qwen2 || qwen3) && k.bool("use_sliding_window", false)) {
            window = k.has("sliding_window") ? k.optionalPositive("sliding_window") : 4096;
            windowFrom = k.nonNegative("max_window_layers", 28);
        } else if (phi3) {
            // Phi3Config: sliding_window defaults to None; when set, every layer slides.
            window = k.optionalPositive("sliding_window");
        } else if (smollm3 && k.bool("use_sliding_window", false)) {
            // SmolLM3Config: with use_sliding_window and a window, the layers without RoPE slide (no default window).
            window = k.optionalPositive("sliding_window");
            slidingLayers = ropeLayers.stream().map(rope -> !rope).toList();
        }
        if (qwen3 && k.has("layer_types") && window > 0) slidingLayers = layerTypes(k, layers);
        if (smollm3 && k.has("layer_types") && window > 0) slidingLayers = layerTypes(k, layers);
        QkNorm qkNorm = qwen3 ? QkNorm.PER_HEAD : olmo2 ? QkNorm.FULL : QkNorm.NONE;
        BlockLayout layout = qkNorm == QkNorm.NONE && ropeLayers == null && slidingLayers == null && !phi3 ? BlockLayout.LLAMA
                : new BlockLayout(qkNorm, olmo2, ropeLayers, slidingLayers, phi3, rotaryDim == headDim ? 0 : rotaryDim);
        int maxPositions = k.positive("max_position_embeddings", qwen3 || smollm3 ? 32768 : phi3 ? 4096 : 2048);
        // Each config class's own defaults: OLMo 2's and Phi-3's rms_norm_eps 1e-5, SmolLM3's rope_theta 2e6 and tied head.
        RopeSettings rope = rope(k, smollm3 ? 2_000_000.0 : 10000.0, rotaryDim, maxPositions, phi3 ? 4096 : null, FULL_ATTENTION);
        // These families have one rotary embedding for all layers: a per-layer-type dict must agree with itself.
        if (v5Rope(k) && ropeByLayerType(k) && ropeDict(k, SLIDING_ATTENTION) != null
                && !rope(k, smollm3 ? 2_000_000.0 : 10000.0, rotaryDim, maxPositions, phi3 ? 4096 : null, SLIDING_ATTENTION).equals(rope))
            throw k.error("rope_parameters.sliding_attention", "differs from full_attention; " + arch + " uses one RoPE for every layer");
        return new ModelConfig(Family.LLAMA, arch, k.string("model_type", defaultType),
                k.positive("vocab_size", null), hidden, layers, heads, kvHeads, headDim,
                k.positive("intermediate_size", null), maxPositions,
                k.positiveDouble("rms_norm_eps", olmo2 || phi3 ? 1e-5 : 1e-6), rope.theta(),
                rope.scaling(),
                qwen2 || k.bool("attention_bias", false), k.bool("mlp_bias", false), window, windowFrom, act,
                k.bool("tie_word_embeddings", smollm3), k.positiveDouble("initializer_range", 0.02), true, false,
                k.optionalId("bos_token_id"), k.ids("eos_token_id"), k.optionalId("pad_token_id"), 0, json, layout);
    }

    /**
     * Gemma2Config and Gemma3TextConfig (transformers v4.5x): head_dim, query_pre_attn_scalar 256, sliding_window 4096,
     * hidden_activation gelu_pytorch_tanh, rms_norm_eps 1e-6, tied embeddings; Gemma 2: rope_theta 1e4, 8192
     * positions, soft-capping 50 (attention) and 30 (logits), sliding on even layers; Gemma 3: rope_theta 1e6 for
     * the global layers and rope_local_base_freq 1e4 for the sliding ones, 131072 positions, no soft-capping,
     * every sliding_window_pattern-th layer (default 6) global. layer_types, when given, decides per layer.
     */
    private static ModelConfig parseGemma(Keys k, String arch, ObjectNode json) {
        boolean gemma3 = arch.equals("Gemma3ForCausalLM");
        int hidden = k.positive("hidden_size", null);
        int heads = k.positive("num_attention_heads", null);
        int kvHeads = k.positive("num_key_value_heads", heads);
        if (heads % kvHeads != 0)
            throw k.error("num_key_value_heads", kvHeads + " does not divide num_attention_heads " + heads);
        int headDim = k.positive("head_dim", 256);
        if (headDim % 2 != 0) throw k.error("head_dim", "rotary embeddings need an even head dimension, got " + headDim);
        // Gemma's configs name the activation hidden_activation; Gemma 2's files carry a hidden_act beside it
        // that its modeling code never reads.
        String act = k.string("hidden_activation", "gelu_pytorch_tanh");
        if (!act.equals("gelu_pytorch_tanh"))
            throw k.error("hidden_activation", "'" + act + "' is not supported for " + arch + " (expected gelu_pytorch_tanh)");
        int layers = k.positive("num_hidden_layers", null);
        int window = k.positive("sliding_window", 4096);
        List<Boolean> sliding;
        if (k.has("layer_types") && !k.json.get("layer_types").isNull()) {
            sliding = layerTypes(k, layers);
        } else {
            // Gemma 2 alternates, sliding first; Gemma 3 slides except on every sliding_window_pattern-th layer.
            int pattern = gemma3 ? k.positive("sliding_window_pattern", 6) : 2;
            List<Boolean> s = new ArrayList<>();
            for (int i = 0; i < layers; i++) s.add((i + 1) % pattern != 0);
            sliding = List.copyOf(s);
        }
        double attnCap = k.has("attn_logit_softcapping") && !k.json.get("attn_logit_softcapping").isNull()
                ? k.positiveDouble("attn_logit_softcapping", null) : gemma3 || k.has("attn_logit_softcapping") ? 0 : 50.0;
        double finalCap = k.has("final_logit_softcapping") && !k.json.get("final_logit_softcapping").isNull()
                ? k.positiveDouble("final_logit_softcapping", null) : gemma3 || k.has("final_logit_softcapping") ? 0 : 30.0;
        int maxPositions = k.positive("max_position_embeddings", gemma3 ? 131072 : 8192);
        if (gemma3 && v5Rope(k) && !ropeByLayerType(k))
            throw k.error("rope_parameters", "Gemma 3 keys it by layer type (full_attention, sliding_attention), got " + k.json.get("rope_parameters"));
        RopeSettings rope = rope(k, gemma3 ? 1_000_000.0 : 10000.0, headDim, maxPositions, null, FULL_ATTENTION);
        Gemma gemma = new Gemma(gemma3 ? 3 : 2, k.positiveDouble("query_pre_attn_scalar", 256.0), attnCap, finalCap,
                gemma3 ? localRopeBase(k, headDim, maxPositions) : 0);
        BlockLayout layout = new BlockLayout(gemma3 ? QkNorm.PER_HEAD : QkNorm.NONE, false, null, sliding, false, 0, gemma);
        List<Long> eos = k.ids("eos_token_id");
        return new ModelConfig(Family.LLAMA, arch, k.string("model_type", gemma3 ? "gemma3_text" : "gemma2"),
                k.positive("vocab_size", null), hidden, layers, heads, kvHeads, headDim,
                k.positive("intermediate_size", null), maxPositions,
                k.positiveDouble("rms_norm_eps", 1e-6), rope.theta(), rope.scaling(),
                k.bool("attention_bias", false), false, window, 0, act,
                k.bool("tie_word_embeddings", true), k.positiveDouble("initializer_range", 0.02), true, false,
                // Gemma's config classes default to bos 2, eos 1, pad 0.
                k.has("bos_token_id") ? k.optionalId("bos_token_id") : Long.valueOf(2),
                k.has("eos_token_id") ? eos : List.of(1L),
                k.has("pad_token_id") ? k.optionalId("pad_token_id") : Long.valueOf(0), 0, json, layout);
    }

    /**
     * SmolLM3's {@code no_rope_layers}: one entry per layer (the list may be longer), 1 where the layer uses RoPE and
     * 0 where it does not; absent, every {@code no_rope_layer_interval}-th layer (default 4: layers 3, 7, ...) has none.
     */
    private static List<Boolean> smolLm3RopeLayers(Keys k, int layers) {
        List<Boolean> rope = new ArrayList<>();
        JsonNode n = k.json.get("no_rope_layers");
        if (n == null || n.isNull()) {
            int interval = k.positive("no_rope_layer_interval", 4);
            for (int i = 0; i < layers; i++) rope.add((i + 1) % interval != 0);
            return List.copyOf(rope);
        }
        if (!n.isArray() || n.size() < layers)
            throw k.error("no_rope_layers", "expected a list of 0/1 with an entry for each of the " + layers + " layers, got " + n);
        for (int i = 0; i < layers; i++) {
            JsonNode e = n.get(i);
            if (!e.isIntegralNumber() || (e.asInt() != 0 && e.asInt() != 1))
                throw k.error("no_rope_layers", "entry " + i + " must be 1 (RoPE) or 0 (no RoPE), got " + e);
            rope.add(e.asInt() == 1);
        }
        return List.copyOf(rope);
    }

    /** {@code layer_types}: "full_attention" or "sliding_attention" for each layer. */
    private static List<Boolean> layerTypes(Keys k, int layers) {
        JsonNode n = k.json.get("layer_types");
        if (n == null || n.isNull()) return null;
        if (!n.isArray() || n.size() != layers)
            throw k.error("layer_types", "expected a list of " + layers + " entries (full_attention or sliding_attention), got " + n);
        List<Boolean> sliding = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            String t = n.get(i).asText();
            if (!t.equals("full_attention") && !t.equals("sliding_attention"))
                throw k.error("layer_types", "entry " + i + " must be full_attention or sliding_attention, got " + n.get(i));
            sliding.add(t.equals("sliding_attention"));
        }
        return List.copyOf(sliding);
    }

    private static ModelConfig parseGpt2(Keys k, String arch, ObjectNode json) {
        int hidden = k.positive("n_embd", null);
        int heads = k.positive("n_head", null);
        if (hidden % heads != 0) throw k.error("n_head", heads + " does not divide n_embd " + hidden);
        int inner = k.has("n_inner") && !json.get("n_inner").isNull() ? k.positive("n_inner", null) : 4 * hidden;
        String act = k.string("activation_function", "gelu_new");
        switch (act) {
            case "gelu_new", "gelu_pytorch_tanh", "gelu", "relu" -> { }
            default -> throw k.error("activation_function", "'" + act + "' is not supported (expected gelu_new, gelu_pytorch_tanh, gelu or relu)");
        }
        return new ModelConfig(Family.GPT2, arch, "gpt2", k.positive("vocab_size", null), hidden,
                k.positive("n_layer", null), heads, heads, hidden / heads, inner, k.positive("n_positions", 1024),
                k.positiveDouble("layer_norm_epsilon", 1e-5), 0, RopeScaling.NONE, true, true, 0, 0, act,
                k.bool("tie_word_embeddings", true), k.positiveDouble("initializer_range", 0.02),
                k.bool("scale_attn_weights", true), k.bool("scale_attn_by_inverse_layer_idx", false),
                k.optionalId("bos_token_id"), k.ids("eos_token_id"), k.optionalId("pad_token_id"), 0, json, BlockLayout.LLAMA);
    }

    /** The same backbone with a sequence-classification head of {@code labels} rows (a reward model when 1). */
    public ModelConfig withHead(String architecture, int labels) {
        return new ModelConfig(family, architecture, modelType, vocabSize, hiddenSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, intermediateSize, maxPositionEmbeddings, normEps, ropeTheta, ropeScaling, attentionBias,
                mlpBias, slidingWindow, slidingWindowFromLayer, hiddenAct, tieWordEmbeddings, initializerRange, scaleAttnWeights,
                scaleAttnByInverseLayerIdx, bosTokenId, eosTokenIds, padTokenId, labels, json, layout);
    }

    /** A reward-model config (HF's *ForSequenceClassification with num_labels 1) on this causal LM's backbone. */
    public ModelConfig asRewardModel() {
        return asClassifier("ForSequenceClassification", 1);
    }

    /** A process-reward-model config (HF's *ForTokenClassification with 2 labels: bad or good step). */
    public ModelConfig asProcessRewardModel() {
        return asClassifier("ForTokenClassification", 2);
    }

    private ModelConfig asClassifier(String suffix, int labels) {
        if (architecture.equals("Olmo2ForCausalLM"))
            throw new ConfigException("transformers has no Olmo2" + suffix + ": an OLMo 2 backbone cannot carry a classification head that HF loads");
        // Gemma 3's text-only classifier is Gemma3TextForSequenceClassification (Gemma3ForSequenceClassification wraps
        // the image-text model); transformers has no text-only Gemma 3 token classifier.
        if (architecture.equals("Gemma3ForCausalLM") && suffix.equals("ForTokenClassification"))
            throw new ConfigException("transformers has no Gemma3TextForTokenClassification: a Gemma 3 text backbone cannot carry a token-classification head that HF loads");
        String arch = switch (family) {
            case LLAMA -> architecture.equals("Gemma3ForCausalLM") ? "Gemma3Text" + suffix : architecture.replace("ForCausalLM", suffix);
            case GPT2 -> "GPT2" + suffix;
        };
        ObjectNode j = json.deepCopy();
        j.putArray("architectures").add(arch);
        j.put("num_labels", labels);
        j.remove("id2label");
        j.remove("label2id");
        return new ModelConfig(family, arch, modelType, vocabSize, hiddenSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, intermediateSize, maxPositionEmbeddings, normEps, ropeTheta, ropeScaling, attentionBias,
                mlpBias, slidingWindow, slidingWindowFromLayer, hiddenAct, tieWordEmbeddings, initializerRange, scaleAttnWeights,
                scaleAttnByInverseLayerIdx, bosTokenId, eosTokenIds, padTokenId, labels, j, layout);
    }

    public boolean isClassifier() { return numLabels > 0; }

    /** A per-token classifier (process reward model) rather than a per-sequence one. */
    public boolean isTokenClassifier() { return isClassifier() && architecture.endsWith("ForTokenClassification"); }

    /** The classification head's parameter name prefix: HF calls it "score", GPT-2's token classifier "classifier". */
    public String headName() { return family == Family.GPT2 && isTokenClassifier() ? "classifier" : "score"; }

    private static final String FULL_ATTENTION = "full_attention", SLIDING_ATTENTION = "sliding_attention";

    /** One set of layers' RoPE: base and scaling. */
    private record RopeSettings(double theta, RopeScaling scaling) {}

    /**
     * Whether config.json uses transformers v5's {@code rope_parameters} (rope_theta, rope_type and the scaling
     * fields in one dict, or one dict per layer type) rather than v4's top-level rope_theta and rope_scaling. As in
     * v5's convert_rope_params_to_dict, a non-empty rope_scaling beside it still wins.
     */
    private static boolean v5Rope(Keys k) {
        JsonNode rp = k.json.get("rope_parameters"), rs = k.json.get("rope_scaling");
        if (rp == null || rp.isNull()) return false;
        if (rs != null && !rs.isNull() && !(rs.isObject() && rs.isEmpty())) return false;
        if (!rp.isObject()) throw k.error("rope_parameters", "must be an object or null");
        return true;
    }

    /** v5's test (standardize_rope_params): keyed by layer type when every key is a layer type. */
    private static boolean ropeByLayerType(Keys k) {
        JsonNode rp = k.json.get("rope_parameters");
        if (rp.isEmpty()) return false;
        for (Iterator<String> it = rp.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!f.equals(FULL_ATTENTION) && !f.equals(SLIDING_ATTENTION)) return false;
        }
        return true;
    }

    /** The v5 dict that holds {@code layerType}'s RoPE: the flat dict, or its entry for that type (null when absent). */
    private static Keys ropeDict(Keys k, String layerType) {
        ObjectNode rp = (ObjectNode) k.json.get("rope_parameters");
        if (!ropeByLayerType(k)) return new Keys(rp, k.file, "rope_parameters.");
        JsonNode e = rp.get(layerType);
        if (e == null || e.isNull()) return null;
        if (!e.isObject()) throw k.error("rope_parameters." + layerType, "must be an object or null");
        return new Keys((ObjectNode) e, k.file, "rope_parameters." + layerType + ".");
    }

    /**
     * The RoPE of {@code layerType}'s layers, from v4's rope_theta/rope_scaling or v5's rope_parameters. v5's
     * priority for the base: the dict's rope_theta, then a top-level rope_theta, then the config class's default.
     */
    private static RopeSettings rope(Keys k, double defaultTheta, int rotaryDim, int maxPositions, Integer defaultOriginalMax, String layerType) {
        if (!v5Rope(k)) {
            JsonNode rs = k.json.get("rope_scaling");
            if (rs != null && !rs.isNull() && !rs.isObject()) throw k.error("rope_scaling", "must be an object or null");
            Keys s = rs == null || rs.isNull() ? null : new Keys((ObjectNode) rs, k.file, "rope_scaling.");
            return new RopeSettings(k.positiveDouble("rope_theta", defaultTheta), ropeScaling(k, s, false, rotaryDim, maxPositions, defaultOriginalMax));
        }
        Keys d = ropeDict(k, layerType);
        if (d == null) return new RopeSettings(k.positiveDouble("rope_theta", defaultTheta), RopeScaling.NONE);
        double theta = d.has("rope_theta") ? d.positiveDouble("rope_theta", null) : k.positiveDouble("rope_theta", defaultTheta);
        return new RopeSettings(theta, ropeScaling(k, d, true, rotaryDim, maxPositions, defaultOriginalMax));
    }

    /**
     * Gemma 3's sliding layers' RoPE base: v4's rope_local_base_freq, or v5's rope_parameters.sliding_attention
     * (Gemma3TextConfig.convert_rope_params_to_dict: its rope_theta, else rope_local_base_freq, else 1e4). Those
     * layers take no scaling.
     */
    private static double localRopeBase(Keys k, int headDim, int maxPositions) {
        double dflt = k.positiveDouble("rope_local_base_freq", 10000.0);
        if (!v5Rope(k)) return dflt;
        Keys d = ropeDict(k, SLIDING_ATTENTION);
        if (d == null) return dflt;
        RopeScaling s = ropeScaling(k, d, true, headDim, maxPositions, null);
        if (!s.type().equals("default")) throw d.error("rope_type", "'" + s.type() + "' is not supported on Gemma 3's sliding layers (expected default)");
        return d.has("rope_theta") ? d.positiveDouble("rope_theta", null) : dflt;
    }

    /**
     * @param s                       the scaling dict (v4's rope_scaling, v5's rope_parameters or its per-layer-type
     *                                entry), or null for none
     * @param v5                      transformers v5's rules for what the dict leaves out (longrope, llama3)
     * @param rotaryDim               the dimensions RoPE rotates (longrope's factor lists hold half as many numbers)
     * @param defaultOriginalMax      the config class's {@code original_max_position_embeddings} default (Phi3Config:
     *                                4096), or null where the class has none
     */
    private static RopeScaling ropeScaling(Keys k, Keys s, boolean v5, int rotaryDim, int maxPositions, Integer defaultOriginalMax) {
        if (s == null) return RopeScaling.NONE;
        JsonNode typeNode = s.has("rope_type") ? s.json.get("rope_type") : s.json.get("type");
        String type = typeNode == null || typeNode.isNull() ? "default" : typeNode.asText();
        // Phi3Config._rope_scaling_adjustment (transformers v4.44 on): the first Phi-3 long-context checkpoints wrote
        // "su" (and some "yarn") under rope_scaling's "type" for what is now longrope, and transformers renames them.
        if (!v5 && !s.has("rope_type") && (type.equals("su") || type.equals("yarn")) && "phi3".equals(k.json.path("model_type").asText())) type = "longrope";
        // A top-level original_max_position_embeddings (Phi-3 always has one) wins over the dict's in v5's
        // standardize_rope_params; v4's longrope read the dict's first.
        Integer topOriginal = k.has("original_max_position_embeddings") ? Integer.valueOf(k.positive("original_max_position_embeddings", null)) : defaultOriginalMax;
        return switch (type) {
            case "default" -> RopeScaling.NONE;
            case "linear" -> new RopeScaling("linear", s.positiveDouble("factor", null), 0, 0, 0);
            case "llama3" -> {
                double low = s.positiveDouble("low_freq_factor", null), high = s.positiveDouble("high_freq_factor", null);
                if (high <= low) throw s.error("high_freq_factor", "must exceed low_freq_factor");
                int original = !v5 ? s.positive("original_max_position_embeddings", null)
                        : k.has("original_max_position_embeddings") ? topOriginal : s.positive("original_max_position_embeddings", maxPositions);
                yield new RopeScaling("llama3", s.positiveDouble("factor", null), low, high, original);
            }
            case "longrope" -> {
                int original;
                double factor;
                if (v5) {
                    // v5's _compute_longrope_parameters: the dict's factor, else max_position_embeddings / original.
                    original = topOriginal != null ? topOriginal : s.positive("original_max_position_embeddings", maxPositions);
                    factor = s.has("factor") && !s.json.get("factor").isNull() ? s.positiveDouble("factor", null) : (double) maxPositions / original;
                } else {
                    // v4's: the original context from rope_scaling, else the config's top level; with a top-level
                    // original_max_position_embeddings, factor = max_position_embeddings / it.
                    original = s.has("original_max_position_embeddings") ? s.positive("original_max_position_embeddings", null)
                            : topOriginal != null ? topOriginal : maxPositions;
                    factor = topOriginal != null ? (double) maxPositions / topOriginal : s.has("factor") ? s.positiveDouble("factor", null) : 1.0;
                }
                double attention = s.has("attention_factor") && !s.json.get("attention_factor").isNull() ? s.positiveDouble("attention_factor", null)
                        : factor <= 1.0 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
                yield new RopeScaling("longrope", factor, 0, 0, original, s.factors("short_factor", rotaryDim / 2), s.factors("long_factor", rotaryDim / 2), attention);
            }
            default -> throw s.error("rope_type", "'" + type + "' is not supported (expected default, linear, llama3 or longrope)");
        };
    }

    public int kvGroups() { return numAttentionHeads / numKeyValueHeads; }

    /** Whether layer {@code layer} uses the sliding window. */
    public boolean slidingAt(int layer) {
        if (slidingWindow <= 0) return false;
        return layout.slidingLayers() != null ? layout.slidingLayers().get(layer) : layer >= slidingWindowFromLayer;
    }

    /** The leading dimensions of each head that RoPE rotates: head_dim, or Phi-3's partial share of it. */
    public int rotaryDim() { return layout.rotaryDim() > 0 ? layout.rotaryDim() : headDim; }

    /** Gemma 2 / Gemma 3's block and head settings, or null for every other family. */
    public Gemma gemma() { return layout.gemma(); }

    /** Whether layer {@code layer} rotates q and k (all but SmolLM3's no-RoPE layers). */
    public boolean ropeAt(int layer) { return layout.ropeLayers() == null || layout.ropeLayers().get(layer); }

    /**
     * A small Llama-layout config for models trained from scratch and for benchmarks. The JSON is what HF writes
     * for a LlamaForCausalLM, so a saved model loads in transformers unchanged.
     */
    public static ModelConfig llama(int vocab, int hidden, int layers, int heads, int kvHeads, int intermediate, int maxPositions) {
        ObjectNode j = JSON.createObjectNode();
        j.putArray("architectures").add("LlamaForCausalLM");
        j.put("model_type", "llama");
        j.put("vocab_size", vocab);
        j.put("hidden_size", hidden);
        j.put("num_hidden_layers", layers);
        j.put("num_attention_heads", heads);
        j.put("num_key_value_heads", kvHeads);
        j.put("intermediate_size", intermediate);
        j.put("max_position_embeddings", maxPositions);
        j.put("rms_norm_eps", 1e-6);
        j.put("rope_theta", 10000.0);
        j.putNull("rope_scaling");
        j.put("hidden_act", "silu");
        j.put("attention_bias", false);
        j.put("mlp_bias", false);
        j.put("tie_word_embeddings", false);
        j.put("initializer_range", 0.02);
        j.put("torch_dtype", "float32");
        return parse(j, Path.of("<generated config>"));
    }

    /** Reads keys with messages that name the file and the key. */
    private static final class Keys {
        final ObjectNode json;
        final Path file;
        final String prefix;

        Keys(ObjectNode json, Path file) { this(json, file, ""); }

        Keys(ObjectNode json, Path file, String prefix) {
            this.json = json;
            this.file = file;
            this.prefix = prefix;
        }

        CheckpointException error(String key, String message) {
            return new CheckpointException(file, null, "key '" + (key.startsWith(prefix) ? key : prefix + key) + "': " + message);
        }

        boolean has(String key) { return json.has(key); }

        private JsonNode required(String key) {
            JsonNode n = json.get(key);
            if (n == null || n.isNull()) throw error(key, "missing");
            return n;
        }

        int positive(String key, Integer dflt) {
            JsonNode n = json.get(key);
            if ((n == null || n.isNull()) && dflt != null) return dflt;
            n = required(key);
            if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 1) throw error(key, "expected a positive integer, got " + n);
            return n.asInt();
        }

        int nonNegative(String key, int dflt) {
            JsonNode n = json.get(key);
            if (n == null || n.isNull()) return dflt;
            if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 0) throw error(key, "expected a non-negative integer, got " + n);
            return n.asInt();
        }

        int optionalPositive(String key) {
            JsonNode n = json.get(key);
            if (n == null || n.isNull()) return 0;
            return positive(key, null);
        }

        double positiveDouble(String key, Double dflt) {
            JsonNode n = json.get(key);
            if ((n == null || n.isNull()) && dflt != null) return dflt;
            n = required(key);
            if (!n.isNumber() || !(n.asDouble() > 0) || Double.isInfinite(n.asDouble())) throw error(key, "expected a positive number, got " + n);
            return n.asDouble();
        }

        boolean bool(String key, boolean dflt) {
            JsonNode n = json.get(key);
            if (n == null || n.isNull()) return dflt;
            if (!n.isBoolean()) throw error(key, "expected true or false, got " + n);
            return n.asBoolean();
        }

        String string(String key, String dflt) {
            JsonNode n = json.get(key);
            if (n == null || n.isNull()) return dflt;
            if (!n.isTextual()) throw error(key, "expected a string, got " + n);
            return n.asText();
        }

        /** A list of {@code n} positive numbers (longrope's per-frequency factors). */
        List<Double> factors(String key, int n) {
            JsonNode a = json.get(key);
            if (a == null || a.isNull()) throw error(key, "missing");
            if (!a.isArray() || a.size() != n) throw error(key, "expected " + n + " numbers (half the rotary dimension), got " + a);
            List<Double> out = new ArrayList<>();
            for (JsonNode e : a) {
                if (!e.isNumber() || !(e.asDouble() > 0)) throw error(key, "expected positive numbers, got " + e);
                out.add(e.asDouble());
            }
            return List.copyOf(out);
        }

        Long optionalId(String key) {
            JsonNode n = json.get(key);
            if (n == null || n.isNull()) return null;
            if (!n.isIntegralNumber() || n.asLong() < 0) throw error(key, "expected a token id, got " + n);
            return n.asLong();
        }

        List<Long> ids(String key) {
            JsonNode n = json.get(key);
            List<Long> out = new ArrayList<>();
            if (n == null || n.isNull()) return out;
            if (n.isArray()) {
                for (JsonNode e : n) {
                    if (!e.isIntegralNumber() || e.asLong() < 0) throw error(key, "expected token ids, got " + n);
                    out.add(e.asLong());
                }
            } else {
                out.add(optionalId(key));
            }
            return List.copyOf(out);
        }
    }
}
