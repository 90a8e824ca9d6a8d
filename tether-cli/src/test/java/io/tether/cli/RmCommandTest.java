package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RmCommandTest {
    @Test
    void trainsAProcessRewardModelOnStepwiseRecords() throws IOException {
        Path base = tmp.resolve("base");
        try (io.tether.model.CausalLM lm = io.tether.model.Models.create(io.tether.model.ModelConfig.llama(259, 64, 2, 4, 2, 128, 64), io.tether.engine.DType.F32, 4)) {
            io.tether.model.Models.save(lm, base, null, null, null, io.tether.model.Models.DEFAULT_MAX_SHARD_BYTES);
        }
        new io.tether.text.ByteTokenizer().save(base);
        Random r = new Random(1);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 600; i++) {
            StringBuilder steps = new StringBuilder(), labels = new StringBuilder();
            for (int s = 0; s < 3; s++) {
                boolean good = r.nextDouble() < 0.6;
                int a = r.nextInt(5), b = r.nextInt(5), c = good ? a + b : (a + b + 1 + r.nextInt(3)) % 10;
                steps.append(s > 0 ? ", " : "").append("\"").append(a).append('+').append(b).append('=').append(c).append("\"");
                labels.append(s > 0 ? ", " : "").append(good);
            }
            lines.add("{\"prompt\": \"Q:\", \"completions\": [" + steps + "], \"labels\": [" + labels + "]}");
        }
        Path data = tmp.resolve("steps.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("prm");
        String[] t = TextCliTest.run("rm", "train", "--model", base.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "kind=process", "--set", "max_steps=200", "--set", "learning_rate=3e-3", "--set", "per_device_train_batch_size=16", "--set", "warmup_steps=10",
                "--set", "lr_scheduler_type=cosine");
        assertEquals("0", t[0], t[2]);
        var eval = new ObjectMapper().readTree(out.resolve("eval.json").toFile());
        assertTrue(eval.get("step_accuracy").asDouble() >= 0.85, eval.toString());
        var config = new ObjectMapper().readTree(out.resolve("model/config.json").toFile());
        assertEquals("LlamaForTokenClassification", config.get("architectures").get(0).asText());
        Path steps = tmp.resolve("score.jsonl");
        Files.writeString(steps, "{\"prompt\": \"Q:\", \"completions\": [\"1+2=3\", \"2+2=7\"]}\n");
        String[] sc = TextCliTest.run("rm", "score", "--model", out.resolve("model").toString(), "--data", steps.toString());
        assertEquals("0", sc[0], sc[2]);
        var scored = new ObjectMapper().readTree(sc[1].lines().findFirst().orElseThrow());
        assertEquals(2, scored.get("step_scores").size());
        assertTrue(scored.get("step_scores").get(0).asDouble() > scored.get("step_scores").get(1).asDouble(), sc[1]);
        // With use_peft the process reward model trains adapters plus its head, and saves both forms.
        Path lora = tmp.resolve("prm-lora");
        String[] l = TextCliTest.run("rm", "train", "--model", base.toString(), "--data", data.toString(), "--output-dir", lora.toString(),
                "--set", "kind=process", "--set", "max_steps=5", "--set", "learning_rate=2e-5", "--set", "use_peft=true");
        assertEquals("0", l[0], l[2]);
        assertTrue(Files.exists(lora.resolve("adapter/adapter_model.safetensors")), "the adapter in PEFT layout");
        assertEquals("LlamaForTokenClassification", new ObjectMapper().readTree(lora.resolve("model/config.json").toFile()).get("architectures").get(0).asText());
        Files.writeString(data, "{\"prompt\": \"Q:\", \"completions\": [\"1+1=2\"], \"labels\": [true, false]}\n");
        String[] bad = TextCliTest.run("rm", "train", "--model", base.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("x").toString(), "--set", "kind=process");
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("steps.jsonl:1: 1 steps but 2 labels"), bad[2]);
    }

    @TempDir Path tmp;
    static final Path LLAMA = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/verl-arithmetic-llama");

    @Test
    void trainScoreAndEvaluateAReward() throws IOException {
        Random r = new Random(3);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 120; i++) {
            StringBuilder c = new StringBuilder(), j = new StringBuilder();
            int zero = r.nextInt(5);
            for (int k = 0; k < 5; k++) {
                c.append(k > 0 ? "," : "").append(k == zero ? 0 : 1 + r.nextInt(15));
                j.append(k > 0 ? "," : "").append(1 + r.nextInt(15));
            }
            lines.add("{\"prompt_ids\": [1, 2], \"chosen_ids\": [" + c + "], \"rejected_ids\": [" + j + "], \"source\": \"" + (i % 2 == 0 ? "a" : "b") + "\"}");
        }
        Path data = tmp.resolve("pairs.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("rm");
        String[] t = TextCliTest.run("rm", "train", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "max_steps=60", "--set", "learning_rate=3e-3", "--set", "per_device_train_batch_size=16");
        assertEquals("0", t[0], t[2]);
        assertTrue(t[1].contains("accuracy"), t[1]);
        var eval = new ObjectMapper().readTree(out.resolve("eval.json").toFile());
        assertTrue(eval.get("accuracy").asDouble() >= 0.9, eval.toString());
        String[] s = TextCliTest.run("rm", "score", "--model", out.resolve("model").toString(), "--data", data.toString());
        assertEquals("0", s[0], s[2]);
        assertEquals(120, s[1].lines().count());
        assertTrue(s[1].lines().findFirst().orElseThrow().contains("\"p_chosen\""));
        String[] e = TextCliTest.run("rm", "eval", "--model", out.resolve("model").toString(), "--data", data.toString(), "--out", tmp.resolve("e.json").toString());
        assertEquals("0", e[0], e[2]);
        assertTrue(e[1].contains("slice") && e[1].contains("confidence bin"), e[1]);
        Path single = tmp.resolve("single.jsonl");
        Files.writeString(single, "{\"prompt_ids\": [1], \"completion_ids\": [2]}\n");
        String[] bad = TextCliTest.run("rm", "eval", "--model", out.resolve("model").toString(), "--data", single.toString());
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("single.jsonl:1: evaluation needs preference records"), bad[2]);
    }
}
