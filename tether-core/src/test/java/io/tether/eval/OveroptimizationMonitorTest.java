package io.tether.eval;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import io.tether.train.Trainer;

class OveroptimizationMonitorTest {
    static List<String> run(OveroptimizationMonitor m, double[] proxy, double[] gold) {
        for (int i = 0; i < proxy.length; i++)
            m.onStep(i + 1, proxy.length, Map.of("objective/scores", proxy[i], "objective/gold_scores", gold[i], "objective/kl", 0.5 * i));
        List<String> out = new ArrayList<>();
        m.flags().forEach(f -> out.add(f.message()));
        return out;
    }

    @Test
    void proxyUpGoldDownIsFlaggedOnceItClearsTheTolerance() {
        List<String> notices = new ArrayList<>();
        Trainer.Listener sink = new Trainer.Listener() {
            @Override public void onNotice(String message) { notices.add(message); }
        };
        var m = new OveroptimizationMonitor(sink, 2, 0.1);
        // Both rise; then the proxy keeps rising while gold turns down. Two-step means of gold peak at step 5 (0.475)
        // and first fall more than 0.1 below it at step 7 (0.3).
        double[] proxy = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4};
        double[] gold = {0.0, 0.2, 0.4, 0.5, 0.45, 0.35, 0.25, 0.15};
        List<String> flags = run(m, proxy, gold);
        assertFalse(flags.isEmpty());
        assertEquals(flags.get(0), notices.get(0));
        assertTrue(notices.get(0).startsWith("over-optimisation at step 7: the proxy score rose +0.400 while the gold score fell 0.175 since step 5"), notices.get(0));
        assertEquals(1, notices.size(), "one notice, however long it lasts");
    }

    @Test
    void goldRisingWithTheProxyIsNotFlagged() {
        var m = new OveroptimizationMonitor(null, 2, 0.05);
        assertTrue(run(m, new double[] {0, 0.2, 0.4, 0.6, 0.8}, new double[] {0, 0.1, 0.2, 0.3, 0.35}).isEmpty());
        var noisy = new OveroptimizationMonitor(null, 2, 0.1);
        assertTrue(run(noisy, new double[] {0, 0.3, 0.6, 0.9}, new double[] {0.5, 0.48, 0.47, 0.46}).isEmpty(), "a dip within the tolerance");
    }
}
