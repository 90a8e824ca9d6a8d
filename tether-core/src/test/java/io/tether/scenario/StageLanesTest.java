package io.tether.scenario;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.junit.jupiter.api.Test;

class StageLanesTest {
    @Test
    void runsStagesSideBySideAndDependentsAfterTheirDependency() throws Exception {
        List<String> order = new CopyOnWriteArrayList<>();
        CountDownLatch both = new CountDownLatch(2);
        try (StageLanes lanes = new StageLanes(2)) {
            // Each of the first two waits for the other to have started: they can only finish if they run at once.
            StageLanes.Task a = lanes.submit(() -> {
                both.countDown();
                await(both);
                order.add("a");
            });
            lanes.submit(() -> {
                both.countDown();
                await(both);
                order.add("b");
            });
            lanes.after(a, () -> order.add("after-a"));
            lanes.awaitAll();
        }
        assertEquals(3, order.size());
        assertTrue(order.indexOf("after-a") > order.indexOf("a"), order.toString());
    }

    @Test
    void sideBySideStagesRunOpenBlasOnOneThreadAndGiveItsPoolBackOnClose() throws Exception {
        int before = io.tether.engine.Torch.blasThreads();
        try (StageLanes lanes = new StageLanes(2)) {
            CountDownLatch asked = new CountDownLatch(1);
            StageLanes.Value<Integer> seen = lanes.compute(() -> {
                await(asked);
                return io.tether.engine.Torch.blasThreads();
            });
            assertThrows(IllegalStateException.class, seen::get, "a value is not readable before it is computed");
            asked.countDown();
            lanes.awaitAll();
            assertEquals(1, seen.get());
        }
        assertEquals(before, io.tether.engine.Torch.blasThreads());
    }

    @Test
    void stagesWaitingForOneStartInTheOrderTheyWereAdded() throws Exception {
        List<String> order = new CopyOnWriteArrayList<>();
        try (StageLanes lanes = new StageLanes(1)) {
            StageLanes.Task first = lanes.submit(() -> order.add("first"));
            for (String name : List.of("ppo", "online-dpo", "ppo-weak-kl")) lanes.after(first, () -> order.add(name));
            lanes.awaitAll();
        }
        assertEquals(List.of("first", "ppo", "online-dpo", "ppo-weak-kl"), order);
    }

    @Test
    void rethrowsTheFirstFailureOnceRunningStagesStopAndStartsNothingAfterIt() throws Exception {
        AtomicBoolean slowFinished = new AtomicBoolean(), laterStarted = new AtomicBoolean(), dependentStarted = new AtomicBoolean();
        CountDownLatch slowRunning = new CountDownLatch(1);
        IOException thrown;
        try (StageLanes lanes = new StageLanes(2)) {
            lanes.submit(() -> {
                slowRunning.countDown();
                sleep(300);
                slowFinished.set(true);
            });
            StageLanes.Task failing = lanes.submit(() -> {
                await(slowRunning);
                throw new IOException("stage rm: disk full");
            });
            lanes.after(failing, () -> dependentStarted.set(true));
            lanes.submit(() -> laterStarted.set(true));
            thrown = assertThrows(IOException.class, lanes::awaitAll);
        }
        assertEquals("stage rm: disk full", thrown.getMessage());
        assertTrue(slowFinished.get(), "awaitAll returned while a stage was still running");
        assertFalse(dependentStarted.get(), "a stage ran after the stage it needs failed");
        assertFalse(laterStarted.get(), "a queued stage started after a failure");
    }

    private static void await(CountDownLatch latch) throws IOException {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) throw new IOException("timed out: the stages did not run side by side");
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
    }

    private static void sleep(long ms) throws IOException {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
    }
}
