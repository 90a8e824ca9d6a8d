package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PreferenceCommandsTest {
    @TempDir Path tmp;
    static final Path LLAMA = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/verl-arithmetic-llama");
    static final ObjectMapper JSON = new ObjectMapper();

    private Path pairs() throws IOException {
        return pairs(tmp);
    }

    /** 96 token-id pairs in {@code dir}/pairs.jsonl: chosen answers start with token 0, rejected ones with token 1. */
    static Path pairs(Path dir) throws IOException {
        Random r = new Random(5);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 96; i++)
            lines.add("{\"prompt_ids\": [" + (3 + r.nextInt(12)) + ", " + (3 + r.nextInt(12)) + "], \"chosen_ids\": [0, " + (3 + r.nextInt(12))
                    + "], \"rejected_ids\": [1, " + (3 + r.nextInt(12)) + "]}");
        Path p = dir.resolve("pairs.jsonl");
        Files.write(p, lines);
        return p;
    }

    private static Path copy(Path src, Path dst) throws IOException {
        Files.createDirectories(dst);
        try (Stream<Path> s = Files.list(src)) {
            for (Path f : s.toList()) Files.copy(f, dst.resolve(f.getFileName()));
        }
        return dst;
    }

    private static JsonNode lastTrainLine(Path run) throws IOException {
        JsonNode last = null;
        for (String l : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(l);
            if (n.has("loss")) last = n;
        }
        return last;
    }

    @Test
    void dpoLearnsWithAFrozenCopyOfThePolicy() throws IOException {
        Path out = tmp.resolve("dpo");
        String[] r = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", pairs().toString(), "--output-dir", out.toString(),
                "--set", "max_steps=30", "--set", "learning_rate=3e-3", "--set", "per_device_train_batch_size=16", "--set", "logging_steps=5");
        assertEquals("0", r[0], r[2]);
        JsonNode last = lastTrainLine(out);
        for (String k : new String[] {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected"})
            assertTrue(last.has(k), k);
        assertTrue(last.get("rewards/accuracies").asDouble() >= 0.9, last.toString());
        assertTrue(r[2].contains("loss near ln 2"), "the step-0 diagnostic: " + r[2]);
        assertTrue(JSON.readTree(out.resolve("provenance.json").toFile()).get("reference").asText().startsWith("frozen copy"));
        assertTrue(Files.exists(out.resolve("model/model.safetensors")));
    }

    @Test
    void heldOutEvaluationTracksTheSampledResponseLength() throws IOException {
        Path out = tmp.resolve("dpo-eval");
        String[] r = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", pairs().toString(), "--output-dir", out.toString(),
                "--set", "max_steps=10", "--set", "eval_steps=5", "--set", "eval_fraction=0.1", "--set", "learning_rate=3e-3", "--set", "per_device_train_batch_size=16");
        assertEquals("0", r[0], r[2]);
        long evals = Files.readAllLines(out.resolve("metrics.jsonl")).stream().filter(l -> l.contains("eval/sampled_length")).count();
        assertEquals(2, evals, "an entry at steps 5 and 10");
        assertTrue(Files.readString(out.resolve("metrics.jsonl")).contains("\"eval_loss\""));
    }

    @Test
    void precomputedReferenceLogprobsAreUsedWithoutLoadingTheReference() throws IOException {
        Path data = pairs();
        Path ref = copy(LLAMA, tmp.resolve("ref"));
        Path logps = tmp.resolve("ref-logprobs.jsonl");
        String[] l = TextCliTest.run("logprobs", "--model", ref.toString(), "--data", data.toString(), "--out", logps.toString());
        assertEquals("0", l[0], l[2]);
        assertTrue(Files.exists(tmp.resolve("ref-logprobs.jsonl.meta.json")));
        // Break the reference's config: loading it would now fail, hashing its weights still works.
        Files.writeString(ref.resolve("config.json"), "{broken");
        Path out = tmp.resolve("dpo-pre");
        String[] r = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "ref_model=" + ref, "--set", "ref_logprobs=" + logps, "--set", "max_steps=20", "--set", "learning_rate=3e-3", "--set", "per_device_train_batch_size=16");
        assertEquals("0", r[0], r[2]);
        assertTrue(lastTrainLine(out).get("rewards/accuracies").asDouble() >= 0.9);
        // Other data: the file is refused, naming why.
        Files.writeString(data, Files.readString(data).replaceFirst("\\[0, ", "[0, 0, "));
        String[] bad = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("x").toString(),
                "--set", "ref_model=" + ref, "--set", "ref_logprobs=" + logps);
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("computed for other data"), bad[2]);
    }

    @Test
    void precomputeCacheIsReusedOnResumeWithoutTheReference() throws IOException {
        Path data = pairs(), out = tmp.resolve("cache");
        String[] first = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "precompute_ref_log_probs=true", "--set", "max_steps=6", "--set", "save_steps=3", "--set", "learning_rate=3e-3");
        assertEquals("0", first[0], first[2]);
        assertTrue(JSON.readTree(out.resolve("provenance.json").toFile()).get("reference").asText().startsWith("precomputed in this run"));
        String[] again = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "precompute_ref_log_probs=true", "--set", "max_steps=8", "--set", "save_steps=3", "--set", "learning_rate=3e-3", "--resume");
        assertEquals("0", again[0], again[2]);
        assertTrue(JSON.readTree(out.resolve("provenance.json").toFile()).get("reference").asText().startsWith("cached"), "cache reused");
    }

    @Test
    void diagnosticsNameTheTrapAndTheLengthBias() throws IOException {
        Random r = new Random(7);
        List<String> swapped = new ArrayList<>(), longer = new ArrayList<>();
        for (int i = 0; i < 48; i++) {
            String p = "[" + (3 + r.nextInt(12)) + ", " + (3 + r.nextInt(12)) + "]", a = "[0, " + (3 + r.nextInt(12)) + "]", b = "[1, " + (3 + r.nextInt(12)) + "]";
            // Every comparison twice, with opposite labels: there is nothing to learn.
            swapped.add("{\"prompt_ids\": " + p + ", \"chosen_ids\": " + a + ", \"rejected_ids\": " + b + "}");
            swapped.add("{\"prompt_ids\": " + p + ", \"chosen_ids\": " + b + ", \"rejected_ids\": " + a + "}");
            longer.add("{\"prompt_ids\": " + p + ", \"chosen_ids\": [0, 4, 5, 6], \"rejected_ids\": " + b + "}");
        }
        Path data = tmp.resolve("contradictory.jsonl"), biased = tmp.resolve("biased.jsonl");
        Files.write(data, swapped);
        Files.write(biased, longer);
        String[] out = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("trap").toString(),
                "--set", "max_steps=12", "--set", "learning_rate=1e-3", "--set", "per_device_train_batch_size=96", "--set", "logging_steps=1");
        assertEquals("0", out[0], out[2]);
        assertTrue(out[2].contains("little learnable signal") && out[2].contains("96 pairs, 0 ties, 48 contradicted"), out[2]);
        assertFalse(out[2].contains("length bias"), out[2]);
        out = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", biased.toString(), "--output-dir", tmp.resolve("bias").toString(), "--set", "max_steps=1", "--set", "learning_rate=2e-5");
        assertEquals("0", out[0], out[2]);
        assertTrue(out[2].contains("length bias: chosen is longer than rejected in 100% of pairs"), out[2]);
    }

    @Test
    void rdpoAlphaIsRecordedAndRefusedWhereItHasNoLogit() throws IOException {
        Path out = tmp.resolve("rdpo");
        String[] r = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", pairs().toString(), "--output-dir", out.toString(),
                "--set", "max_steps=2", "--set", "learning_rate=2e-5", "--set", "rdpo_alpha=0.02");
        assertEquals("0", r[0], r[2]);
        assertTrue(Files.readString(out.resolve("config.yaml")).contains("rdpo_alpha: 0.02"), "the resolved config records it");
        assertFalse(r[2].contains("loss near ln 2"), "the length term moves the starting loss off ln 2: " + r[2]);
        Path bad = tmp.resolve("rdpo-ipo");
        r = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", pairs().toString(), "--output-dir", bad.toString(),
                "--set", "max_steps=2", "--set", "rdpo_alpha=0.02", "--set", "loss_type=ipo");
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("rdpo_alpha") && r[2].contains("'ipo'"), r[2]);
        assertFalse(Files.exists(bad.resolve("model")), "nothing trained");
        r = TextCliTest.run("orpo", "--model", LLAMA.toString(), "--data", pairs().toString(), "--output-dir", tmp.resolve("rdpo-orpo").toString(),
                "--set", "max_steps=2", "--set", "rdpo_alpha=0.02");
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("key 'rdpo_alpha'") && r[2].contains("orpo does not read it"), r[2]);
    }

    @Test
    void combinedLossTypesFromTheConfig() throws IOException {
        Path cfg = tmp.resolve("mpo.yaml");
        Files.writeString(cfg, "loss_type: [sigmoid, bco_pair, sft]\nloss_weights: [0.8, 0.2, 1.0]\nmax_steps: 3\nlearning_rate: 2.0e-5\n");
        String[] r = TextCliTest.run("dpo", "--config", cfg.toString(), "--model", LLAMA.toString(), "--data", pairs().toString(), "--output-dir", tmp.resolve("mpo").toString());
        assertEquals("0", r[0], r[2]);
        Files.writeString(cfg, "loss_type: [sigmoid, sft]\nloss_weights: [1.0]\n");
        r = TextCliTest.run("dpo", "--config", cfg.toString(), "--model", LLAMA.toString(), "--data", pairs().toString(), "--output-dir", tmp.resolve("bad").toString());
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("loss_weights has 1 entries for 2 loss types"), r[2]);
    }

    @Test
    void ktoWarnsAboutItsWeightRatio() throws IOException {
        Path data = tmp.resolve("kto.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++) lines.add("{\"prompt_ids\": [3, 4], \"completion_ids\": [" + (i % 4 == 0 ? 0 : 1) + ", 5], \"label\": " + (i % 4 == 0) + "}");
        Files.write(data, lines);
        String[] r = TextCliTest.run("kto", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("kto-ratio").toString(), "--set", "max_steps=2", "--set", "learning_rate=2e-5");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("KTO: desirable_weight x 10 desirable / (undesirable_weight x 30 undesirable) = 0.33"), r[2]);
        r = TextCliTest.run("kto", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("kto-apo").toString(),
                "--set", "max_steps=2", "--set", "learning_rate=2e-5", "--set", "loss_type=apo_zero_unpaired", "--set", "desirable_weight=3.0");
        assertEquals("0", r[0], r[2]);
        assertFalse(r[2].contains("outside"), r[2]);
    }

    @Test
    void ktoOrpoAndSimpoRun() throws IOException {
        Path data = pairs();
        for (String m : new String[] {"kto", "orpo", "simpo"}) {
            Path out = tmp.resolve(m);
            String[] r = TextCliTest.run(m, "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                    "--set", "max_steps=20", "--set", "learning_rate=3e-3", "--set", "per_device_train_batch_size=16");
            assertEquals("0", r[0], m + ": " + r[2]);
            assertTrue(Files.exists(out.resolve("model/model.safetensors")), m);
        }
        assertTrue(JSON.readTree(tmp.resolve("orpo/provenance.json").toFile()).get("reference").asText().contains("reference-free"));
    }
}
