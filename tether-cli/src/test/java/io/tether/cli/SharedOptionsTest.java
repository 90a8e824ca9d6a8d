package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The options several commands share are declared once: the same check and help in every command that takes them. */
class SharedOptionsTest {
    @TempDir Path tmp;

    @Test
    void everyCommandWithBatchSizeRefusesZeroInOneLine() throws IOException {
        Path gpt2 = TextCliTest.GPT2;
        Path pairs = tmp.resolve("pairs.jsonl");
        Files.writeString(pairs, "{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n");
        String[][] commands = {
                {"generate", "--model", gpt2.toString(), "--prompt-ids", "1"},
                {"logprobs", "--model", gpt2.toString(), "--data", pairs.toString()},
                {"eval", "--model", gpt2.toString(), "--baseline", gpt2.toString(), "--data", pairs.toString(), "--answer-field", "answer"},
                // rm score and rm eval did not check: a batch of 0 never advanced through the records
                {"rm", "score", "--model", gpt2.toString(), "--data", pairs.toString()},
                {"rm", "eval", "--model", gpt2.toString(), "--data", pairs.toString()},
        };
        for (String[] c : commands) {
            String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(c), java.util.stream.Stream.of("--batch-size", "0")).toArray(String[]::new);
            String[] r = TextCliTest.run(args);
            assertEquals("2", r[0], String.join(" ", c) + ": " + r[2]);
            assertEquals(1, r[2].strip().lines().count(), String.join(" ", c) + ": " + r[2]);
            assertTrue(r[2].contains("--batch-size must be >= 1, got 0"), String.join(" ", c) + ": " + r[2]);
        }
    }

    @Test
    void sharedOptionsKeepTheirHelpInEveryCommand() {
        for (String[] c : new String[][] {{"generate"}, {"logprobs"}, {"rm", "score"}, {"rm", "eval"}}) {
            // picocli wraps long descriptions: compare with the line breaks and indentation folded to single spaces
            String help = TextCliTest.run(java.util.stream.Stream.concat(java.util.Arrays.stream(c), java.util.stream.Stream.of("--help")).toArray(String[]::new))[1]
                    .replaceAll("\\s+", " ");
            assertTrue(help.contains("--model=<model>") && help.contains("Hugging Face model directory (config.json + safetensors)"), help);
            assertTrue(help.contains("--batch-size=<batchSize>") && help.contains("sequences per forward pass (default: 8)"), help);
        }
        String generate = TextCliTest.run("generate", "--help")[1].replaceAll("\\s+", " ");
        assertTrue(generate.contains("compute dtype: fp32, fp64 or bf16 (default: fp32)") && generate.contains("sampling seed (default: 0)")
                && generate.contains("output JSONL (default: stdout); written to a temporary file, then renamed"), generate);
    }
}
