package io.tether.engine;

import java.io.IOException;
import java.io.UncheckedIOException;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.openblas.global.openblas_full;
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
            if (n < 1) throw new ConfigException("tether.threads must be >= 1, got " + n);
            return n;
        }
        int cores = Runtime.getRuntime().availableProcessors();
        return cores <= 4 ? 1 : cores;
    }

    public static void setThreads(int threads) {
        if (threads < 1) throw new ConfigException("threads must be >= 1, got " + threads);
        torch.set_num_threads(threads);
    }

    public static int threads() {
        return torch.get_num_threads();
    }

    /** OpenBLAS's own thread pool, which runs torch's CPU GEMMs apart from torch's intra-op threads. */
    public static int blasThreads() {
        init();
        Loader.load(openblas_full.class);
        return openblas_full.openblas_get_num_threads();
    }

    /**
     * Sets OpenBLAS's pool. Two runs side by side in one JVM need it at 1: OpenBLAS's idle workers spin, and two
     * runs each with the default pool of 2 on a 2-core machine took 212 s for what one run does in 23 s (two
     * 20-step DPO runs at once); at 1 thread each the pair took 34 s, where one run alone at 1 thread takes 32 s
     * and at 2 threads 23 s (README, "Engine notes").
     */
    public static void setBlasThreads(int threads) {
        if (threads < 1) throw new IllegalArgumentException("BLAS threads must be >= 1, got " + threads);
        init();
        Loader.load(openblas_full.class);
        openblas_full.openblas_set_num_threads(threads);
    }

    /** Seeds torch's global CPU generator (initialisation, dropout). Sampling uses its own seeded generator. */
    public static void seed(long seed) {
        synchronized (GLOBAL_GENERATOR) {
            torch.manual_seed(seed);
        }
    }

    private static final Object GLOBAL_GENERATOR = new Object();

    /**
     * Seeds torch's global CPU generator and makes {@code draws} from it, with no other thread's seed or draw in
     * between: the generator is process-wide, and two runs in one JVM (the demo trains independent stages side by
     * side) would otherwise interleave their initialisation draws and give weights that depend on timing.
     */
    public static <T> T seeded(long seed, java.util.function.Supplier<T> draws) {
        synchronized (GLOBAL_GENERATOR) {
            torch.manual_seed(seed);
            return draws.get();
        }
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
