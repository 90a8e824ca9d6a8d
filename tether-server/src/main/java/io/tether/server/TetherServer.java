package io.tether.server;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.generate.ContinuousBatch;
import io.tether.model.LoraAdapters;
import io.tether.model.Models;
import io.tether.text.ChatTemplate;
import io.tether.text.ChatTemplateException;
import io.tether.text.TextAssets;

/**
 * An OpenAI-compatible HTTP server for one checkpoint, over Javalin (Jetty 12): {@code /v1/chat/completions}
 * (the model's chat template applied), {@code /v1/completions}, {@code /v1/models}, {@code /health}; streaming as
 * server-sent events ({@code data: {...}} chunks, then {@code data: [DONE]}) or one JSON response. One
 * {@link Scheduler} thread runs the model; HTTP threads parse, queue, and write what it produces.
 */
public final class TetherServer implements AutoCloseable {
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private final ServerConfig config;
    private final Models.LoadedModel loaded;
    private final TextAssets text;
    private final ChatTemplate template;
    private final Requests.Context context;
    private final Scheduler scheduler;
    private final Javalin app;
    private final byte[] apiKey;
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean closing;
    private final long created = System.currentTimeMillis() / 1000;

    private TetherServer(ServerConfig config) throws IOException {
        this.config = config;
        loaded = Models.load(config.model(), DType.F32);
        try {
            text = TextAssets.load(config.model()).orElseThrow(() ->
                    new ConfigException(config.model().resolve("tokenizer.json") + ": file not found (serving text needs the model's tokenizer)"));
            if (config.adapter() != null) LoraAdapters.load(loaded.model(), config.adapter()).merge();
            if (config.chatTemplate() != null) {
                Path f = config.chatTemplate();
                try {
                    template = f.toString().endsWith(".json") ? ChatTemplate.fromTokenizerConfig(f, null)
                            : new ChatTemplate(Files.readString(f), java.util.Map.of(), f.toString());
                } catch (ChatTemplateException e) {
                    throw new ConfigException("--chat-template " + f + ": " + e.getMessage());
                }
            } else {
                template = text.template();
            }
            Set<Long> stops = new LinkedHashSet<>(loaded.defaultStopIds());
            if (text.tokenizer().specialTokens().eosId() != null) stops.add(text.tokenizer().specialTokens().eosId());
            context = new Requests.Context(config.modelId(), text.tokenizer(), template, loaded.model().config().maxPositionEmbeddings(),
                    config.maxTokensLimit(), config.maxBatch());
            apiKey = config.apiKey() == null ? null : config.apiKey().getBytes(StandardCharsets.UTF_8);
            scheduler = new Scheduler(loaded.model(), text.tokenizer(), new ArrayList<>(stops), config.maxBatch(), config.queue(), config.timeoutSeconds());
            app = Javalin.create(cfg -> {
                cfg.startup.showJavalinBanner = false;
                cfg.startup.showOldJavalinVersionWarning = false;
                cfg.http.maxRequestSize = config.maxRequestBytes();
                cfg.http.compressionStrategy = CompressionStrategy.NONE;
                cfg.http.prefer405over404 = true;   // SSE chunks must leave as they are written
                cfg.jetty.host = config.host();
                cfg.jetty.port = config.port();
                cfg.routes.before(this::authorize);
                cfg.routes.get("/health", ctx -> send(ctx, 200, F.objectNode().put("status", closing ? "shutting_down" : "ok")));
                cfg.routes.get("/v1/models", this::models);
                cfg.routes.post("/v1/chat/completions", ctx -> generate(ctx, true));
                cfg.routes.post("/v1/completions", ctx -> generate(ctx, false));
                cfg.routes.exception(ApiError.class, (e, ctx) -> send(ctx, e.status, e.body()));
                cfg.routes.exception(HttpResponseException.class, (e, ctx) -> {
                    String type = e.getStatus() == 413 ? "invalid_request_error" : "invalid_request_error";
                    String message = e.getStatus() == 413 ? "The request body is larger than this server accepts (" + config.maxRequestBytes() + " bytes)." : e.getMessage();
                    send(ctx, e.getStatus(), new ApiError(e.getStatus(), message, type, null, e.getStatus() == 413 ? "request_too_large" : null).body());
                });
                cfg.routes.exception(Exception.class, (e, ctx) -> {
                    System.err.println("tether serve: " + ctx.method() + " " + ctx.path() + " failed: " + e);
                    send(ctx, 500, new ApiError(500, "The server failed to handle the request.", "server_error", null, null).body());
                });
                cfg.routes.error(404, ctx -> {
                    if (ctx.result() == null || ctx.result().isEmpty())
                        send(ctx, 404, new ApiError(404, "Unknown path: " + ctx.method() + " " + ctx.path(), "invalid_request_error", null, "not_found").body());
                });
                cfg.routes.error(405, ctx -> send(ctx, 405, new ApiError(405, "Method not allowed: " + ctx.method() + " " + ctx.path(), "invalid_request_error", null, "method_not_allowed").body()));
            });
            app.start();
        } catch (RuntimeException | IOException e) {
            loaded.close();
            throw e;
        }
    }

