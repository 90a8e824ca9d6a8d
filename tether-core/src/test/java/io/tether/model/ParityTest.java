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
}
