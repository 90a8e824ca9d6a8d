package io.tether.model;

import java.nio.file.Path;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** Small configs of every supported family, for tests that need many forward passes. */
public final class TinyConfigs {
    private TinyConfigs() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    private static ObjectNode llamaJson(String arch, String type) {
        ObjectNode j = JSON.createObjectNode();
        j.putArray("architectures").add(arch);
        j.put("model_type", type);
        j.put("vocab_size", 13);
        j.put("hidden_size", 16);
        j.put("num_hidden_layers", 2);
        j.put("num_attention_heads", 4);
        j.put("num_key_value_heads", 2);
        j.put("intermediate_size", 24);
        j.put("max_position_embeddings", 64);
        j.put("rms_norm_eps", 1e-6);
        j.put("rope_theta", 10000.0);
        j.put("hidden_act", "silu");
        j.put("tie_word_embeddings", false);
        j.put("initializer_range", 0.2);
        return j;
    }

    /** Llama with grouped-query attention and llama3 rope scaling. */
    public static ModelConfig llama() {
        ObjectNode j = llamaJson("LlamaForCausalLM", "llama");
        ObjectNode rs = j.putObject("rope_scaling");
        rs.put("rope_type", "llama3");
        rs.put("factor", 8.0);
        rs.put("low_freq_factor", 1.0);
        rs.put("high_freq_factor", 4.0);
        rs.put("original_max_position_embeddings", 8);
        return ModelConfig.parse(j, Path.of("tiny-llama/config.json"));
    }

    /** Qwen2: q/k/v biases, tied embeddings. */
    public static ModelConfig qwen2() {
        ObjectNode j = llamaJson("Qwen2ForCausalLM", "qwen2");
        j.put("tie_word_embeddings", true);
        j.put("rope_theta", 1000000.0);
        return ModelConfig.parse(j, Path.of("tiny-qwen2/config.json"));
    }

    /** Mistral with a sliding window shorter than the test sequences. */
    public static ModelConfig mistral() {
        ObjectNode j = llamaJson("MistralForCausalLM", "mistral");
        j.put("sliding_window", 4);
        return ModelConfig.parse(j, Path.of("tiny-mistral/config.json"));
    }

    /**
     * Qwen3-0.6B's config.json scaled down: head_dim 128 against hidden_size 1024 / 16 heads = 64, so the explicit
     * head_dim is twice hidden / heads here too (8 against 16 / 4); 8 KV heads of 16 (here 2 of 4); intermediate
     * 3 x hidden; rope_theta 1e6; rms_norm_eps 1e-6; no attention bias; tied head (Qwen3-8B and up are untied:
     * {@link #qwen3Untied}); use_sliding_window false.
     */
    public static ModelConfig qwen3() {
        ObjectNode j = llamaJson("Qwen3ForCausalLM", "qwen3");
        j.put("head_dim", 8);
        j.put("intermediate_size", 48);
        j.put("rope_theta", 1000000.0);
        j.put("attention_bias", false);
        j.put("tie_word_embeddings", true);
        j.put("use_sliding_window", false);
        j.putNull("sliding_window");
        j.put("max_window_layers", 28);
        return ModelConfig.parse(j, Path.of("tiny-qwen3/config.json"));
    }

    /** Qwen3-8B's layout: as {@link #qwen3} with an untied lm_head. */
    public static ModelConfig qwen3Untied() {
        ObjectNode j = qwen3().json().deepCopy();
        j.put("tie_word_embeddings", false);
        return ModelConfig.parse(j, Path.of("tiny-qwen3-untied/config.json"));
    }

    /**
     * OLMo-2-0325-32B's config.json scaled down: 40 heads with 8 KV heads (here 4 and 2, so k_norm, over the KV
     * heads, is narrower than q_norm), intermediate 5.4 x hidden (here 86 = 5.4 x 16), rope_theta 5e5,
     * rms_norm_eps 1e-6, no attention bias, untied head.
     */
    public static ModelConfig olmo2() {
        ObjectNode j = llamaJson("Olmo2ForCausalLM", "olmo2");
        j.put("intermediate_size", 86);
        j.put("rope_theta", 500000.0);
        j.put("attention_bias", false);
        j.put("tie_word_embeddings", false);
        return ModelConfig.parse(j, Path.of("tiny-olmo2/config.json"));
    }

