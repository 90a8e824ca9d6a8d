package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.CheckpointException;
import io.tether.engine.DType;

/**
 * adapter_config.json as PEFT writes and reads it (PEFT v0.20): target_modules holds concrete module names, never the
 * all-linear shorthand inside a list (PEFT expands the shorthand only as a string; in a list it is a module name that
 * matches nothing). PEFT's matching of a list: a module is targeted when it is listed or ends with "." + a listed name.
 */
class PeftAdapterConfigTest {
    @TempDir Path tmp;
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> LLAMA_PROJECTIONS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    /** Modules that PEFT's list matching selects among the model's projections (its check_target_module_exists, re-done here). */
    static Set<String> peftSelects(CausalLM m, JsonNode targetModules) {
        Set<String> out = new TreeSet<>();
        for (var e : m.parameters().entrySet()) {
            if (!e.getKey().endsWith(".weight") || e.getValue().dim() != 2) continue;
            String module = e.getKey().substring(0, e.getKey().length() - ".weight".length());
            for (JsonNode t : targetModules) if (module.equals(t.asText()) || module.endsWith("." + t.asText())) out.add(module);
        }
        return out;
    }

    static Set<String> adapted(LoraAdapters l) {
        Set<String> out = new TreeSet<>();
        for (String name : l.parameters().keySet())
            if (name.endsWith(".lora_A.weight")) out.add(name.substring("base_model.model.".length(), name.length() - ".lora_A.weight".length()));
        return out;
    }

    static JsonNode savedTargets(CausalLM m, LoraAdapters l, Path dir) throws IOException {
        l.save(dir, "base");
        return JSON.readTree(dir.resolve("adapter_config.json").toFile()).get("target_modules");
    }

