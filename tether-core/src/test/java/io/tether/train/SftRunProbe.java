package io.tether.train;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;

/**
 * A small SFT run in its own JVM, for the kill-and-resume test: {@code <runDir> <resume:true|false> <sleepMsPerStep>}.
 * Single torch thread, so the run is bit-reproducible.
 */
public final class SftRunProbe {
    private SftRunProbe() {}

    static List<Sft.Example> examples(int n, long seed) {
        Random r = new Random(seed);
        List<Sft.Example> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 4 + r.nextInt(12), prompt = 1 + r.nextInt(3);
            long[] ids = new long[len], mask = new long[len];
            for (int j = 0; j < len; j++) {
                ids[j] = r.nextInt(32);
                mask[j] = j >= prompt ? 1 : 0;
            }
            out.add(new Sft.Example(ids, mask));
        }
        return out;
    }

    static TrainerConfig config(int maxSteps, int batch, int accumulation, double lr, String nanPolicy) {
        return new TrainerConfig(maxSteps, 1, batch, accumulation, lr, "cosine", 2, 0, 0.01, 0.9, 0.999, 1e-8, 1.0, 7, 1, 0, 2, 2, nanPolicy, false);
    }

    public static void main(String[] args) throws Exception {
        Torch.init(1);
        Path dir = Path.of(args[0]);
        boolean resume = Boolean.parseBoolean(args[1]);
        long sleep = Long.parseLong(args[2]);
        try (CausalLM model = Models.create(ModelConfig.llama(32, 32, 2, 4, 2, 48, 64), DType.F32, 3)) {
            Trainer<Sft.Row> t = new Trainer<>(model, new Sft(), Sft.rows(examples(40, 5), 16), List.of(),
                    config(10, 4, 1, 3e-3, "stop"), new RunDirectory(dir), GradientSync.SINGLE_PROCESS,
                    new Trainer.Listener() {
                        @Override public void onStep(int step, int total, Map<String, Object> metrics) {
                            try { Thread.sleep(sleep); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
                        }
                    }, null);
            t.train(resume);
        }
        System.out.println("probe-done");
    }
}
