package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.ConfigException;
import io.tether.scenario.DemoReport;
import io.tether.scenario.RefundDemo;
import io.tether.train.Trainer;

/** {@code tether demo}: the refund world end to end, from the shipped base model to the release gate. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"The refund-policy world end to end: SFT from the shipped base model, a reward model on noisy length-biased labels,",
                "then DPO, KTO, PPO, GRPO, online DPO and a weak-KL PPO run from the SFT model; every model judged against SFT on held-out",
                "prompts by the gold rubric, probed, and put through the release gate. Prints the comparison table and writes",
                "report.html and results.json. Finished stages with the same settings are reused (an interrupted demo continues)."})
final class DemoCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Option(names = "--out", defaultValue = "runs/demo", description = "where every stage's run directory and the report go (default: ${DEFAULT-VALUE})")
    Path out;
    @Option(names = "--quick", description = "every stage for a few steps on fewer prompts (about 80 s; learns little)") boolean quick;
    @Option(names = "--base-model", description = "the base model (default: models/refund-base beside the launcher)") Path baseModel;
    @Option(names = "--lanes", description = "training stages run side by side (default: cores / torch threads, at most 3); the same count gives the same models run after run, "
            + "while 1 and 2 lanes differ in float rounding (OpenBLAS threads)")
    Integer lanes;
    @Option(names = "--fail-on-outcome", description = "exit 1 unless every outcome is met: DPO, PPO and GRPO each beat SFT by 20 points; the weak-KL run raises the proxy, lowers gold, is flagged and fails the gate; some method games length and the gate names it")
    boolean failOnOutcome;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        Path base = baseModel != null ? baseModel : defaultBaseModel();
        if (!Files.isDirectory(base)) throw new ConfigException(base + ": base model directory not found (pass --base-model)");
        if (lanes != null && lanes < 1) throw new ConfigException("--lanes: at least 1 stage at a time, got " + lanes);
        RefundDemo.Settings s = quick ? RefundDemo.Settings.quick(out, base) : RefundDemo.Settings.full(out, base);
        PrintWriter o = root.spec.commandLine().getOut(), err = root.spec.commandLine().getErr();
        StageBoard board = new StageBoard(err);
        RefundDemo.Outcome r = RefundDemo.run(s, lanes != null ? lanes : RefundDemo.defaultLanes(), err, board::stage);
        o.println();
        o.print(DemoReport.table(r));
        for (RefundDemo.MethodResult m : r.methods()) if (!m.gate().pass()) o.printf("%s: %s%n", m.method(), m.gate().line());
        o.println("outcomes:");
        for (RefundDemo.OutcomeCheck c : r.outcomes()) o.printf("  [%s] %s: %s%n", c.met() ? "met" : "NOT MET", c.claim(), c.evidence());
        o.printf("report: %s (%.0f s)%n", r.report(), r.totalSeconds());
        o.flush();
        return failOnOutcome && !r.outcomesMet() ? 1 : 0;
    }

    /**
     * The demo's progress on stderr: a line when a stage starts, a line when it ends and for each notice, and on a
     * terminal one self-overwriting line with the step and time left of every stage running now (up to three at once);
     * when stderr is not a terminal, a plain line per stage at every tenth of its steps instead.
     */
    static final class StageBoard {
        private final PrintWriter err;
        private final ProgressBar.Style style;
        private final Map<String, String> running = new LinkedHashMap<>();
        private int shown;

        StageBoard(PrintWriter err) {
            this(err, ProgressBar.Style.fromEnvironment());
        }

        StageBoard(PrintWriter err, ProgressBar.Style style) {
            this.err = err;
            this.style = style;
        }

        synchronized Trainer.Listener stage(String name, String description) {
            line(name + ": " + description);
            running.put(name, "starting");
            redraw();
            long start = System.nanoTime();
            return new Trainer.Listener() {
                private int lastTenth = -1;

                @Override
                public void onStep(int step, int total, Map<String, Object> m) {
                    synchronized (StageBoard.this) {
                        // The rate since the stage began (loading included): steps are logged every few, so the time
                        // to the first logged step covers all of them.
                        double elapsed = (System.nanoTime() - start) / 1e9;
                        long eta = Math.round(elapsed / Math.max(1, step) * (total - step));
                        if (step >= total) {
                            running.remove(name);
                            line(String.format(Locale.ROOT, "%s: done, %d steps in %.0f s (loss %.4f)", name, total, elapsed, (Double) m.get("loss")));
                        } else {
                            running.put(name, String.format(Locale.ROOT, "%d/%d ETA %d:%02d", step, total, eta / 60, eta % 60));
                            int tenth = ProgressBar.tenth(step, total);
                            if (style == ProgressBar.Style.PLAIN && tenth > lastTenth) {
                                lastTenth = tenth;
                                line(String.format(Locale.ROOT, "%s: step %d/%d (%d%%) ETA %d:%02d", name, step, total, ProgressBar.percent(step, total), eta / 60, eta % 60));
                            }
                        }
                        redraw();
                    }
                }

                @Override
                public void onEval(int step, Map<String, Object> m) {
                    note(String.format(Locale.ROOT, "%s: eval at step %d: loss %.4f", name, step, (Double) m.get("eval_loss")));
                }

                @Override
                public void onNotice(String message) {
                    note(name + ": note: " + message);
                }

                @Override
                public void onSkippedBatch(int step, String reason) {
                    note(name + ": step " + step + " skipped: " + reason);
                }
            };
        }

        /** A permanent line from any stage, with the status line redrawn under it. */
        private synchronized void note(String text) {
            line(text);
            redraw();
        }

        /** A permanent line, written over the status line. */
        private void line(String text) {
            if (shown > 0) err.print("\r" + " ".repeat(shown) + "\r");
            err.println(text);
            shown = 0;
        }

        private void redraw() {
            if (running.isEmpty() || style == ProgressBar.Style.PLAIN) {
                err.flush();
                return;
            }
            StringBuilder b = new StringBuilder();
            running.forEach((name, state) -> b.append(b.length() == 0 ? "" : "  |  ").append(name).append(' ').append(state));
            String text = b.toString();
            err.print("\r" + text + " ".repeat(Math.max(0, shown - text.length())));
            shown = text.length();
            err.flush();
        }
    }

    /** models/refund-base in the checkout the launcher runs from (it passes -Dtether.home), else in the working directory. */
    private static Path defaultBaseModel() {
        String home = System.getProperty("tether.home");
        return (home == null ? Path.of("") : Path.of(home)).resolve("models").resolve("refund-base");
    }
}
