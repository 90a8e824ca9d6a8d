package io.tether.generate;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.model.TinyConfigs;

class GeneratorTest {
    private static final List<long[]> PROMPTS = List.of(new long[] {1, 2, 3, 4, 5}, new long[] {7}, new long[] {2, 9, 4});

    @Test
    void cachedGreedyDecodeEqualsUncached() {
        for (ModelConfig config : TinyConfigs.all()) {
            try (CausalLM model = Models.create(config, DType.F32, 21)) {
                SamplingConfig greedy = SamplingConfig.greedy(20);
                List<Generator.Generation> cached = Generator.generate(model, PROMPTS, greedy);
                List<Generator.Generation> uncached = Generator.generate(model, PROMPTS, greedy.withCache(false));
                for (int i = 0; i < PROMPTS.size(); i++) {
                    assertEquals(20, cached.get(i).tokens().length);
                    assertArrayEquals(uncached.get(i).tokens(), cached.get(i).tokens(), config.architecture() + " prompt " + i);
                }
            }
        }
    }

    @Test
    void aRowGeneratesTheSameAloneAsInABatch() {
        for (ModelConfig config : TinyConfigs.all()) {
            try (CausalLM model = Models.create(config, DType.F32, 22)) {
                List<Generator.Generation> batch = Generator.generate(model, PROMPTS, SamplingConfig.greedy(12));
                for (int i = 0; i < PROMPTS.size(); i++) {
                    long[] alone = Generator.generate(model, List.of(PROMPTS.get(i)), SamplingConfig.greedy(12)).get(0).tokens();
                    assertArrayEquals(alone, batch.get(i).tokens(), config.architecture() + " prompt " + i);
                }
            }
        }
    }

    @Test
    void sharedPrefixGroupsSampleWhatRepeatedPromptsSample() {
        for (ModelConfig config : TinyConfigs.all()) {
            // fp64 so that prefilling 3 rows instead of 12 cannot move a sampled token by rounding.
            try (CausalLM model = Models.create(config, DType.F64, 24)) {
                int g = 4;
                List<long[]> repeated = new java.util.ArrayList<>();
                for (long[] p : PROMPTS) for (int k = 0; k < g; k++) repeated.add(p);
                SamplingConfig sampling = new SamplingConfig(10, 1.0, 0, 1.0, 5, List.of(), List.of(), true);
                List<Generator.Generation> shared = Generator.generate(model, PROMPTS, g, sampling, null);
                List<Generator.Generation> separate = Generator.generate(model, repeated, sampling);
                assertEquals(repeated.size(), shared.size());
                boolean groupsVary = false;
                for (int i = 0; i < repeated.size(); i++) {
                    assertArrayEquals(separate.get(i).tokens(), shared.get(i).tokens(), config.architecture() + " row " + i);
                    assertArrayEquals(separate.get(i).logprobs(), shared.get(i).logprobs(), 1e-9);
                    groupsVary |= i % g > 0 && !java.util.Arrays.equals(shared.get(i).tokens(), shared.get(i - 1).tokens());
                }
                assertTrue(groupsVary, "samples of one prompt should differ at temperature 1");
            }
        }
    }

