package io.tether.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

/** Two ranks joined over loopback (as two threads of this JVM: c10d groups are per object, not per process). */
class ProcessGroupTest {
    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static ProcessGroup.Env env(int rank, int world, int port, int timeoutSeconds) {
        return new ProcessGroup.Env(rank, world, rank, "127.0.0.1", port, Duration.ofSeconds(timeoutSeconds));
    }

    /** Runs {@code body} on every rank of a fresh group, each in its own thread; returns each rank's result. */
    static <T> List<T> onRanks(int world, Function<ProcessGroup, T> body) throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                int rank = r;
                fs.add(pool.submit(() -> {
                    try (ProcessGroup pg = ProcessGroup.join(env(rank, world, port, 60))) {
                        return body.apply(pg);
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : fs) out.add(f.get());
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void collectivesAgreeAcrossRanks() throws Exception {
        Torch.init();
        List<double[]> results = onRanks(2, pg -> {
            try (StepScope scope = new StepScope()) {
                int r = pg.rank();
                // fp32 and fp64 buffers sum element-wise.
                Tensor f = Tensors.floats(new float[] {1 + r, 10 * (r + 1), -r}, 3);
                pg.allReduceSum(f);
                Tensor d = Tensors.doubles(new double[] {0.25 * (r + 1), 1e-12 * r}, 2);
                pg.allReduceSum(d);
                Tensor b = Tensors.doubles(new double[] {r == 1 ? 7 : 3}, 1);
                pg.broadcast(b, 1);
                pg.barrier();
                double[][] gathered = pg.allGather(new double[] {r, 100 + r});
                String[] ex = pg.exchange("hash", "h" + r);
                float[] fv = Tensors.toFloats(f);
                double[] dv = Tensors.toDoubles(d);
                return new double[] {fv[0], fv[1], fv[2], dv[0], dv[1], Tensors.toDoubles(b)[0], gathered[0][0], gathered[0][1], gathered[1][0], gathered[1][1],
                        ex[0].equals("h0") && ex[1].equals("h1") ? 1 : 0};
            }
        });
        double[] expected = {3, 30, -1, 0.75, 1e-12, 7, 0, 100, 1, 101, 1};
        for (double[] r : results) assertArrayEquals(expected, r, 0);
    }

    /**
     * Closing the stores beside the group crashed the JVM in JavaCPP's deallocator thread once the garbage collector
     * ran (2 of 2): groups joined, closed and collected, a few times over, must leave this JVM running.
     */
    @Test
    void closedGroupsSurviveGarbageCollection() throws Exception {
        Torch.init();
        for (int round = 0; round < 3; round++) {
            assertEquals(List.of(2.0, 2.0), onRanks(2, pg -> pg.sum(new double[] {1})[0]));
            System.gc();
            Thread.sleep(1000);   // the deallocator thread releases what the collection found
        }
    }

    @Test
    void environmentVariablesAreReadAsTorchrunSetsThem() {
        assertNull(ProcessGroup.Env.read(Map.of()));
        assertNull(ProcessGroup.Env.read(Map.of("WORLD_SIZE", "1")));
        ProcessGroup.Env e = ProcessGroup.Env.read(Map.of("WORLD_SIZE", "2", "RANK", "1", "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "29500"));
        assertEquals(1, e.rank());
        assertEquals(1, e.localRank());
        assertEquals(ProcessGroup.DEFAULT_TIMEOUT, e.timeout());
        ConfigException missing = assertThrows(ConfigException.class, () -> ProcessGroup.Env.read(Map.of("WORLD_SIZE", "2", "RANK", "0", "MASTER_PORT", "29500")));
        assertTrue(missing.getMessage().contains("MASTER_ADDR"), missing.getMessage());
        ConfigException noRank = assertThrows(ConfigException.class, () -> ProcessGroup.Env.read(Map.of("WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1")));
        assertTrue(noRank.getMessage().contains("RANK"), noRank.getMessage());
        ConfigException bad = assertThrows(ConfigException.class, () -> ProcessGroup.Env.read(Map.of("WORLD_SIZE", "2", "RANK", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1")));
        assertTrue(bad.getMessage().contains("RANK"), bad.getMessage());
    }

    @Test
    void aPortInUseIsRefusedNamingIt() throws Exception {
        Torch.init();
        try (ServerSocket taken = new ServerSocket(0)) {
            int port = taken.getLocalPort();
            ConfigException e = assertThrows(ConfigException.class, () -> ProcessGroup.join(env(0, 2, port, 5)));
            assertTrue(e.getMessage().contains("MASTER_PORT") && e.getMessage().contains(Integer.toString(port)), e.getMessage());
        }
    }

    @Test
    void anUnreachableMasterIsRefusedNamingIt() throws Exception {
        Torch.init();
        int port = freePort();   // nobody listens there
        ConfigException e = assertThrows(ConfigException.class, () -> ProcessGroup.join(env(1, 2, port, 2)));
        assertTrue(e.getMessage().contains("cannot reach") && e.getMessage().contains("127.0.0.1:" + port), e.getMessage());
    }
}
