package io.tether.server;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;

import io.tether.engine.ConfigException;

/**
 * How {@code tether serve} runs.
 *
 * @param model           Hugging Face model directory (needs a tokenizer.json for text)
 * @param adapter         optional PEFT LoRA adapter directory, merged into the weights at load
 * @param chatTemplate    optional tokenizer_config.json or .jinja whose chat template replaces the model's own
 * @param modelId         the id clients name in "model" and /v1/models lists
 * @param host            bind address; anything but loopback needs {@code apiKey}
 * @param port            0 picks a free port
 * @param apiKey          Bearer key every /v1 request must carry; null for none (loopback only)
 * @param maxBatch        rows decoded together (a request with n choices takes n rows)
 * @param queue           requests waiting for a batch slot; one more gets 429
 * @param maxTokensLimit  largest max_tokens a request may ask for (also the chat default)
 * @param timeoutSeconds  per-request deadline from arrival to last token
 * @param maxRequestBytes largest request body (413 above)
 */
public record ServerConfig(Path model, Path adapter, Path chatTemplate, String modelId, String host, int port, String apiKey,
                           int maxBatch, int queue, int maxTokensLimit, double timeoutSeconds, long maxRequestBytes) {
    public ServerConfig {
        if (maxBatch < 1) throw new ConfigException("--max-batch must be >= 1, got " + maxBatch);
        if (queue < 1) throw new ConfigException("--queue must be >= 1, got " + queue);
        if (maxTokensLimit < 1) throw new ConfigException("--max-tokens-limit must be >= 1, got " + maxTokensLimit);
        if (!(timeoutSeconds > 0)) throw new ConfigException("--timeout-seconds must be > 0, got " + timeoutSeconds);
        if (port < 0 || port > 65535) throw new ConfigException("--port must be in [0, 65535], got " + port);
        if (maxRequestBytes < 1024) throw new ConfigException("max request bytes must be >= 1024, got " + maxRequestBytes);
        if (apiKey != null && apiKey.isEmpty()) apiKey = null;
        if (apiKey == null && !loopback(host))
            throw new ConfigException("--host " + host + " is not a loopback address: serving beyond this machine needs an API key (--api-key-env VAR)");
    }

    public static ServerConfig defaults(Path model) {
        return new ServerConfig(model, null, null, model.getFileName().toString(), "127.0.0.1", 8000, null, 16, 64, 256, 300, 1 << 20);
    }

    public ServerConfig withPort(int p) {
        return new ServerConfig(model, adapter, chatTemplate, modelId, host, p, apiKey, maxBatch, queue, maxTokensLimit, timeoutSeconds, maxRequestBytes);
    }

    public ServerConfig withLimits(int maxBatch, int queue, int maxTokensLimit, double timeoutSeconds) {
        return new ServerConfig(model, adapter, chatTemplate, modelId, host, port, apiKey, maxBatch, queue, maxTokensLimit, timeoutSeconds, maxRequestBytes);
    }

    public ServerConfig withHost(String host, String apiKey) {
        return new ServerConfig(model, adapter, chatTemplate, modelId, host, port, apiKey, maxBatch, queue, maxTokensLimit, timeoutSeconds, maxRequestBytes);
    }

    public ServerConfig withChatTemplate(Path file) {
        return new ServerConfig(model, adapter, file, modelId, host, port, apiKey, maxBatch, queue, maxTokensLimit, timeoutSeconds, maxRequestBytes);
    }

    /** True for a name that resolves to loopback only (127.0.0.0/8, ::1, localhost). */
    static boolean loopback(String host) {
        try {
            InetAddress[] all = InetAddress.getAllByName(host);
            for (InetAddress a : all) if (!a.isLoopbackAddress()) return false;
            return all.length > 0;
        } catch (UnknownHostException e) {
            throw new ConfigException("--host " + host + ": unknown host");
        }
    }
}
