package io.tether.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.ConfigException;
import io.tether.server.ServerConfig;
import io.tether.server.TetherServer;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve a checkpoint over an OpenAI-compatible HTTP API: /v1/chat/completions, /v1/completions, /v1/models, /health.",
                "Requests queue and are decoded together (rows join and leave between decode steps). Ctrl-C finishes in-flight requests, then exits."})
final class ServeCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Mixin SharedOptions.Model model;

    @Option(names = "--adapter", description = "PEFT LoRA adapter directory, merged into the weights at load")
    Path adapter;

    @Option(names = "--chat-template", description = "tokenizer_config.json or .jinja file whose chat template replaces the model's")
    Path chatTemplate;

    @Option(names = "--model-id", description = "the id clients send as \"model\" (default: the model directory's name)")
    String modelId;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "bind address; non-loopback needs --api-key-env (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--port", defaultValue = "8000", description = "default: ${DEFAULT-VALUE}; 0 picks a free port")
    int port;

    @Option(names = "--api-key-env", paramLabel = "VAR", description = "environment variable holding the Bearer key every /v1 request must carry")
    String apiKeyEnv;

    @Option(names = "--max-batch", defaultValue = "16", description = "rows decoded together (default: ${DEFAULT-VALUE})")
    int maxBatch;

    @Option(names = "--queue", defaultValue = "64", description = "requests waiting for a slot; more get 429 (default: ${DEFAULT-VALUE})")
    int queue;

    @Option(names = "--max-tokens-limit", defaultValue = "256", description = "largest max_tokens a request may ask for; the chat default (default: ${DEFAULT-VALUE})")
    int maxTokensLimit;

    @Option(names = "--timeout-seconds", defaultValue = "300", description = "per-request deadline (default: ${DEFAULT-VALUE})")
    double timeoutSeconds;

    @Override
    public Integer call() throws Exception {
        root.initEngine();
        String key = null;
        if (apiKeyEnv != null) {
            key = System.getenv(apiKeyEnv);
            if (key == null || key.isEmpty()) throw new ConfigException("--api-key-env " + apiKeyEnv + ": the environment variable is not set or empty");
        }
        ServerConfig config = new ServerConfig(model.path, adapter, chatTemplate, modelId != null ? modelId : model.path.toAbsolutePath().normalize().getFileName().toString(),
                host, port, key, maxBatch, queue, maxTokensLimit, timeoutSeconds, 1 << 20);
        TetherServer server = TetherServer.start(config);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            root.spec.commandLine().getErr().println("tether serve: shutting down (finishing in-flight requests)");
            server.close();
            stopped.countDown();
        }, "tether-serve-shutdown"));
        root.spec.commandLine().getErr().printf("tether serve: %s on http://%s:%d/v1 (max batch %d, queue %d)%n",
                server.modelId(), host, server.port(), maxBatch, queue);
        root.spec.commandLine().getErr().flush();
        stopped.await();
        return 0;
    }
}
