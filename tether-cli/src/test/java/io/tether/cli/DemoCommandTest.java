package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `tether demo --quick` end to end from the shipped base model: every stage trains (briefly), every method is judged
 * against SFT and gated, and the report is one self-contained page. A second run reuses every finished stage, and a
 * fresh run of the same seed, its stages again trained two at a time, gives the same weights.
 */
class DemoCommandTest {
    @TempDir Path tmp;

    @Test
    void theQuickDemoRunsEveryStageAndWritesTheReport() throws IOException {
        Path out = tmp.resolve("demo");
        String[] r = TextCliTest.run("demo", "--quick", "--lanes", "2", "--out", out.toString(), "--base-model", "../models/refund-base");
        assertEquals("0", r[0], r[2]);
        for (String m : new String[] {"sft", "dpo", "kto", "ppo", "grpo", "online-dpo", "ppo-weak-kl"})
            assertTrue(r[1].lines().anyMatch(l -> l.startsWith(m + " ")), m + " missing from the table:\n" + r[1]);
        assertTrue(r[1].contains("report: "), r[1]);

        JsonNode results = new ObjectMapper().readTree(out.resolve("results.json").toFile());
        assertEquals(6, results.get("methods").size());
        for (JsonNode m : results.get("methods")) {
            int total = m.get("wins").asInt() + m.get("ties").asInt() + m.get("losses").asInt();
            assertEquals(16, total, m.toString());
            assertTrue(m.get("gate").asText().equals("PASS") || m.get("gate_reasons").size() > 0, "a FAIL names its reasons: " + m);
            assertEquals(4, m.get("probes").size(), m.toString());
        }
        assertEquals(4, results.get("reward_model_probes").size());
        assertTrue(results.get("weak_kl_ppo_monitor").get("points").size() >= 2, results.get("weak_kl_ppo_monitor").toString());
        assertTrue(results.get("settings").get("base_model").asText().endsWith("refund-base"));
        JsonNode outcomes = results.get("outcomes");
        assertEquals(5, outcomes.size(), outcomes.toString());
        for (int i = 0; i < 3; i++) {
            // The first three are DPO's, PPO's and GRPO's 20-point claims, read back against the method rows.
            JsonNode method = results.get("methods").get(List.of(0, 2, 3).get(i));
            assertTrue(outcomes.get(i).get("claim").asText().startsWith(method.get("method").asText() + " beats SFT"), outcomes.toString());
            assertEquals(method.get("gold_win_rate").asDouble() - 0.5 >= 0.2 - 1e-12, outcomes.get(i).get("met").asBoolean(), outcomes.get(i).toString());
        }
        assertEquals(outcomes.size(), r[1].lines().filter(l -> l.startsWith("  [met]") || l.startsWith("  [NOT MET]")).count(), r[1]);

        String html = Files.readString(out.resolve("report.html"));
        assertTrue(html.startsWith("<!DOCTYPE html>") && html.contains("<svg") && html.contains("ppo-weak-kl") && html.contains("<h2>Outcomes</h2>"), "report");
        assertFalse(html.contains("<script") || html.contains("src=\"http") || html.contains("href=\"http"), "self-contained, no scripts");
        for (String stage : new String[] {"world", "sft", "rm", "dpo"})
            assertTrue(Files.exists(out.resolve(stage).resolve("demo-stage.json")), stage);
        assertTrue(Files.exists(out.resolve("sft/config.yaml")) && Files.exists(out.resolve("sft/metrics.jsonl")), "stages are ordinary run directories");

        String[] again = TextCliTest.run("demo", "--quick", "--out", out.toString(), "--base-model", "../models/refund-base");
        assertEquals("0", again[0], again[2]);
        assertTrue(again[2].contains("sft: reusing") && again[2].contains("ppo-weak-kl: reusing"), again[2]);
        JsonNode second = new ObjectMapper().readTree(out.resolve("results.json").toFile());
        assertEquals(results.get("methods").get(0).get("gold_win_rate").asDouble(), second.get("methods").get(0).get("gold_win_rate").asDouble(),
                "reused models evaluate the same");

        // Stages trained side by side are still a function of the seed alone: a fresh run gives the same weights.
        Path fresh = tmp.resolve("fresh");
        String[] rerun = TextCliTest.run("demo", "--quick", "--lanes", "2", "--out", fresh.toString(), "--base-model", "../models/refund-base");
        assertEquals("0", rerun[0], rerun[2]);
        for (String stage : new String[] {"sft", "rm", "dpo", "kto", "ppo", "grpo", "online-dpo", "ppo-weak-kl"})
            assertArrayEquals(Files.readAllBytes(out.resolve(stage).resolve("model/model.safetensors")),
                    Files.readAllBytes(fresh.resolve(stage).resolve("model/model.safetensors")), stage + ": weights differ between two runs of one seed");

        String[] bad = TextCliTest.run("demo", "--quick", "--out", tmp.resolve("x").toString(), "--base-model", tmp.resolve("nope").toString());
        assertEquals("2", bad[0]);
        assertTrue(bad[2].contains("base model directory not found"), bad[2]);
        String[] noLanes = TextCliTest.run("demo", "--quick", "--lanes", "0", "--out", tmp.resolve("y").toString(), "--base-model", "../models/refund-base");
        assertEquals("2", noLanes[0]);
        assertTrue(noLanes[2].contains("--lanes: at least 1"), noLanes[2]);
        assertFalse(Files.exists(tmp.resolve("y")), "nothing written for a bad --lanes");
    }
}
