package io.tether.reward;

import io.tether.rollout.RewardScorer;
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
import io.tether.run.ConfigTree;
import io.tether.run.RunConfig;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;

public class RewardModelTest {
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

    /**
     * Eight pairs whose reward differences d put the Bradley-Terry confidence σ(|d|) in the middle of known bins
     * (5 bins over [0.5, 1], each 0.1 wide):
     * <pre>
     * pair  d           σ(|d|)  right  bin            slice  mean length
     * 1     ln 3        0.75    yes    2 [0.7, 0.8)   a      4
     * 2     -ln 3       0.75    no     2              a      4
     * 3     ln 3        0.75    yes    2              a      9
     * 4     ln 19       0.95    yes    4 [0.9, 1.0]   a      9
     * 5     ln 19       0.95    yes    4              b      4
     * 6     ln(11/9)    0.55    yes    0 [0.5, 0.6)   b      4
     * 7     -ln(11/9)   0.55    no     0              b      9
     * 8     0 (a tie)   0.50    no     0              b      9   (TRL counts chosen > rejected only)
     * </pre>
     * bin 0: 3 pairs, confidence (0.55 + 0.55 + 0.5) / 3 = 0.5333, accuracy 1/3, gap 0.2
     * bin 2: 3 pairs, confidence 0.75, accuracy 2/3, gap 1/12
     * bin 4: 2 pairs, confidence 0.95, accuracy 1, gap 0.05
     * ECE = 3/8 * 0.2 + 3/8 * 1/12 + 2/8 * 0.05 = 0.075 + 0.03125 + 0.0125 = 0.11875; accuracy 5/8.
     * Mean loss −log σ(d): (2 ln 4/3 + ln 4 + 2 ln 20/19 + ln 20/11 + ln 20/9 + ln 2) / 8 = 4.153737 / 8 = 0.519217.
     */
    @Test
    void reliabilityTableAndEceOfAHandComputedCase() {
        double ln3 = Math.log(3), ln19 = Math.log(19), ln119 = Math.log(11.0 / 9);
        double[][] chosenRejected = {{ln3, 0}, {0, ln3}, {ln3, 0}, {ln19, 0}, {ln19, 0}, {ln119, 0}, {0, ln119}, {0.5, 0.5}};
        List<RewardTraining.Pair> pairs = new ArrayList<>();
        double[] rewards = new double[16];
        for (int i = 0; i < 8; i++) {
            boolean longPair = i == 2 || i == 3 || i == 6 || i == 7;   // mean length (12 + 6) / 2 = 9, else (4 + 4) / 2 = 4
            pairs.add(new RewardTraining.Pair(new long[longPair ? 12 : 4], new long[longPair ? 6 : 4], 0, i < 4 ? "a" : "b"));
            rewards[2 * i] = chosenRejected[i][0];
            rewards[2 * i + 1] = chosenRejected[i][1];
        }
        RewardEvaluation.Report report = RewardEvaluation.report(pairs, rewards, 5);
        assertEquals(8, report.pairs());
        assertEquals(0.625, report.accuracy(), 1e-15);
        assertEquals(0.11875, report.expectedCalibrationError(), 1e-12);
        int[] counts = {3, 0, 3, 0, 2};
        double[] confidence = {1.6 / 3, Double.NaN, 0.75, Double.NaN, 0.95}, accuracy = {1.0 / 3, Double.NaN, 2.0 / 3, Double.NaN, 1.0};
        assertEquals(5, report.reliability().size());
        for (int b = 0; b < 5; b++) {
            RewardEvaluation.Bin bin = report.reliability().get(b);
            assertEquals(0.5 + 0.1 * b, bin.low(), 1e-12, "bin " + b);
            assertEquals(0.6 + 0.1 * b, bin.high(), 1e-12, "bin " + b);
            assertEquals(counts[b], bin.count(), "bin " + b);
            assertEquals(confidence[b], bin.meanConfidence(), 1e-12, "bin " + b);   // NaN equals NaN here: an empty bin
            assertEquals(accuracy[b], bin.accuracy(), 1e-12, "bin " + b);
        }
        assertEquals(4.153737 / 8, report.meanLoss(), 1e-6);
        assertEquals(0.75, report.accuracyBySlice().get("a")[0], 1e-15);
        assertEquals(0.5, report.accuracyBySlice().get("b")[0], 1e-15);
        assertEquals(4, report.accuracyBySlice().get("b")[1]);
        // Length buckets by powers of two of the pair's mean length: pairs 1, 2, 5, 6 and pairs 3, 4, 7, 8.
        assertEquals(List.of("4-7 tokens", "8-15 tokens"), List.copyOf(report.accuracyByLength().keySet()));
        assertEquals(0.75, report.accuracyByLength().get("4-7 tokens")[0], 1e-15);
        assertEquals(0.5, report.accuracyByLength().get("8-15 tokens")[0], 1e-15);
        assertEquals(0.0, report.minReward());
        assertEquals(ln19, report.maxReward());
        assertEquals((3 * ln3 + 2 * ln19 + 2 * ln119 + 1) / 16, report.meanReward(), 1e-15);
    }

