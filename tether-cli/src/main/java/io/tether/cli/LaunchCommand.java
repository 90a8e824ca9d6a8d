package io.tether.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.ConfigException;

/**
 * {@code tether launch}: torchrun for Tether on one node. Starts N child JVMs of this same CLI (same java binary,
 * classpath and JVM options) with the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
 * MASTER_PORT), prefixes their output lines with {@code [rank k]}, and when one exits non-zero stops the others
 * and exits non-zero naming it. Each child gets max(1, cores / N) torch and OpenBLAS threads, so N processes on N
 * cores do not oversubscribe them (torchrun sets OMP_NUM_THREADS=1 for the same reason).
 */
@Command(name = "launch", mixinStandardHelpOptions = true,
        description = {"Run a training command as N data-parallel processes on this machine (like torchrun), e.g.",
                "  tether launch --nproc-per-node 2 -- sft --config sft.yaml",
                "Each process trains on its share of every global batch (world x per_device_train_batch_size x",
                "gradient_accumulation_steps); rank 0 writes config, provenance, metrics and checkpoints."})
final class LaunchCommand implements Callable<Integer> {
    /** The launcher's exit code when a rank was killed by a signal (a rank's own non-zero code is passed on). */
    static final int RANK_FAILED = 1;
    /** How long the other ranks get, after the first failure, to notice it and exit with their own message. */
    static final long SETTLE_MS = 2_000;
    /** How long the other ranks get to stop after SIGTERM before SIGKILL. */
    static final long STOP_GRACE_MS = 5_000;

    @ParentCommand TetherCommand root;

    @Option(names = "--nproc-per-node", required = true, description = "processes to start on this machine") int nproc;
    @Option(names = "--master-addr", defaultValue = "127.0.0.1", description = "address of rank 0's rendezvous store (default: ${DEFAULT-VALUE})") String masterAddr;
    @Option(names = "--master-port", defaultValue = "29500", description = "port of rank 0's rendezvous store (default: ${DEFAULT-VALUE}, as torchrun)") int masterPort;
    @Parameters(arity = "1..*", paramLabel = "COMMAND", description = "the tether command each process runs, after --") List<String> command;