    /** Loads the model and starts serving. */
    public static TetherServer start(ServerConfig config) throws IOException {
        return new TetherServer(config);
    }

    public int port() { return app.port(); }

    public String modelId() { return config.modelId(); }

    /**
     * Batching so far: the most rows one decode step ran, rows that joined while others were generating, and
     * requests dropped mid-generation because their client went away.
     */
    public record Stats(int maxRows, int joinedRunning, int abandoned) {}

    public Stats stats() { return new Stats(scheduler.maxRows, scheduler.joinedRunning, scheduler.abandoned); }

    /** Requests queued or generating whose answers are not yet written. */
    int inFlight() { return inFlight.get(); }

    /** Requests waiting for a batch slot. */
    int queued() { return scheduler.queued(); }

    private void authorize(Context ctx) {
        if (apiKey == null || ctx.path().equals("/health")) return;
        String h = ctx.header("Authorization");
        byte[] given = h != null && h.startsWith("Bearer ") ? h.substring(7).getBytes(StandardCharsets.UTF_8) : new byte[0];
        if (!MessageDigest.isEqual(apiKey, given))   // constant time: no timing hint about the key
            throw new ApiError(401, h == null ? "You didn't provide an API key (Authorization: Bearer ...)." : "Incorrect API key provided.",
                    "invalid_request_error", null, "invalid_api_key");
    }

    private void models(Context ctx) {
        ObjectNode root = F.objectNode().put("object", "list");
        root.putArray("data").addObject().put("id", config.modelId()).put("object", "model").put("created", created).put("owned_by", "tether");
        send(ctx, 200, root);
    }

