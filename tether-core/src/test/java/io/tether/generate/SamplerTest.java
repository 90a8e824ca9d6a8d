package io.tether.generate;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/**
 * Nucleus (top-p) sampling on distributions whose kept set is known, with HF's rule (transformers'
 * TopPLogitsWarper): sort ascending, remove the tokens whose cumulative probability is {@code <= 1 - top_p}, always
 * keep the most likely one, and draw from the kept tokens renormalised.
 */
class SamplerTest {
    @BeforeAll
    static void load() {
        Torch.init();
    }

    static SamplingConfig topP(double p, long seed) {
        return new SamplingConfig(1, 1.0, 0, p, seed, List.of(), List.of(), true);
    }

    /** How often each of {@code vocab} tokens is drawn from {@code logits} over {@code draws} draws, one row at a time. */
    static double[] frequencies(double[] logits, SamplingConfig config, int draws) {
        int vocab = logits.length;
        double[] counts = new double[vocab];
        try (Sampler sampler = new Sampler(config)) {
            for (int i = 0; i < draws; i++) {
                try (StepScope s = new StepScope()) {
                    Tensor next = sampler.next(Tensors.doubles(logits, 1, vocab));
                    counts[(int) Tensors.toLongs(next)[0]]++;
                }
            }
        }
        for (int v = 0; v < vocab; v++) counts[v] /= draws;
        return counts;
    }

    static double[] logs(double... p) {
        double[] out = new double[p.length];
        for (int i = 0; i < p.length; i++) out[i] = Math.log(p[i]);
        return out;
    }

    @Test
    void keepsTheSmallestTopSetReachingTopPAndRenormalises() {
        // Token:        0     1     2     3     4     5
        // p:            0.12  0.35  0.05  0.25  0.08  0.15
        // Ascending: 2 (0.05), 4 (0.08), 0 (0.12), 5 (0.15), 3 (0.25), 1 (0.35); cumulative 0.05, 0.13, 0.25, 0.40, 0.65, 1.
        // top_p 0.7 removes the cumulative <= 0.3: tokens 2, 4, 0. Token 5 crosses the threshold and is kept, so the
        // kept mass is 0.75 (the two best alone, 0.60, fall short of 0.7): 3 of 6 tokens, renormalised to
        // 0.35/0.75 = 0.4667, 0.25/0.75 = 0.3333, 0.15/0.75 = 0.2.
        double[] logits = logs(0.12, 0.35, 0.05, 0.25, 0.08, 0.15);
        double[] f = frequencies(logits, topP(0.7, 3), 20000);
        System.out.printf("top-p 0.7 frequencies %s%n", java.util.Arrays.toString(f));
        double[] expected = {0, 0.35 / 0.75, 0, 0.25 / 0.75, 0, 0.15 / 0.75};
        for (int v = 0; v < 6; v++) {
            if (expected[v] == 0) assertEquals(0.0, f[v], "token " + v + " is outside the nucleus");
            // 20,000 draws: the standard error is at most 0.0036, so 0.015 is over 4 of them.
            else assertEquals(expected[v], f[v], 0.015, "token " + v);
        }
    }

    @Test
    void aTokenExactlyAtTheThresholdIsRemoved() {
        // Four equal logits: p = 0.25 each, exactly, and cumulative 0.25, 0.5, 0.75, 1. With top_p 0.75 the first
        // sorted token has cumulative 0.25 <= 1 - 0.75 and is removed (HF's "<="): 3 tokens remain, 1/3 each. At
        // top_p 0.76 (threshold 0.24) all four stay.
        double[] uniform = new double[4];
        double[] three = frequencies(uniform, topP(0.75, 5), 6000);
        int kept = 0;
        for (double x : three) {
            if (x > 0) {
                kept++;
                assertEquals(1.0 / 3, x, 0.03);
            }
        }
        assertEquals(3, kept, java.util.Arrays.toString(three));
        double[] four = frequencies(uniform, topP(0.76, 5), 6000);
        for (double x : four) assertEquals(0.25, x, 0.03, java.util.Arrays.toString(four));
    }

    @Test
    void theMostLikelyTokenIsAlwaysKept() {
        // top_p below the best token's own mass: everything but token 1 has cumulative <= 1 - top_p.
        double[] f = frequencies(logs(0.12, 0.35, 0.05, 0.25, 0.08, 0.15), topP(0.3, 7), 500);
        assertEquals(1.0, f[1], 0.0);
        f = frequencies(logs(0.12, 0.35, 0.05, 0.25, 0.08, 0.15), topP(1e-9, 7), 500);
        assertEquals(1.0, f[1], 0.0);
    }
}