    @Override
    public Integer call() throws Exception {
        if (nproc < 1) throw new ConfigException("option '--nproc-per-node': must be >= 1, got " + nproc);
        if (masterPort < 1 || masterPort > 65535) throw new ConfigException("option '--master-port': must be in [1, 65535], got " + masterPort);
        if (command.get(0).equals("launch")) throw new ConfigException("option COMMAND: a launched process cannot launch again");
        PrintWriter out = root.spec.commandLine().getOut(), err = root.spec.commandLine().getErr();
        int cores = Runtime.getRuntime().availableProcessors();
        int threads = root.threads != null ? root.threads : Math.max(1, cores / nproc);
        err.printf("tether launch: %d process(es) x %d torch thread(s) (OpenBLAS %d) on %d cores; rendezvous at %s:%d; command: %s%n",
                nproc, threads, threads, cores, masterAddr, masterPort, String.join(" ", command));
        err.flush();

        List<Process> children = new ArrayList<>();
        List<Thread> pumps = new ArrayList<>();
        LinkedBlockingQueue<Integer> exited = new LinkedBlockingQueue<>();
        Thread stopOnExit = new Thread(() -> children.forEach(Process::destroyForcibly));
        Runtime.getRuntime().addShutdownHook(stopOnExit);
        try {
            for (int rank = 0; rank < nproc; rank++) {
                ProcessBuilder pb = new ProcessBuilder(childCommand(threads));
                Map<String, String> env = pb.environment();
                env.put("RANK", Integer.toString(rank));
                env.put("LOCAL_RANK", Integer.toString(rank));
                env.put("WORLD_SIZE", Integer.toString(nproc));
                env.put("LOCAL_WORLD_SIZE", Integer.toString(nproc));
                env.put("MASTER_ADDR", masterAddr);
                env.put("MASTER_PORT", Integer.toString(masterPort));
                env.put("TETHER_THREADS", Integer.toString(threads));
                env.put("OMP_NUM_THREADS", Integer.toString(threads));
                env.put("OPENBLAS_NUM_THREADS", Integer.toString(threads));
                Process p = pb.start();
                children.add(p);
                int r = rank;
                pumps.add(pump(p.getInputStream(), out, r));
                pumps.add(pump(p.getErrorStream(), err, r));
                p.onExit().thenRun(() -> exited.add(r));
            }
            // Wait for exits in the order they happen: the first rank to fail is the one to name (the others
            // usually fail a moment later, at their next collective, because it is gone).
            Integer failed = null;
            for (int done = 0; done < nproc && failed == null; done++) {
                int r = exited.take();
                if (children.get(r).exitValue() != 0) failed = r;
            }
            if (failed == null) {
                for (Thread t : pumps) t.join();
                return 0;
            }
            // The others usually fail at their next collective within moments, saying why in their own words; give
            // them that long before stopping them.
            long settle = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SETTLE_MS);
            for (Process p : children) {
                long left = settle - System.nanoTime();
                if (left > 0) p.waitFor(left, TimeUnit.NANOSECONDS);
            }
            // A rank that stopped only because its peer vanished (exit 3) is not the cause: blame one that exited on
            // its own for another reason, if any has (the reaper may report the two in either order).
            for (int r = 0; r < nproc && children.get(failed).exitValue() == ExitCodes.PEER_FAILED; r++)
                if (!children.get(r).isAlive() && children.get(r).exitValue() != 0 && children.get(r).exitValue() != ExitCodes.PEER_FAILED) failed = r;
            int code = children.get(failed).exitValue();
            stopOthers(children);
            for (Thread t : pumps) t.join(STOP_GRACE_MS);
            err.printf("tether launch: rank %d %s; stopped the other rank(s)%n", failed,
                    code > 128 ? "was killed by signal " + (code - 128) + " (exit code " + code + ")" : "exited with code " + code);
            err.flush();
            return code > 0 && code <= 125 ? code : RANK_FAILED;
        } finally {
            children.forEach(Process::destroyForcibly);
            try {
                Runtime.getRuntime().removeShutdownHook(stopOnExit);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running already
            }
        }
    }

    /** The same JVM (binary, options, classpath) running this CLI's main class with the launched command. */
    private List<String> childCommand(int threads) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments())
            if (!a.startsWith("-agentlib:jdwp") && !a.startsWith("-javaagent")) cmd.add(a);   // a debugger port cannot be shared
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(TetherCommand.class.getName());
        cmd.add("--threads");
        cmd.add(Integer.toString(threads));
        cmd.addAll(command);
        return cmd;
    }

    /** SIGTERM to every rank still running, SIGKILL to those still running after the grace period. */
    private static void stopOthers(List<Process> children) throws InterruptedException {
        for (Process p : children) if (p.isAlive()) p.destroy();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STOP_GRACE_MS);
        for (Process p : children) {
            long left = deadline - System.nanoTime();
            if (left <= 0 || !p.waitFor(left, TimeUnit.NANOSECONDS)) p.destroyForcibly();
        }
        for (Process p : children) p.waitFor(STOP_GRACE_MS, TimeUnit.MILLISECONDS);
    }

    /**
     * Copies a child's stream line by line with its rank in front. A progress bar redrawn with '\r' becomes one
     * line per redraw: two ranks redrawing one terminal line would overwrite each other.
     */
    private static Thread pump(InputStream in, PrintWriter to, int rank) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                StringBuilder line = new StringBuilder();
                int c;
                while ((c = r.read()) >= 0) {
                    if (c == '\n' || c == '\r') {
                        if (!line.toString().isBlank()) emit(to, rank, line);
                        line.setLength(0);
                    } else {
                        line.append((char) c);
                    }
                }
                if (!line.toString().isBlank()) emit(to, rank, line);
            } catch (IOException e) {
                // the child is gone; its exit code tells the story
            }
        }, "rank-" + rank + "-output");
        t.setDaemon(true);
        t.start();
        return t;
    }

    private static void emit(PrintWriter to, int rank, CharSequence line) {
        synchronized (to) {
            to.println("[rank " + rank + "] " + line);
            to.flush();
        }
    }
}
