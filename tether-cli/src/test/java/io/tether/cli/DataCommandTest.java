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

/** {@code tether data} end to end on the shared fixtures and small files with known problems. */
class DataCommandTest {
    @TempDir Path tmp;
    static final Path DATASETS = TextCliTest.FIXTURES.resolve("datasets");
    static final ObjectMapper JSON = new ObjectMapper();

    private static String[] run(String... args) {
        return TextCliTest.run(args);
    }

    @Test
    void validateReportsEachProblemWithItsLineAndFailsOnErrorsOrUnderStrict() throws IOException {
        Path f = tmp.resolve("pairs.jsonl");
        Files.write(f, List.of(
                "{\"prompt\": \"Q\", \"chosen\": \"A\", \"rejected\": \"B\"}",
                "{\"prompt\": \"Q\", \"chosen\": \"A\", \"rejected\": \"B\"}",
                "{\"prompt\": \"R\", \"chosen\": \"A\", \"rejected\": \"B\", \"label\": \"tie\"}"));
        Path report = tmp.resolve("out/report.json");
        String[] r = run("data", "validate", f.toString(), "--report", report.toString());
        assertEquals("0", r[0], "warnings alone pass without --strict: " + r[1]);
        assertTrue(r[1].contains(f + ":2: warning [exact-duplicate] the same pair as line 1"), r[1]);
        assertTrue(r[1].contains(f + ":3: warning [tie]"), r[1]);
        JsonNode rep = JSON.readTree(report.toFile());
        assertEquals(3, rep.get("records").asLong());
        assertEquals(1, rep.get("counts").get("tie").asLong());
        assertEquals(2, rep.get("problems").size());
        try (var siblings = Files.list(report.getParent())) {
            assertEquals(1, siblings.count(), "the report was renamed into place, no temp file left");
        }
        assertEquals("1", run("data", "validate", f.toString(), "--strict")[0]);

        Files.write(f, List.of("{\"prompt\": \"Q\", \"chosen\": \"A\", \"rejected\": \"A\"}", "{\"prompt\": \"Q\" \"chosen\": 1}",
                "{\"prompt\": \"Q2\", \"chosen\": 7, \"rejected\": \"B\"}", "not json"));
        r = run("data", "validate", f.toString(), "--format", "trl", "--max-errors", "2");
        assertEquals("1", r[0]);
        assertTrue(r[1].contains(f + ":1: error [identical-completions]"), r[1]);
        assertTrue(r[1].contains(f + ":2:16: error [malformed-json]"), r[1]);
        assertTrue(r[1].contains(f + ":3:28: error [wrong-type] 'chosen' must be text"), "the column of the offending value: " + r[1]);
        assertTrue(r[1].contains("stopped after 2 errors"), r[1]);
        assertFalse(r[1].contains(f + ":4:"), "reading stopped at the third error");
    }

