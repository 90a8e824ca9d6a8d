package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each benchmark, one class per subcommand, on a tiny shape: the report's fields, and --out holding the same JSON. */
class BenchCommandTest {
    @TempDir Path tmp;
    static final ObjectMapper JSON = new ObjectMapper();
    static final String[] TINY = {"--hidden", "32", "--layers", "1", "--heads", "2", "--kv-heads", "2", "--ffn", "64", "--vocab", "64", "--batch", "2"};

    private String[] bench(String name, String... extra) {
        List<String> a = new ArrayList<>(List.of("bench", name));
        a.addAll(List.of(TINY));
        a.addAll(List.of(extra));
        String[] r = TextCliTest.run(a.toArray(new String[0]));
        assertEquals("0", r[0], name + ": " + r[2]);
        return r;
    }

    /** A figure that comes from a clock: present and a finite number, whatever this machine's load made it. */
    static void assertTimed(JsonNode o, String key) {
        assertTrue(o.has(key) && o.get(key).isNumber() && Double.isFinite(o.get(key).asDouble()), key + ": " + o);
    }

    private static JsonNode report(String stdout) throws IOException {
        return JSON.readTree(stdout.substring(stdout.indexOf('{'), stdout.lastIndexOf('}') + 1));
    }

    @Test
    void stepBenchmarksReportTheirShapeThroughputAndThePeak() throws IOException {
        Path out = tmp.resolve("train.json");
        String[] r = bench("train", "--seq", "8", "--runs", "1", "--out", out.toString());
        JsonNode o = report(r[1]);
        assertEquals("train", o.get("benchmark").asText());
        assertEquals("llama d=32 layers=1 heads=2 kv=2 ffn=64 vocab=64 batch=2 seq=8", o.get("shape").asText());
        for (String k : new String[] {"matmul_1024_fp32_gflops_peak", "train_step_seconds_median", "train_tokens_per_second", "fraction_of_peak"})
            assertTrue(o.get(k).asDouble() > 0, k + ": " + o);
        assertEquals(o, JSON.readTree(Files.readString(out)), "--out holds the printed report");
        assertFalse(o.get("cpu_model").asText().isBlank(), "the CPU the figures came from: " + o);
        assertEquals("forward", report(bench("forward", "--seq", "8", "--runs", "1")[1]).get("benchmark").asText());
        JsonNode generate = report(bench("generate", "--runs", "1", "--prompt-len", "2", "--new-tokens", "4")[1]);
        assertTrue(generate.get("cached_tokens_per_second").asDouble() > 0 && generate.get("cache_speedup").asDouble() > 0, generate.toString());
    }

    @Test
    void sftAndRolloutTimeTheRealLoop() throws IOException {
        String[] sft = bench("sft", "--seq", "8", "--steps", "2");
        JsonNode o = report(sft[1].substring(0, sft[1].lastIndexOf("tokens_per_second=")));
        assertTrue(o.get("fp32_step_seconds_median").asDouble() > 0 && o.get("bf16_step_seconds_median").asDouble() > 0, o.toString());
        assertTrue(sft[1].strip().lines().reduce((a, b) -> b).orElseThrow().matches("tokens_per_second=[0-9.]+"), sft[1]);

        JsonNode rollout = report(bench("rollout", "--runs", "1", "--group", "2", "--prompt-len", "4", "--new-tokens", "4", "--rollouts", "1")[1]);
        double share = rollout.get("grpo_generation_share").asDouble();
        assertTrue(share > 0 && share < 1, rollout.toString());
        assertTrue(rollout.get("ppo_generation_share").asDouble() > 0, rollout.toString());
    }

