package io.tether.generate;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.model.TinyConfigs;

class ContinuousBatchTest {
    private static final List<long[]> PROMPTS = List.of(new long[] {1, 2, 3, 4, 5}, new long[] {7}, new long[] {2, 9, 4},
            new long[] {3, 3, 8, 1, 6, 2, 5});

    private static SamplingConfig sampled(int tokens, long seed) {
        return new SamplingConfig(tokens, 0.9, 0, 0.95, seed, List.of(), List.of(), true);
    }

    /** Runs each prompt in its own batch, from join to finish. */
    private static List<long[]> alone(CausalLM model, List<SamplingConfig> configs) {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) {
            try (ContinuousBatch batch = new ContinuousBatch(model)) {
                ContinuousBatch.Row row = batch.join(PROMPTS.get(i), configs.get(i), -1);
                while (!row.done()) batch.step();
                out.add(row.tokenIds());
            }
        }
        return out;
    }

    /**
     * Rows that join at different decode steps (and leave when their budgets differ) generate exactly what Generator
     * gives for the prompt alone (greedy), for every architecture, sliding windows included.
     */
    @Test
    void rowsJoiningAtDifferentStepsMatchTheGenerator() {
        for (ModelConfig config : TinyConfigs.all()) {
            try (CausalLM model = Models.create(config, DType.F32, 31); ContinuousBatch batch = new ContinuousBatch(model)) {
                int[] budgets = {12, 5, 9, 7};
                List<ContinuousBatch.Row> rows = new ArrayList<>();
                int step = 0;
                while (rows.size() < PROMPTS.size() || rows.stream().anyMatch(r -> !r.done())) {
                    // One row joins every other step, while earlier rows are mid-generation.
                    if (rows.size() < PROMPTS.size() && step % 2 == 0)
                        rows.add(batch.join(PROMPTS.get(rows.size()), SamplingConfig.greedy(budgets[rows.size()]), -1));
                    batch.step();
                    step++;
                }
                for (int i = 0; i < PROMPTS.size(); i++) {
                    long[] expected = Generator.generate(model, List.of(PROMPTS.get(i)), SamplingConfig.greedy(budgets[i])).get(0).tokens();
                    assertArrayEquals(expected, rows.get(i).tokenIds(), config.architecture() + " prompt " + i);
                    assertEquals(Generator.FinishReason.LENGTH, rows.get(i).finishReason());
                }
            }
        }
    }

    /**
     * Per-row samplers: a seeded row samples the same tokens alone or among rows that join (one by one or prefilled
     * together) and leave around it.
     */
    @Test
    void seededSamplingIsTheSameAloneAndInABatch() {
        for (ModelConfig config : TinyConfigs.all()) {
            try (CausalLM model = Models.create(config, DType.F32, 32)) {
                List<SamplingConfig> configs = List.of(sampled(10, 5), sampled(6, 6), sampled(10, 7), sampled(3, 5));
                List<long[]> expected = alone(model, configs);
                try (ContinuousBatch batch = new ContinuousBatch(model)) {
                    List<ContinuousBatch.Row> rows = new ArrayList<>();
                    rows.add(batch.join(PROMPTS.get(0), configs.get(0), -1));
                    batch.step();
                    // Two rows of different lengths prefilled together (left-padded), joining a running one.
                    rows.addAll(batch.join(List.of(PROMPTS.get(1), PROMPTS.get(2)), List.of(configs.get(1), configs.get(2)), List.of(-1, -1)));
                    batch.step();
                    batch.step();
                    rows.add(batch.join(PROMPTS.get(3), configs.get(3), -1));
                    while (rows.stream().anyMatch(r -> !r.done())) batch.step();
                    for (int i = 0; i < rows.size(); i++)
                        assertArrayEquals(expected.get(i), rows.get(i).tokenIds(), config.architecture() + " prompt " + i);
                }
                // Different seeds give different samples (so the check above can fail).
                List<long[]> reseeded = alone(model, List.of(sampled(10, 50), sampled(6, 60), sampled(10, 70), sampled(3, 50)));
                boolean differs = false;
                for (int i = 0; i < PROMPTS.size(); i++) differs |= !java.util.Arrays.equals(expected.get(i), reseeded.get(i));
                assertTrue(differs, config.architecture());
            }
        }
    }

    /** Log-probs are the model's log-softmax: the top alternative is the greedy token, and its log-prob is the largest. */
    @Test
    void logprobsAreTheModelsLogSoftmax() {
        ModelConfig config = TinyConfigs.all()[0];
        try (CausalLM model = Models.create(config, DType.F32, 33); ContinuousBatch batch = new ContinuousBatch(model)) {
            ContinuousBatch.Row row = batch.join(PROMPTS.get(0), SamplingConfig.greedy(4), 3);
            while (!row.done()) batch.step();
            for (ContinuousBatch.Token t : row.tokens()) {
                assertEquals(3, t.topIds().length);
                assertEquals(t.id(), t.topIds()[0]);
                assertEquals(t.topLogprobs()[0], t.logprob(), 1e-6);
                assertTrue(t.topLogprobs()[0] >= t.topLogprobs()[1] && t.topLogprobs()[1] >= t.topLogprobs()[2]);
                assertTrue(t.logprob() < 0);
            }
        }
    }
}
