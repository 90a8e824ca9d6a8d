package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.Models;

/** {@code tether bench forward} and {@code tether bench train}: one forward pass, or one training step, on random tokens. */
final class BenchStep {
    private BenchStep() {}

    @Command(name = "forward", mixinStandardHelpOptions = true, description = "Forward tokens/s and fraction of the matmul peak.")
    static final class Forward implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Mixin Shape s;

        @Override
        public Integer call() throws IOException {
            return stepBenchmark(bench, s, false);
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true, description = "Forward+backward step time (fp32) and fraction of the matmul peak.")
    static final class Train implements Callable<Integer> {
        @ParentCommand BenchCommand bench;
        @Mixin Shape s;

        @Override
        public Integer call() throws IOException {
            return stepBenchmark(bench, s, true);
        }
    }

    /**
     * Times a forward pass (no graph) or a forward+backward step on random tokens; run 0 warms up. A training step
     * is counted as 3x the forward FLOPs (the backward pass costs about twice the forward).
     */
    static int stepBenchmark(BenchCommand bench, Shape s, boolean train) throws IOException {
        bench.root.initEngine();
        double[] peak = matmulPeak();
        try (CausalLM m = Models.create(s.config(Math.max(2048, s.seq)), DType.F32, 0)) {
            m.setTrainable(train);
            long[] ids = s.randomIds(1, s.batch, s.seq);
            long[] mask = new long[ids.length];
            Arrays.fill(mask, 1);
            List<Double> times = new ArrayList<>();
            for (int r = 0; r <= s.runs; r++) {
                try (StepScope scope = new StepScope(); NoGradGuard g = train ? null : new NoGradGuard()) {
                    Tensor input = Tensors.longs(ids, s.batch, s.seq);
                    long t0 = System.nanoTime();
                    if (train) {
                        LogProbs.sequenceLogprobs(m, input, Tensors.longs(mask, s.batch, s.seq)).mean().neg().backward();
                        for (Tensor p : m.parameters().values()) p.grad().zero_();
                    } else {
                        m.forward(input).sum().item_double();
                    }
                    if (r > 0) times.add((System.nanoTime() - t0) / 1e9);
                }
            }
            double sec = median(times);
            double gflops = (train ? 3 : 1) * s.forwardFlops(m, s.batch, s.seq) / sec / 1e9;
            String what = train ? "train" : "forward";
            ObjectNode o = header(what, s, peak);
            o.put("parameters", m.parameterCount());
            o.put(what + "_step_seconds_median", round3(sec));
            o.put(what + "_tokens_per_second", round(s.batch * s.seq / sec));
            o.put(what + "_gflops", round(gflops));
            o.put("fraction_of_peak", round3(gflops / peak[1]));
            report(bench.root.spec.commandLine().getOut(), s.out.path, o);
        }
        return 0;
    }
}
