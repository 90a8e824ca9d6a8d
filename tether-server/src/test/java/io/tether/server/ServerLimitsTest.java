package io.tether.server;

import static io.tether.server.ServeFixture.*;
import static io.tether.server.TetherServerTest.assertOpenAiError;
import static io.tether.server.TetherServerTest.chatBody;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** Queue bound, per-request timeout and graceful shutdown, each on a server of its own. */
class ServerLimitsTest {
    static CompletableFuture<HttpResponse<String>> async(int port, String body) {
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
        return HTTP.sendAsync(req, HttpResponse.BodyHandlers.ofString());
    }

    /** Waits (polling) for a server state; the test's own timeout is surefire's. */
    static void await(BooleanSupplier condition) throws InterruptedException {
        while (!condition.getAsBoolean()) Thread.sleep(2);
    }

    static String greedy(int maxTokens) {
        return chatBody("a long answer please", 1, maxTokens, false).replace("\"temperature\":1.0", "\"temperature\":0");
    }

    /** One request generating, one queued (queue of 1): the next gets 429 with OpenAI's error shape. */
    @Test
    void aFullQueueGets429() throws Exception {
        try (TetherServer server = TetherServer.start(config().withLimits(1, 1, 1000, 120))) {
            int port = server.port();
            CompletableFuture<HttpResponse<String>> running = async(port, greedy(1000));
            await(() -> server.stats().maxRows() == 1);   // admitted into the batch and decoding
            CompletableFuture<HttpResponse<String>> waiting = async(port, greedy(4));
            await(() -> server.queued() == 1);
            Reply refused = post(port, "/v1/chat/completions", greedy(4));
            assertOpenAiError(refused, 429, null);
            assertEquals("rate_limit_exceeded", refused.json().path("error").path("code").asText());
            assertEquals(200, running.join().statusCode());
            assertEquals(200, waiting.join().statusCode());
        }
    }

    /** A request past its deadline gets an OpenAI-shaped timeout, streamed or not; the server goes on serving. */
    @Test
    void requestsPastTheirDeadlineTimeOut() throws Exception {
        try (TetherServer server = TetherServer.start(config().withLimits(4, 8, 1000, 0.3))) {
            int port = server.port();
            String slow = chatBody("go on", 3, 1000, false);
            assertOpenAiError(post(port, "/v1/chat/completions", slow), 504, null);
            Reply streamed = post(port, "/v1/chat/completions", slow.replace("\"seed\"", "\"stream\":true,\"seed\""));
            assertEquals(200, streamed.status());
            List<String> events = events(streamed.body());
            JsonNode last = JSON.readTree(events.get(events.size() - 1));
            assertEquals("timeout", last.path("error").path("code").asText(), streamed.body());
            assertEquals(200, post(port, "/v1/chat/completions", chatBody("short", 3, 2, false)).status());
        }
    }

    /** A streaming client that hangs up mid-answer takes its row out of the batch (the 1000 tokens are not generated). */
    @Test
    @org.junit.jupiter.api.Timeout(120)
    void aClientThatHangsUpLeavesTheBatch() throws Exception {
        try (TetherServer server = TetherServer.start(config().withLimits(2, 8, 1000, 120))) {
            int port = server.port();
            HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(greedy(1000).replace("\"seed\"", "\"stream\":true,\"seed\""))).build();
            HttpResponse<java.io.InputStream> r = HTTP.send(req, HttpResponse.BodyHandlers.ofInputStream());
            assertEquals(200, r.statusCode());
            try (java.io.InputStream in = r.body()) {
                assertTrue(in.read(new byte[64]) > 0);   // the stream started
            }
            // Without the hang-up the row would run its 1000 tokens to the end and never count as abandoned.
            await(() -> server.stats().abandoned() == 1);
            await(() -> server.inFlight() == 0);
            assertEquals(200, post(port, "/v1/chat/completions", chatBody("next", 2, 2, false)).status());
        }
    }

    /** close() lets queued and running requests finish and write their whole answers, then refuses connections. */
    @Test
    void gracefulShutdownFinishesInFlightRequests() throws Exception {
        TetherServer server = TetherServer.start(config().withLimits(2, 8, 64, 120));
        int port = server.port();
        List<String> alone = new ArrayList<>();
        for (int i = 0; i < 4; i++)
            alone.add(post(port, "/v1/chat/completions", chatBody("q" + i, 70 + i, 16, false)).json()
                    .path("choices").get(0).path("message").path("content").asText());
        List<CompletableFuture<HttpResponse<String>>> inFlight = new ArrayList<>();
        for (int i = 0; i < 4; i++) inFlight.add(async(port, chatBody("q" + i, 70 + i, 16, true)));
        await(() -> server.inFlight() == 4);   // all accepted: two generating, two queued
        server.close();
        for (int i = 0; i < 4; i++) {
            HttpResponse<String> r = inFlight.get(i).join();
            assertEquals(200, r.statusCode());
            assertEquals(alone.get(i), streamedText(r.body(), 0, true), "request " + i);
        }
        assertThrows(IOException.class, () -> post(port, "/v1/chat/completions", chatBody("late", 1, 2, false)));
    }
}
