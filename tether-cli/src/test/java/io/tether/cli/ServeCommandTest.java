package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** `tether serve` refuses an unsafe bind before loading anything; `tether bench serve` reports every level. */
class ServeCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void nonLoopbackServeWithoutAKeyIsAConfigError() {
        String[] r = TextCliTest.run("serve", "--model", TextCliTest.GPT2.toString(), "--host", "0.0.0.0", "--port", "0");
        assertEquals(String.valueOf(ExitCodes.BAD_INPUT), r[0], r[2]);
        assertTrue(r[2].contains("API key"), r[2]);
        r = TextCliTest.run("serve", "--model", TextCliTest.GPT2.toString(), "--api-key-env", "TETHER_TEST_UNSET_VARIABLE_XYZ", "--port", "0");
        assertEquals(String.valueOf(ExitCodes.BAD_INPUT), r[0], r[2]);
        assertTrue(r[2].contains("TETHER_TEST_UNSET_VARIABLE_XYZ"), r[2]);
    }

    @Test
    void benchServeReportsEachConcurrency() throws IOException {
        String[] r = TextCliTest.run("bench", "serve", "--model", TextCliTest.GPT2.toString(), "--requests", "4", "--max-tokens", "2", "--concurrency", "1,2");
        assertEquals("0", r[0], r[2]);
        JsonNode o = JSON.readTree(r[1].substring(r[1].indexOf('{'), r[1].lastIndexOf('}') + 1));
        assertEquals(2, o.get("concurrency").size(), o.toString());
        for (JsonNode l : o.get("concurrency")) {
            BenchCommandTest.assertTimed(l, "tokens_per_second");
            assertTrue(l.get("latency_p99_ms").asDouble() >= l.get("latency_p50_ms").asDouble(), o.toString());
        }
        BenchCommandTest.assertTimed(o.get("sequential_in_process"), "tokens_per_second");
    }
}