    private void generate(Context ctx, boolean chat) throws Exception {
        if (closing) throw new ApiError(503, "The server is shutting down.", "server_error", null, "shutting_down");
        JsonNode body = Requests.readBody(ctx.bodyAsBytes());
        Requests.Parsed p = chat ? Requests.chat(body, context) : Requests.completion(body, context);
        Scheduler.Job job = scheduler.submit(p);
        inFlight.incrementAndGet();   // counted once queued, so close() waits for its answer to be written
        try {
            String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
            long now = System.currentTimeMillis() / 1000;
            if (p.stream()) stream(ctx, job, id, now, chat);
            else complete(ctx, job, id, now, chat);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    /** The next event, or a timeout error if the scheduler has not answered well past the deadline. */
    private Scheduler.Event next(Scheduler.Job job) throws InterruptedException {
        long wait = Math.max(0, job.deadline - System.nanoTime()) + TimeUnit.SECONDS.toNanos(30);
        Scheduler.Event e = job.events.poll(wait, TimeUnit.NANOSECONDS);
        if (e == null) {
            job.cancelled = true;
            return new Scheduler.Failed(scheduler.timeout());
        }
        return e;
    }

    private void complete(Context ctx, Scheduler.Job job, String id, long now, boolean chat) throws InterruptedException {
        int n = job.request.n();
        StringBuilder[] texts = new StringBuilder[n];
        List<List<ContinuousBatch.Token>> tokens = new ArrayList<>();
        String[] finish = new String[n];
        for (int i = 0; i < n; i++) {
            texts[i] = new StringBuilder();
            tokens.add(new ArrayList<>());
        }
        while (true) {
            Scheduler.Event e = next(job);
            if (e instanceof Scheduler.Failed f) throw f.error();
            if (e instanceof Scheduler.Delta d) {
                texts[d.choice()].append(d.text());
                tokens.get(d.choice()).addAll(d.tokens());
                if (d.finishReason() != null) finish[d.choice()] = d.finishReason();
                continue;
            }
            Scheduler.Done done = (Scheduler.Done) e;
            ObjectNode root = head(id, chat ? "chat.completion" : "text_completion", now);
            ArrayNode choices = root.putArray("choices");
            for (int i = 0; i < n; i++) {
                ObjectNode c = choices.addObject().put("index", i);
                if (chat) {
                    c.putObject("message").put("role", "assistant").put("content", texts[i].toString()).putNull("refusal");
                } else {
                    c.put("text", texts[i].toString());
                }
                logprobs(c, chat, tokens.get(i), 0);
                c.put("finish_reason", finish[i]);
            }
            usage(root.putObject("usage"), done);
            send(ctx, 200, root);
            return;
        }
    }

    private void stream(Context ctx, Scheduler.Job job, String id, long now, boolean chat) throws InterruptedException {
        int n = job.request.n();
        int[] offsets = new int[n];
        OutputStream out = null;
        try {
            while (true) {
                Scheduler.Event e = next(job);
                if (e instanceof Scheduler.Failed f) {
                    if (out == null) throw f.error();   // nothing sent yet: a plain error response with its status
                    event(out, f.error().body());       // mid-stream, as OpenAI does: an error event, then the end
                    return;
                }
                if (out == null) {
                    // Headers go out with the first event, so that errors before it keep their HTTP status.
                    ctx.status(200);
                    ctx.res().setContentType("text/event-stream");
                    ctx.res().setCharacterEncoding("utf-8");
                    ctx.res().setHeader("Cache-Control", "no-cache");
                    out = ctx.res().getOutputStream();
                    if (chat)
                        for (int i = 0; i < n; i++) {
                            ObjectNode chunk = head(id, "chat.completion.chunk", now);
                            ObjectNode c = chunk.putArray("choices").addObject().put("index", i);
                            c.putObject("delta").put("role", "assistant").put("content", "");
                            c.putNull("logprobs");
                            c.putNull("finish_reason");
                            event(out, chunk);
                        }
                }
                if (e instanceof Scheduler.Delta d) {
                    ObjectNode chunk = head(id, chat ? "chat.completion.chunk" : "text_completion", now);
                    ObjectNode c = chunk.putArray("choices").addObject().put("index", d.choice());
                    if (chat) c.putObject("delta").put("content", d.text());
                    else c.put("text", d.text());
                    offsets[d.choice()] = logprobs(c, chat, d.tokens(), offsets[d.choice()]);
                    if (d.finishReason() == null) c.putNull("finish_reason"); else c.put("finish_reason", d.finishReason());
                    event(out, chunk);
                    continue;
                }
                Scheduler.Done done = (Scheduler.Done) e;
                if (job.request.includeUsage()) {
                    ObjectNode chunk = head(id, chat ? "chat.completion.chunk" : "text_completion", now);
                    chunk.putArray("choices");
                    usage(chunk.putObject("usage"), done);
                    event(out, chunk);
                }
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                out.flush();
                return;
            }
        } catch (IOException gone) {
            job.cancelled = true;   // the client left: its rows leave the batch at the next step
        }
    }

    private static void event(OutputStream out, ObjectNode chunk) throws IOException {
        out.write(("data: " + Requests.JSON.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private ObjectNode head(String id, String object, long now) {
        return F.objectNode().put("id", id).put("object", object).put("created", now).put("model", config.modelId());
    }

    private static void usage(ObjectNode u, Scheduler.Done done) {
        u.put("prompt_tokens", done.promptTokens()).put("completion_tokens", done.completionTokens())
                .put("total_tokens", done.promptTokens() + done.completionTokens());
    }

    /** Writes OpenAI's logprobs object for {@code tokens} into choice {@code c}; returns the next text offset. */
    private int logprobs(ObjectNode c, boolean chat, List<ContinuousBatch.Token> tokens, int offset) {
        if (tokens.isEmpty() || Double.isNaN(tokens.get(0).logprob())) {
            c.putNull("logprobs");
            return offset;
        }
        if (chat) {
            ObjectNode lp = c.putObject("logprobs");
            ArrayNode content = lp.putArray("content");
            for (ContinuousBatch.Token t : tokens) {
                ObjectNode o = tokenEntry(content.addObject(), t.id(), t.logprob());
                ArrayNode top = o.putArray("top_logprobs");
                if (t.topIds() != null)
                    for (int k = 0; k < t.topIds().length; k++) tokenEntry(top.addObject(), t.topIds()[k], t.topLogprobs()[k]);
            }
            lp.putNull("refusal");
            return offset;
        }
        ObjectNode lp = c.putObject("logprobs");
        ArrayNode toks = lp.putArray("tokens"), tlp = lp.putArray("token_logprobs"), offs = lp.putArray("text_offset");
        ArrayNode top = lp.putArray("top_logprobs");
        for (ContinuousBatch.Token t : tokens) {
            String s = piece(t.id());
            toks.add(s);
            tlp.add(t.logprob());
            offs.add(offset);
            offset += s.length();
            if (t.topIds() == null) top.addNull();
            else {
                ObjectNode m = top.addObject();
                for (int k = 0; k < t.topIds().length; k++) m.put(piece(t.topIds()[k]), t.topLogprobs()[k]);
            }
        }
        return offset;
    }

    private ObjectNode tokenEntry(ObjectNode o, long id, double logprob) {
        String s = piece(id);
        o.put("token", s).put("logprob", logprob);
        ArrayNode bytes = o.putArray("bytes");
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) bytes.add(b & 0xff);
        return o;
    }

    private String piece(long id) {
        return text.tokenizer().decode(new long[] {id}, false);
    }

    private static void send(Context ctx, int status, ObjectNode body) {
        try {
            ctx.status(status).contentType("application/json").result(Requests.JSON.writeValueAsBytes(body));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Graceful shutdown: new requests get 503, queued and running ones finish (within the request timeout), their
     * responses are written, then the HTTP server and the model close.
     */
    @Override
    public void close() {
        closing = true;
        try {
            scheduler.drain((long) (config.timeoutSeconds() * 1000) + 5_000);
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (inFlight.get() > 0 && System.nanoTime() < until) Thread.sleep(10);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        app.stop();
        scheduler.close();
        text.close();
        loaded.close();
    }
}