    /**
     * bench dpo runs the chosen phases, each with and without chunked log-probs (a chunk of 3 positions: the tiny
     * batch spans many), reports both peaks and the CPU it ran on, and passes --bf16 to each phase.
     */
    @Test
    void dpoComparesChunkedAndUnchunkedLogProbs() throws IOException {
        String[] r = bench("dpo", "--prompt-len", "4", "--completion-len", "4", "--steps", "1", "--phases", "lora_precomputed",
                "--logprob-chunk", "3", "--compare-chunking", "--bf16");
        JsonNode o = report(r[1]);
        assertTrue(o.get("bf16").asBoolean() && o.get("logprob_chunk").asInt() == 3, o.toString());
        assertFalse(o.get("cpu_model").asText().isEmpty(), o.toString());
        // Timings are reported, not bounded: on a busy machine any value is honest.
        assertTimed(o, "dpo_lora_precomputed_reference_step_seconds_median");
        for (String k : new String[] {"dpo_lora_precomputed_reference_peak_rss_mb", "dpo_lora_precomputed_reference_peak_rss_mb_unchunked",
                "dpo_lora_precomputed_reference_peak_rss_chunked_over_unchunked"})
            assertTrue(o.get(k).asDouble() > 0, k + ": " + o);
        for (var it = o.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            boolean otherPhase = k.startsWith("sft_") || k.startsWith("dpo_live_reference") || k.startsWith("dpo_precomputed")
                    || (k.startsWith("dpo_lora_") && !k.startsWith("dpo_lora_precomputed_reference"));
            assertFalse(otherPhase,
                    "only the chosen phase runs: " + k + " in " + o);
        }
    }

    /**
     * bench dp launches each method as 1 and 2 ranks (real child JVMs over loopback, one warm-up and one timed step)
     * and reports tokens/s of both, their ratio and the all-reduce bandwidth of the model's gradient.
     */
    @Test
    void dpComparesOneAndTwoProcessesAndTimesTheAllReduce() throws IOException {
        Path out = tmp.resolve("dp.json");
        JsonNode o = report(bench("dp", "--seq", "8", "--pairs", "2", "--prompt-len", "4", "--completion-len", "4", "--steps", "1",
                "--runs", "2", "--out", out.toString())[1]);
        assertEquals("dp", o.get("benchmark").asText());
        for (String k : new String[] {"one_process_threads", "two_processes_threads_each", "gradient_bytes", "1proc_peak_rss_mb"})
            assertTrue(o.get(k).asDouble() > 0, k + ": " + o);
        for (String k : new String[] {"matmul_1024_fp32_gflops_peak", "allreduce_flat_ms_median", "allreduce_mb_per_second", "allreduce_gradients_mb_per_second"})
            assertTimed(o, k);
        for (String m : new String[] {"sft", "dpo"})
            for (String k : new String[] {"_1proc_tokens_per_second", "_2proc_tokens_per_second", "_scaling_efficiency"})
                assertTimed(o, m + k);
        // d=32, 1 layer, ffn 64, vocab 64, untied: embeddings and head 2 x 64 x 32, attention 4 x 32 x 32, MLP 3 x 32 x 64, 3 norms.
        assertEquals(4L * (2 * 64 * 32 + 4 * 32 * 32 + 3 * 32 * 64 + 3 * 32), o.get("gradient_bytes").asLong(), o.toString());
        assertFalse(o.get("cpu_model").asText().isBlank(), o.toString());
        assertEquals(o, JSON.readTree(Files.readString(out)), "--out holds the printed report");

        String[] bad = TextCliTest.run(new String[] {"bench", "dp", "--batch", "3"});
        assertEquals("2", bad[0], bad[2]);
        assertTrue(bad[2].contains("'--batch'"), bad[2]);
        bad = TextCliTest.run(new String[] {"bench", "dp", "--methods", "sft,ppo"});
        assertEquals("2", bad[0], bad[2]);
        assertTrue(bad[2].contains("'--methods'") && bad[2].contains("ppo"), bad[2]);
    }

    @Test
    void anUnknownRealShapeIsAConfigurationError() {
        List<String> a = new ArrayList<>(List.of("bench", "dpo", "--real-shape", "llama-7b"));
        String[] r = TextCliTest.run(a.toArray(new String[0]));
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("--real-shape"), r[2]);
    }

    @Test
    void loadBenchmarkRefusesAnUnknownShapeNamingTheOption() {
        // The real shapes take gigabytes and minutes (a benchmark, not a test); a wrong one must fail before writing.
        String[] r = TextCliTest.run(new String[] {"bench", "load", "--shape", "llama-70b", "--dir", tmp.resolve("ckpt").toString()});
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("'--shape'") && r[2].contains("qwen3-1.7b"), r[2]);
        assertFalse(Files.exists(tmp.resolve("ckpt")));
    }
}