    /** Chosen responses contain token 7 somewhere; rejected ones never do. */
    public static List<RewardTraining.Pair> rulePairs(int n, long seed) {
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
            System.out.printf("reward model: held-out accuracy %.3f after 120 steps, ECE %.3f%n", report.accuracy(), report.expectedCalibrationError());
            assertTrue(report.accuracy() >= 0.95, "held-out accuracy " + report.accuracy());
            // The work is bounded (120 steps of 16 pairs), not timed: a wall-clock bound fails on a busy machine.
            assertEquals(2, report.accuracyBySlice().size());
            assertEquals(64, report.accuracyBySlice().get("even")[1]);
            assertEquals(64, report.accuracyBySlice().get("odd")[1]);
            assertEquals(report.accuracy(), (report.accuracyBySlice().get("even")[0] + report.accuracyBySlice().get("odd")[0]) / 2, 1e-12);
            // Every pair lands in one bin, and the ECE is the count-weighted gap of the table it reports.
            int binned = 0;
            double ece = 0;
            for (RewardEvaluation.Bin b : report.reliability()) {
                binned += b.count();
                if (b.count() > 0) ece += b.count() / 128.0 * Math.abs(b.accuracy() - b.meanConfidence());
            }
            assertEquals(128, binned);
            assertEquals(ece, report.expectedCalibrationError(), 1e-12);
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
        RunConfig<RewardSettings> c = RewardSettings.config(ConfigTree.load(null, List.of("model=" + FIXTURES.resolve("checkpoints/lm-buddy-fake-gpt2"),
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
        for (JsonNode m : metrics) {
            // Each step's batch: 8 chosen and 8 rejected rewards, so their mean is the average of the two sides'
            // means, and the margin their difference.
            double chosen = m.get("rewards/chosen").asDouble(), rejected = m.get("rewards/rejected").asDouble();
            assertEquals((chosen + rejected) / 2, m.get("rewards/mean").asDouble(), 1e-9, m.toString());
            assertEquals(chosen - rejected, m.get("margin").asDouble(), 1e-9, m.toString());
            assertTrue(m.get("rewards/min").asDouble() < Math.min(chosen, rejected) && Math.max(chosen, rejected) < m.get("rewards/max").asDouble(), m.toString());
            assertTrue(m.get("rewards/std").asDouble() > 0, m.toString());
        }
        var config = new ObjectMapper().readTree(out.resolve("model/config.json").toFile());
        assertEquals("GPT2ForSequenceClassification", config.get("architectures").get(0).asText());
        // Pairs longer than max_length are left out, as TRL's RewardTrainer filters them (3 of these 24 at 256
        // tokens), and counted in the provenance.
        JsonNode reading = new ObjectMapper().readTree(out.resolve("provenance.json").toFile()).get("data_reading");
        assertEquals(3, reading.get("records_dropped").asInt(), reading.toString());
        assertEquals("drop", reading.get("truncation_mode").asText(), reading.toString());
        // The normalisation statistics saved with the model are the ones the run computed, over the 21 pairs it kept.
        JsonNode norm = config.get("tether_reward_normalization");
        assertEquals(r.rewardMean(), norm.get("mean").asDouble(), 0.0);
        assertEquals(r.rewardStd(), norm.get("std").asDouble(), 0.0);
        assertEquals(21, norm.get("pairs").asInt());
        assertTrue(r.rewardStd() > 0, "48 different responses do not all score the same: " + r.rewardStd());
        assertTrue(Files.exists(out.resolve("model/tokenizer.json")));
    }
}
