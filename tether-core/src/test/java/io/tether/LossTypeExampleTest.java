package io.tether;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * docs/architecture.md's "Adding a loss type" example, copied from between its markers as the doc shows it, compiles
 * against tether-core and trains two DPO steps on the fixture with its own loss type: the first logged loss is the smooth
 * hinge's at x = 0 (the policy starts as the reference), ln(1 + e), not the sigmoid loss's ln 2.
 */
class LossTypeExampleTest {
    @TempDir Path tmp;
    static final Path LLAMA = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/verl-arithmetic-llama");

    @Test
    void documentedLossTypeCompilesAndTrains() throws Exception {
        String doc = Files.readString(QuickStartProgramTest.checkout().resolve("docs/architecture.md"));
        int from = doc.indexOf("<!-- loss-type-example -->"), to = doc.indexOf("<!-- /loss-type-example -->");
        assertTrue(from >= 0 && to > from, "the doc marks its example");
        String block = doc.substring(from, to);
        String code = block.substring(block.indexOf("```java\n") + 8, block.lastIndexOf("```"));
        assertTrue(code.lines().count() < 40, "the example stays under 40 lines: " + code.lines().count());
        Path source = Files.createDirectories(tmp.resolve("src")).resolve("SmoothHingeDpo.java");
        Files.writeString(source, code);

        Random r = new Random(3);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 16; i++)
            lines.add("{\"prompt_ids\": [" + (3 + r.nextInt(12)) + ", " + (3 + r.nextInt(12)) + "], \"chosen_ids\": [0, " + (3 + r.nextInt(12))
                    + "], \"rejected_ids\": [1, " + (3 + r.nextInt(12)) + "]}");
        Path pairs = Files.write(tmp.resolve("pairs.jsonl"), lines), out = tmp.resolve("run");

        String log = QuickStartProgramTest.compileAndRun(source, "SmoothHingeDpo", tmp, LLAMA.toString(), pairs.toString(), out.toString());
        assertTrue(log.contains("smooth_hinge: 2 steps"), log);
        JsonNode first = null;
        for (String l : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            JsonNode n = new ObjectMapper().readTree(l);
            if (n.has("loss")) { first = n; break; }
        }
        assertNotNull(first, "a logged training step");
        assertEquals(1, first.get("step").asInt());
        assertEquals(Math.log(1 + Math.E), first.get("loss").asDouble(), 1e-4, "softplus(1 − 0): the documented loss, not sigmoid's ln 2");
        assertTrue(Files.isRegularFile(out.resolve("model/model.safetensors")));
    }
}
