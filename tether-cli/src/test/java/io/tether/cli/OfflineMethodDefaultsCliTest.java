package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user of the offline commands sees: the learning rate in force and where it came from at the start of a run,
 * AlphaPO through cpo's loss_type, and KTO's refusal of one-example batches before anything is written.
 */
class OfflineMethodDefaultsCliTest {
    @TempDir Path tmp;

    private Path pairs() throws IOException {
        return PreferenceCommandsTest.pairs(tmp);
    }

    @Test
    void theStartLineNamesTheLearningRateAndItsSource() throws IOException {
        Path out = tmp.resolve("dpo");
        String[] r = TextCliTest.run("dpo", "--model", PreferenceCommandsTest.LLAMA.toString(), "--data", pairs().toString(), "--output-dir", out.toString(),
                "--max-steps", "1");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("training 1 steps at learning_rate 1.00e-06 (TRL v0.29.1 DPOConfig default)"), r[2]);
        assertTrue(Files.readString(out.resolve("config.yaml")).contains("learning_rate: 1.0E-6"), "config.yaml records the default in force");
        r = TextCliTest.run("orpo", "--model", PreferenceCommandsTest.LLAMA.toString(), "--data", pairs().toString(), "--output-dir", tmp.resolve("orpo").toString(),
                "--max-steps", "1", "--set", "learning_rate=1e-4", "--set", "orpo_nll_tokens=completion");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("training 1 steps at learning_rate 1.00e-04 (set)"), r[2]);
    }

    @Test
    void alphapoTrainsThroughCposLossType() throws IOException {
        Path out = tmp.resolve("alphapo");
        String[] r = TextCliTest.run("cpo", "--model", PreferenceCommandsTest.LLAMA.toString(), "--data", pairs().toString(), "--output-dir", out.toString(),
                "--max-steps", "2", "--set", "loss_type=alphapo", "--set", "alpha=0.25", "--set", "beta=2.5", "--set", "simpo_gamma=1.375",
                "--set", "learning_rate=1e-4", "--set", "per_device_train_batch_size=8");
        assertEquals("0", r[0], r[2]);
        String config = Files.readString(out.resolve("config.yaml"));
        assertTrue(config.contains("alpha: 0.25") && config.contains("alphapo"), config);
        assertTrue(Files.exists(out.resolve("model/model.safetensors")));
    }

    @Test
    void ktoRefusesABatchOfOneBeforeWritingAnything() throws IOException {
        Path out = tmp.resolve("kto");
        String[] r = TextCliTest.run("kto", "--model", PreferenceCommandsTest.LLAMA.toString(), "--data", pairs().toString(), "--output-dir", out.toString(),
                "--max-steps", "1", "--set", "per_device_train_batch_size=1", "--set", "gradient_accumulation_steps=4");
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("key 'per_device_train_batch_size'"), r[2]);
        assertFalse(r[2].contains("\tat io.tether"), "one message, no stack trace: " + r[2]);
        assertFalse(Files.exists(out), "nothing written");
    }
}
