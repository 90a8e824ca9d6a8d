package io.tether.reward;

import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.zip.GZIPInputStream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.objective.PairwiseLosses;
import io.tether.train.ConfigTree;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

class RewardModelTest {
    @TempDir Path tmp;
    static final Path FIXTURES = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures");

    @BeforeAll
    static void load() {
        Torch.init();
    }

    @Test
    void theSeedsWorkedExample() {
        try (StepScope s = new StepScope()) {
            PairwiseLosses.Output o = PairwiseLosses.rewardModel(Tensors.doubles(new double[] {2.0}, 1), Tensors.doubles(new double[] {0.5}, 1), null, 0);
            assertEquals(0.818, 1 / (1 + Math.exp(-(2.0 - 0.5))), 5e-4, "P(A preferred) = σ(2.0 − 0.5)");
            assertEquals(0.201, o.loss().item_double(), 5e-4, "NLL = −log σ(1.5)");
        }
    }

    /** Chosen responses contain token 7 somewhere; rejected ones never do. */
    static List<RewardTraining.Pair> rulePairs(int n, long seed) {
        Random r = new Random(seed);
        List<RewardTraining.Pair> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 6 + r.nextInt(6);
            long[] c = new long[len], rej = new long[len];
            for (int j = 0; j < len; j++) {
                c[j] = 8 + r.nextInt(24);
                rej[j] = 8 + r.nextInt(24);
            }
            c[2 + r.nextInt(len - 2)] = 7;
            out.add(new RewardTraining.Pair(c, rej, 0, i % 2 == 0 ? "even" : "odd"));
        }
        return out;
    }

    @Test
    void learnsASyntheticRuleToHeldOutAccuracyOver95PercentAndRoundTrips() throws IOException {
        long t0 = System.nanoTime();
        CausalLM lm = Models.create(ModelConfig.llama(32, 32, 2, 4, 2, 64, 64), DType.F32, 1);
        CausalLM rm = Models.withRewardHead(lm, 1);
        lm.close();
        try (rm) {
            assertEquals("LlamaForSequenceClassification", rm.config().architecture());
            assertTrue(rm.parameters().containsKey("score.weight") && !rm.parameters().containsKey("lm_head.weight"));
            List<RewardTraining.Pair> train = rulePairs(256, 1), held = rulePairs(128, 2);
            TrainerConfig c = new TrainerConfig(120, 1, 16, 1, 3e-3, "cosine", 10, 0, 0.0, 0.9, 0.999, 1e-8, 1.0, 3, 20, 0, 0, 1, "stop", false);
            new Trainer<>(rm, new RewardTraining(0.0, false), train, List.of(), c, new RunDirectory(tmp.resolve("run")), GradientSync.SINGLE_PROCESS, null, null).train(false);
            RewardEvaluation.Report report = RewardEvaluation.evaluate(rm, held, 32, 10);
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("reward model: held-out accuracy %.3f after %.1f s, ECE %.3f%n", report.accuracy(), seconds, report.expectedCalibrationError());
            assertTrue(report.accuracy() >= 0.95, "held-out accuracy " + report.accuracy());
            assertTrue(seconds < 60, "within a CPU-minute: " + seconds);
            assertEquals(2, report.accuracyBySlice().size());
            // Save and load: identical scores.
            Models.save(rm, tmp.resolve("rm"), null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
            List<long[]> seqs = new ArrayList<>();
            for (RewardTraining.Pair p : held.subList(0, 16)) seqs.add(p.chosen());
            double[] a = RewardScorer.score(rm, seqs, 16);
            try (Models.LoadedModel back = Models.load(tmp.resolve("rm"), DType.F32)) {
                assertEquals("LlamaForSequenceClassification", back.model().config().architecture());
                assertArrayEquals(a, RewardScorer.score(back.model(), seqs, 16), 0.0);
            }
            var config = new ObjectMapper().readTree(tmp.resolve("rm/config.json").toFile());
            assertEquals(1, config.get("num_labels").asInt());
        }
    }

    @Test
    void scoresDoNotDependOnPaddingOrBatchCompany() {
        CausalLM lm = Models.create(ModelConfig.llama(32, 32, 2, 4, 2, 64, 64), DType.F32, 2);
        try (CausalLM rm = Models.withRewardHead(lm, 2)) {
            lm.close();
            List<long[]> seqs = new ArrayList<>();
            for (RewardTraining.Pair p : rulePairs(9, 5)) seqs.add(p.chosen());
            double[] together = RewardScorer.score(rm, seqs, 9);
            for (int i = 0; i < seqs.size(); i++) assertEquals(RewardScorer.score(rm, List.of(seqs.get(i)), 1)[0], together[i], 2e-5);
        }
    }

    @Test
    void hhRlhfTrainsEndToEndWithFallingLoss() throws IOException {
        Path data = tmp.resolve("hh.jsonl");
        List<String> lines = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new GZIPInputStream(Files.newInputStream(FIXTURES.resolve("datasets/hh-rlhf/harmless-base-test.jsonl.gz"))), StandardCharsets.UTF_8))) {
            for (int i = 0; i < 24; i++) lines.add(r.readLine());
        }
        Files.write(data, lines);
        Path out = tmp.resolve("hh-run");
        RewardRun.Config c = RewardRun.Config.from(ConfigTree.load(null, List.of("model=" + FIXTURES.resolve("checkpoints/lm-buddy-fake-gpt2"),
                "data=" + data, "output_dir=" + out, "max_steps=12", "learning_rate=0.05", "per_device_train_batch_size=8", "eval_fraction=0.0",
                "max_length=256", "logging_steps=1", "lr_scheduler_type=constant")));
        RewardRun.Result r = RewardRun.run(c, false, null);
        List<JsonNode> metrics = new ArrayList<>();
        for (String l : Files.readAllLines(out.resolve("metrics.jsonl"))) metrics.add(new ObjectMapper().readTree(l));
        double first = (metrics.get(0).get("loss").asDouble() + metrics.get(1).get("loss").asDouble() + metrics.get(2).get("loss").asDouble()) / 3;
        double last = (metrics.get(9).get("loss").asDouble() + metrics.get(10).get("loss").asDouble() + metrics.get(11).get("loss").asDouble()) / 3;
        System.out.printf("HH-RLHF reward model: loss %.4f -> %.4f%n", first, last);
        assertTrue(last < first, "loss should fall: " + first + " -> " + last);
        assertTrue(metrics.get(0).has("accuracy") && metrics.get(0).has("margin"));
        for (String k : new String[] {"rewards/mean", "rewards/std", "rewards/min", "rewards/max"}) assertTrue(metrics.get(0).has(k), k);
        assertTrue(metrics.get(0).get("rewards/min").asDouble() <= metrics.get(0).get("rewards/mean").asDouble()
                && metrics.get(0).get("rewards/mean").asDouble() <= metrics.get(0).get("rewards/max").asDouble());
        var config = new ObjectMapper().readTree(out.resolve("model/config.json").toFile());
        assertEquals("GPT2ForSequenceClassification", config.get("architectures").get(0).asText());
        assertTrue(config.get("tether_reward_normalization").has("std"));
        assertTrue(Files.exists(out.resolve("model/tokenizer.json")));
        assertTrue(r.rewardStd() >= 0);
    }
}
