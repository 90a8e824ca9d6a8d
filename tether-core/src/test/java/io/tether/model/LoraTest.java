package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Safetensors;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

class LoraTest {
    @TempDir Path tmp;
    static final long[] TOKENS = {1, 2, 3, 4, 5, 6, 7};

    static float[] logits(CausalLM m) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            return Tensors.toFloats(m.forward(Tensors.longs(TOKENS, 1, TOKENS.length)));
        }
    }

    /** B is zero when fresh; give it values so the adapter does something. */
    static void perturb(LoraAdapters l) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            for (var e : l.parameters().entrySet()) if (e.getKey().endsWith("lora_B.weight")) e.getValue().normal_(0.0, 0.05, new org.bytedeco.pytorch.GeneratorOptional());
        }
    }

    @Test
    void freshAdaptersChangeNothingThenMergeAndDisableAgree() {
        for (ModelConfig config : new ModelConfig[] {TinyConfigs.llama(), TinyConfigs.qwen2(), TinyConfigs.gpt2()}) {
            try (CausalLM m = Models.create(config, DType.F32, 3)) {
                float[] base = logits(m);
                LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.0, List.of("all-linear"), false), 1);
                assertArrayEquals(base, logits(m), 0f, config.architecture() + ": B = 0 leaves outputs unchanged");
                perturb(l);
                float[] adapted = logits(m);
                assertFalse(java.util.Arrays.equals(base, adapted));
                try (AutoCloseable off = l.disabled()) {
                    assertArrayEquals(base, logits(m), 0f, "adapters off = the base model");
                } catch (Exception e) {
                    fail(e);
                }
                l.merge();
                assertArrayEquals(adapted, logits(m), 2e-5f, config.architecture() + ": merged = unmerged");
                l.unmerge();
                assertArrayEquals(base, withAdaptersOff(m, l), 2e-5f, "unmerge restores the base weights");
                assertArrayEquals(adapted, logits(m), 2e-5f);
            }
        }
    }

    static float[] withAdaptersOff(CausalLM m, LoraAdapters l) {
        try (AutoCloseable off = l.disabled()) {
            return logits(m);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void targetsOnlyNamedModulesAndTrainsOnlyAdapters() {
        try (CausalLM m = Models.create(TinyConfigs.llama(), DType.F32, 3)) {
            LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(2, 4, 0.0, List.of("q_proj", "v_proj"), true), 1);
            assertEquals(2 * 2 * 2, l.parameters().size(), "2 layers x (q, v) x (A, B)");
            assertTrue(l.parameters().containsKey("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
            assertEquals(l.parameters().keySet(), m.trainableParameters().keySet());
            m.setTrainable(true);
            assertFalse(m.parameters().get("model.layers.0.self_attn.q_proj.weight").requires_grad());
            assertTrue(l.parameters().values().iterator().next().requires_grad());
            assertEquals(4 / Math.sqrt(2), l.config().scaling(), 1e-12, "rsLoRA scaling");
            var e = assertThrows(IllegalArgumentException.class, () -> LoraAdapters.attach(m, new LoraAdapters.Config(2, 4, 0, List.of("nope"), false), 1));
            assertTrue(e.getMessage().contains("matches no projection"));
        }
    }

    @Test
    void peftRoundTripIsExact() throws IOException {
        try (CausalLM m = Models.create(TinyConfigs.gpt2(), DType.F32, 3); CausalLM fresh = Models.create(TinyConfigs.gpt2(), DType.F32, 3)) {
            LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 16, 0.1, List.of("c_attn", "c_proj"), false), 1);
            perturb(l);
            l.save(tmp.resolve("adapter"), "tiny-gpt2");
            LoraAdapters back = LoraAdapters.load(fresh, tmp.resolve("adapter"));
            for (var p : l.parameters().entrySet())
                assertArrayEquals(Tensors.toFloats(p.getValue()), Tensors.toFloats(back.parameters().get(p.getKey())), 0f, p.getKey());
            assertArrayEquals(logits(m), logits(fresh), 0f);
            var header = Safetensors.open(tmp.resolve("adapter/adapter_model.safetensors")).entries().keySet();
            assertTrue(header.contains("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"), header.toString());
            var config = Models.jsonMapper().readTree(tmp.resolve("adapter/adapter_config.json").toFile());
            assertEquals("LORA", config.get("peft_type").asText());
            assertTrue(config.get("fan_in_fan_out").asBoolean(), "GPT-2's Conv1D weights are stored [in, out]");
        }
    }
}
