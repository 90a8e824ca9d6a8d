package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.DType;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.Models;

@Command(name = "generate", mixinStandardHelpOptions = true, description = "Greedy decode tokens/s with and without the KV cache.")
final class BenchGenerate implements Callable<Integer> {
    @ParentCommand BenchCommand bench;
    @Mixin Shape s;

    @Option(names = "--prompt-len", defaultValue = "16") int promptLen;
    @Option(names = "--new-tokens", defaultValue = "256") int newTokens;
    @Option(names = "--uncached-runs", defaultValue = "1", description = "runs without the cache (slow; default: ${DEFAULT-VALUE})") int uncachedRuns;
    @Option(names = "--bf16", description = "decode under bf16 autocast (fp32 weights; matmuls in bf16)") boolean bf16;

    @Override
    public Integer call() throws IOException {
        bench.root.initEngine();
        double[] peak = matmulPeak();
        try (CausalLM m = Models.create(s.config(Math.max(2048, promptLen + newTokens)), DType.F32, 0)) {
            List<long[]> prompts = new ArrayList<>();
            for (int i = 0; i < s.batch; i++) prompts.add(s.randomIds(i, 1, promptLen));
            SamplingConfig greedy = SamplingConfig.greedy(newTokens);  // no stop tokens: always newTokens
            Generator.generate(m, prompts, SamplingConfig.greedy(4));   // warm-up
            List<Double> cached = new ArrayList<>(), uncached = new ArrayList<>();
            try (io.tether.engine.Autocast region = io.tether.engine.Autocast.bf16(bf16)) {
                for (int r = 0; r < s.runs; r++) cached.add(time(m, prompts, greedy));
                for (int r = 0; r < uncachedRuns; r++) uncached.add(time(m, prompts, greedy.withCache(false)));
            }
            double tokens = (double) s.batch * newTokens;
            ObjectNode o = header("generate", s, peak);
            o.put("bf16", bf16);
            o.put("prompt_len", promptLen);
            o.put("new_tokens", newTokens);
            o.put("cached_seconds_median", round3(median(cached)));
            o.put("cached_tokens_per_second", round(tokens / median(cached)));
            if (!uncached.isEmpty()) {
                o.put("uncached_seconds_median", round3(median(uncached)));
                o.put("uncached_tokens_per_second", round(tokens / median(uncached)));
                o.put("cache_speedup", round(median(uncached) / median(cached)));
            }
            report(bench.root.spec.commandLine().getOut(), s.out.path, o);
        }
        return 0;
    }

    private static double time(CausalLM m, List<long[]> prompts, SamplingConfig c) {
        long t0 = System.nanoTime();
        Generator.generate(m, prompts, c);
        return (System.nanoTime() - t0) / 1e9;
    }
}
