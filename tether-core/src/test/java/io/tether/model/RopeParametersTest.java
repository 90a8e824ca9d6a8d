package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import io.tether.engine.CheckpointException;
import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * transformers v5 writes RoPE as {@code rope_parameters} (rope_theta, rope_type and the scaling fields in one dict;
 * Gemma 3 one dict per layer type) instead of v4's top-level rope_theta and rope_scaling. Every family with RoPE
 * must read both to the same model.
 */
class RopeParametersTest {
    private static final Path FILE = Path.of("v5/config.json");
    /** A base no config class defaults to, so a v5 config read without its rope_parameters cannot pass. */
    private static final double THETA = 23456.0;

    private static List<ModelConfig> ropeFamilies() {
        return List.of(TinyConfigs.llama(), TinyConfigs.qwen2(), TinyConfigs.mistral(), TinyConfigs.qwen3(), TinyConfigs.olmo2(),
                TinyConfigs.smollm3(), TinyConfigs.phi3(), TinyConfigs.phi3Mini(), TinyConfigs.gemma2(), gemma3Scaled());
    }

    /** Gemma 3 as the 4B and larger ship: linear scaling (factor 8) on the global layers; an unusual local base. */
    private static ModelConfig gemma3Scaled() {
        ObjectNode j = TinyConfigs.gemma3().json().deepCopy();
        ObjectNode rs = j.putObject("rope_scaling");
        rs.put("rope_type", "linear");
        rs.put("factor", 8.0);
        j.put("rope_local_base_freq", 20000.0);
        return ModelConfig.parse(j, Path.of("gemma3/config.json"));
    }

    /** The v4 config with an unusual rope_theta. */
    private static ObjectNode v4(ModelConfig c) {
        ObjectNode j = c.json().deepCopy();
        j.put("rope_theta", THETA);
        return j;
    }

    /** The same config as transformers v5 saves it. */
    private static ObjectNode v5(ObjectNode v4) {
        ObjectNode j = v4.deepCopy();
        JsonNode scaling = j.remove("rope_scaling");
        double theta = j.remove("rope_theta").asDouble();
        ObjectNode params = j.objectNode();
        if (scaling != null && scaling.isObject()) params.setAll((ObjectNode) scaling.deepCopy());
        if (params.has("type")) params.set("rope_type", params.remove("type"));
        if (!params.has("rope_type")) params.put("rope_type", "default");
        params.put("rope_theta", theta);
        if (j.get("architectures").get(0).asText().equals("Gemma3ForCausalLM")) {
            ObjectNode byType = j.putObject("rope_parameters");
            byType.set("full_attention", params);
            byType.putObject("sliding_attention").put("rope_type", "default").put("rope_theta", j.remove("rope_local_base_freq").asDouble());
            return j;
        }
        // Phi3Config.convert_rope_params_to_dict moves partial_rotary_factor into the dict.
        if (j.has("partial_rotary_factor")) params.set("partial_rotary_factor", j.remove("partial_rotary_factor"));
        j.set("rope_parameters", params);
        return j;
    }

    private static float[] logits(ModelConfig c) {
        try (CausalLM m = Models.create(c, DType.F32, 11); StepScope s = new StepScope()) {
            return Tensors.toFloats(m.forward(Tensors.longs(new long[] {1, 4, 2, 7, 3, 9, 5, 0, 8, 6}, 1, 10)));
        }
    }

    @Test
    void everyRopeFamilyReadsV5RopeParametersAsItReadsV4Keys() {
        for (ModelConfig family : ropeFamilies()) {
            ObjectNode old = v4(family), v5 = v5(old);
            assertFalse(v5.has("rope_theta") || v5.has("rope_scaling") || v5.has("rope_local_base_freq"), v5.toString());
            ModelConfig a = ModelConfig.parse(old, Path.of("v4/config.json")), b = ModelConfig.parse(v5, FILE);
            String name = family.architecture();
            assertEquals(THETA, a.ropeTheta(), name);
            assertEquals(a.ropeTheta(), b.ropeTheta(), name);
            assertEquals(a.ropeScaling(), b.ropeScaling(), name);
            assertEquals(a.rotaryDim(), b.rotaryDim(), name);
            if (a.gemma() != null) assertEquals(a.gemma().ropeLocalBaseFreq(), b.gemma().ropeLocalBaseFreq(), name);
            assertArrayEquals(logits(a), logits(b), name);
        }
        // The cases that carry more than a base really did: scaling, partial rotation, a second base.
        assertEquals("llama3", ModelConfig.parse(v5(v4(TinyConfigs.llama())), FILE).ropeScaling().type());
        ModelConfig phi3 = ModelConfig.parse(v5(v4(TinyConfigs.phi3())), FILE);
        assertEquals("longrope", phi3.ropeScaling().type());
        assertTrue(phi3.rotaryDim() < phi3.headDim());
        ModelConfig gemma3 = ModelConfig.parse(v5(v4(gemma3Scaled())), FILE);
        assertEquals("linear", gemma3.ropeScaling().type());
        assertEquals(20000.0, gemma3.gemma().ropeLocalBaseFreq());
    }

