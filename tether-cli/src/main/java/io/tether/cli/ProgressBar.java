package io.tether.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

import io.tether.train.ConfigTree;
import io.tether.train.Trainer;

/** One self-overwriting line on stderr: bar, step, loss, learning rate, throughput and time left. */
class ProgressBar implements Trainer.Listener {
    private final PrintWriter err;
    private final ConfigTree settings;
    private final long start = System.nanoTime();
    private int firstStep = -1;

    ProgressBar(PrintWriter err) {
        this(err, null);
    }

    /** With the run's settings, the start line says where the learning rate came from (set, or the method's TRL default). */
    ProgressBar(PrintWriter err, ConfigTree settings) {
        this.err = err;
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
        int width = 24, filled = (int) Math.round(width * (double) step / total);
        err.printf("\r[%s%s] %d/%d loss %.4f lr %.2e %.0f tok/s ETA %d:%02d:%02d   ", "#".repeat(filled), ".".repeat(width - filled),
                step, total, (Double) m.get("loss"), (Double) m.get("lr"), (Double) m.get("units_per_second"), eta / 3600, (eta / 60) % 60, eta % 60);
        err.flush();
    }

    @Override
    public void onEval(int step, Map<String, Object> m) {
        err.printf("%n  eval at step %d: loss %.4f, perplexity %.2f%n", step, (Double) m.get("eval_loss"), (Double) m.get("eval_perplexity"));
        err.flush();
    }

    @Override
    public void onNotice(String message) {
        err.printf("note: %s%n", message);
    }

    @Override
    public void onSkippedBatch(int step, String reason) {
        err.printf("%n  step %d skipped: %s%n", step, reason);
    }

    /** The closing line of a training command: steps, last training loss, eval loss when there was one, where the model is. */
    static void done(PrintWriter err, Trainer.Result r, Path outputDir) {
        err.printf("%ndone: %d steps, last loss %.4f%s; model saved to %s%n", r.steps(), r.lastLoss(),
                Double.isNaN(r.evalLoss()) ? "" : String.format(", eval loss %.4f", r.evalLoss()), outputDir.resolve("model"));
    }
}
