package io.tether.reward;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.text.ByteTokenizer;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

/** Arithmetic steps "a+b=c": a step is good when c is right. The PRM must learn to tell, step by step. */
class ProcessRewardTest {
    @TempDir Path tmp;
    static final ByteTokenizer BYTES = new ByteTokenizer();

    static String step(Random r, boolean good) {
        int a = r.nextInt(5), b = r.nextInt(5), c = a + b;
        if (!good) c = (c + 1 + r.nextInt(3)) % 10;
        return a + "+" + b + "=" + c;
    }

    static List<ProcessReward.Example> examples(int n, long seed) {
        Random r = new Random(seed);
        List<ProcessReward.Example> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            List<String> steps = new ArrayList<>();
            List<Boolean> labels = new ArrayList<>();
            for (int s = 0; s < 3; s++) {
                boolean good = r.nextDouble() < 0.6;
                steps.add(step(r, good));
                labels.add(good);
            }
            out.add(ProcessReward.tokenize(BYTES, "Q:", steps, labels, "\n", false));
        }
        return out;
    }

    @Test
    void tokenizationPutsLabelsOnSeparators() {
        ProcessReward.Example e = ProcessReward.tokenize(BYTES, "Q:", List.of("1+1=2", "2+2=5"), List.of(true, false), "\n", false);
        assertEquals(256, e.ids()[0], "BOS first");
        assertArrayEquals(new int[] {1, 0}, e.labels());
        for (int p : e.stepPositions()) assertEquals('\n', e.ids()[p]);
        ProcessReward.Example last = ProcessReward.tokenize(BYTES, "Q:", List.of("1+1=2", "2+2=5"), List.of(true, false), "\n", true);
        assertArrayEquals(new int[] {0}, last.labels());
    }

    @Test
    void learnsStepCorrectnessAndPicksTheCleanestCandidate() throws java.io.IOException {
        Torch.init();
        CausalLM lm = Models.create(ModelConfig.llama(259, 64, 2, 4, 2, 128, 64), DType.F32, 4);
        CausalLM prm = Models.withProcessRewardHead(lm, 4);
        lm.close();
        try (prm) {
            assertEquals("LlamaForTokenClassification", prm.config().architecture());
            TrainerConfig c = new TrainerConfig(150, 1, 16, 1, 3e-3, "cosine", 10, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 5, 50, 0, 0, 1, "stop", false);
            new Trainer<>(prm, new ProcessReward(), examples(400, 1), List.of(), c, new RunDirectory(tmp), GradientSync.SINGLE_PROCESS, null, null).train(false);
            List<ProcessReward.Example> held = examples(100, 2);
            List<double[]> scores = ProcessReward.stepScores(prm, held);
            double correct = 0, total = 0;
            for (int i = 0; i < held.size(); i++)
                for (int s = 0; s < scores.get(i).length; s++) {
                    correct += (scores.get(i)[s] > 0.5) == (held.get(i).labels()[s] == 1) ? 1 : 0;
                    total++;
                }
            System.out.printf("process reward model: held-out step accuracy %.3f%n", correct / total);
            assertTrue(correct / total >= 0.9, "step accuracy " + correct / total);
            Random r = new Random(9);
            int picked = 0;
            for (int trial = 0; trial < 10; trial++) {
                List<ProcessReward.Example> candidates = new ArrayList<>();
                int clean = r.nextInt(4);
                for (int k = 0; k < 4; k++) {
                    List<String> steps = new ArrayList<>();
                    int bad = k == clean ? -1 : r.nextInt(3);
                    for (int s = 0; s < 3; s++) steps.add(step(r, s != bad));
                    candidates.add(ProcessReward.tokenize(BYTES, "Q:", steps, null, "\n", false));
                }
                picked += ProcessReward.bestOfN(prm, candidates) == clean ? 1 : 0;
            }
            assertTrue(picked >= 8, "best-of-4 picked the all-correct candidate " + picked + "/10 times");
            // HF token-classification layout: saved and loaded, the same step scores.
            Models.save(prm, tmp.resolve("prm"), null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            try (Models.LoadedModel back = Models.load(tmp.resolve("prm"), DType.F32)) {
                assertTrue(back.model().parameters().containsKey("score.bias"));
                assertArrayEquals(ProcessReward.stepScores(prm, held.subList(0, 4)).get(2), ProcessReward.stepScores(back.model(), held.subList(0, 4)).get(2), 0.0);
            }
        }
    }
}
