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
}
