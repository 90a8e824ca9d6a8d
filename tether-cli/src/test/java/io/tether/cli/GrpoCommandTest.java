package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `tether grpo` end to end on real GSM8K prompts with the GPT-2 fixture and its tokenizer. */
class GrpoCommandTest {
    @TempDir Path tmp;
    static final Path FIXTURES = TextCliTest.FIXTURES;

    @Test
    void runsOnGsm8kWithVerifiableRewards() throws IOException {
        List<String> lines = Files.readAllLines(FIXTURES.resolve("datasets/gsm8k/test.jsonl")).subList(0, 4);
        Path data = tmp.resolve("gsm8k.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("grpo");
        String[] r = TextCliTest.run("grpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "max_steps=2", "--set", "learning_rate=2e-5", "--set", "num_generations=4", "--set", "max_completion_length=6", "--set", "per_device_train_batch_size=2",
                "--set", "beta=0.04", "--set", "reward_format_regex=####");
        assertEquals("0", r[0], r[2]);
        String metrics = Files.readString(out.resolve("metrics.jsonl"));
        assertTrue(metrics.contains("\"reward\"") && metrics.contains("\"completions/unscorable\"") && metrics.contains("\"completions/mean_length\""), metrics);
        assertTrue(Files.exists(out.resolve("model/model.safetensors")));
        String[] bad = TextCliTest.run("grpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("x").toString(),
                "--set", "num_generations=1");
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("key 'num_generations'"), bad[2]);
    }
}
