package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;

import org.bytedeco.pytorch.NoGradGuard;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.reference.ReferenceDecoder;

/**
 * Logits of the libtorch decoders against an independent float64 implementation written from HF's module
 * definitions ({@link ReferenceDecoder}), on the real fixture checkpoints and on saved synthetic checkpoints of
 * every family feature (GQA, llama3 rope scaling, Qwen2 biases and tied head, Mistral's sliding window).
 */
class ParityTest {
    @TempDir Path tmp;

    private static final long[] TOKENS = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};

    private static void assertParity(Path dir, long[] tokens, DType dtype, double tolerance) {
        double[][] expected = ReferenceDecoder.logits(dir, tokens);
        try (Models.LoadedModel m = Models.load(dir, dtype); StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            double[] actual = Tensors.toDoubles(m.model().forward(Tensors.longs(tokens, 1, tokens.length)));
            int vocab = expected[0].length;
            double worst = 0;
            for (int t = 0; t < tokens.length; t++)
                for (int v = 0; v < vocab; v++)
                    worst = Math.max(worst, Math.abs(expected[t][v] - actual[t * vocab + v]) / (1 + Math.abs(expected[t][v])));
            assertTrue(worst < tolerance, dir.getFileName() + " " + dtype + ": worst relative logit error " + worst);
        }
    }

    @Test
    void fixtureCheckpointsMatchTheReferenceInFp32AndFp64() {
        for (String name : new String[] {Fixtures.LLAMA, Fixtures.GPT2, Fixtures.GPT2_BACKBONE}) {
            long[] tokens = TOKENS.clone();
            int vocab = name.equals(Fixtures.LLAMA) ? 16 : 21;
            for (int i = 0; i < tokens.length; i++) tokens[i] %= vocab;
            assertParity(Fixtures.checkpoint(name), tokens, DType.F64, 1e-10);
            assertParity(Fixtures.checkpoint(name), tokens, DType.F32, 1e-4);
        }
    }

    @Test
    void everyFamilyFeatureMatchesTheReference() {
        for (ModelConfig config : TinyConfigs.all()) {
            Path dir = tmp.resolve(config.modelType());
            try (CausalLM m = Models.create(config, DType.F32, 13)) {
                Models.save(m, dir, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            }
            assertParity(dir, TOKENS.clone(), DType.F64, 1e-10);
            assertParity(dir, TOKENS.clone(), DType.F32, 1e-4);
        }
    }

    /**
     * Linear RoPE scaling ({@code rope_scaling: {type: linear, factor: 4}}, HF's _compute_linear_scaling_rope_parameters:
     * inv_freq / factor, i.e. positions / factor) against the reference, in both spellings of the key. The scaling
     * moves the logits far beyond the tolerance, so a decoder that ignored it would fail.
     */
    @Test
    void linearRopeScalingMatchesTheReference() throws java.io.IOException {
        double[][] unscaled = null;
        for (String key : new String[] {"type", "rope_type"}) {
            com.fasterxml.jackson.databind.node.ObjectNode json = TinyConfigs.llama().json().deepCopy();
            json.putObject("rope_scaling").put(key, "linear").put("factor", 4.0);
            ModelConfig config = ModelConfig.parse(json, Path.of("linear-rope/config.json"));
            assertEquals("linear", config.ropeScaling().type());
            Path dir = tmp.resolve("linear-" + key);
            try (CausalLM m = Models.create(config, DType.F32, 13)) {
                Models.save(m, dir, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            }
            assertParity(dir, TOKENS.clone(), DType.F64, 1e-10);
            assertParity(dir, TOKENS.clone(), DType.F32, 1e-4);
            if (unscaled == null) {
                // The same weights without scaling: the reference's logits differ by far more than the tolerance.
                Path plain = java.nio.file.Files.createDirectories(tmp.resolve("linear-off"));
                java.nio.file.Files.copy(dir.resolve("model.safetensors"), plain.resolve("model.safetensors"));
                var saved = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(dir.resolve("config.json").toFile());
                saved.putNull("rope_scaling");
                java.nio.file.Files.writeString(plain.resolve("config.json"), saved.toString());
                unscaled = ReferenceDecoder.logits(plain, TOKENS.clone());
                double[][] scaled = ReferenceDecoder.logits(dir, TOKENS.clone());
                double largest = 0;
                for (int t = 0; t < TOKENS.length; t++)
                    for (int v = 0; v < scaled[t].length; v++) largest = Math.max(largest, Math.abs(scaled[t][v] - unscaled[t][v]));
                assertTrue(largest > 1e-2, "linear scaling changes the logits: " + largest);
            }
        }
    }
}