    @Test
    void samplingLogprobsAreTheTemperatureScaledLogSoftmaxOfTheFullForward() {
        try (CausalLM model = Models.create(TinyConfigs.llama(), DType.F64, 25)) {
            double temperature = 0.7;
            SamplingConfig sampling = new SamplingConfig(6, temperature, 0, 1.0, 3, List.of(), List.of(), true);
            Generator.Generation gen = Generator.generate(model, List.of(PROMPTS.get(0)), sampling).get(0);
            long[] prompt = PROMPTS.get(0);
            long[] all = java.util.Arrays.copyOf(prompt, prompt.length + gen.tokens().length);
            System.arraycopy(gen.tokens(), 0, all, prompt.length, gen.tokens().length);
            try (var scope = new io.tether.engine.StepScope(); var ng = new org.bytedeco.pytorch.NoGradGuard()) {
                var logits = io.tether.model.LogProbs.predictionLogits(model, io.tether.engine.Tensors.longs(all, 1, all.length), null, null)
                        .div(io.tether.engine.Tensors.scalar(temperature));
                double[] lp = io.tether.engine.Tensors.toDoubles(io.tether.model.LogProbs.tokenLogprobs(logits, io.tether.engine.Tensors.longs(all, 1, all.length)));
                for (int j = 0; j < gen.tokens().length; j++) assertEquals(lp[prompt.length - 1 + j], gen.logprobs()[j], 1e-9, "token " + j);
            }
            assertFalse(gen.truncated() && gen.finishReason() != Generator.FinishReason.LENGTH);
        }
    }

    @Test
    void samplingIsReproducibleFromTheSeed() {
        try (CausalLM model = Models.create(TinyConfigs.llama(), DType.F32, 23)) {
            SamplingConfig a = new SamplingConfig(16, 1.3, 0, 1.0, 99, List.of(), List.of(), true);
            SamplingConfig b = new SamplingConfig(16, 1.3, 0, 1.0, 100, List.of(), List.of(), true);
            long[] first = Generator.generate(model, PROMPTS, a).get(0).tokens();
            assertArrayEquals(first, Generator.generate(model, PROMPTS, a).get(0).tokens());
            boolean differs = false;
            for (int i = 0; i < PROMPTS.size(); i++)
                differs |= !java.util.Arrays.equals(Generator.generate(model, PROMPTS, a).get(i).tokens(), Generator.generate(model, PROMPTS, b).get(i).tokens());
            assertTrue(differs, "another seed should give other samples at temperature 1.3");
        }
    }

    @Test
    void topKOfOneAndTinyTopPAreGreedy() {
        try (CausalLM model = Models.create(TinyConfigs.gpt2(), DType.F32, 24)) {
            List<Generator.Generation> greedy = Generator.generate(model, PROMPTS, SamplingConfig.greedy(10));
            List<Generator.Generation> topK = Generator.generate(model, PROMPTS, new SamplingConfig(10, 2.0, 1, 1.0, 5, List.of(), List.of(), true));
            List<Generator.Generation> topP = Generator.generate(model, PROMPTS, new SamplingConfig(10, 1.0, 0, 1e-6, 5, List.of(), List.of(), true));
            for (int i = 0; i < PROMPTS.size(); i++) {
                assertArrayEquals(greedy.get(i).tokens(), topK.get(i).tokens());
                assertArrayEquals(greedy.get(i).tokens(), topP.get(i).tokens());
            }
        }
    }

    @Test
    void topKRestrictsTheDrawToTheKBestTokens() {
        try (CausalLM model = Models.create(TinyConfigs.llama(), DType.F32, 25)) {
            // With k = 2 every sampled token must be one of the two most likely at its step; check the first step.
            long[] prompt = {3, 4};
            var logits = model.forward(io.tether.engine.Tensors.longs(prompt, 1, 2)).select(1, 1).squeeze(0);
            long[] top2 = io.tether.engine.Tensors.toLongs(org.bytedeco.pytorch.global.torch.topk(logits, 2, -1, true, true).get1());
            for (long seed = 0; seed < 20; seed++) {
                long first = Generator.generate(model, List.of(prompt), new SamplingConfig(1, 5.0, 2, 1.0, seed, List.of(), List.of(), true)).get(0).tokens()[0];
                assertTrue(first == top2[0] || first == top2[1], "sampled " + first + " outside the top 2 " + java.util.Arrays.toString(top2));
            }
        }
    }

