package io.tether.rollout;

import java.io.BufferedWriter;
import java.io.IOException;
import java.net.IDN;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.concurrent.atomic.AtomicLong;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.DataFormatException;
import io.tether.engine.ConfigException;

/**
 * A pairwise judge backed by any OpenAI-compatible {@code /chat/completions} endpoint (OpenAI, vLLM, TGI, llama.cpp,
 * {@code tether serve}). The judging prompt is {@link JudgePrompt}'s (the same default as {@link LocalModelJudge}),
 * sent as one user message; the server applies its model's chat template.
 *
 * <p>Each pair is asked in both orders with temperature 0, max_tokens 1 and {@code logprobs}/{@code top_logprobs}.
 * P(A better) for one order = p(A) / (p(A) + p(B)) over the first generated token's top log-probs, where p(label) sums
 * the listed tokens that read as the label once whitespace is trimmed ("A" and " A" are different tokens on BPE
 * vocabularies). A label missing from the list gets the smallest listed probability (an upper bound on its true
 * probability, so the estimate leans toward 0.5). When the server returns no log-probs, or neither label is listed,
 * the generated text decides: exactly "A" or "B" after trimming gives 1 or 0; anything else is unscorable, counted in
 * {@link #unscorable}, and that order counts as 0.5. Both orders are averaged and the position bias counted as
 * {@link LocalModelJudge} does.
 *
 * <p>Transport: JDK {@link HttpClient}; retries with exponential backoff on 429, 5xx, timeouts and connection errors,
 * at most {@code maxAttempts} tries, waiting what Retry-After asks when the server says; a client-side rate limit
 * (requests started per second); a per-request timeout. Responses are cached in a JSONL file keyed by SHA-256 of
 * (URL, model, request body) — never the key — so a rerun over the same pairs sends nothing.
 *
 * <p>Security: plain http only to a loopback host (the prompt and answers would cross the network in clear, with the
 * key); the API key is read from an environment variable named by the caller and appears in no message or log.
 * Untrusted text (prompt, answers) is only ever a JSON string value written by Jackson.
 */
public final class OpenAiEndpointJudge implements LlmJudge {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Longest wait between two attempts, whatever Retry-After asks (a server asking for more is treated as down). */
    static final Duration MAX_WAIT = Duration.ofSeconds(120);

    /**
     * @param url                base URL ({@code https://host/v1}; {@code /chat/completions} is appended unless already there)
     * @param model              the "model" field sent
     * @param apiKeyEnv          name of the environment variable holding the API key (null: no Authorization header)
     * @param promptFile         a judging prompt file (null: {@link JudgePrompt#DEFAULT})
     * @param margin             a verdict is TIE when |P(first better) − 0.5| ≤ margin
     * @param maxAttempts        tries per request, the first included
     * @param backoff            wait after the first failed try, doubled after each (when the server sends no Retry-After)
     * @param requestsPerSecond  client-side limit on request starts (0: none); cache hits are free
     * @param timeout            per-request timeout
     * @param cache              JSONL response cache (null: none)
     * @param topLogprobs        top_logprobs asked for (0: ask for no log-probs, judge by the text)
     */
    public record Options(String url, String model, String apiKeyEnv, Path promptFile, double margin, int maxAttempts, Duration backoff,
                          double requestsPerSecond, Duration timeout, Path cache, int topLogprobs) {
        public static Options defaults(String url, String model) {
            return new Options(url, model, null, null, 0, 5, Duration.ofSeconds(1), 0, Duration.ofSeconds(60), null, 5);
        }

        public Options withApiKeyEnv(String v) { return new Options(url, model, v, promptFile, margin, maxAttempts, backoff, requestsPerSecond, timeout, cache, topLogprobs); }
        public Options withPrompt(Path p, double m) { return new Options(url, model, apiKeyEnv, p, m, maxAttempts, backoff, requestsPerSecond, timeout, cache, topLogprobs); }
        public Options withRetries(int n, Duration b) { return new Options(url, model, apiKeyEnv, promptFile, margin, n, b, requestsPerSecond, timeout, cache, topLogprobs); }
        public Options withRate(double rps, Duration t) { return new Options(url, model, apiKeyEnv, promptFile, margin, maxAttempts, backoff, rps, t, cache, topLogprobs); }
        public Options withCache(Path c) { return new Options(url, model, apiKeyEnv, promptFile, margin, maxAttempts, backoff, requestsPerSecond, timeout, c, topLogprobs); }
        public Options withTopLogprobs(int k) { return new Options(url, model, apiKeyEnv, promptFile, margin, maxAttempts, backoff, requestsPerSecond, timeout, cache, k); }
    }

