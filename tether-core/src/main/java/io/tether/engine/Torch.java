package io.tether.engine;

import java.io.IOException;
import java.io.UncheckedIOException;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.pytorch.global.torch;

/**
 * The one place that loads libtorch and sets process-wide engine state (threads, seed).
 *
 * <p>Every entry point calls {@link #init()} before touching a torch class. Loading is idempotent.
 */
public final class Torch {
    private static volatile boolean loaded;

    private Torch() {}

    /**
     * Loads the bundled libtorch; the first load sets the default thread policy ({@link #defaultThreads()}), later
     * calls leave the thread count that the application chose.
     */
    public static void init() {
        if (!loaded) init(defaultThreads());
    }

    /**
     * Loads the bundled libtorch and sets torch's intra-op thread count.
     *
     * <p>The natives are extracted to the JavaCPP cache before the first torch class is touched: with a cold cache
     * and another libtorch on the system library path (Debian's python3-torch), the loader otherwise binds the
     * system library and crashes (engine-notes.md, "Native loading").
     */
    public static synchronized void init(int threads) {
        if (!loaded) {
            try {
                Loader.cacheResources("/org/bytedeco/javacpp/" + Loader.getPlatform() + "/");
                Loader.cacheResources("/org/bytedeco/openblas/" + Loader.getPlatform() + "/");
                Loader.cacheResources("/org/bytedeco/pytorch/" + Loader.getPlatform() + "/");
            } catch (IOException e) {
                throw new UncheckedIOException("cannot extract the bundled libtorch natives to the JavaCPP cache", e);
            }
            Loader.load(torch.class);
            loaded = true;
        }
        setThreads(threads);
    }

    /**
     * Torch's intra-op threads. On this project's reference machines (2 cores) torch's OpenMP pool and the
     * bundled OpenBLAS pool oversubscribe the cores and a step gets 13x slower; OpenBLAS already uses every
     * core for GEMMs, so the default is one OpenMP thread unless {@code tether.threads} says otherwise.
     */
    public static int defaultThreads() {
        String configured = System.getProperty("tether.threads", System.getenv("TETHER_THREADS"));
        if (configured != null && !configured.isBlank()) {
            int n = Integer.parseInt(configured.trim());
            if (n < 1) throw new IllegalArgumentException("tether.threads must be >= 1, got " + n);
            return n;
        }
        int cores = Runtime.getRuntime().availableProcessors();
        return cores <= 4 ? 1 : cores;
    }

    public static void setThreads(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        torch.set_num_threads(threads);
    }

    public static int threads() {
        return torch.get_num_threads();
    }

    /** Seeds torch's global CPU generator (initialisation, dropout). Sampling uses its own seeded generator. */
    public static void seed(long seed) {
        torch.manual_seed(seed);
    }

    /** The bundled libtorch version, e.g. "2.10.0". */
    public static String version() {
        try {
            String v = Loader.getVersion("org.bytedeco", "pytorch");
            return v == null ? "unknown" : v;
        } catch (IOException e) {
            return "unknown";
        }
    }
}
