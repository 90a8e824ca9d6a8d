package io.tether.engine;

import static org.junit.jupiter.api.Assertions.*;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class EngineTest {
    @BeforeAll
    static void load() {
        Torch.init();
    }

    @Test
    void roundTripsJavaArrays() {
        try (StepScope s = new StepScope()) {
            Tensor t = Tensors.floats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            assertArrayEquals(new long[] {2, 3}, Tensors.shape(t));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, Tensors.toFloats(t));
            assertArrayEquals(new long[] {7, 8}, Tensors.toLongs(Tensors.longs(new long[] {7, 8}, 2)));
            assertEquals(DType.F32, Tensors.dtype(t));
            assertEquals(DType.BF16, Tensors.dtype(t.to(DType.BF16.scalarType)));
            assertEquals(DType.I64, Tensors.dtype(Tensors.longs(new long[] {1}, 1)));
        }
    }

    @Test
    void nativeScalarTypesMapByValueNotIdentity() {
        // Enums that come back from native code are fresh objects: identity comparison is silently wrong.
        try (StepScope s = new StepScope()) {
            Tensor t = Tensors.zeros(DType.F16, 2);
            assertEquals(DType.F16, DType.of(t.scalar_type()));
        }
    }

    @Test
    void seededDrawsDoNotInterleaveAcrossThreads() throws Exception {
        // Two runs in one JVM (the demo's lanes) each seed the global generator and draw their initial weights; the
        // draws must be what each seed alone gives, however the threads interleave.
        float[][] alone = new float[2][];
        for (int k = 0; k < 2; k++) {
            long seed = 100 + k;
            alone[k] = Torch.seeded(seed, EngineTest::twoDraws);
        }
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            java.util.List<java.util.concurrent.Future<Integer>> mismatches = new java.util.ArrayList<>();
            for (int k = 0; k < 2; k++) {
                int lane = k;
                mismatches.add(pool.submit(() -> {
                    int bad = 0;
                    for (int i = 0; i < 300; i++) {
                        float[] drawn = Torch.seeded(100 + lane, EngineTest::twoDraws);
                        if (!java.util.Arrays.equals(alone[lane], drawn)) bad++;
                    }
                    return bad;
                }));
            }
            for (var m : mismatches) assertEquals(0, m.get(), "draws that differ from the seed's own sequence");
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void openBlasThreadsAreSetAndRestored() {
        int before = Torch.blasThreads();
        try {
            Torch.setBlasThreads(1);
            assertEquals(1, Torch.blasThreads());
        } finally {
            Torch.setBlasThreads(before);
        }
        assertEquals(before, Torch.blasThreads());
        assertThrows(IllegalArgumentException.class, () -> Torch.setBlasThreads(0));
    }

    private static float[] twoDraws() {
        try (StepScope s = new StepScope()) {
            float[] first = Tensors.toFloats(torch.randn(32));
            Thread.yield();   // invites the other lane in between the two draws of one seed
            float[] second = Tensors.toFloats(torch.randn(32));
            float[] both = java.util.Arrays.copyOf(first, 64);
            System.arraycopy(second, 0, both, 32, 32);
            return both;
        }
    }

    @Test
    void threadsAreSetExplicitly() {
        Torch.setThreads(1);
        assertEquals(1, Torch.threads());
        Torch.init();   // already loaded: keeps the application's choice
        assertEquals(1, Torch.threads());
        Torch.init(Torch.defaultThreads());
        assertEquals(Torch.defaultThreads(), Torch.threads());
    }

    @Test
    void groupedQueryAttentionMatchesRepeatedHeads() {
        try (StepScope s = new StepScope()) {
            Torch.seed(1);
            Tensor q = torch.randn(2, 4, 5, 8);
            Tensor k = torch.randn(2, 2, 5, 8);
            Tensor v = torch.randn(2, 2, 5, 8);
            Tensor fused = Tensors.attention(q, k, v, null, true, true, null);
            Tensor kr = k.repeat_interleave(2, new org.bytedeco.pytorch.LongOptional(1), new org.bytedeco.pytorch.LongOptional());
            Tensor vr = v.repeat_interleave(2, new org.bytedeco.pytorch.LongOptional(1), new org.bytedeco.pytorch.LongOptional());
            Tensor plain = Tensors.attention(q, kr, vr, null, true, false, null);
            assertTrue(fused.sub(plain).abs().max().item_double() < 1e-6);
        }
    }

    @Test
    void scopeFreesTemporariesAndKeepsWhatIsKept() {
        Tensor kept;
        try (StepScope s = new StepScope()) {
            Tensor tmp = Tensors.ones(DType.F32, 4);
            kept = StepScope.keep(tmp.mul(Tensors.scalar(3)));
        }
        assertArrayEquals(new float[] {3, 3, 3, 3}, Tensors.toFloats(kept));
        kept.close();
    }
}