    @Test
    void allLinearIsSavedAsTheConcreteModulesPeftWouldSelect() throws IOException {
        // 2 Llama layers: 14 projections, fewer than PEFT's 20, so PEFT writes their full names.
        try (CausalLM m = Models.create(TinyConfigs.llama(), DType.F32, 3)) {
            LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.0, List.of("all-linear"), false), 1);
            JsonNode saved = savedTargets(m, l, tmp.resolve("llama2"));
            assertEquals(14, saved.size(), saved.toString());
            assertTrue(saved.toString().contains("\"model.layers.0.self_attn.q_proj\""), saved.toString());
            assertEquals(adapted(l), peftSelects(m, saved), "PEFT loading this config adapts exactly the modules trained");
        }
        // 3 Llama layers: 21 projections, so PEFT keeps the suffixes that tell them apart.
        try (CausalLM m = Models.create(ModelConfig.llama(13, 16, 3, 4, 2, 24, 64), DType.F32, 3)) {
            LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.0, List.of("all-linear"), false), 1);
            JsonNode saved = savedTargets(m, l, tmp.resolve("llama3"));
            assertEquals(new TreeSet<>(LLAMA_PROJECTIONS), new TreeSet<>(JSON.convertValue(saved, List.class)));
            assertEquals(adapted(l), peftSelects(m, saved));
        }
        // GPT-2: Conv1D projections, the attention's and the MLP's both named c_proj.
        try (CausalLM m = Models.create(TinyConfigs.gpt2(), DType.F32, 3)) {
            LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.0, List.of("all-linear"), false), 1);
            JsonNode saved = savedTargets(m, l, tmp.resolve("gpt2"));
            assertFalse(saved.toString().contains("all-linear"), saved.toString());
            assertEquals(adapted(l), peftSelects(m, saved));
        }
    }

    @Test
    void namedTargetsAreSavedAsASortedSet() throws IOException {
        try (CausalLM m = Models.create(TinyConfigs.llama(), DType.F32, 3)) {
            LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.0, List.of("v_proj", "q_proj"), false), 1);
            JsonNode saved = savedTargets(m, l, tmp.resolve("qv"));
            assertEquals("[\"q_proj\",\"v_proj\"]", saved.toString());
            assertEquals(adapted(l), peftSelects(m, saved));
        }
    }

    @Test
    void minimalSuffixesFollowPeftsDocumentedExample() {
        // PEFT's _find_minimal_target_modules docstring: q_proj and v_proj of 100 decoder layers against the encoder's k_proj.
        List<String> targets = new ArrayList<>();
        Set<String> others = new TreeSet<>();
        for (int i = 0; i < 100; i++) {
            targets.add("model.decoder.layers." + i + ".self_attn.q_proj");
            targets.add("model.decoder.layers." + i + ".self_attn.v_proj");
            others.add("model.encoder.layers." + i + ".self_attn.k_proj");
        }
        assertEquals(List.of("q_proj", "v_proj"), LoraAdapters.minimalSuffixes(targets, others));
        // A name shared with a module that is not a target needs a longer suffix.
        assertEquals(List.of("decoder.layers.0.self_attn.q_proj"),
                LoraAdapters.minimalSuffixes(List.of("model.decoder.layers.0.self_attn.q_proj"), Set.of("model.encoder.layers.0.self_attn.q_proj")));
    }

    /** An adapter_config.json with the keys PEFT 0.19.1 writes for a LoRA on a causal LM. */
    static ObjectNode peftConfig(JsonNode targetModules) {
        ObjectNode c = JSON.createObjectNode();
        c.putNull("alora_invocation_tokens");
        c.putObject("alpha_pattern");
        c.putNull("arrow_config");
        c.putNull("auto_mapping");
        c.put("base_model_name_or_path", "TinyLlama/TinyLlama-1.1B-Chat-v1.0");
        c.put("bias", "none");
        c.putNull("corda_config");
        c.put("ensure_weight_tying", false);
        c.putNull("eva_config");
        c.putNull("exclude_modules");
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        c.put("init_lora_weights", true);
        c.putNull("layer_replication");
        c.putNull("layers_pattern");
        c.putNull("layers_to_transform");
        c.putObject("loftq_config");
        c.put("lora_alpha", 32);
        c.put("lora_bias", false);
        c.put("lora_dropout", 0.05);
        c.putNull("lora_ga_config");
        c.putNull("megatron_config");
        c.put("megatron_core", "megatron.core");
        c.putNull("modules_to_save");
        c.put("peft_type", "LORA");
        c.put("peft_version", "0.19.1");
        c.put("qalora_group_size", 16);
        c.put("r", 16);
        c.putObject("rank_pattern");
        c.putNull("revision");
        c.set("target_modules", targetModules);
        c.putNull("target_parameters");
        c.put("task_type", "CAUSAL_LM");
        c.putNull("trainable_token_indices");
        c.putNull("use_bdlora");
        c.put("use_dora", false);
        c.put("use_qalora", false);
        c.put("use_rslora", false);
        return c;
    }

    @Test
    void adaptersLoadFromEveryFormOfTargetModulesPeftWrites() throws IOException {
        try (CausalLM trained = Models.create(TinyConfigs.llama(), DType.F32, 3)) {
            LoraAdapters l = LoraAdapters.attach(trained, new LoraAdapters.Config(16, 32, 0.0, List.of("all-linear"), false), 1);
            LoraTest.perturb(l);
            float[] expected = LoraTest.logits(trained);
            Path dir = tmp.resolve("adapter");
            l.save(dir, "base");
            List<String> full = new ArrayList<>(adapted(l));
            JsonNode[] forms = {
                    JSON.valueToTree(List.of("o_proj", "v_proj", "gate_proj", "down_proj", "k_proj", "q_proj", "up_proj")),   // names, in a set's order
                    JSON.valueToTree(full),                                                                                  // full module names
                    JSON.valueToTree(List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")),
                    JSON.getNodeFactory().textNode(".*\\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"),       // a regular expression
                    JSON.getNodeFactory().textNode("all-linear"),                                                             // the shorthand, as a string
                    JSON.valueToTree(List.of("all-linear")),                                                                  // Tether's own older files
            };
            for (JsonNode form : forms) {
                Files.writeString(dir.resolve("adapter_config.json"), peftConfig(form).toPrettyString());
                try (CausalLM fresh = Models.create(TinyConfigs.llama(), DType.F32, 3)) {
                    LoraAdapters loaded = LoraAdapters.load(fresh, dir);
                    assertEquals(adapted(l), adapted(loaded), form.toString());
                    assertArrayEquals(expected, LoraTest.logits(fresh), 0f, form + ": the same adapted model");
                }
            }
            // A config that selects fewer modules than the file holds is refused, naming a tensor left over.
            Files.writeString(dir.resolve("adapter_config.json"), peftConfig(JSON.valueToTree(List.of("q_proj"))).toPrettyString());
            try (CausalLM fresh = Models.create(TinyConfigs.llama(), DType.F32, 3)) {
                var e = assertThrows(CheckpointException.class, () -> LoraAdapters.load(fresh, dir));
                assertTrue(e.getMessage().contains("lora_A.weight") && e.getMessage().contains("does not select"), e.getMessage());
            }
            Files.writeString(dir.resolve("adapter_config.json"), peftConfig(JSON.getNodeFactory().textNode(".*nothing")).toPrettyString());
            try (CausalLM fresh = Models.create(TinyConfigs.llama(), DType.F32, 3)) {
                var e = assertThrows(CheckpointException.class, () -> LoraAdapters.load(fresh, dir));
                assertTrue(e.getMessage().contains("key 'target_modules'") && e.getMessage().contains("matches no module"), e.getMessage());
            }
        }
    }
}