    @Test
    void eachRowStopsWhereItsPromptAndCompletionFillTheModelsPositions() {
        try (CausalLM model = Models.create(ModelConfig.llama(32, 16, 1, 2, 2, 32, 12), DType.F32, 27)) {
            List<long[]> prompts = List.of(new long[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, new long[] {3, 4});
            List<Generator.Generation> g = Generator.generate(model, prompts, SamplingConfig.greedy(20));
            // 12 positions: the 9-token prompt leaves 3, the 2-token prompt 10; the sequence can then be scored whole.
            assertEquals(3, g.get(0).tokens().length);
            assertEquals(10, g.get(1).tokens().length);
            assertEquals(Generator.FinishReason.LENGTH, g.get(0).finishReason());
            assertArrayEquals(Generator.generate(model, List.of(prompts.get(0)), SamplingConfig.greedy(20)).get(0).tokens(), g.get(0).tokens());
            var e = assertThrows(IllegalArgumentException.class, () -> Generator.generate(model, List.of(new long[12]), SamplingConfig.greedy(4)));
            assertTrue(e.getMessage().contains("prompt 0 has 12 tokens") && e.getMessage().contains("12 positions"), e.getMessage());
        }
    }

    @Test
    void stopsOnEosTokensAndStopStrings() {
        try (CausalLM model = Models.create(TinyConfigs.llama(), DType.F32, 26)) {
            long[] free = Generator.generate(model, List.of(PROMPTS.get(0)), SamplingConfig.greedy(8)).get(0).tokens();
            Generator.Generation eos = Generator.generate(model, List.of(PROMPTS.get(0)), SamplingConfig.greedy(8).withStopTokens(List.of(free[2]))).get(0);
            assertEquals(Generator.FinishReason.EOS, eos.finishReason());
            int firstHit = 0;
            while (free[firstHit] != free[2]) firstHit++;
            assertEquals(firstHit + 1, eos.tokens().length);
            // A decoder that spells each id as a letter: stop when "the text" contains the letters of tokens 3..4.
            java.util.function.Function<long[], String> letters = ids -> {
                StringBuilder sb = new StringBuilder();
                for (long id : ids) sb.append((char) ('a' + id));
                return sb.toString();
            };
            String stop = letters.apply(new long[] {free[3], free[4]});
            SamplingConfig withStop = new SamplingConfig(8, 0, 0, 1.0, 0, List.of(), List.of(stop), true);
            Generator.Generation s = Generator.generate(model, List.of(PROMPTS.get(0)), withStop, letters).get(0);
            assertEquals(Generator.FinishReason.STOP_STRING, s.finishReason());
            assertTrue(letters.apply(s.tokens()).endsWith(stop) || letters.apply(s.tokens()).contains(stop));
            assertTrue(s.tokens().length <= 5);
            assertEquals(Generator.FinishReason.LENGTH, Generator.generate(model, List.of(PROMPTS.get(0)), SamplingConfig.greedy(3)).get(0).finishReason());
            assertThrows(IllegalArgumentException.class, () -> Generator.generate(model, PROMPTS, withStop));
        }
    }

    @Test
    void rejectsBadPrompts() {
        try (CausalLM model = Models.create(TinyConfigs.llama(), DType.F32, 27)) {
            var e = assertThrows(IllegalArgumentException.class, () -> Generator.generate(model, List.of(new long[0]), SamplingConfig.greedy(2)));
            assertTrue(e.getMessage().contains("prompt 0 is empty"));
            e = assertThrows(IllegalArgumentException.class, () -> Generator.generate(model, List.of(new long[] {1, 99}), SamplingConfig.greedy(2)));
            assertTrue(e.getMessage().contains("id 99"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new SamplingConfig(0, 0, 0, 1, 0, List.of(), List.of(), true));
            assertThrows(IllegalArgumentException.class, () -> new SamplingConfig(1, -1, 0, 1, 0, List.of(), List.of(), true));
            assertThrows(IllegalArgumentException.class, () -> new SamplingConfig(1, 1, 0, 0, 0, List.of(), List.of(), true));
        }
    }
}
