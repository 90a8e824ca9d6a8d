package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.run.Provenance;

/** `tether online-dpo` end to end on real GSM8K prompts with the GPT-2 fixture and its tokenizer. */
class OnlineDpoCommandTest {
    @TempDir Path tmp;
    static final Path FIXTURES = TextCliTest.FIXTURES;

    @Test
    void runsOnGsm8kWithARewardFunction() throws IOException {
        List<String> lines = Files.readAllLines(FIXTURES.resolve("datasets/gsm8k/test.jsonl")).subList(0, 4);
        Path data = tmp.resolve("gsm8k.jsonl");
        Files.write(data, lines);
        Path out = tmp.resolve("odpo");
        String[] r = TextCliTest.run("online-dpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "max_steps=2", "--set", "learning_rate=2e-5", "--set", "max_new_tokens=6", "--set", "per_device_train_batch_size=2", "--set", "num_rounds=2",
                "--set", "logging_steps=1", "--set", "reward_format_regex=th", "--set", "reward_format_weight=1.0", "--set", "missing_eos_penalty=0.5");
        assertEquals("0", r[0], r[2]);
        String metrics = Files.readString(out.resolve("metrics.jsonl"));
        assertEquals(2, metrics.lines().filter(l -> l.contains("\"loss\"")).count(), metrics);
        for (String key : List.of("objective/kl", "objective/scores", "rewards/chosen", "val/contain_eos_token", "pairs/tie_fraction", "beta"))
            assertTrue(metrics.contains("\"" + key + "\""), key + ": " + metrics);
        // The resolved config, read as YAML: TRL's OnlineDPOConfig defaults (beta 0.1, sigmoid, temperature 0.9).
        var config = new com.fasterxml.jackson.databind.ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory())
                .readTree(out.resolve("config.yaml").toFile());
        assertEquals(0.1, config.path("beta").asDouble(Double.NaN), 0.0, config.toString());
        assertEquals("sigmoid", config.path("loss_type").asText(), config.toString());
        assertEquals(0.9, config.path("temperature").asDouble(Double.NaN), 0.0, config.toString());
        assertEquals(2, config.path("num_rounds").asInt(-1), config.toString());
        assertTrue(Files.exists(out.resolve("provenance.json")));
        assertTrue(Files.exists(out.resolve("model/model.safetensors")));

