package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

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
    @Option(names = "--fail-on-outcome", description = "exit 1 unless DPO, PPO and GRPO each beat SFT by 20 points and the weak-KL run is flagged and fails the gate")
    boolean failOnOutcome;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        Path base = baseModel != null ? baseModel : defaultBaseModel();
        if (!Files.isDirectory(base)) throw new IllegalArgumentException(base + ": base model directory not found (pass --base-model)");
        RefundDemo.Settings s = quick ? RefundDemo.Settings.quick(out, base) : RefundDemo.Settings.full(out, base);
        PrintWriter o = root.spec.commandLine().getOut(), err = root.spec.commandLine().getErr();
        RefundDemo.Outcome r = RefundDemo.run(s, err, (name, description) -> {
            err.printf("%s: %s%n", name, description);
            err.flush();
            return new ProgressBar(err) {
                @Override
                public void onStep(int step, int total, Map<String, Object> m) {
                    super.onStep(step, total, m);
                    if (step == total) err.println();
                }
            };
        });
        o.println();
        o.print(DemoReport.table(r));
        for (RefundDemo.MethodResult m : r.methods()) if (!m.gate().pass()) o.printf("%s: %s%n", m.method(), m.gate().line());
        o.printf("report: %s (%.0f s)%n", r.report(), r.totalSeconds());
        o.flush();
        return failOnOutcome && !RefundDemo.outcomesMet(r) ? 1 : 0;
    }

    /** models/refund-base in the checkout the launcher runs from (it passes -Dtether.home), else in the working directory. */
    private static Path defaultBaseModel() {
        String home = System.getProperty("tether.home");
        return (home == null ? Path.of("") : Path.of(home)).resolve("models").resolve("refund-base");
    }
}
