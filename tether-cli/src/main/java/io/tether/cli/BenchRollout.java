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

@Command(name = "rollout", mixinStandardHelpOptions = true,
        description = {"Group sampling tokens/s (G samples of each prompt, temperature 1) with the prompt prefilled once per group and",
                "shared, against every row prefilling its own copy; then a few GRPO and PPO rollouts (and the steps that train on",
                "them) on the same shape, and the share of their time spent generating."})
final class BenchRollout implements Callable<Integer> {
    @ParentCommand BenchCommand bench;
    @Mixin Shape s;

    @Option(names = "--group", defaultValue = "8") int group;
    @Option(names = "--prompt-len", defaultValue = "64") int promptLen;
    @Option(names = "--new-tokens", defaultValue = "128") int newTokens;
    @Option(names = "--prompts", defaultValue = "1", description = "distinct prompts per rollout (default: ${DEFAULT-VALUE})") int prompts;
    @Option(names = "--rollouts", defaultValue = "3", description = "GRPO and PPO rollouts timed for the generation share (0: skip)") int rollouts;

    @Override
    public Integer call() throws IOException {
        bench.root.initEngine();
        double[] peak = matmulPeak();
        try (CausalLM m = Models.create(s.config(Math.max(2048, promptLen + newTokens)), DType.F32, 0)) {
            List<long[]> unique = new ArrayList<>(), repeated = new ArrayList<>();
            for (int i = 0; i < prompts; i++) {
                long[] p = s.randomIds(100 + i, 1, promptLen);
                unique.add(p);
                for (int k = 0; k < group; k++) repeated.add(p);
            }
            // No stop tokens, so every row produces newTokens and both ways do the same decode work.
            SamplingConfig sampling = new SamplingConfig(newTokens, 1.0, 0, 1.0, 7, List.of(), List.of(), true);
            Generator.generate(m, unique, group, sampling.withSeed(1), null);   // warm-up
            List<Double> shared = new ArrayList<>(), separate = new ArrayList<>();
            for (int r = 0; r < s.runs; r++) {
                long t0 = System.nanoTime();
                Generator.generate(m, unique, group, sampling, null);
                shared.add((System.nanoTime() - t0) / 1e9);
                t0 = System.nanoTime();
                Generator.generate(m, repeated, sampling);
                separate.add((System.nanoTime() - t0) / 1e9);
            }
            double tokens = (double) repeated.size() * newTokens;
            ObjectNode o = header("rollout", s, peak);
            o.put("prompts", prompts);
            o.put("group", group);
            o.put("prompt_len", promptLen);
            o.put("new_tokens", newTokens);
            o.put("shared_prefix_seconds_median", round3(median(shared)));
            o.put("shared_prefix_tokens_per_second", round(tokens / median(shared)));
            o.put("separate_prefill_seconds_median", round3(median(separate)));
            o.put("separate_prefill_tokens_per_second", round(tokens / median(separate)));
            o.put("prefix_sharing_speedup", round(median(separate) / median(shared)));
            if (rollouts > 0) {
                o.put("grpo_generation_share", round3(generationShare(m, grpo(unique, sampling), unique.size())));
                // PPO samples once per prompt: as many distinct prompts as GRPO has rows; 4 PPO epochs per rollout.
                try (CausalLM reference = Models.create(s.config(Math.max(2048, promptLen + newTokens)), DType.F32, 0)) {
                    o.put("ppo_generation_share", round3(generationShare(m, ppo(m, reference, sampling), prompts * group)));
                }
            }
            report(bench.root.spec.commandLine().getOut(), s.out.path, o);
        }
        return 0;
    }

    /** The reward of both timed methods: the share of even tokens in the completion. */
    private static final io.tether.rollout.RewardFunction EVEN_TOKENS = (prompt, completion, tokens, record) -> {
        double even = 0;
        for (long t : tokens) even += t % 2 == 0 ? 1 : 0;
        return java.util.OptionalDouble.of(even / Math.max(1, tokens.length));
    };

    private io.tether.train.TrainingMethod<io.tether.rollout.OnlinePrompt> grpo(List<long[]> unique, SamplingConfig sampling) {
        return new io.tether.online.GrpoTraining(io.tether.online.GrpoTraining.Settings.grpo(
                new io.tether.objective.Grpo.Config(0.2, 0.28, 0.0, "dapo", "group", newTokens), group, sampling, EVEN_TOKENS, null, null));
    }

    /** PPO with a value head on the policy and the policy's own starting weights as the reference. */
    private io.tether.train.TrainingMethod<io.tether.rollout.OnlinePrompt> ppo(CausalLM m, CausalLM reference, SamplingConfig sampling) {
        var settings = new io.tether.online.PpoTraining.Settings(io.tether.online.PpoSettings.defaults(), sampling,
                io.tether.rollout.Rollouts.of(EVEN_TOKENS, null), io.tether.rollout.Rollouts.Shaping.NONE, reference, null, null);
        return new io.tether.online.PpoTraining(settings, m, 0);
    }

    /** Runs the method's steps over the prompts and returns the share of their wall time spent in rollouts. */
    private double generationShare(CausalLM m, io.tether.train.TrainingMethod<io.tether.rollout.OnlinePrompt> method, int batch) throws IOException {
        List<io.tether.rollout.OnlinePrompt> ps = new ArrayList<>();
        for (int i = 0; i < batch; i++) ps.add(new io.tether.rollout.OnlinePrompt(s.randomIds(300 + i, 1, promptLen), java.util.Map.of(), null));
        var config = new io.tether.train.TrainerConfig(rollouts * method.reuse().stepsPerBatch(), 1, batch, 1, 1e-5, "constant", 0, 0, 0.0, 0.9, 0.999,
                1e-8, 1.0, 0, 1, 0, 0, 1, "stop", false);
        return train(m, method, ps, config, null, "tether-bench-rollout", dir -> {
            double rollout = 0, total = 0;
            for (String line : java.nio.file.Files.readAllLines(dir.resolve("metrics.jsonl"))) {
                var n = JSON.readTree(line);
                total += n.get("step_seconds").asDouble();
                if (n.has("rollout_seconds")) rollout += n.get("rollout_seconds").asDouble();
            }
            return rollout / total;
        });
    }
}
