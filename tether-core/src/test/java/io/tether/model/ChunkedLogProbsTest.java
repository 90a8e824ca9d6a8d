package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/**
 * Chunked log-probs (never the whole B x T x V logits) give the values, extras and gradients of the unchunked path, in
 * fp64 to 1e-10: every family (tied and untied heads), full fine-tuning and LoRA, with a temperature, with a value head
 * sharing the hidden states (PPO), with gradient checkpointing, and without gradients (a reference).
 */
class ChunkedLogProbsTest {
    /** Three right-padded rows of 7 tokens (token 0 pads). */
    static final long[] IDS = {1, 5, 9, 2, 7, 3, 11, 4, 6, 8, 10, 12, 0, 0, 2, 2, 3, 1, 0, 0, 0};
    static final int ROWS = 3, LEN = 7;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    /** Values of log-probs and extras, and the gradients of the trainable parameters, of one forward and backward. */
    record Run(double[] logps, double[] mean, double[] entropy, double[] logSumSquares, Map<String, double[]> grads) {}

    /**
     * A loss that weighs each position's log-prob differently and non-linearly (so g differs per token), plus, with
     * {@code valueHead}, a term on the same hidden states as PPO's value head.
     */
    static Run run(CausalLM m, int chunk, double temperature, boolean valueHead, boolean grad) {
        int before = LogProbs.setChunkPositions(chunk);
        try (StepScope s = new StepScope()) {
            Tensor ids = Tensors.longs(IDS, ROWS, LEN);
            NoGradGuard off = grad ? null : new NoGradGuard();
            Tensor hidden = m.hiddenStates(ids, null, null, null);
            LogProbs.TokenScores sc = LogProbs.tokenScores(m, hidden, ids, temperature, EnumSet.allOf(LogProbs.Extra.class));
            double[] w = new double[ROWS * (LEN - 1)];
            for (int i = 0; i < w.length; i++) w[i] = 0.3 + 0.1 * (i % 5) - (i % 3 == 0 ? 0.5 : 0);
            Map<String, double[]> grads = new LinkedHashMap<>();
            if (grad) {
                Tensor lp = sc.logps();
                Tensor loss = lp.mul(Tensors.doubles(w, ROWS, LEN - 1)).sum().add(lp.exp().sum().mul(Tensors.scalar(0.7)));
                if (valueHead) {
                    double[] u = new double[(int) hidden.size(2)];
                    for (int i = 0; i < u.length; i++) u[i] = Math.sin(i + 1.0);
                    loss = loss.add(torch_matmul(hidden, Tensors.doubles(u, u.length)).square().sum().mul(Tensors.scalar(0.05)));
                }
                loss.backward();
                m.backwardCheckpoints();
                for (Map.Entry<String, Tensor> e : m.trainableParameters().entrySet()) {
                    Tensor g = e.getValue().grad();
                    assertTrue(g.defined(), e.getKey() + " got no gradient");
                    grads.put(e.getKey(), Tensors.toDoubles(g.contiguous()));
                    g.zero_();
                }
            } else {
                assertFalse(sc.logps().requires_grad(), "no-grad scoring returned a graph");
            }
            Run r = new Run(Tensors.toDoubles(sc.logps().contiguous()), Tensors.toDoubles(sc.meanLogits().contiguous()),
                    Tensors.toDoubles(sc.entropy().contiguous()), Tensors.toDoubles(sc.logSumSquares().contiguous()), grads);
            if (off != null) off.close();
            return r;
        } finally {
            LogProbs.setChunkPositions(before);
        }
    }

    static Tensor torch_matmul(Tensor a, Tensor b) {
        return org.bytedeco.pytorch.global.torch.matmul(a, b);
    }

    static void assertSame(Run expected, Run actual, String what) {
        assertArrayEquals(expected.logps(), actual.logps(), 1e-10, what + ": log-probs");
        assertArrayEquals(expected.mean(), actual.mean(), 1e-10, what + ": mean logits");
        assertArrayEquals(expected.entropy(), actual.entropy(), 1e-10, what + ": entropy");
        assertArrayEquals(expected.logSumSquares(), actual.logSumSquares(), 1e-10, what + ": log sum p^2");
        assertEquals(expected.grads().keySet(), actual.grads().keySet(), what);
        for (String k : expected.grads().keySet()) {
            double[] e = expected.grads().get(k), a = actual.grads().get(k);
            assertTrue(java.util.Arrays.stream(e).anyMatch(x -> x != 0), what + ": " + k + " has an all-zero gradient");
            assertArrayEquals(e, a, 1e-10, what + ": gradient of " + k);
        }
    }

    /** Chunk sizes that split 18 positions evenly, unevenly, one per chunk, and automatically (one chunk here: the unchunked path). */
    static final int[] CHUNKS = {3, 5, 1, -1};

    @Test
    void fullFineTuningMatchesTheUnchunkedPathForEveryFamily() {
        for (ModelConfig config : TinyConfigs.all()) {
            try (CausalLM m = Models.create(config, DType.F64, 5)) {
                m.setTrainable(true);
                for (double temperature : new double[] {1.0, 0.7}) {
                    Run full = run(m, 0, temperature, true, true);
                    for (int chunk : CHUNKS)
                        assertSame(full, run(m, chunk, temperature, true, true), config.architecture() + " T=" + temperature + " chunk " + chunk);
                }
            }
        }
    }

    @Test
    void loraMatchesTheUnchunkedPath() {
        for (ModelConfig config : new ModelConfig[] {TinyConfigs.llama(), TinyConfigs.qwen2(), TinyConfigs.gpt2()}) {
            try (CausalLM m = Models.create(config, DType.F64, 6)) {
                LoraAdapters l = LoraAdapters.attach(m, new LoraAdapters.Config(4, 8, 0.0, List.of("all-linear"), false), 1);
                LoraTest.perturb(l);
                m.setTrainable(true);
                Run full = run(m, 0, 0.7, false, true);
                assertTrue(full.grads().keySet().stream().allMatch(k -> k.contains("lora_")), "only adapters train: " + full.grads().keySet());
                for (int chunk : CHUNKS) assertSame(full, run(m, chunk, 0.7, false, true), config.architecture() + " LoRA chunk " + chunk);
            }
        }
    }

    @Test
    void gradientCheckpointingAndChunkingTogetherMatch() {
        for (ModelConfig config : new ModelConfig[] {TinyConfigs.llama(), TinyConfigs.gpt2()}) {
            try (CausalLM m = Models.create(config, DType.F64, 7)) {
                m.setTrainable(true);
                Run full = run(m, 0, 1.0, true, true);
                m.setGradientCheckpointing(true);
                try {
                    assertSame(full, run(m, 4, 1.0, true, true), config.architecture() + " checkpointed");
                } finally {
                    m.setGradientCheckpointing(false);
                }
            }
        }
    }

    @Test
    void referenceScoringWithoutGradientsMatches() {
        for (ModelConfig config : new ModelConfig[] {TinyConfigs.llama(), TinyConfigs.qwen2(), TinyConfigs.gpt2()}) {
            try (CausalLM m = Models.create(config, DType.F64, 8)) {
                m.setTrainable(true);   // the policy used as its own reference: no graph all the same
                Run full = run(m, 0, 0.7, false, false);
                for (int chunk : CHUNKS) assertSame(full, run(m, chunk, 0.7, false, false), config.architecture() + " no-grad chunk " + chunk);
            }
        }
    }

    @Test
    void aChunkSizeBelowMinusOneIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> LogProbs.setChunkPositions(-2));
    }
}
