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

/** use_peft in the trainers, and tether merge. */
class LoraCliTest {
    @TempDir Path tmp;
    static final Path LLAMA = PreferenceCommandsTest.LLAMA;

    @Test
    void dpoWithLoraNeedsNoReferenceAndMergesBack() throws IOException {
        Random r = new Random(5);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 96; i++)
            lines.add("{\"prompt_ids\": [" + (3 + r.nextInt(12)) + ", " + (3 + r.nextInt(12)) + "], \"chosen_ids\": [0, " + (3 + r.nextInt(12))
                    + "], \"rejected_ids\": [1, " + (3 + r.nextInt(12)) + "]}");
        Path data = tmp.resolve("pairs.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("dpo-lora");
        String[] d = TextCliTest.run("dpo", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(), "--set", "use_peft=true",
                "--set", "lora_r=8", "--set", "max_steps=30", "--set", "learning_rate=1e-2", "--set", "per_device_train_batch_size=16", "--set", "logging_steps=5");
        assertEquals("0", d[0], d[2]);
        var provenance = new ObjectMapper().readTree(out.resolve("provenance.json").toFile());
        assertTrue(provenance.get("reference").asText().contains("LoRA adapters disabled"), provenance.toString());
        String last = null;
        for (String l : Files.readAllLines(out.resolve("metrics.jsonl"))) if (l.contains("rewards/accuracies")) last = l;
        assertTrue(new ObjectMapper().readTree(last).get("rewards/accuracies").asDouble() >= 0.9, last);
        assertTrue(Files.exists(out.resolve("adapter/adapter_config.json")) && Files.exists(out.resolve("checkpoints/step-30/adapter_model.safetensors")));
        // tether merge reproduces the merged model the run wrote.
        Path merged = tmp.resolve("merged");
        String[] m = TextCliTest.run("merge", "--model", LLAMA.toString(), "--adapter", out.resolve("adapter").toString(), "--out", merged.toString());
        assertEquals("0", m[0], m[2]);
        assertArrayEquals(Files.readAllBytes(out.resolve("model/model.safetensors")), Files.readAllBytes(merged.resolve("model.safetensors")));
        String[] g1 = TextCliTest.run("generate", "--model", merged.toString(), "--prompt-ids", "4,5", "--max-new-tokens", "1", "--stop-id", "99");
        assertTrue(g1[1].contains("\"completion_ids\":[0]"), "the merged model prefers the chosen start: " + g1[1]);
    }

    @Test
    void sftWithLoraTrainsAdaptersOnly() throws IOException {
        List<String> lines = new ArrayList<>();
        Random r = new Random(2);
        for (int i = 0; i < 64; i++) {
            int a = r.nextInt(16);
            lines.add("{\"prompt_ids\": [" + a + "], \"completion_ids\": [" + (a + 1) % 16 + ", " + (a + 2) % 16 + "]}");
        }
        Path data = tmp.resolve("sft.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("sft-lora");
        String[] s = TextCliTest.run("sft", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", out.toString(), "--set", "use_peft=true",
                "--set", "lora_target_modules=[q_proj, v_proj]", "--set", "max_steps=5", "--set", "learning_rate=1e-3");
        assertEquals("0", s[0], s[2]);
        var adapterConfig = new ObjectMapper().readTree(out.resolve("adapter/adapter_config.json").toFile());
        assertEquals("[\"q_proj\",\"v_proj\"]", adapterConfig.get("target_modules").toString());
        assertTrue(Files.readString(out.resolve("config.yaml")).contains("use_peft: true"));
        String[] bad = TextCliTest.run("sft", "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("x").toString(),
                "--set", "use_peft=true", "--set", "lora_r=0");
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("key 'lora_r': must be >= 1"), bad[2]);
    }
}
