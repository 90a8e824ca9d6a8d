package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.Models;

/** `tether rloo` and `tether ppo` end to end on real GSM8K prompts with the GPT-2 fixture, LoRA and a reward model. */
class OnlineCommandsTest {
    @TempDir Path tmp;

    Path gsm8k(int n) throws IOException {
        Path data = tmp.resolve("gsm8k.jsonl");
        Files.write(data, Files.readAllLines(TextCliTest.FIXTURES.resolve("datasets/gsm8k/test.jsonl")).subList(0, n));
        return data;
    }

    @Test
    void rlooWithLoraKeepsOneModelAndSavesAnAdapter() throws IOException {
        Path out = tmp.resolve("rloo");
        String[] r = TextCliTest.run("rloo", "--model", TextCliTest.GPT2.toString(), "--data", gsm8k(4).toString(), "--output-dir", out.toString(),
                "--set", "max_steps=2", "--set", "learning_rate=2e-5", "--set", "num_generations=3", "--set", "max_completion_length=5", "--set", "per_device_train_batch_size=2",
                "--set", "use_peft=true", "--set", "lora_r=4", "--set", "lora_target_modules=[c_attn]", "--set", "reward_format_regex=\\d", "--set", "missing_eos_penalty=0.5",
                "--set", "stop_strings=[\"\\n\"]", "--set", "normalize_rewards=true", "--set", "num_iterations=2");
        assertEquals("0", r[0], r[2]);
        String metrics = Files.readString(out.resolve("metrics.jsonl"));
        assertTrue(metrics.contains("\"kl\"") && metrics.contains("\"frac_reward_zero_std\"") && metrics.contains("\"completions/clipped_ratio\""), metrics);
        assertTrue(Files.exists(out.resolve("adapter/adapter_model.safetensors")) || Files.exists(out.resolve("model/adapter_model.safetensors")),
                "an adapter in PEFT layout: " + listing(out));
    }

    @Test
    void ppoAgainstARewardModelTrainsPolicyAndCritic() throws IOException {
        Torch.init();
        Path rm = tmp.resolve("rm");
        try (Models.LoadedModel lm = Models.load(TextCliTest.GPT2, DType.F32); CausalLM head = Models.withRewardHead(lm.model(), 3)) {
            Models.save(head, rm, null, null, null, Models.DEFAULT_MAX_SHARD_BYTES);
        }
        Path out = tmp.resolve("ppo");
        String[] r = TextCliTest.run("ppo", "--model", TextCliTest.GPT2.toString(), "--data", gsm8k(4).toString(), "--output-dir", out.toString(),
                "--set", "reward_model=" + rm, "--set", "max_steps=4", "--set", "learning_rate=2e-5", "--set", "num_ppo_epochs=2", "--set", "num_mini_batches=2",
                "--set", "per_device_train_batch_size=1", "--set", "max_completion_length=5", "--set", "kl_target=0.5", "--set", "kl_estimator=k3", "--set", "logging_steps=1",
                "--set", "use_peft=true", "--set", "lora_r=4", "--set", "gradient_checkpointing=true");
        assertEquals("0", r[0], r[2]);
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertTrue(lines.size() >= 4, lines.toString());
        assertTrue(lines.get(0).contains("\"objective/kl_coef\"") && lines.get(0).contains("\"val/clipfrac_avg\""), lines.get(0));
        assertTrue(Files.exists(out.resolve("model/model.safetensors")) && Files.exists(out.resolve("value_model/model.safetensors"))
                && Files.exists(out.resolve("adapter/adapter_model.safetensors")), listing(out));
        String[] bad = TextCliTest.run("ppo", "--model", TextCliTest.GPT2.toString(), "--data", gsm8k(2).toString(), "--output-dir", tmp.resolve("x").toString(),
                "--set", "reward_model=" + rm, "--set", "kl_estimator=k4");
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("kl_estimator"), bad[2]);
        String[] badGold = TextCliTest.run("ppo", "--model", TextCliTest.GPT2.toString(), "--data", gsm8k(2).toString(), "--output-dir",
                tmp.resolve("y").toString(), "--set", "reward_model=" + rm, "--set", "gold_reward_functions=[nope]");
        assertEquals("2", badGold[0]);
        assertTrue(badGold[2].contains("gold_reward_functions") && badGold[2].contains("refund-rubric"), badGold[2]);
        assertFalse(Files.exists(tmp.resolve("y")), "nothing written before the config is known good");
    }

    @Test
    void grpoOptimisesTheRefundWorldsGoldRubricByName() throws IOException {
        Path world = tmp.resolve("world");
        assertEquals("0", TextCliTest.run("world", "data", "--out", world.toString(), "--cases", "20")[0]);
        Path out = tmp.resolve("grpo-world");
        String base = Path.of("../models/refund-base").toString();
        String[] r = TextCliTest.run("grpo", "--model", base, "--data", world.resolve("grpo.train.jsonl").toString(), "--output-dir", out.toString(),
                "--set", "reward_functions=[refund-rubric]", "--set", "max_steps=1", "--set", "learning_rate=2e-5", "--set", "num_generations=2", "--set", "max_completion_length=40",
                "--set", "per_device_train_batch_size=2", "--set", "logging_steps=1");
        assertEquals("0", r[0], r[2]);
        String metrics = Files.readString(out.resolve("metrics.jsonl"));
        assertTrue(metrics.contains("\"completions/unscorable\":0.0"), "the rubric scores every completion: " + metrics);
        String[] bad = TextCliTest.run("grpo", "--model", base, "--data", world.resolve("grpo.train.jsonl").toString(), "--output-dir", tmp.resolve("x").toString(),
                "--set", "reward_functions=[kindness]");
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("no reward function 'kindness'; available: refund-rubric"), bad[2]);
    }

    static String listing(Path dir) throws IOException {
        try (var s = Files.walk(dir)) {
            return s.map(p -> dir.relativize(p).toString()).toList().toString();
        }
    }
}
