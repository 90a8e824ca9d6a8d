package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `tether eval` end to end: a model against itself ties everywhere, and the gate fails it. */
class EvalCommandTest {
    @TempDir Path tmp;

    @Test
    void aModelAgainstItselfTiesAndFailsTheGate() throws IOException {
        Path data = tmp.resolve("gsm8k.jsonl");
        Files.write(data, Files.readAllLines(TextCliTest.FIXTURES.resolve("datasets/gsm8k/test.jsonl")).subList(0, 3));
        Path out = tmp.resolve("eval.json");
        String gpt2 = TextCliTest.GPT2.toString();
        String[] r = TextCliTest.run("eval", "--model", gpt2, "--baseline", gpt2, "--data", data.toString(), "--answer-field", "answer",
                "--max-new-tokens", "4", "--out", out.toString(), "--fail-on-gate");
        assertEquals("1", r[0], r[1] + r[2]);
        assertTrue(r[1].contains("win rate 0.500") && r[1].contains("0 wins, 3 ties, 0 losses") && r[1].contains("release gate: FAIL"), r[1]);
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.toFile());
        assertEquals("FAIL", json.get("gate").asText());
        assertEquals(0.0, json.get("kl_to_baseline").asDouble(), 1e-9);
        String[] bad = TextCliTest.run("eval", "--model", gpt2, "--baseline", gpt2, "--data", data.toString());
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("choose a judge"), bad[2]);
    }

    @Test
    void theRefundWorldsDataAndRubricJudgeTheShippedBaseModel() throws IOException {
        Path world = tmp.resolve("world");
        String[] w = TextCliTest.run("world", "data", "--out", world.toString(), "--cases", "30", "--seed", "2");
        assertEquals("0", w[0], w[2]);
        assertTrue(Files.exists(world.resolve("grpo.eval.jsonl")) && Files.exists(world.resolve("tokenizer/tokenizer.json")), w[1]);
        String base = Path.of("../models/refund-base").toString();
        String[] r = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", world.resolve("grpo.train.jsonl").toString(),
                "--judge", "refund-rubric", "--max-new-tokens", "150", "--limit", "6", "--samples", tmp.resolve("samples.jsonl").toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("judge the refund world's gold rubric") && r[1].contains("0 wins, 6 ties, 0 losses"), r[1]);
        var rows = Files.readAllLines(tmp.resolve("samples.jsonl"));
        assertEquals(6, rows.size());
        var row = new com.fasterxml.jackson.databind.ObjectMapper().readTree(rows.get(0));
        assertEquals(row.get("candidate").asText(), row.get("baseline").asText(), "same model, same seed");
        assertEquals(row.get("candidate_gold").asDouble(), row.get("baseline_gold").asDouble());
        String[] bad = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", world.resolve("sft.train.jsonl").toString(),
                "--judge", "refund-rubric", "--limit", "2");
        assertEquals("2", bad[0], "sft rows carry no case facts for the rubric: " + bad[1]);
    }

    /**
     * A model judge on two identical completions: the averaged probability is exactly 0.5 up to rounding (a tie under
     * any margin above it), and unless the judge is indifferent between the letters the two orders, each alone, name
     * different winners, so the position bias is 1 on every pair.
     */
    @Test
    void aModelJudgeReportsPositionBiasAndABadJudgePathExitsTwo() throws IOException {
        Path data = tmp.resolve("prompts.jsonl");
        Files.writeString(data, """
                {"prompt": "Order 1234: a kettle bought 12 days ago for $40 arrived broken. Can I get a refund?"}
                {"prompt": "Order 77: shoes bought 45 days ago for $120, unworn. Refund?"}
                {"prompt": "Order 9: a $15 mug, 3 days ago, changed my mind. Can I return it?"}
                """);
        Path out = tmp.resolve("eval.json");
        String base = Path.of("../models/refund-base").toString();
        String[] r = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", data.toString(), "--judge", "model:" + base,
                "--judge-margin", "1e-9", "--max-new-tokens", "6", "--out", out.toString());
        assertEquals("0", r[0], r[1] + r[2]);
        assertTrue(r[1].contains("judge model " + base + " (both orders)") && r[1].contains("0 wins, 3 ties, 0 losses")
                && r[1].contains("judge position bias 1.000"), r[1]);
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.toFile());
        assertEquals(1.0, json.get("position_bias").asDouble(), 0.0);
        assertEquals("model:" + base, json.get("judge").asText());
        assertEquals(3, json.get("ties").asInt());

        String[] bad = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", data.toString(), "--judge",
                "model:" + tmp.resolve("no-such-judge"));
        assertEquals("2", bad[0], bad[1] + bad[2]);
        assertTrue(bad[2].contains("--judge model:") && bad[2].contains("no-such-judge"), bad[2]);
        String[] stray = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", data.toString(), "--judge", "refund-rubric",
                "--judge-margin", "0.1");
        assertEquals("2", stray[0], stray[1] + stray[2]);
        assertTrue(stray[2].contains("--judge-margin"), stray[2]);
    }

    /**
     * An endpoint judge: a real tether serve of refund-base (Qwen2.5's ChatML template) on loopback. Candidate and
     * baseline are the same model, so each pair's two orders are the same request: the second is served from the
     * cache, the averaged probability is exactly 0.5 (a tie), and a rerun sends nothing at all.
     */
    @Test
    void anEndpointJudgeTiesIdenticalModelsAndARerunIsServedFromItsCache() throws Exception {
        Path data = tmp.resolve("prompts.jsonl");
        Files.writeString(data, """
                {"prompt": "Order 1234: a kettle bought 12 days ago for $40 arrived broken. Can I get a refund?"}
                {"prompt": "Order 77: shoes bought 45 days ago for $120, unworn. Refund?"}
                """);
        String base = Path.of("../models/refund-base").toString();
        Path chatml = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/tokenizers/qwen2.5/tokenizer_config.json");
        Path cache = tmp.resolve("judge-cache.jsonl");
        try (var server = io.tether.server.TetherServer.start(io.tether.server.ServerConfig.defaults(Path.of(base)).withChatTemplate(chatml).withPort(0))) {
            String url = "url:http://127.0.0.1:" + server.port() + "/v1";
            for (int run = 0; run < 2; run++) {
                Path out = tmp.resolve("eval" + run + ".json");
                String[] r = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", data.toString(), "--judge", url,
                        "--judge-model", server.modelId(), "--judge-top-logprobs", "20", "--judge-cache", cache.toString(),
                        "--judge-margin", "1e-9", "--max-new-tokens", "6", "--out", out.toString());
                assertEquals("0", r[0], r[1] + r[2]);
                assertTrue(r[1].contains("0 wins, 2 ties, 0 losses") && r[1].contains("judge position bias"), r[1]);
                var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.toFile());
                assertEquals(url, json.get("judge").asText());
                assertTrue(json.has("position_bias"), json.toString());
                assertEquals(run == 0 ? 2 : 0, json.get("judge_requests").asInt(), json.toString());
                assertEquals(run == 0 ? 2 : 4, json.get("judge_cache_hits").asInt(), json.toString());
            }
        }
        String[] plain = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", data.toString(),
                "--judge", "url:http://10.1.2.3:8000/v1", "--judge-model", "m");
        assertEquals("2", plain[0], plain[1] + plain[2]);
        assertTrue(plain[2].contains("--judge url:http://10.1.2.3:8000/v1") && plain[2].contains("plain http"), plain[2]);
        String[] noKey = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", data.toString(),
                "--judge", "url:https://judge.example.com/v1", "--judge-model", "m", "--judge-api-key-env", "TETHER_NO_SUCH_KEY_VAR");
        assertEquals("2", noKey[0], noKey[1] + noKey[2]);
        assertTrue(noKey[2].contains("--judge-api-key-env") && noKey[2].contains("TETHER_NO_SUCH_KEY_VAR"), noKey[2]);
        String[] noModel = TextCliTest.run("eval", "--model", base, "--baseline", base, "--data", data.toString(),
                "--judge", "url:https://judge.example.com/v1");
        assertEquals("2", noModel[0], noModel[1] + noModel[2]);
        assertTrue(noModel[2].contains("--judge-model"), noModel[2]);
    }
}
