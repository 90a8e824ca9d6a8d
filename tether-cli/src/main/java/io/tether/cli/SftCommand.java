package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

import io.tether.train.SftConfig;
import io.tether.train.SftRun;
import io.tether.train.Trainer;

@Command(name = "sft", mixinStandardHelpOptions = true,
        description = {"Supervised fine-tuning (or training from scratch) with completion-only loss, packing, exact resume.",
                "Settings come from --config (YAML, TRL SFTConfig names) and --set key=value overrides; every",
                "resolved setting, provenance, metrics.jsonl and checkpoints/step-N land in output_dir."})
final class SftCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Mixin RunOptions run;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        SftConfig c = SftConfig.from(run.settings());
        PrintWriter err = root.spec.commandLine().getErr();
        Trainer.Result r = SftRun.run(c, run.resume, new ProgressBar(err));
        err.printf("%ndone: %d steps, last loss %.4f%s; model saved to %s%n", r.steps(), r.lastLoss(),
                Double.isNaN(r.evalLoss()) ? "" : String.format(", eval loss %.4f", r.evalLoss()), c.outputDir().resolve("model"));
        return 0;
    }

    /** One self-overwriting line on stderr: bar, step, loss, learning rate, throughput and time left. */
    static class ProgressBar implements Trainer.Listener {
        private final PrintWriter err;
        private final long start = System.nanoTime();
        private int firstStep = -1;

        ProgressBar(PrintWriter err) {
            this.err = err;
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
    }
}