    @Test
    void v5DefaultsAndPrioritiesFollowTransformers() {
        // Without rope_theta anywhere, the config class's default base (Qwen3: 1e6 through TinyConfigs' value; here
        // SmolLM3's 2e6 and Gemma 3's 1e6 / 1e4).
        ObjectNode smol = TinyConfigs.smollm3().json().deepCopy();
        smol.remove("rope_theta");
        smol.putObject("rope_parameters").put("rope_type", "default");
        assertEquals(2_000_000.0, ModelConfig.parse(smol, FILE).ropeTheta());
        ObjectNode gemma = TinyConfigs.gemma3().json().deepCopy();
        gemma.remove("rope_theta");
        gemma.remove("rope_local_base_freq");
        gemma.putObject("rope_parameters").putObject("full_attention").put("rope_type", "default");
        ModelConfig g = ModelConfig.parse(gemma, FILE);
        assertEquals(1_000_000.0, g.ropeTheta());
        assertEquals(10000.0, g.gemma().ropeLocalBaseFreq());
        // The dict's rope_theta wins over a leftover top-level one.
        ObjectNode both = TinyConfigs.qwen3().json().deepCopy();
        both.put("rope_theta", 1.0e4);
        both.putObject("rope_parameters").put("rope_type", "default").put("rope_theta", 3.0e5);
        assertEquals(3.0e5, ModelConfig.parse(both, FILE).ropeTheta());
        // v5's longrope takes the dict's factor when given (v4 replaced it by max / original positions).
        ObjectNode phi = v5(v4(TinyConfigs.phi3()));
        ((ObjectNode) phi.get("rope_parameters")).put("factor", 4.0);
        ModelConfig p = ModelConfig.parse(phi, FILE);
        assertEquals(4.0, p.ropeScaling().factor());
        assertEquals(Math.sqrt(1 + Math.log(4.0) / Math.log(p.ropeScaling().originalMaxPositionEmbeddings())), p.ropeScaling().attentionFactor(), 1e-15);
        // A per-layer-type dict on a one-RoPE family is read when its types agree.
        ObjectNode qwen = TinyConfigs.qwen3().json().deepCopy();
        qwen.remove("rope_theta");
        ObjectNode byType = qwen.putObject("rope_parameters");
        byType.putObject("full_attention").put("rope_type", "default").put("rope_theta", 5.0e5);
        byType.putObject("sliding_attention").put("rope_type", "default").put("rope_theta", 5.0e5);
        assertEquals(5.0e5, ModelConfig.parse(qwen, FILE).ropeTheta());
    }

    /** Phi-3's first long-context configs say "su" (or "yarn") for longrope, and Phi3Config renames them; other families refuse the names. */
    @Test
    void phi3ReadsSuAndYarnAsLongrope() {
        ObjectNode longrope = v4(TinyConfigs.phi3());
        assertEquals("longrope", longrope.get("rope_scaling").get("type").asText());
        ModelConfig expected = ModelConfig.parse(longrope, Path.of("phi3/config.json"));
        for (String alias : new String[] {"su", "yarn"}) {
            ObjectNode j = longrope.deepCopy();
            ((ObjectNode) j.get("rope_scaling")).put("type", alias);
            ModelConfig read = ModelConfig.parse(j, Path.of("phi3/config.json"));
            assertEquals(expected.ropeScaling(), read.ropeScaling(), alias);
            assertArrayEquals(logits(expected), logits(read), alias);
        }
        ObjectNode llama = v4(TinyConfigs.llama());
        ((ObjectNode) llama.get("rope_scaling")).put("rope_type", "su");
        ((ObjectNode) llama.get("rope_scaling")).remove("type");
        refused(llama, "rope_scaling.rope_type");
    }

    private static void refused(ObjectNode json, String key) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> ModelConfig.parse(json, FILE));
        assertTrue(e.getMessage().contains("key '" + key + "'"), e.getMessage());
        assertTrue(e.getMessage().contains("v5/config.json"), e.getMessage());
    }

    @Test
    void badRopeParametersNameTheKey() {
        ObjectNode yarn = v5(v4(TinyConfigs.qwen3()));
        ((ObjectNode) yarn.get("rope_parameters")).put("rope_type", "yarn").put("factor", 4.0);
        refused(yarn, "rope_parameters.rope_type");
        ObjectNode llama3 = v5(v4(TinyConfigs.llama()));
        ((ObjectNode) llama3.get("rope_parameters")).remove("factor");
        refused(llama3, "rope_parameters.factor");
        ObjectNode notObject = TinyConfigs.qwen2().json().deepCopy();
        notObject.put("rope_parameters", "default");
        refused(notObject, "rope_parameters");
        ObjectNode theta = v5(v4(TinyConfigs.mistral()));
        ((ObjectNode) theta.get("rope_parameters")).put("rope_theta", -1.0);
        refused(theta, "rope_parameters.rope_theta");
        ObjectNode split = TinyConfigs.olmo2().json().deepCopy();
        ObjectNode byType = split.putObject("rope_parameters");
        byType.putObject("full_attention").put("rope_type", "default").put("rope_theta", 1.0e4);
        byType.putObject("sliding_attention").put("rope_type", "default").put("rope_theta", 2.0e4);
        refused(split, "rope_parameters.sliding_attention");
        ObjectNode flatGemma = TinyConfigs.gemma3().json().deepCopy();
        flatGemma.putObject("rope_parameters").put("rope_type", "default").put("rope_theta", 1.0e6);
        refused(flatGemma, "rope_parameters");
        ObjectNode scaledLocal = v5(v4(TinyConfigs.gemma3()));
        ((ObjectNode) scaledLocal.get("rope_parameters").get("sliding_attention")).put("rope_type", "linear").put("factor", 2.0);
        refused(scaledLocal, "rope_parameters.sliding_attention.rope_type");
        ObjectNode phiFactors = v5(v4(TinyConfigs.phi3()));
        ((ObjectNode) phiFactors.get("rope_parameters")).putArray("short_factor").add(1.0);
        refused(phiFactors, "rope_parameters.short_factor");
    }
}
