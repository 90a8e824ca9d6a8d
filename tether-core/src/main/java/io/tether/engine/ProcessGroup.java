package io.tether.engine;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;

import org.bytedeco.javacpp.SizeTPointer;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.BarrierOptions;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.ByteVector;
import org.bytedeco.pytorch.GlooDeviceVector;
import org.bytedeco.pytorch.PrefixStore;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.ReduceOp;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Work;

/**
 * A c10d process group over Gloo (CPU): the ranks of one data-parallel run, joined through a {@code TCPStore} that
 * rank 0 hosts at MASTER_ADDR:MASTER_PORT, as torchrun's env:// rendezvous does. It offers the few collectives a
 * trainer needs: sum all-reduce of a flat buffer, broadcast, barrier, all-gather of a few numbers, and a string
 * exchange through the store (config and data hashes at start).
 *
 * <p>Every blocking call is bounded by the group's timeout. A rank that dies closes its sockets, so the others fail
 * at their next collective at once (Gloo reports the closed connection); a rank that hangs is caught by the timeout.
 * Either way the collective throws {@link PeerFailureException}.
 */
public final class ProcessGroup implements AutoCloseable {
    /** torch.distributed's default for Gloo is 30 minutes; a checkpoint written by rank 0 must fit within it. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(30);

    /** A rank's place in the run, from the variables torchrun (and Slurm/Kubernetes launchers) set. */
    public record Env(int rank, int worldSize, int localRank, String masterAddr, int masterPort, Duration timeout) {
        public Env {
            if (worldSize < 1) throw new ConfigException("environment variable WORLD_SIZE: must be >= 1, got " + worldSize);
            if (rank < 0 || rank >= worldSize) throw new ConfigException("environment variable RANK: must be in [0, " + worldSize + "), got " + rank);
            if (masterPort < 1 || masterPort > 65535) throw new ConfigException("environment variable MASTER_PORT: must be in [1, 65535], got " + masterPort);
        }

        /**
         * The rank's place when WORLD_SIZE names more than one process, else null (a single-process run). With
         * WORLD_SIZE > 1 each of RANK, MASTER_ADDR and MASTER_PORT is required (LOCAL_RANK defaults to RANK);
         * TETHER_DIST_TIMEOUT_SECONDS bounds every collective.
         */
        public static Env read(Map<String, String> env) {
            String ws = env.get("WORLD_SIZE");
            if (ws == null || ws.isBlank()) return null;
            int worldSize = integer(env, "WORLD_SIZE");
            if (worldSize == 1) return null;
            int rank = integer(env, "RANK");
            int localRank = env.containsKey("LOCAL_RANK") ? integer(env, "LOCAL_RANK") : rank;
            String addr = env.get("MASTER_ADDR");
            if (addr == null || addr.isBlank()) throw new ConfigException("environment variable MASTER_ADDR: missing (WORLD_SIZE=" + worldSize + " needs the address of rank 0)");
            int port = integer(env, "MASTER_PORT");
            Duration timeout = env.containsKey("TETHER_DIST_TIMEOUT_SECONDS") ? Duration.ofSeconds(integer(env, "TETHER_DIST_TIMEOUT_SECONDS")) : DEFAULT_TIMEOUT;
            if (timeout.isZero() || timeout.isNegative()) throw new ConfigException("environment variable TETHER_DIST_TIMEOUT_SECONDS: must be > 0");
            return new Env(rank, worldSize, localRank, addr.trim(), port, timeout);
        }

        private static int integer(Map<String, String> env, String name) {
            String v = env.get(name);
            if (v == null || v.isBlank()) throw new ConfigException("environment variable " + name + ": missing (a data-parallel run needs RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)");
            try {
                return Integer.parseInt(v.trim());
            } catch (NumberFormatException e) {
                throw new ConfigException("environment variable " + name + ": expected an integer, got '" + v + "'");
            }
        }
    }

    private final Env env;
    private final TCPStore store;
    private final PrefixStore prefixed;
    private final ProcessGroupGloo pg;
    private final Milliseconds timeout;
    private boolean closed;

    private ProcessGroup(Env env, TCPStore store, PrefixStore prefixed, ProcessGroupGloo pg) {
        this.env = env;
        this.store = store;
        this.prefixed = prefixed;
        this.pg = pg;
        this.timeout = new Milliseconds(env.timeout().toMillis());
    }

    /**
     * Joins the group: rank 0 starts the store on MASTER_PORT, every rank connects to it and waits (at most the
     * timeout) for the others, then Gloo connects every pair of ranks. A port already in use and a master that does
     * not answer are refused as {@link ConfigException}s naming them.
     */
    public static ProcessGroup join(Env env) {
        Torch.init();
        Milliseconds timeout = new Milliseconds(env.timeout().toMillis());
        TCPStoreOptions o = new TCPStoreOptions();
        o.port((short) env.masterPort());
        o.isServer(env.rank() == 0);
        o.numWorkers(new SizeTPointer(1).put(env.worldSize()));
        o.waitWorkers(true);
        o.timeout(timeout);
        o.useLibUV(false);
        TCPStore store;
        try {
            store = new TCPStore(env.masterAddr(), o);
        } catch (RuntimeException e) {
            String what = env.rank() == 0
                    ? "rank 0 cannot host the rendezvous store on " + env.masterAddr() + ":" + env.masterPort() + " (is the port in use? choose another --master-port)"
                    : "rank " + env.rank() + " cannot reach the rendezvous store at " + env.masterAddr() + ":" + env.masterPort()
                            + " within " + env.timeout().toSeconds() + " s (is rank 0 running, and MASTER_ADDR/MASTER_PORT right?)";
            throw new ConfigException("environment variable MASTER_PORT: " + what + ": " + firstLine(e.getMessage()), e);
        }
        PrefixStore prefixed = new PrefixStore("tether/default_pg", store);
        ProcessGroupGloo.Options po = ProcessGroupGloo.Options.create(timeout);
        GlooDeviceVector devices = new GlooDeviceVector();
        devices.push_back(device(env));
        po.devices(devices);
        ProcessGroupGloo pg;
        try {
            pg = new ProcessGroupGloo(prefixed, env.rank(), env.worldSize(), po);
        } catch (RuntimeException e) {
            throw new PeerFailureException("rank " + env.rank() + ": the ranks could not connect (a rank exited or is unreachable): " + firstLine(e.getMessage()), e);
        }
        // The group holds the stores through c10 intrusive pointers, which free them when it is closed. JavaCPP's
        // deallocator freeing them again (after a GC) corrupted the heap: 1 run in 3 of DataParallelTest aborted in
        // malloc. retainReference() did not stop the collector's deallocation; deallocate(false) hands them over.
        store.deallocate(false);
        prefixed.deallocate(false);
        return new ProcessGroup(env, store, prefixed, pg);
    }

