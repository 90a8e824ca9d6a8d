package io.tether.server;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** The served fixture and a JDK HttpClient speaking to it. */
final class ServeFixture {
    private ServeFixture() {}

    static final Path SHARED = Path.of(System.getProperty("tether.shared", "../shared"));
    /** Real tiny GPT-2 (random weights, real GPT-2 tokenizer), no chat template of its own. */
    static final Path GPT2 = SHARED.resolve("fixtures/checkpoints/lm-buddy-fake-gpt2");
    /** Qwen2.5-Instruct's real ChatML template, applied to the GPT-2 model for the chat endpoint. */
    static final Path CHATML = SHARED.resolve("fixtures/tokenizers/qwen2.5/tokenizer_config.json");
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    static ServerConfig config() {
        return ServerConfig.defaults(GPT2).withChatTemplate(CHATML).withPort(0).withLimits(8, 128, 64, 120);
    }

    record Reply(int status, String body) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON: " + body, e);
            }
        }
    }

    static Reply post(int port, String path, String body, String... headers) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body());
    }

    static Reply get(int port, String path, String... headers) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).GET();
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body());
    }

    /** The data payloads of an SSE body, in order ("[DONE]" included). */
    static List<String> events(String sse) {
        List<String> out = new ArrayList<>();
        for (String block : sse.split("\n\n")) {
            if (block.isBlank()) continue;
            if (!block.startsWith("data: ")) throw new AssertionError("not an SSE data event: " + block);
            out.add(block.substring(6));
        }
        return out;
    }

    /** Concatenated text of choice {@code index} in a streamed chat or completion, checking the stream ends with [DONE]. */
    static String streamedText(String sse, int index, boolean chat) throws IOException {
        List<String> ev = events(sse);
        if (ev.isEmpty() || !ev.get(ev.size() - 1).equals("[DONE]")) throw new AssertionError("stream did not end with [DONE]: " + sse);
        StringBuilder sb = new StringBuilder();
        for (String e : ev.subList(0, ev.size() - 1)) {
            JsonNode chunk = JSON.readTree(e);
            if (chunk.has("error")) throw new AssertionError("stream error: " + e);
            for (JsonNode c : chunk.path("choices")) {
                if (c.path("index").asInt() != index) continue;
                sb.append(chat ? c.path("delta").path("content").asText("") : c.path("text").asText(""));
            }
        }
        return sb.toString();
    }
}