        String[] bad = TextCliTest.run("online-dpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("x").toString(),
                "--set", "loss_type=hinge", "--set", "reward_format_regex=####");
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("key 'loss_type'"), bad[2]);
        // LoRA: the reference is the policy with its adapters off; ipo loss.
        Path loraOut = tmp.resolve("odpo-lora");
        String[] ok = TextCliTest.run("online-dpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", loraOut.toString(),
                "--set", "use_peft=true", "--set", "max_steps=1", "--set", "learning_rate=2e-5", "--set", "max_completion_length=4", "--set", "per_device_train_batch_size=4",
                "--set", "loss_type=ipo", "--set", "reward_format_regex=th");
        assertEquals("0", ok[0], ok[2]);
        assertTrue(Files.readString(loraOut.resolve("metrics.jsonl")).contains("\"objective/kl\""));
        String[] lora = TextCliTest.run("online-dpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("y").toString(),
                "--set", "use_peft=true", "--set", "num_rounds=2", "--set", "reward_format_regex=####");
        assertEquals("2", lora[0]);
        assertTrue(lora[2].contains("key 'num_rounds'"), lora[2]);
    }

    @Test
    void tiePolicyIsAKeyOfTheConfig() throws IOException {
        Path data = tmp.resolve("gsm8k.jsonl");
        Files.write(data, Files.readAllLines(FIXTURES.resolve("datasets/gsm8k/test.jsonl")).subList(0, 2));
        Path out = tmp.resolve("first");
        // A format regex nothing matches in 3 tokens: every pair ties, and with tie_policy first every pair still trains.
        String[] r = TextCliTest.run("online-dpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "max_steps=1", "--set", "learning_rate=2e-5", "--set", "max_new_tokens=3", "--set", "per_device_train_batch_size=2", "--set", "logging_steps=1",
                "--set", "reward_format_regex=^NEVER$", "--set", "tie_policy=first");
        assertEquals("0", r[0], r[2]);
        var step = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Files.readAllLines(out.resolve("metrics.jsonl")).get(0));
        assertEquals(1.0, step.get("pairs/tie_fraction").asDouble(), 0.0, step.toString());
        assertEquals(0.0, step.get("pairs/dropped_fraction").asDouble(), 0.0, step.toString());
        assertTrue(step.has("rewards/chosen"), step.toString());
        assertTrue(Files.readString(out.resolve("config.yaml")).contains("tie_policy: \"first\"") || Files.readString(out.resolve("config.yaml")).contains("tie_policy: first"));
        String[] bad = TextCliTest.run("online-dpo", "--model", TextCliTest.GPT2.toString(), "--data", data.toString(), "--output-dir", tmp.resolve("bad").toString(),
                "--set", "reward_format_regex=th", "--set", "tie_policy=random");
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("key 'tie_policy'") && bad[2].contains("'random'"), bad[2]);
        assertFalse(Files.exists(tmp.resolve("bad/model")));
    }

    /**
     * judge_model labels each pair in place of the reward sources: these prompts carry no 'answer', so online DPO's default
     * exact-answer source scores nothing, and every pair's scores are the verdict's 1 and 0 (or 0 and 0 for a tie): the
     * mean sample score is half the share of decided pairs.
     */
    @Test
    void aLocalModelJudgeLabelsThePairs() throws IOException {
        Path data = tmp.resolve("prompts.jsonl");
        Files.writeString(data, """
                {"prompt": "Order 1234: a kettle bought 12 days ago for $40 arrived broken. Can I get a refund?"}
                {"prompt": "Order 77: shoes bought 45 days ago for $120, unworn. Refund?"}
                """);
        String base = Path.of("../models/refund-base").toString();
        Path out = tmp.resolve("judged");
        String[] r = TextCliTest.run("online-dpo", "--model", base, "--data", data.toString(), "--output-dir", out.toString(),
                "--set", "max_steps=1", "--set", "learning_rate=2e-5", "--set", "max_new_tokens=6", "--set", "per_device_train_batch_size=2",
                "--set", "logging_steps=1", "--set", "judge_model=" + base, "--set", "temperature=1.0");
        assertEquals("0", r[0], r[1] + r[2]);
        var step = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Files.readAllLines(out.resolve("metrics.jsonl")).get(0));
        double ties = step.get("pairs/tie_fraction").asDouble();
        assertEquals((1 - ties) / 2, step.get("objective/scores").asDouble(), 1e-9, step.toString());
        assertTrue(Files.readString(out.resolve("config.yaml")).contains("judge_model"), Files.readString(out.resolve("config.yaml")));
        assertEquals(Provenance.weightsHash(Path.of(base)),
                new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.resolve("provenance.json").toFile()).path("judge_weights").asText(),
                "the judge's weights are hashed into provenance");

        String[] bad = TextCliTest.run("online-dpo", "--model", base, "--data", data.toString(), "--output-dir", tmp.resolve("bad").toString(),
                "--set", "judge_model=" + tmp.resolve("no-such-judge"));
        assertEquals("2", bad[0], bad[1] + bad[2]);
        assertTrue(bad[2].contains("key 'judge_model'") && bad[2].contains("no-such-judge"), bad[2]);
        assertFalse(Files.exists(tmp.resolve("bad")), "a wrong judge writes nothing");
    }

    /** judge_url: the same labelling by a real tether serve of refund-base on loopback (ChatML template), with its answers cached. */
    @Test
    void anEndpointJudgeLabelsThePairs() throws Exception {
        Path data = tmp.resolve("prompts.jsonl");
        Files.writeString(data, """
                {"prompt": "Order 1234: a kettle bought 12 days ago for $40 arrived broken. Can I get a refund?"}
                {"prompt": "Order 77: shoes bought 45 days ago for $120, unworn. Refund?"}
                """);
        String base = Path.of("../models/refund-base").toString();
        Path chatml = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/tokenizers/qwen2.5/tokenizer_config.json");
        Path out = tmp.resolve("judged-url"), cache = tmp.resolve("cache.jsonl");
        try (var server = io.tether.server.TetherServer.start(io.tether.server.ServerConfig.defaults(Path.of(base)).withChatTemplate(chatml).withPort(0))) {
            String url = "http://127.0.0.1:" + server.port() + "/v1";
            String[] r = TextCliTest.run("online-dpo", "--model", base, "--data", data.toString(), "--output-dir", out.toString(),
                    "--set", "max_steps=1", "--set", "learning_rate=2e-5", "--set", "max_new_tokens=6", "--set", "per_device_train_batch_size=2",
                    "--set", "logging_steps=1", "--set", "judge_url=" + url, "--set", "judge_url_model=" + server.modelId(),
                    "--set", "judge_top_logprobs=20", "--set", "judge_cache=" + cache, "--set", "temperature=1.0");
            assertEquals("0", r[0], r[1] + r[2]);
            var step = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Files.readAllLines(out.resolve("metrics.jsonl")).get(0));
            double ties = step.get("pairs/tie_fraction").asDouble();
            assertEquals((1 - ties) / 2, step.get("objective/scores").asDouble(), 1e-9, step.toString());
            var prov = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.resolve("provenance.json").toFile());
            assertEquals(url + "/chat/completions", prov.path("judge_url").asText(), prov.toString());
            // Two prompts, one pair each, two orders per pair (identical samples would share one request).
            long lines = Files.readAllLines(cache).size();
            assertTrue(lines >= 2 && lines <= 4, "cache lines " + lines);
        }
        String[] bad = TextCliTest.run("online-dpo", "--model", base, "--data", data.toString(), "--output-dir", tmp.resolve("bad-url").toString(),
                "--set", "judge_url=http://10.1.2.3:8000/v1", "--set", "judge_url_model=m");
        assertEquals("2", bad[0], bad[1] + bad[2]);
        assertTrue(bad[2].contains("key 'judge_url'") && bad[2].contains("plain http"), bad[2]);
        assertFalse(Files.exists(tmp.resolve("bad-url")), "a refused judge writes nothing");
        String[] both = TextCliTest.run("online-dpo", "--model", base, "--data", data.toString(), "--output-dir", tmp.resolve("both").toString(),
                "--set", "judge_url=https://judge.example.com/v1", "--set", "judge_url_model=m", "--set", "judge_model=" + base);
        assertEquals("2", both[0], both[1] + both[2]);
        assertTrue(both[2].contains("judge_url") && both[2].contains("not both"), both[2]);
    }
}