    /** The interface Gloo listens on: GLOO_SOCKET_IFNAME as torch honours it, loopback for a local run, else the host's name. */
    private static org.bytedeco.pytorch.gloo.Device device(Env env) {
        String ifname = System.getenv("GLOO_SOCKET_IFNAME");
        if (ifname != null && !ifname.isBlank()) return ProcessGroupGloo.createDeviceForInterface(ifname.trim());
        String a = env.masterAddr();
        if (a.equals("localhost") || a.startsWith("127.")) return ProcessGroupGloo.createDeviceForHostname("127.0.0.1");
        return ProcessGroupGloo.createDefaultDevice();
    }

    public int rank() { return env.rank(); }

    public int worldSize() { return env.worldSize(); }

    public Env env() { return env; }

    /** Sums {@code flat} over all ranks, in place (any dtype Gloo reduces: fp32, fp64, int64). */
    public void allReduceSum(Tensor flat) {
        TensorVector v = new TensorVector(flat);
        AllreduceOptions o = new AllreduceOptions();
        o.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
        o.timeout(timeout);
        await(pg.allreduce(v, o), "all-reduce");
    }

    /** Replaces {@code t} on every rank with rank {@code root}'s value. */
    public void broadcast(Tensor t, int root) {
        TensorVector v = new TensorVector(t);
        BroadcastOptions o = new BroadcastOptions();
        o.rootRank(root);
        o.rootTensor(0);
        o.timeout(timeout);
        await(pg.broadcast(v, o), "broadcast");
    }

    /** Returns when every rank has reached it (or throws when one cannot). */
    public void barrier() {
        BarrierOptions o = new BarrierOptions();
        o.timeout(timeout);
        await(pg.barrier(o), "barrier");
    }

    /** Element-wise sum of {@code values} over ranks, in float64. */
    public double[] sum(double[] values) {
        try (StepScope scope = new StepScope()) {
            Tensor t = Tensors.doubles(values, values.length);
            allReduceSum(t);
            return Tensors.toDoubles(t);
        }
    }

    /** Every rank's {@code values} (the same length on every rank): row r is rank r's. */
    public double[][] allGather(double[] values) {
        double[] padded = new double[values.length * env.worldSize()];
        System.arraycopy(values, 0, padded, values.length * env.rank(), values.length);
        double[] all = sum(padded);
        double[][] out = new double[env.worldSize()][values.length];
        for (int r = 0; r < out.length; r++) System.arraycopy(all, r * values.length, out[r], 0, values.length);
        return out;
    }

    /** Every rank's {@code value} under {@code key}, read back through the store (index = rank); bounded by the timeout. */
    public String[] exchange(String key, String value) {
        String[] out = new String[env.worldSize()];
        try {
            byte[] b = value.getBytes(StandardCharsets.UTF_8);
            prefixed.set("exchange/" + key + "/" + env.rank(), new ByteVector(b));
            for (int r = 0; r < out.length; r++) {
                ByteVector got = prefixed.get("exchange/" + key + "/" + r);
                byte[] bytes = new byte[(int) got.size()];
                for (int i = 0; i < bytes.length; i++) bytes[i] = got.get(i);
                out[r] = new String(bytes, StandardCharsets.UTF_8);
            }
        } catch (RuntimeException e) {
            throw new PeerFailureException("rank " + env.rank() + ": exchanging '" + key + "' through the store failed (a rank exited?): " + firstLine(e.getMessage()), e);
        }
        // No rank goes on (and, refusing what it read, closes the store rank 0 hosts) before every rank has read.
        barrier();
        return out;
    }

    /** A short hex digest of a string, for hashes exchanged through the store. */
    public static String digest(String s) {
        try {
            return HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void await(Work w, String what) {
        try {
            if (!w._wait(timeout)) throw new PeerFailureException("rank " + env.rank() + ": " + what + " timed out after " + env.timeout().toSeconds() + " s (a rank is stuck or gone)");
        } catch (PeerFailureException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new PeerFailureException("rank " + env.rank() + ": " + what + " failed: another rank exited or lost its connection (" + firstLine(e.getMessage()) + ")", e);
        }
    }

    private static String firstLine(String s) {
        if (s == null) return "no detail";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /**
     * Closes the Gloo group (its sockets and threads), which releases the stores it holds. The stores' Java handles
     * never free them (see join): freeing them from Java as well crashed the JVM in JavaCPP's deallocator thread
     * after a GC, or corrupted the heap for whatever ran next.
     */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        pg.close();
    }
}
