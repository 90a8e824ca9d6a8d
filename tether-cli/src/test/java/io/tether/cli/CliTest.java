package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI end to end on a real checkpoint: outputs, exit codes, and nothing written on bad input. */
class CliTest {
    @TempDir Path tmp;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path LLAMA = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/verl-arithmetic-llama");

    record Run(int code, String out, String err) {}

    private static Run tether(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = TetherCommand.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(code, out.toString(), err.toString());
    }

    private Path write(String name, String... lines) throws IOException {
        Path p = tmp.resolve(name);
        Files.write(p, List.of(lines));
        return p;
    }

    @Test
    void logprobsKeepInputOrderAndDoNotDependOnBatchSize() throws IOException {
        Path data = write("in.jsonl",
                "{\"id\": \"a\", \"prompt_ids\": [3, 4, 5], \"completion_ids\": [6, 7]}",
                "{\"prompt_ids\": [9], \"chosen_ids\": [1, 2, 3, 4, 5, 6], \"rejected_ids\": [10]}",
                "",
                "{\"prompt_ids\": [3, 4, 5, 6, 7, 8, 9, 10], \"completion_ids\": [11]}");
        Run one = tether("logprobs", "--model", LLAMA.toString(), "--data", data.toString(), "--batch-size", "1", "--per-token");
        Run all = tether("logprobs", "--model", LLAMA.toString(), "--data", data.toString(), "--batch-size", "8", "--out", tmp.resolve("out.jsonl").toString());
        assertEquals(0, one.code(), one.err());
        assertEquals(0, all.code(), all.err());
        List<String> a = one.out().lines().toList(), b = Files.readAllLines(tmp.resolve("out.jsonl"));
        assertEquals(3, a.size());
        assertEquals(3, b.size());
        JsonNode first = JSON.readTree(a.get(0)), pair = JSON.readTree(b.get(1));
        assertEquals("a", first.get("id").asText());
        assertEquals(2, first.get("num_tokens").asInt());
        assertEquals(2, first.get("token_logprobs").size());
        assertEquals(first.get("logprob").asDouble(), first.get("token_logprobs").get(0).asDouble() + first.get("token_logprobs").get(1).asDouble(), 1e-9);
        assertEquals(6, pair.get("chosen_num_tokens").asInt());
        assertEquals(1, pair.get("rejected_num_tokens").asInt());
        for (int i = 0; i < 3; i++) {
            JsonNode x = JSON.readTree(a.get(i)), y = JSON.readTree(b.get(i));
            for (String f : new String[] {"logprob", "chosen_logprob", "rejected_logprob"})
                if (x.has(f)) assertEquals(x.get(f).asDouble(), y.get(f).asDouble(), 2e-5, "line " + i + " " + f);
        }
    }

    @Test
    void badRecordsNameFileAndLineExitTwoAndWriteNothing() throws IOException {
        Path out = tmp.resolve("never.jsonl");
        String[][] cases = {
                {"{\"prompt_ids\": [1], \"completion_ids\": [2, 16]}", ":1: 'completion_ids'[1] = 16 is outside the vocabulary [0, 16)"},
                {"{\"prompt_ids\": [], \"completion_ids\": [2]}", ":1: 'prompt_ids' is empty"},
                {"{\"prompt\": \"hi\", \"completion\": \"there\"}", ":1: missing field 'prompt_ids'"},
                {"not json", ":1: not valid JSON"},
                {"{\"prompt_ids\": [1], \"chosen_ids\": [2]}", ":1: a preference record needs both"},
        };
        for (String[] c : cases) {
            Path data = write("bad.jsonl", "{\"prompt_ids\": [1], \"completion_ids\": [2]}", c[0]);
            Run r = tether("logprobs", "--model", LLAMA.toString(), "--data", data.toString(), "--out", out.toString());
            assertEquals(2, r.code(), c[0]);
            // file:line, then the column where the offending value starts when the reader knows it
            String[] lineAndMessage = c[1].substring(1).split(": ", 2);
            assertTrue(java.util.regex.Pattern.compile("bad\\.jsonl:2(:\\d+)?: " + java.util.regex.Pattern.quote(lineAndMessage[1])).matcher(r.err()).find(), r.err());
            assertFalse(Files.exists(out), "nothing is written on bad input");
        }
        Run missing = tether("logprobs", "--model", tmp.resolve("nope").toString(), "--data", "x.jsonl");
        assertEquals(2, missing.code());
        assertTrue(missing.err().contains("model directory not found"), missing.err());
        try (var left = Files.list(tmp)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")));
        }
    }

    @Test
    void generateIsDeterministicAndStopsAtEos() throws IOException {
        Run a = tether("generate", "--model", LLAMA.toString(), "--prompt-ids", "3,4,5", "--max-new-tokens", "12", "--stop-id", "15");
        Run b = tether("generate", "--model", LLAMA.toString(), "--prompt-ids", "3,4,5", "--max-new-tokens", "12", "--stop-id", "15", "--no-cache");
        assertEquals(0, a.code(), a.err());
        assertEquals(a.out(), b.out(), "cached and uncached greedy decode agree");
        JsonNode g = JSON.readTree(a.out().lines().findFirst().orElseThrow());
        assertEquals(12, g.get("completion_ids").size());
        assertEquals("length", g.get("finish_reason").asText());
        long firstToken = g.get("completion_ids").get(0).asLong();
        Run eos = tether("generate", "--model", LLAMA.toString(), "--prompt-ids", "3,4,5", "--max-new-tokens", "12", "--stop-id", Long.toString(firstToken));
        JsonNode e = JSON.readTree(eos.out().lines().findFirst().orElseThrow());
        assertEquals("eos", e.get("finish_reason").asText());
        assertEquals(1, e.get("completion_ids").size());

        Path prompts = write("prompts.jsonl", "{\"prompt_ids\": [3, 4, 5]}", "{\"prompt_ids\": [7]}");
        Run batch = tether("generate", "--model", LLAMA.toString(), "--data", prompts.toString(), "--max-new-tokens", "12", "--stop-id", "15",
                "--temperature", "0.9", "--top-p", "0.9", "--top-k", "5", "--seed", "4");
        Run again = tether("generate", "--model", LLAMA.toString(), "--data", prompts.toString(), "--max-new-tokens", "12", "--stop-id", "15",
                "--temperature", "0.9", "--top-p", "0.9", "--top-k", "5", "--seed", "4");
        assertEquals(0, batch.code(), batch.err());
        assertEquals(2, batch.out().lines().count());
        assertEquals(batch.out(), again.out(), "the same seed gives the same samples");
    }

    @Test
    void generateRejectsBadPrompts() throws IOException {
        Run r = tether("generate", "--model", LLAMA.toString(), "--prompt-ids", "3,99");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--prompt-ids[1] = 99 is outside the vocabulary [0, 16)"), r.err());
        Path prompts = write("p.jsonl", "{\"prompt_ids\": [1]}", "{\"prompt_ids\": []}");
        r = tether("generate", "--model", LLAMA.toString(), "--data", prompts.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().matches("(?s).*p\\.jsonl:2(:\\d+)?: 'prompt_ids' is empty.*"), r.err());
        r = tether("generate", "--model", LLAMA.toString());
        assertEquals(2, r.code(), "picocli usage errors also exit 2");
        r = tether("generate", "--model", LLAMA.toString(), "--prompt-ids", "1", "--top-p", "0");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("top-p must be in (0, 1]"), r.err());
    }
}
