package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.Models;
import io.tether.server.ServerConfig;
import io.tether.server.TetherServer;
import io.tether.text.TextAssets;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Requests/s, tokens/s and p50/p99 latency of `tether serve` at several client concurrencies (non-streaming /v1/completions),",
                "against generating the same requests one after another in process (no HTTP, no batching)."})
final class BenchServe implements Callable<Integer> {
    @ParentCommand BenchCommand bench;

    @Option(names = "--model", description = "model directory with a tokenizer.json (default: a random Llama on the bench shape, saved with --tokenizer's files)") Path model;
    @Option(names = "--tokenizer", defaultValue = "../shared/fixtures/checkpoints/lm-buddy-fake-gpt2",
            description = "directory whose tokenizer.json the bench-shape model uses; its vocabulary sets the model's (default: ${DEFAULT-VALUE})") Path tokenizer;
    @Mixin Dims dims;
    @Option(names = "--requests", defaultValue = "64", description = "requests per concurrency level (default: ${DEFAULT-VALUE})") int requests;
    @Option(names = "--max-tokens", defaultValue = "16", description = "tokens per request (default: ${DEFAULT-VALUE})") int maxTokens;
    @Option(names = "--concurrency", split = ",", defaultValue = "1,8,32", description = "client concurrencies (default: ${DEFAULT-VALUE})") List<Integer> concurrency;
    @Mixin JsonFile out;

    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    private String body(String id, int i) {
        // Sampled at temperature 1 with a per-request seed: every request decodes exactly max_tokens unless it draws EOS.
        return "{\"model\":\"" + id + "\",\"prompt\":\"Request " + i + ": where is my refund?\",\"max_tokens\":" + maxTokens + ",\"seed\":" + i + "}";
    }

    @Override
    public Integer call() throws Exception {
        bench.root.initEngine();
        double[] peak = matmulPeak();
        Path tmp = null;
        if (model == null) {
            // The bench shape's layers with the tokenizer's vocabulary: serving cost where the weights, not the
            // server, dominate a decode step, which is what batching amortises.
            int vocab;
            try (TextAssets t = TextAssets.load(tokenizer).orElseThrow(() -> new io.tether.engine.ConfigException(tokenizer.resolve("tokenizer.json") + ": file not found"))) {
                vocab = t.tokenizer().vocabSize();
            }
            dims.vocab = vocab;
            tmp = Files.createTempDirectory("tether-bench-serve");
            model = tmp.resolve("bench-llama");
            try (io.tether.model.CausalLM m = Models.create(dims.config(2048), DType.F32, 0)) {
                Models.save(m, model, DType.F32, java.util.Map.of(), tokenizer, Models.DEFAULT_MAX_SHARD_BYTES);
            }
        }
        try {
            return run(peak);
        } finally {
            if (tmp != null) deleteTree(tmp);
        }
    }

    private Integer run(double[] peak) throws Exception {
        int maxC = Collections.max(concurrency);
        ObjectNode o = JSON.createObjectNode();
        o.put("benchmark", "serve");
        o.put("model", model.getFileName().toString().equals("bench-llama")
                ? String.format("random llama d=%d layers=%d heads=%d ffn=%d vocab=%d (tokenizer %s)", dims.hidden, dims.layers, dims.heads, dims.ffn, dims.vocab, tokenizer)
                : model.toString());
        o.put("cpu", cpuModel());
        o.put("load_average_at_start", loadAverage());
        o.put("threads", Torch.threads());
        o.put("cores", Runtime.getRuntime().availableProcessors());
        o.put("matmul_1024_fp32_gflops_median", round(peak[0]));
        o.put("requests", requests);
        o.put("max_tokens", maxTokens);

        // Sequential in process: the same prompts and sampling, one Generator call each.
        try (Models.LoadedModel m = Models.load(model, DType.F32); TextAssets text = TextAssets.load(model).orElseThrow()) {
            List<Long> stops = m.defaultStopIds();
            long t0 = System.nanoTime();
            int tokens = 0;
            for (int i = 0; i < requests; i++) {
                long[] ids = text.tokenizer().encode("Request " + i + ": where is my refund?", true);
                tokens += Generator.generate(m.model(), List.of(ids), new SamplingConfig(maxTokens, 1.0, 0, 1.0, i, stops, List.of(), true)).get(0).tokens().length;
            }
            double s = (System.nanoTime() - t0) / 1e9;
            ObjectNode seq = o.putObject("sequential_in_process");
            seq.put("requests_per_second", round(requests / s));
            seq.put("tokens_per_second", round(tokens / s));
        }

        String id = model.toAbsolutePath().normalize().getFileName().toString();
        ServerConfig config = ServerConfig.defaults(model).withPort(0).withLimits(maxC, Math.max(requests, 1), Math.max(maxTokens, 16), 600);
        ArrayNode levels = o.putArray("concurrency");
        try (TetherServer server = TetherServer.start(config)) {
            String url = "http://127.0.0.1:" + server.port() + "/v1/completions";
            for (int i = 0; i < Math.min(4, requests); i++) send(url, body(id, i));   // warm-up
            double baseline = 0;
            for (int c : concurrency) {
                ExecutorService pool = Executors.newFixedThreadPool(c);
                List<Future<double[]>> fs = new ArrayList<>();
                long t0 = System.nanoTime();
                for (int i = 0; i < requests; i++) {
                    String b = body(id, i);
                    fs.add(pool.submit(() -> send(url, b)));
                }
                List<Double> latencies = new ArrayList<>();
                int tokens = 0;
                for (Future<double[]> f : fs) {
                    double[] r = f.get();
                    latencies.add(r[0]);
                    tokens += (int) r[1];
                }
                double s = (System.nanoTime() - t0) / 1e9;
                pool.shutdown();
                Collections.sort(latencies);
                ObjectNode l = levels.addObject();
                l.put("clients", c);
                l.put("requests_per_second", round(requests / s));
                l.put("tokens_per_second", round(tokens / s));
                l.put("latency_p50_ms", round(1000 * percentile(latencies, 0.50)));
                l.put("latency_p99_ms", round(1000 * percentile(latencies, 0.99)));
                if (baseline == 0) baseline = requests / s;
                l.put("throughput_vs_first_level", round(requests / s / baseline));
            }
            o.put("max_rows_in_one_step", server.stats().maxRows());
        }
        o.put("load_average_at_end", loadAverage());
        report(bench.root.spec.commandLine().getOut(), out.path, o);
        return 0;
    }

    /** Seconds and completion tokens of one request. */
    private static double[] send(String url, String body) throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        double s = (System.nanoTime() - t0) / 1e9;
        if (r.statusCode() != 200) throw new IOException("bench request failed: " + r.statusCode() + " " + r.body());
        JsonNode j = JSON.readTree(r.body());
        return new double[] {s, j.path("usage").path("completion_tokens").asInt()};
    }

    /** Nearest-rank percentile of sorted values. */
    private static double percentile(List<Double> sorted, double p) {
        int rank = (int) Math.ceil(p * sorted.size());
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo")))
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
        return "unknown";
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