    @Test
    void statsDescribeTheShareGptFixture() throws IOException {
        String[] r = run("data", "stats", DATASETS.resolve("llamafactory/dpo_en_demo.json").toString());
        assertEquals("0", r[0], r[2]);
        JsonNode s = JSON.readTree(r[1]);
        assertEquals(300, s.get("records").get("pairs").asLong());
        assertEquals("characters", s.get("length_unit").asText());
        double longer = s.get("lengths").get("chosen_longer_share").asDouble();
        assertEquals(longer >= 0.65, r[2].contains("warning: length bias"), "the warning follows the measured share " + longer);
        r = run("data", "stats", DATASETS.resolve("llamafactory/dpo_en_demo.json").toString(), "--format", "nonsense");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("tether data stats: error: unknown format 'nonsense'"), r[2]);
    }

    @Test
    void splitThenLeakageFindsNoSharedPromptButTheSourceLeaksIntoEval() throws IOException {
        Path f = DATASETS.resolve("torchtune/stack_exchange_paired_tiny.json");
        Path out = tmp.resolve("split");
        String[] r = run("data", "split", f.toString(), "--out-dir", out.toString(), "--eval-fraction", "0.2", "--seed", "3");
        assertEquals("0", r[0], r[2]);
        long train = Files.readAllLines(out.resolve("train.jsonl")).size(), eval = Files.readAllLines(out.resolve("eval.jsonl")).size();
        assertEquals(25, train + eval);
        assertTrue(eval > 0 && train > 0, r[1]);
        r = run("data", "leakage", out.resolve("train.jsonl").toString(), out.resolve("eval.jsonl").toString());
        assertEquals("0", r[0], r[1]);
        r = run("data", "leakage", f.toString(), out.resolve("eval.jsonl").toString());
        assertEquals("1", r[0]);
        assertTrue(r[1].contains(eval + " of " + eval + " records"), r[1]);
    }

    @Test
    void convertUnpairsIntoKtoRowsAndExportsTrlWithProvenance() throws IOException {
        Path f = DATASETS.resolve("torchtune/stack_exchange_paired_tiny.json");
        Path kto = tmp.resolve("kto.jsonl");
        String[] r = run("data", "convert", f.toString(), "--to", "kto", "--out", kto.toString());
        assertEquals("0", r[0], r[2]);
        List<String> rows = Files.readAllLines(kto);
        assertEquals(50, rows.size(), "two rows per pair");
        assertTrue(JSON.readTree(rows.get(0)).get("label").asBoolean());
        assertFalse(JSON.readTree(rows.get(1)).get("label").asBoolean());
        // The KTO rows read back as 25 desirable and 25 undesirable.
        r = run("data", "stats", kto.toString());
        JsonNode s = JSON.readTree(r[1]);
        assertEquals(25, s.get("unpaired").get("desirable").asLong());

        Path rated = tmp.resolve("rated.jsonl");
        Files.write(rated, List.of("{\"prompt\": \"Q\", \"completions\": [{\"response\": \"x\", \"score\": 1}, {\"response\": \"y\", \"score\": 3}]}",
                "{\"prompt\": \"T\", \"completions\": [{\"response\": \"x\", \"score\": 2}, {\"response\": \"y\", \"score\": 2}]}"));
        Path trl = tmp.resolve("trl.jsonl");
        r = run("data", "convert", rated.toString(), "--to", "trl", "--out", trl.toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("wrote 1 records") && r[2].contains("1 rated prompts whose scores all tie"), r[2]);
        JsonNode p = JSON.readTree(Files.readAllLines(trl).get(0));
        assertEquals("y", p.get("chosen").asText());
        assertEquals(2.0, p.get("margin").asDouble());
        assertEquals(rated.toString(), p.get("source_file").asText());
        assertEquals(1, p.get("source_line").asLong());
    }

    @Test
    void benchDataReportsThroughputAndHeap() throws IOException {
        String[] r = run("bench", "data", "--pairs", "2000");
        assertEquals("0", r[0], r[2]);
        JsonNode b = JSON.readTree(r[1]);
        assertEquals(2000, b.get("pairs").asLong());
        assertTrue(b.get("pairs_per_second").asDouble() > 0 && b.get("peak_heap_mib").asDouble() > 0, r[1]);
    }

    @Test
    void statsReportAgreementAndAnAdjudicationFileSettlesUnresolvedPairs() throws IOException {
        Path f = tmp.resolve("votes.jsonl");
        List<String> lines = new java.util.ArrayList<>();
        for (int i = 0; i < 4; i++) {
            String second = i == 0 ? "rejected" : "chosen";   // the annotators split on pair p0 only
            lines.add("{\"prompt_id\": \"p" + i + "\", \"prompt\": \"Q" + i + "\", \"chosen\": \"A" + i + "\", \"rejected\": \"B" + i + "\", \"votes\": ["
                    + "{\"annotator\": \"ann1\", \"label\": \"chosen\"}, {\"annotator\": \"ann2\", \"label\": \"" + second + "\"}]}");
        }
        Files.write(f, lines);
        String[] r = run("data", "stats", f.toString());
        assertEquals("0", r[0], r[2]);
        JsonNode s = JSON.readTree(r[1]);
        assertEquals(3, s.get("labels").get("chosen").asLong());
        assertEquals(1, s.get("labels").get("unresolved").asLong());
        assertEquals(0.25, s.get("agreement").get("disagreement_rate").get("ann1").asDouble(), 1e-12);
        assertEquals("1", run("data", "validate", f.toString(), "--strict")[0], "an unresolved pair fails --strict");
        Path decisions = tmp.resolve("adjudication.jsonl");
        Files.writeString(decisions, "{\"prompt_id\": \"p0\", \"label\": \"chosen\"}\n");
        r = run("data", "validate", f.toString(), "--strict", "--adjudication", decisions.toString());
        assertEquals("0", r[0], r[1]);
        assertTrue(r[2].contains("decided 1 records (0 dropped)"), r[2]);
        Path out = tmp.resolve("settled.jsonl");
        r = run("data", "convert", f.toString(), "--to", "trl", "--out", out.toString());
        assertTrue(r[2].contains("wrote 3 records") && r[2].contains("skipped 1 tie/unresolved pairs"), r[2]);
        r = run("data", "convert", f.toString(), "--to", "trl", "--out", out.toString(), "--adjudication", decisions.toString());
        assertTrue(r[2].contains("wrote 4 records"), r[2]);
    }
}
