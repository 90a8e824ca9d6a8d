package io.tether.scenario;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import io.tether.engine.Torch;

/**
 * Runs the demo's stages on a fixed number of lanes (threads), each stage when the one it needs is done. After a
 * failure no stage that has not started yet starts, and {@link #awaitAll} rethrows the failure only once every
 * running stage has stopped, so nothing is left half-written behind the error.
 *
 * <p>With more than one lane, OpenBLAS runs on one thread until {@link #close}: its idle workers spin, and runs side
 * by side each with the default pool were 9x slower than one after another (see {@link Torch#setBlasThreads}).
 */
final class StageLanes implements AutoCloseable {
    @FunctionalInterface
    interface Work {
        void run() throws IOException;
    }

    @FunctionalInterface
    interface Computation<T> {
        T run() throws IOException;
    }

    /** What a {@link #compute} stage produced, readable once {@link #awaitAll} has returned. */
    static final class Value<T> {
        private volatile T value;
        private volatile boolean done;

        T get() {
            if (!done) throw new IllegalStateException("not computed: read after awaitAll, which rethrows a stage's failure");
            return value;
        }
    }

    /** A submitted stage; others can be made to wait for it. */
    static final class Task {
        private final CompletableFuture<Void> done;
        /** Stages waiting for this one, queued in the order they were added once it ends (CompletableFuture's own dependents run last-added first). */
        private final List<Runnable> followers = new ArrayList<>();
        private boolean ended;

        private Task(CompletableFuture<Void> done) {
            this.done = done;
            done.whenComplete((v, e) -> end());
        }

        private void follow(Runnable start) {
            synchronized (this) {
                if (!ended) {
                    followers.add(start);
                    return;
                }
            }
            start.run();
        }

        private void end() {
            List<Runnable> now;
            synchronized (this) {
                ended = true;
                now = List.copyOf(followers);
                followers.clear();
            }
            now.forEach(Runnable::run);
        }
    }

    private final ExecutorService pool;
    private final List<CompletableFuture<Void>> submitted = new ArrayList<>();
    private volatile Throwable firstFailure;
    /** OpenBLAS's thread count before this pool set it to 1; 0 when it did not. */
    private final int blasThreadsBefore;

    StageLanes(int lanes) {
        if (lanes < 1) throw new IllegalArgumentException("lanes must be >= 1, got " + lanes);
        blasThreadsBefore = lanes > 1 ? Torch.blasThreads() : 0;
        if (lanes > 1) Torch.setBlasThreads(1);
        AtomicInteger n = new AtomicInteger();
        pool = Executors.newFixedThreadPool(lanes, r -> {
            Thread t = new Thread(r, "demo-lane-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /** Queues {@code work} to start when a lane is free. */
    Task submit(Work work) {
        return track(CompletableFuture.runAsync(guarded(work), pool));
    }

    /** Queues a stage that produces a value, to start when a lane is free. */
    <T> Value<T> compute(Computation<T> computation) {
        Value<T> v = new Value<>();
        submit(() -> {
            v.value = computation.run();
            v.done = true;
        });
        return v;
    }

    /**
     * Queues {@code work} to start, when a lane is free, after {@code dependency} has succeeded; stages waiting for
     * the same one are queued in the order they were added.
     */
    Task after(Task dependency, Work work) {
        CompletableFuture<Void> f = new CompletableFuture<>();
        Runnable body = guarded(work);
        dependency.follow(() -> {
            if (dependency.done.isCompletedExceptionally()) {
                f.completeExceptionally(new CancellationException("not started: a stage it needs failed"));
                return;
            }
            CompletableFuture.runAsync(body, pool).whenComplete((v, e) -> {
                if (e == null) f.complete(null);
                else f.completeExceptionally(e);
            });
        });
        return track(f);
    }

    /** Waits for every stage; rethrows the first failure (an I/O error as itself). */
    void awaitAll() throws IOException {
        try {
            CompletableFuture.allOf(submitted.toArray(CompletableFuture[]::new)).join();
        } catch (CompletionException | CancellationException e) {
            // allOf completes only once every stage has, so nothing is still running here.
        }
        Throwable t = firstFailure;
        if (t == null) return;
        if (t instanceof IOException io) throw io;
        if (t instanceof RuntimeException re) throw re;
        if (t instanceof Error err) throw err;
        throw new IllegalStateException(t);
    }

    @Override
    public void close() {
        pool.shutdownNow();
        if (blasThreadsBefore > 0) Torch.setBlasThreads(blasThreadsBefore);
    }

    private Task track(CompletableFuture<Void> f) {
        submitted.add(f);
        return new Task(f);
    }

    private Runnable guarded(Work work) {
        return () -> {
            if (firstFailure != null) throw new CancellationException("not started: an earlier stage failed");
            try {
                work.run();
            } catch (IOException e) {
                fail(e);
                throw new UncheckedIOException(e);
            } catch (RuntimeException | Error e) {
                fail(e);
                throw e;
            }
        };
    }

    private synchronized void fail(Throwable t) {
        if (firstFailure == null) firstFailure = t;
    }
}