    private final Options options;
    private final URI endpoint;
    private final String apiKey;
    private final JudgePrompt prompt;
    private final HttpClient http;
    private final Map<String, JsonNode> cached = new HashMap<>();
    private final BufferedWriter cacheOut;
    private final BothOrders orders;
    private final AtomicLong unscorable = new AtomicLong(),
            bounded = new AtomicLong(), waitedNanos = new AtomicLong(), sent = new AtomicLong(), retried = new AtomicLong(), hits = new AtomicLong();
    private long nextStart;   // System.nanoTime() before which no request may start (rate limit)

    /** Reads the API key from the process environment. */
    public static OpenAiEndpointJudge open(Options o) {
        return new OpenAiEndpointJudge(o, System::getenv);
    }

    /** @param env the environment the API key's variable is looked up in */
    public OpenAiEndpointJudge(Options o, UnaryOperator<String> env) {
        this.options = o;
        if (o.url() == null || o.url().isBlank()) throw new ConfigException("judge URL: none given");
        if (o.model() == null || o.model().isBlank()) throw new ConfigException("judge model: an endpoint judge needs the model name the server should run (--judge-model, judge_model_name)");
        this.orders = new BothOrders(o.margin());
        if (o.maxAttempts() < 1) throw new ConfigException("judge max attempts must be >= 1, got " + o.maxAttempts());
        if (!(o.requestsPerSecond() >= 0)) throw new ConfigException("judge requests per second must be >= 0, got " + o.requestsPerSecond());
        if (o.topLogprobs() < 0 || o.topLogprobs() > 20) throw new ConfigException("judge top_logprobs must be in [0, 20], got " + o.topLogprobs());
        this.endpoint = endpoint(o.url());
        if (o.apiKeyEnv() != null) {
            String k = env.apply(o.apiKeyEnv());
            if (k == null || k.isBlank())
                throw new ConfigException("judge API key: the environment variable " + o.apiKeyEnv() + " (named by --judge-api-key-env) is not set or empty");
            this.apiKey = k.strip();
        } else {
            this.apiKey = null;
        }
        this.prompt = JudgePrompt.read(o.promptFile());
        this.http = HttpClient.newBuilder().connectTimeout(o.timeout()).followRedirects(HttpClient.Redirect.NEVER).build();
        this.cacheOut = o.cache() == null ? null : openCache(o.cache());
    }