    /**
     * SmolLM3-3B's config.json scaled down: 36 layers of which every 4th has no RoPE (no_rope_layers 1,1,1,0,...;
     * here 8 layers, so two without), 16 heads with 4 KV heads (here 4 and 1), intermediate 5.375 x hidden (86),
     * rope_theta 5e6, rms_norm_eps 1e-6, tied head, use_sliding_window false.
     */
    public static ModelConfig smollm3() {
        ObjectNode j = llamaJson("SmolLM3ForCausalLM", "smollm3");
        j.put("num_hidden_layers", 8);
        j.put("num_key_value_heads", 1);
        j.put("intermediate_size", 86);
        j.put("rope_theta", 5000000.0);
        j.put("tie_word_embeddings", true);
        j.put("attention_bias", false);
        j.put("mlp_bias", false);
        j.put("use_sliding_window", false);
        j.putNull("sliding_window");
        j.put("no_rope_layer_interval", 4);
        com.fasterxml.jackson.databind.node.ArrayNode noRope = j.putArray("no_rope_layers");
        for (int i = 0; i < 8; i++) noRope.add((i + 1) % 4 == 0 ? 0 : 1);
        return ModelConfig.parse(j, Path.of("tiny-smollm3/config.json"));
    }

    /**
     * Phi-4-mini-instruct's config.json scaled down: 24 heads with 8 KV heads (here 3 and 1), head_dim 128 of which
     * partial_rotary_factor 0.75 rotates 96 (here 8 and 6), intermediate 2.67 x hidden (64 for 24), longrope with
     * original_max_position_embeddings 4096 against max_position_embeddings 131072 (the same factor 32 here: 8 and
     * 256) and one short and one long factor per rotated frequency pair (48 there, 3 here), rms_norm_eps 1e-5,
     * rope_theta 1e4, sliding_window 262144 (longer than any sequence), tied head.
     */
    public static ModelConfig phi3() {
        ObjectNode j = llamaJson("Phi3ForCausalLM", "phi3");
        j.put("hidden_size", 24);
        j.put("num_attention_heads", 3);
        j.put("num_key_value_heads", 1);
        j.put("intermediate_size", 64);
        j.put("max_position_embeddings", 256);
        j.put("original_max_position_embeddings", 8);
        j.put("partial_rotary_factor", 0.75);
        j.put("rms_norm_eps", 1e-5);
        j.put("sliding_window", 512);
        j.put("tie_word_embeddings", true);
        j.put("attention_bias", false);
        ObjectNode rs = j.putObject("rope_scaling");
        rs.put("type", "longrope");
        rs.putArray("short_factor").add(1.0).add(1.25).add(1.5);
        rs.putArray("long_factor").add(1.0).add(4.0).add(20.0);
        return ModelConfig.parse(j, Path.of("tiny-phi3/config.json"));
    }

    /**
     * Phi-3-mini-4k-instruct's config.json scaled down: 32 heads, all of them KV heads (here 4 and 4), full rotary,
     * no rope_scaling, sliding_window 2047 against 4096 positions (here 4, shorter than the test sequences), untied.
     */
    public static ModelConfig phi3Mini() {
        ObjectNode j = llamaJson("Phi3ForCausalLM", "phi3");
        j.put("num_key_value_heads", 4);
        j.put("intermediate_size", 43);
        j.put("original_max_position_embeddings", 64);
        j.put("rms_norm_eps", 1e-5);
        j.put("sliding_window", 4);
        j.putNull("rope_scaling");
        return ModelConfig.parse(j, Path.of("tiny-phi3-mini/config.json"));
    }

