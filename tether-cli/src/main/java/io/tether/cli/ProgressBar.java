package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

import io.tether.engine.ConfigException;
import io.tether.run.ConfigTree;
import io.tether.train.Trainer;

/**
 * Training progress on stderr: on a terminal, one self-overwriting line (bar, step, loss, learning rate, throughput and
 * time left); otherwise (a log file, a pipe) a plain line at every tenth of the run, so a log holds lines, not
 * carriage-return frames.
 */
class ProgressBar implements Trainer.Listener {
    /** How progress is drawn; {@code TETHER_PROGRESS=bar|plain} overrides the choice made from the terminal. */
    enum Style {
        BAR, PLAIN;

        static final String ENV = "TETHER_PROGRESS";

        /** From {@code TETHER_PROGRESS} when set (and not {@code auto}), else a bar exactly when stderr is a terminal. */
        static Style fromEnvironment() {
            return resolve(System.getenv(ENV), stderrIsTerminal());
        }

        static Style resolve(String override, boolean terminal) {
            if (override == null || override.isBlank() || override.equalsIgnoreCase("auto")) return terminal ? BAR : PLAIN;
            return switch (override.trim().toLowerCase(Locale.ROOT)) {
                case "bar" -> BAR;
                case "plain" -> PLAIN;
                default -> throw new ConfigException(ENV + "=" + override + ": expected bar, plain or auto");
            };
        }

        /**
         * System.console() is non-null when stdin and stdout are a terminal; stderr can still be redirected
         * ({@code 2> log}), which Linux shows as the target of /proc/self/fd/2. Elsewhere the console alone decides.
         */
        private static boolean stderrIsTerminal() {
            if (System.console() == null) return false;
            try {
                String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
                return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty") || target.equals("/dev/console");
            } catch (IOException | UnsupportedOperationException | SecurityException e) {
                return true;
            }
        }
    }

    /** Plain lines are written at each tenth of the run (and at its last step). */
    static final int PLAIN_LINES = 10;

    private final PrintWriter err;
    private final Style style;
    private final ConfigTree settings;
    private final long start = System.nanoTime();
    private int firstStep = -1;
    private int lastTenth = -1;

    ProgressBar(PrintWriter err) {
        this(err, Style.fromEnvironment(), null);
    }

    ProgressBar(PrintWriter err, Style style) {
        this(err, style, null);
    }

    /** With the run's settings, the start line says where the learning rate came from (set, or the method's TRL default). */
    ProgressBar(PrintWriter err, ConfigTree settings) {
        this(err, Style.fromEnvironment(), settings);
    }

    private ProgressBar(PrintWriter err, Style style, ConfigTree settings) {
        this.err = err;
        this.style = style;
        this.settings = settings;
    }

    @Override
    public void onStart(int totalSteps, double learningRate) {
        String source = settings == null ? null : settings.learningRateSource();
        err.printf(Locale.ROOT, "training %d steps at learning_rate %.2e%s%n", totalSteps, learningRate, source == null ? "" : " (" + source + ")");
        err.flush();
    }

    @Override
    public void onStep(int step, int total, Map<String, Object> m) {
        if (firstStep < 0) firstStep = step - 1;
        double elapsed = (System.nanoTime() - start) / 1e9;
        double perStep = elapsed / Math.max(1, step - firstStep);
        long eta = Math.round(perStep * (total - step));
        String numbers = String.format(Locale.ROOT, "loss %.4f lr %.2e %.0f tok/s ETA %d:%02d:%02d", (Double) m.get("loss"), (Double) m.get("lr"),
                (Double) m.get("units_per_second"), eta / 3600, (eta / 60) % 60, eta % 60);
        if (style == Style.BAR) {
            int width = 24, filled = (int) Math.round(width * (double) step / total);
            err.printf("\r[%s%s] %d/%d %s   ", "#".repeat(filled), ".".repeat(width - filled), step, total, numbers);
        } else {
            int tenth = tenth(step, total);
            if (tenth <= lastTenth) return;
            lastTenth = tenth;
            err.printf(Locale.ROOT, "step %d/%d (%d%%) %s%n", step, total, percent(step, total), numbers);
        }
        err.flush();
    }

    /** The share of the run done, rounded down so that 100% means finished. */
    static long percent(int step, int total) {
        return (long) step * 100 / Math.max(1, total);
    }

    /** Which tenth of the run a step completes (0 to 10); only the last step reaches 10. */
    static int tenth(int step, int total) {
        return (int) Math.min(PLAIN_LINES, (long) step * PLAIN_LINES / Math.max(1, total));
    }

    @Override
    public void onEval(int step, Map<String, Object> m) {
        line(String.format(Locale.ROOT, "  eval at step %d: loss %.4f, perplexity %.2f", step, (Double) m.get("eval_loss"), (Double) m.get("eval_perplexity")));
        if (style == Style.BAR) err.println();
        err.flush();
    }

    @Override
    public void onNotice(String message) {
        err.printf("note: %s%n", message);
    }

    @Override
    public void onSkippedBatch(int step, String reason) {
        line("  step " + step + " skipped: " + reason);
        if (style == Style.BAR) err.println();
    }

    /** A line of its own under the progress: the bar's line is ended first; the cursor stays at the end of the text for a bar. */
    void line(String text) {
        if (style == Style.BAR) err.print(System.lineSeparator() + text);
        else err.println(text);
    }

    /** What ends the bar's line before a closing line: a line break under a bar, nothing after plain lines. */
    static String afterProgress() {
        return Style.fromEnvironment() == Style.BAR ? System.lineSeparator() : "";
    }

    /** The closing line of a training command: steps, last training loss, eval loss when there was one, where the model is. */
    static void done(PrintWriter err, Trainer.Result r, Path outputDir) {
        err.printf("%sdone: %d steps, last loss %.4f%s; model saved to %s%n", afterProgress(), r.steps(), r.lastLoss(), Double.isNaN(r.evalLoss()) ? "" : String.format(", eval loss %.4f", r.evalLoss()), outputDir.resolve("model"));
    }
}