    /** The chat-completions URI, refusing plain http beyond loopback. */
    static URI endpoint(String url) {
        URI u;
        try {
            u = new URI(url.strip());
        } catch (URISyntaxException e) {
            throw new ConfigException("judge URL " + url + ": not a URL (" + e.getMessage() + ")");
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(java.util.Locale.ROOT);
        if (u.getHost() == null || !(scheme.equals("https") || scheme.equals("http")))
            throw new ConfigException("judge URL " + url + ": expected an http(s)://host/... URL");
        if (u.getUserInfo() != null) throw new ConfigException("judge URL: credentials in the URL are refused; name the key's environment variable with --judge-api-key-env");
        if (scheme.equals("http") && !loopback(u.getHost()))
            throw new ConfigException("judge URL " + url + ": plain http is refused for the non-loopback host " + u.getHost()
                    + " (prompts, answers and the API key would travel unencrypted); use https, or a loopback host (127.0.0.1, ::1, localhost)");
        String path = u.getPath() == null ? "" : u.getPath();
        if (!path.endsWith("/chat/completions")) path = (path.endsWith("/") ? path : path + "/") + "chat/completions";
        try {
            return new URI(scheme, null, u.getHost(), u.getPort(), path, u.getQuery(), null);
        } catch (URISyntaxException e) {
            throw new ConfigException("judge URL " + url + ": " + e.getMessage());
        }
    }

    /** A loopback literal (127.0.0.0/8, ::1) or "localhost"; other names are not resolved, so DNS cannot make them loopback. */
    static boolean loopback(String host) {
        String h = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        if (IDN.toASCII(h).equalsIgnoreCase("localhost")) return true;
        if (!h.matches("[0-9.]+") && !h.contains(":")) return false;   // not an IP literal: no lookup
        try {
            return InetAddress.getByName(h).isLoopbackAddress();
        } catch (IOException e) {
            return false;
        }
    }

    private BufferedWriter openCache(Path file) {
        try {
            if (Files.exists(file)) {
                List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
                for (int i = 0; i < lines.size(); i++) {
                    String line = lines.get(i);
                    if (line.isBlank()) continue;
                    JsonNode n;
                    try {
                        n = JSON.readTree(line);
                    } catch (JsonProcessingException e) {
                        // A torn last line (a run killed mid-write) is dropped; anywhere else the file is not ours.
                        if (i == lines.size() - 1) continue;
                        throw new DataFormatException(file, i + 1, "not a JSON line of the judge cache: " + e.getOriginalMessage());
                    }
                    if (!n.path("key").isTextual() || !n.path("response").isObject())
                        throw new DataFormatException(file, i + 1, "a judge cache line needs 'key' (text) and 'response' (object)");
                    cached.put(n.get("key").asText(), n.get("response"));
                }
            } else if (file.getParent() != null) {
                Files.createDirectories(file.getParent());
            }
            return Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new ConfigException("judge cache " + file + ": " + e.getMessage(), e);
        }
    }

    /** The request body for one order (as sent and as hashed for the cache): the filled prompt as a JSON string value, never spliced into JSON text. */
    public String requestBody(String userPrompt, String answerA, String answerB) {
        ObjectNode b = JSON.createObjectNode();
        b.put("model", options.model());
        b.putArray("messages").addObject().put("role", "user").put("content", prompt.fill(userPrompt, answerA, answerB));
        b.put("temperature", 0);
        b.put("max_tokens", 1);
        if (options.topLogprobs() > 0) b.put("logprobs", true).put("top_logprobs", options.topLogprobs());
        try {
            return JSON.writeValueAsString(b);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    static String key(URI endpoint, String model, String body) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            for (String s : List.of(endpoint.toString(), model, body)) {
                byte[] b = s.getBytes(StandardCharsets.UTF_8);
                d.update(java.nio.ByteBuffer.allocate(8).putLong(b.length).array());   // length-prefixed: no ambiguity between fields
                d.update(b);
            }
            return HexFormat.of().formatHex(d.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The response for one request body, from the cache or the endpoint. */
    JsonNode call(String body) {
        String k = key(endpoint, options.model(), body);
        synchronized (cached) {
            JsonNode hit = cached.get(k);
            if (hit != null) {
                hits.incrementAndGet();
                return hit;
            }
        }
        JsonNode r = send(body);
        synchronized (cached) {
            cached.put(k, r);
            if (cacheOut != null) {
                try {
                    ObjectNode line = JSON.createObjectNode().put("key", k);
                    line.set("response", r);
                    cacheOut.write(JSON.writeValueAsString(line));
                    cacheOut.write('\n');
                    cacheOut.flush();   // each answer kept as it arrives: a killed run loses at most the one in flight
                } catch (IOException e) {
                    throw new ConfigException("judge cache " + options.cache() + ": cannot append: " + e.getMessage(), e);
                }
            }
        }
        return r;
    }

    private JsonNode send(String body) {
        HttpRequest.Builder rb = HttpRequest.newBuilder(endpoint).timeout(options.timeout())
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
        if (apiKey != null) rb.header("Authorization", "Bearer " + apiKey);
        HttpRequest req = rb.build();
        long backoff = options.backoff().toNanos();
        String last = null;
        for (int attempt = 1; ; attempt++) {
            pace();
            long wait = backoff;
            try {
                sent.incrementAndGet();
                HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
                int s = resp.statusCode();
                if (s == 200) {
                    try {
                        JsonNode n = JSON.readTree(resp.body());
                        if (n != null && n.isObject()) return n;
                    } catch (JsonProcessingException e) {
                        // falls through: an unparseable 200 is the server's fault, not retried
                    }
                    throw new IllegalStateException("judge endpoint " + endpoint + ": HTTP 200 without a JSON object: " + excerpt(resp.body()));
                }
                last = "HTTP " + s + ": " + excerpt(resp.body());
                if (s != 429 && s < 500)   // the request itself is wrong (or the key): retrying cannot help
                    throw new IllegalStateException("judge endpoint " + endpoint + " refused the request: " + last);
                Long after = retryAfter(resp.headers().firstValue("Retry-After").orElse(null));
                if (after != null) wait = after;
            } catch (HttpTimeoutException e) {
                last = "timed out after " + options.timeout().toMillis() + " ms";
            } catch (IOException e) {
                last = e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("judge endpoint " + endpoint + ": interrupted", e);
            }
            if (attempt >= options.maxAttempts())
                throw new IllegalStateException("judge endpoint " + endpoint + ": gave up after " + attempt + " attempt" + (attempt == 1 ? "" : "s") + "; last: " + last);
            retried.incrementAndGet();
            wait = Math.min(wait, MAX_WAIT.toNanos());
            waitedNanos.addAndGet(wait);
            sleep(wait);
            backoff = Math.min(backoff * 2, MAX_WAIT.toNanos());
        }
    }

    /** Retry-After as nanoseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or unreadable. */
    static Long retryAfter(String v) {
        if (v == null || v.isBlank()) return null;
        try {
            return Math.max(0, (long) (Double.parseDouble(v.strip()) * 1e9));
        } catch (NumberFormatException e) {
            try {
                long ms = ZonedDateTime.parse(v.strip(), DateTimeFormatter.RFC_1123_DATE_TIME).toInstant().toEpochMilli() - System.currentTimeMillis();
                return Math.max(0, ms) * 1_000_000;
            } catch (RuntimeException e2) {
                return null;
            }
        }
    }

    /** Client-side rate limit: request starts at least 1/rps apart. */
    private void pace() {
        if (options.requestsPerSecond() <= 0) return;
        long gap = (long) (1e9 / options.requestsPerSecond()), start;
        synchronized (this) {
            long now = System.nanoTime();
            start = Math.max(now, nextStart);
            nextStart = start + gap;
        }
        sleep(start - System.nanoTime());
    }

    private static void sleep(long nanos) {
        if (nanos <= 0) return;
        try {
            Thread.sleep(nanos / 1_000_000, (int) (nanos % 1_000_000));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("judge: interrupted while waiting to retry", e);
        }
    }

    /** The start of a response body for an error message, with the key blanked should the server echo it. */
    private String excerpt(String s) {
        if (s == null) return "";
        if (apiKey != null) s = s.replace(apiKey, "***");
        s = s.replaceAll("\\s+", " ").strip();
        return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }

    /** P(A better) from one response: the first token's top log-probs, else the text; NaN when unscorable. */
    public static double pABetter(JsonNode response) {
        return score(response)[0];
    }

    /** Whether a response's top log-probs list only one of the two labels (its P(A better) is then a bound, not exact). */
    public static boolean bounded(JsonNode response) {
        return score(response)[1] != 0;
    }

    /** {P(A better), 1 when one label was missing from the top log-probs}. */
    private static double[] score(JsonNode response) {
        JsonNode choice = response.path("choices").path(0);
        JsonNode top = choice.path("logprobs").path("content").path(0).path("top_logprobs");
        if (top.isArray() && !top.isEmpty()) {
            double a = 0, b = 0, min = Double.POSITIVE_INFINITY;
            for (JsonNode t : top) {
                if (!t.path("logprob").isNumber()) continue;
                double p = Math.exp(t.path("logprob").asDouble());
                min = Math.min(min, p);
                String tok = t.path("token").asText("").strip();
                if (tok.equals(JudgePrompt.LABEL_A)) a += p;
                else if (tok.equals(JudgePrompt.LABEL_B)) b += p;
            }
            if (a > 0 || b > 0) {
                boolean one = a == 0 || b == 0;
                if (a == 0) a = min;   // the unlisted label's probability is at most the smallest listed one
                if (b == 0) b = min;
                return new double[] {a / (a + b), one ? 1 : 0};
            }
        }
        String text = choice.path("message").path("content").asText("").strip();
        return new double[] {text.equals(JudgePrompt.LABEL_A) ? 1 : text.equals(JudgePrompt.LABEL_B) ? 0 : Double.NaN, 0};
    }

    /** The probabilities and the verdict for one pair, asked in both orders; counted in {@link #positionBias}. */
    public BothOrders.Judgement probabilities(String userPrompt, String first, String second) {
        double[] sab = score(call(requestBody(userPrompt, first, second))), sba = score(call(requestBody(userPrompt, second, first)));
        double ab = sab[0], ba = sba[0];
        bounded.addAndGet((long) (sab[1] + sba[1]));
        if (Double.isNaN(ab)) { unscorable.incrementAndGet(); ab = 0.5; }
        if (Double.isNaN(ba)) { unscorable.incrementAndGet(); ba = 0.5; }
        return orders.combine(ab, 1 - ba);
    }

    @Override
    public Verdict judge(OnlinePrompt prompt, long[] firstTokens, String first, long[] secondTokens, String second) {
        return probabilities(JudgePrompt.userPrompt(prompt), first, second).verdict();
    }

    /** The filled-in judging prompt for one order, as sent. */
    public String render(String userPrompt, String answerA, String answerB) {
        return prompt.fill(userPrompt, answerA, answerB);
    }

    public URI endpoint() { return endpoint; }

    /** Pairs judged so far. */
    public long judged() { return orders.judged(); }

    /** The share of judged pairs whose two orders, each alone, named different winners (NaN before any). */
    public double positionBias() { return orders.positionBias(); }

    /** Answers (one per order) that gave neither log-probs for A/B nor a text "A"/"B"; each counted as 0.5. */
    public long unscorable() { return unscorable.get(); }

    /** Answers (one per order) whose top log-probs listed only one label: their P is a bound leaning toward 0.5 (ask for more top_logprobs). */
    public long bounded() { return bounded.get(); }

    /** HTTP requests sent (retries included), retries alone, and answers served from the cache. */
    public long requestsSent() { return sent.get(); }
    public long retries() { return retried.get(); }
    public long cacheHits() { return hits.get(); }

    /** Total time chosen to wait before retries (Retry-After or backoff), in seconds. */
    public double retryWaitSeconds() { return waitedNanos.get() / 1e9; }

    public double margin() { return options.margin(); }

    @Override
    public String describe() {
        return "endpoint " + endpoint + " model " + options.model() + " (both orders)";
    }

    @Override
    public void close() {
        if (cacheOut == null) return;
        try {
            cacheOut.close();
        } catch (IOException e) {
            throw new ConfigException("judge cache " + options.cache() + ": " + e.getMessage(), e);
        }
    }
}
