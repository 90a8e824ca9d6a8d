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

    public static ModelConfig[] all() {
        return new ModelConfig[] {llama(), qwen2(), mistral(), gpt2()};
    }
}