    /**
     * google/gemma-3-1b-it's config.json scaled down: 26 layers with sliding_window_pattern 6 (five sliding layers,
     * then a global one; here 7 layers: 0-4 slide, 5 is global, 6 slides), 4 heads with 1 KV head, head_dim 256
     * against hidden 1152 (heads x head_dim 1024 < hidden; here 8 against 24: 32 > 24), query_pre_attn_scalar =
     * head_dim, intermediate 6 x hidden (144), sliding_window 512 of 32768 positions (here 4 of 64, shorter than the
     * test sequences), rope_theta 1e6 on global layers and rope_local_base_freq 1e4 on sliding ones, no rope_scaling,
     * no soft-capping, rms_norm_eps 1e-6, tied head, model_type gemma3_text. sqrt(24) is not exact in any float
     * type, so the embedding scale's rounding shows.
     */
    public static ModelConfig gemma3() {
        ObjectNode j = llamaJson("Gemma3ForCausalLM", "gemma3_text");
        j.remove("hidden_act");
        j.put("hidden_activation", "gelu_pytorch_tanh");
        j.put("num_hidden_layers", 7);
        j.put("hidden_size", 24);
        j.put("num_attention_heads", 4);
        j.put("num_key_value_heads", 1);
        j.put("head_dim", 8);
        j.put("query_pre_attn_scalar", 8);
        j.put("intermediate_size", 144);
        j.put("sliding_window", 4);
        j.put("sliding_window_pattern", 6);
        j.put("rope_theta", 1000000.0);
        j.put("rope_local_base_freq", 10000.0);
        j.putNull("rope_scaling");
        j.putNull("attn_logit_softcapping");
        j.putNull("final_logit_softcapping");
        j.put("attention_bias", false);
        j.put("tie_word_embeddings", true);
        j.put("bos_token_id", 2);
        j.putArray("eos_token_id").add(1).add(10);
        j.put("pad_token_id", 0);
        return ModelConfig.parse(j, Path.of("tiny-gemma3/config.json"));
    }

    /**
     * google/gemma-2-2b's config.json scaled down: 26 layers alternating sliding (even) and global (odd) (here 4),
     * 8 heads with 4 KV heads (here 4 and 2), head_dim 256 with hidden 2304 (here 8 with 16), query_pre_attn_scalar =
     * head_dim, intermediate 4 x hidden (64), sliding_window 4096 of 8192 positions (here 4 of 64),
     * attn_logit_softcapping 50, final_logit_softcapping 30, rope_theta 1e4, rms_norm_eps 1e-6, tied head,
     * hidden_act and hidden_activation both gelu_pytorch_tanh.
     */
    public static ModelConfig gemma2() {
        ObjectNode j = llamaJson("Gemma2ForCausalLM", "gemma2");
        j.put("hidden_act", "gelu_pytorch_tanh");
        j.put("hidden_activation", "gelu_pytorch_tanh");
        j.put("num_hidden_layers", 4);
        j.put("head_dim", 8);
        j.put("query_pre_attn_scalar", 8);
        j.put("intermediate_size", 64);
        j.put("sliding_window", 4);
        j.put("attn_logit_softcapping", 50.0);
        j.put("final_logit_softcapping", 30.0);
        j.put("attention_bias", false);
        j.put("tie_word_embeddings", true);
        j.put("bos_token_id", 2);
        j.put("eos_token_id", 1);
        j.put("pad_token_id", 0);
        return ModelConfig.parse(j, Path.of("tiny-gemma2/config.json"));
    }

    public static ModelConfig gpt2() {
        ObjectNode j = JSON.createObjectNode();
        j.putArray("architectures").add("GPT2LMHeadModel");
        j.put("model_type", "gpt2");
        j.put("vocab_size", 13);
        j.put("n_embd", 16);
        j.put("n_layer", 2);
        j.put("n_head", 4);
        j.put("n_positions", 64);
        j.put("layer_norm_epsilon", 1e-5);
        j.put("activation_function", "gelu_new");
        j.put("initializer_range", 0.2);
        return ModelConfig.parse(j, Path.of("tiny-gpt2/config.json"));
    }

    /**
     * One config per family. Phi-3 appears as Phi-3-mini (fused projections, sliding window): with longrope, a
     * generation crossing original_max_position_embeddings switches to the long factors, and transformers' generate
     * then recomputes the cache, which Tether's Generator does not yet do, so {@link #phi3} is tested on its own
     * (BlockLayoutTest).
     */
    public static ModelConfig[] all() {
        return new ModelConfig[] {llama(), qwen2(), mistral(), gpt2(), qwen3(), olmo2(), smollm3(), phi3Mini(), gemma2(), gemma3()};
    }
}
