package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.DType;
import io.tether.model.CausalLM;
import io.tether.model.Models;

@Command(name = "sft", mixinStandardHelpOptions = true,
        description = {"SFT training tokens/s through the real loop (AdamW, clipping, scopes), fp32 and bf16 autocast,",
                "model FLOPs utilisation against the same-run matmul peak, and peak RSS. Last line: tokens_per_second=<fp32>."})
final class BenchSft implements Callable<Integer> {
    @ParentCommand BenchCommand bench;
    @Mixin Shape s;

    @Option(names = "--steps", defaultValue = "4", description = "optimizer steps per precision after one warm-up step (default: ${DEFAULT-VALUE})")
    int steps;

    @Override
    public Integer call() throws IOException {
        bench.root.initEngine();
        double[] peak = matmulPeak();
        ObjectNode o = header("sft", s, peak);
        o.put("bf16_matmul_faster_than_fp32", io.tether.engine.Autocast.bf16Pays());
        double fp32TokensPerSecond = 0;
        for (boolean bf16 : new boolean[] {false, true}) {
            String p = bf16 ? "bf16" : "fp32";
            try (CausalLM m = Models.create(s.config(Math.max(2048, s.seq)), DType.F32, 0)) {
                List<io.tether.train.Sft.Row> rows = new ArrayList<>();
                for (int i = 0; i < s.batch * (steps + 1); i++) {
                    long[] ids = s.randomIds(i, 1, s.seq), mask = new long[s.seq];
                    Arrays.fill(mask, 1);
                    rows.add(new io.tether.train.Sft.Row(ids, mask, new int[] {0}));
                }
                io.tether.train.TrainerConfig c = new io.tether.train.TrainerConfig(steps + 1, 1, s.batch, 1, 1e-4, "constant", 0, 0, 0.0,
                        0.9, 0.999, 1e-8, 1.0, 0, 1, 0, 0, 1, "stop", bf16);
                double sec = median(stepSeconds(m, new io.tether.train.Sft(), rows, c, "tether-bench-sft"));
                double tps = s.batch * (double) s.seq / sec;
                o.put(p + "_step_seconds_median", round3(sec));
                o.put(p + "_tokens_per_second", round(tps));
                o.put(p + "_mfu_vs_fp32_peak", round3(3 * s.forwardFlops(m, s.batch, s.seq) / sec / 1e9 / peak[1]));
                if (!bf16) fp32TokensPerSecond = tps;
            }
        }
        o.put("peak_rss_mb", round(io.tether.engine.ProcessMemory.peakResidentMb()));
        report(bench.root.spec.commandLine().getOut(), s.out.path, o);
        bench.root.spec.commandLine().getOut().printf("tokens_per_second=%.1f%n", fp32TokensPerSecond);
        bench.root.spec.commandLine().getOut().flush();
        return 0;
    }
}
