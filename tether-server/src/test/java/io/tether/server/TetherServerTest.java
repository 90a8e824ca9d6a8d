package io.tether.server;

import static io.tether.server.ServeFixture.*;
import static org.junit.jupiter.api.Assertions.*;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.ConfigException;

/** The server against real clients (the JDK HttpClient and the official OpenAI Java SDK) on the real GPT-2 fixture. */
class TetherServerTest {
    static TetherServer server;
    static int port;

    @BeforeAll
    static void start() throws Exception {
        server = TetherServer.start(config());
        port = server.port();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    static String chatBody(String user, long seed, int maxTokens, boolean stream) {
        return "{\"model\":\"lm-buddy-fake-gpt2\",\"messages\":[{\"role\":\"user\",\"content\":" + quote(user) + "}],"
                + "\"seed\":" + seed + ",\"max_tokens\":" + maxTokens + ",\"temperature\":1.0,\"top_p\":0.9" + (stream ? ",\"stream\":true" : "") + "}";
    }

    static String quote(String s) {
        try {
            return JSON.writeValueAsString(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void modelsAndHealth() throws Exception {
        Reply models = get(port, "/v1/models");
        assertEquals(200, models.status());
        assertEquals("lm-buddy-fake-gpt2", models.json().path("data").get(0).path("id").asText());
        assertEquals("ok", get(port, "/health").json().path("status").asText());
    }

    /** The official SDK parses our responses and chunks; a seed gives the same text to both clients, streamed or not. */
    @Test
    void openAiSdkChatCompletionsAndStreaming() throws Exception {
        OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + port + "/v1").apiKey("unused").maxRetries(0).build();
        try {
            ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("lm-buddy-fake-gpt2")
                    .addUserMessage("Tell me about refunds.").seed(11L).maxCompletionTokens(8L).temperature(1.0).topP(0.9).build();
            ChatCompletion c = client.chat().completions().create(params);
            String sdkText = c.choices().get(0).message().content().orElseThrow();
            assertFalse(sdkText.isEmpty());
            assertEquals(8, c.usage().orElseThrow().completionTokens());
            String httpText = post(port, "/v1/chat/completions", chatBody("Tell me about refunds.", 11, 8, false)).json()
                    .path("choices").get(0).path("message").path("content").asText();
            assertEquals(httpText, sdkText);

            StringBuilder streamed = new StringBuilder();
            String[] finish = new String[1];
            try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(params)) {
                s.stream().forEach(chunk -> chunk.choices().forEach(ch -> {
                    ch.delta().content().ifPresent(streamed::append);
                    ch.finishReason().ifPresent(f -> finish[0] = f.asString());
                }));
            }
            assertEquals(sdkText, streamed.toString());
            assertEquals("length", finish[0]);

            Completion comp = client.completions().create(CompletionCreateParams.builder().model("lm-buddy-fake-gpt2")
                    .prompt("The refund policy says").maxTokens(6L).seed(5L).build());
            assertEquals(6, comp.usage().orElseThrow().completionTokens());
            String compText = comp.choices().get(0).text();
            String rawText = post(port, "/v1/completions", "{\"model\":\"lm-buddy-fake-gpt2\",\"prompt\":\"The refund policy says\",\"max_tokens\":6,\"seed\":5}")
                    .json().path("choices").get(0).path("text").asText();
            assertEquals(rawText, compText);
            assertEquals("lm-buddy-fake-gpt2", client.models().list().data().get(0).id());
        } finally {
            client.close();
        }
    }

    /**
     * 64 concurrent streaming requests through a batch of 8 (rows join and leave between decode steps): every
     * stream arrives whole ([DONE]) and equals the same request served alone with its seed.
     */
    @Test
    void concurrentStreamsAreNeitherLostNorMixed() throws Exception {
        int count = 64;
        List<String> alone = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Reply r = post(port, "/v1/chat/completions", chatBody("Question number " + i + "?", 1000 + i, 4 + i % 5, false));
            assertEquals(200, r.status(), r.body());
            alone.add(r.json().path("choices").get(0).path("message").path("content").asText());
        }
        TetherServer.Stats before = server.stats();
        List<CompletableFuture<HttpResponse<String>>> futures = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(chatBody("Question number " + i + "?", 1000 + i, 4 + i % 5, true))).build();
            futures.add(HTTP.sendAsync(req, HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < count; i++) {
            HttpResponse<String> r = futures.get(i).join();
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
            assertEquals(alone.get(i), streamedText(r.body(), 0, true), "request " + i);
        }
        TetherServer.Stats after = server.stats();
        assertTrue(after.maxRows() > 1, "requests were batched: " + after);
        assertTrue(after.joinedRunning() > before.joinedRunning(), "rows joined a running batch: " + after);
        // Texts differ between seeds (so a mix-up would show).
        assertTrue(alone.stream().distinct().count() > count / 2);
    }

    /** n choices sample with seed, seed+1, ...; stop strings cut the text and finish with "stop"; logprobs per token. */
    @Test
    void choicesStopAndLogprobs() throws Exception {
        JsonNode two = post(port, "/v1/chat/completions", chatBody("Hi", 40, 8, false).replace("\"seed\"", "\"n\":2,\"seed\"")).json();
        String second = post(port, "/v1/chat/completions", chatBody("Hi", 41, 8, false)).json().path("choices").get(0).path("message").path("content").asText();
        assertEquals(2, two.path("choices").size());
        assertEquals(second, two.path("choices").get(1).path("message").path("content").asText());
        assertEquals(16, two.path("usage").path("completion_tokens").asInt());

        String full = two.path("choices").get(0).path("message").path("content").asText();
        String stop = full.substring(full.length() / 2, full.length() / 2 + 2);
        JsonNode stopped = post(port, "/v1/chat/completions", chatBody("Hi", 40, 8, false).replace("\"seed\"", "\"stop\":[" + quote(stop) + "],\"seed\"")).json();
        assertEquals(full.substring(0, full.indexOf(stop)), stopped.path("choices").get(0).path("message").path("content").asText());
        assertEquals("stop", stopped.path("choices").get(0).path("finish_reason").asText());
        String streamedStop = streamedText(post(port, "/v1/chat/completions",
                chatBody("Hi", 40, 8, true).replace("\"seed\"", "\"stop\":[" + quote(stop) + "],\"seed\"")).body(), 0, true);
        assertEquals(full.substring(0, full.indexOf(stop)), streamedStop);

        JsonNode lp = post(port, "/v1/chat/completions", chatBody("Hi", 40, 5, false).replace("\"seed\"", "\"logprobs\":true,\"top_logprobs\":3,\"seed\"")).json();
        JsonNode content = lp.path("choices").get(0).path("logprobs").path("content");
        assertEquals(5, content.size(), lp.toString());
        for (JsonNode t : content) {
            assertTrue(t.path("logprob").asDouble() <= 0);
            assertEquals(3, t.path("top_logprobs").size());
            assertTrue(t.path("top_logprobs").get(0).path("logprob").asDouble() >= t.path("logprob").asDouble());
        }
        JsonNode clp = post(port, "/v1/completions", "{\"model\":\"lm-buddy-fake-gpt2\",\"prompt\":\"Hello\",\"max_tokens\":3,\"seed\":1,\"logprobs\":2}").json();
        assertEquals(3, clp.path("choices").get(0).path("logprobs").path("token_logprobs").size(), clp.toString());
        assertEquals(2, clp.path("choices").get(0).path("logprobs").path("top_logprobs").get(0).size());
    }

    static void assertOpenAiError(Reply r, int status, String param) {
        assertEquals(status, r.status(), r.body());
        JsonNode e = r.json().path("error");
        assertTrue(e.isObject(), r.body());
        for (String k : List.of("message", "type", "param", "code")) assertTrue(e.has(k), k + " in " + r.body());
        assertFalse(e.path("message").asText().isEmpty());
        if (param != null) assertEquals(param, e.path("param").asText(), r.body());
        assertFalse(r.body().contains("Exception") || r.body().contains("\tat ") || r.body().contains("io.tether."), r.body());
    }

    @Test
    void hostileRequestsGetOpenAiShapedClientErrors() throws Exception {
        String chat = "/v1/chat/completions";
        assertOpenAiError(post(port, chat, "{\"model\": \"lm-buddy-fake-gpt2\", \"messages\": ["), 400, null);
        assertOpenAiError(post(port, chat, "not json at all"), 400, null);
        assertOpenAiError(post(port, chat, ""), 400, null);
        assertOpenAiError(post(port, chat, "[1, 2]"), 400, null);
        assertOpenAiError(post(port, chat, "{\"model\":\"lm-buddy-fake-gpt2\",\"messages\":[]} {}"), 400, null);
        assertOpenAiError(post(port, chat, "{\"model\":\"a\",\"model\":\"lm-buddy-fake-gpt2\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 400, null);
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"seed\"", "\"temperatur\":1,\"seed\"")), 400, "temperatur");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"temperature\":1.0", "\"temperature\":\"hot\"")), 400, "temperature");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"temperature\":1.0", "\"temperature\":7")), 400, "temperature");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"max_tokens\":4", "\"max_tokens\":\"4\"")), 400, "max_tokens");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"max_tokens\":4", "\"max_tokens\":100000")), 400, "max_tokens");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"seed\":1", "\"seed\":1.5")), 400, "seed");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"seed\"", "\"n\":1000,\"seed\"")), 400, "n");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"seed\"", "\"presence_penalty\":0.5,\"seed\"")), 400, "presence_penalty");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"seed\"", "\"tools\":[],\"seed\"")), 400, "tools");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"seed\"", "\"stream\":\"yes\",\"seed\"")), 400, "stream");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"role\":\"user\"", "\"role\":\"wizard\"")), 400, "messages[0].role");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"content\":\"x\"", "\"content\":42")), 400, "messages[0].content");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("\"role\":\"user\"", "\"role\":\"user\",\"extra\":1")), 400, "messages[0].extra");
        assertOpenAiError(post(port, chat, "{\"model\":\"lm-buddy-fake-gpt2\"}"), 400, "messages");
        assertOpenAiError(post(port, chat, chatBody("x", 1, 4, false).replace("lm-buddy-fake-gpt2", "gpt-4o")), 404, "model");
        // Over-long prompts: longer than the 1024-position context, and larger than the request body limit.
        assertOpenAiError(post(port, chat, chatBody("refund ".repeat(3000), 1, 4, false)), 400, "messages");
        assertOpenAiError(post(port, "/v1/completions", "{\"model\":\"lm-buddy-fake-gpt2\",\"prompt\":" + quote("a".repeat(200_000)) + "}"), 400, "prompt");
        assertOpenAiError(post(port, chat, chatBody("x".repeat(1_100_000), 1, 4, false)), 413, null);
        assertOpenAiError(post(port, "/v1/completions", "{\"model\":\"lm-buddy-fake-gpt2\",\"prompt\":[1, 99999999]}"), 400, "prompt");
        assertOpenAiError(post(port, "/v1/completions", "{\"model\":\"lm-buddy-fake-gpt2\",\"prompt\":\"x\",\"echo\":true}"), 400, "echo");
        assertOpenAiError(post(port, "/v1/nothing", "{}"), 404, null);
        assertOpenAiError(get(port, chat), 405, null);
        // The server still serves after all of that.
        assertEquals(200, post(port, chat, chatBody("x", 1, 2, false)).status());
    }

    @Test
    void nonLoopbackBindNeedsAnApiKey() throws Exception {
        ConfigException e = assertThrows(ConfigException.class, () -> config().withHost("0.0.0.0", null));
        assertTrue(e.getMessage().contains("API key"), e.getMessage());
        try (TetherServer open = TetherServer.start(config().withHost("0.0.0.0", "s3cret-key"))) {
            int p = open.port();
            assertOpenAiError(post(p, "/v1/chat/completions", chatBody("x", 1, 2, false)), 401, null);
            assertOpenAiError(post(p, "/v1/chat/completions", chatBody("x", 1, 2, false), "Authorization", "Bearer wrong"), 401, null);
            assertOpenAiError(get(p, "/v1/models"), 401, null);
            assertEquals(200, post(p, "/v1/chat/completions", chatBody("x", 1, 2, false), "Authorization", "Bearer s3cret-key").status());
        }
    }
}
