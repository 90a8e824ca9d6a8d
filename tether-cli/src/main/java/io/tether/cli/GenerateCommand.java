package io.tether.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.data.PromptRecords;
import io.tether.engine.ConfigException;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.text.TextAssets;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate completions with a KV cache: greedy, or sampled with temperature, top-k and top-p.",
                "Output: one JSON line per prompt with completion_ids and finish_reason (eos, stop_string or length)."})
final class GenerateCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Mixin SharedOptions.Model model;

    static final class Prompts {
        @Option(names = "--prompt-ids", split = ",", description = "one prompt as comma-separated token ids")
        long[] promptIds;

        @Option(names = "--prompt", description = "one text prompt (needs a tokenizer.json in the model directory)")
        String prompt;

        @Option(names = "--data", description = "JSONL: 'prompt_ids', a text 'prompt', or chat 'messages' (rendered with the generation prompt) per line")
        Path data;
    }

    @ArgGroup(multiplicity = "1")
    Prompts prompts;

    @Option(names = "--max-new-tokens", defaultValue = "32", description = "default: ${DEFAULT-VALUE}")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "keep the k most likely tokens; 0 disables (default)")
    int topK;

    @Option(names = "--top-p", defaultValue = "1.0", description = "nucleus sampling mass; 1.0 disables (default)")
    double topP;

    @Mixin SharedOptions.SamplingSeed seed;

    @Option(names = "--stop-id", description = "token id that ends a completion (repeatable; default: the model's eos_token_id)")
    List<Long> stopIds;

    @Option(names = "--stop", description = "a string that ends a completion (repeatable; needs a tokenizer)")
    List<String> stopStrings;

    @Option(names = "--no-cache", description = "recompute the whole sequence every step (for comparison)")
    boolean noCache;

    @Mixin SharedOptions.BatchSize batchSize;

    @Mixin SharedOptions.ComputeDtype dtype;

    @Mixin JsonlOutput out;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        int batchSize = this.batchSize.get();
        // Generation never trains: weights stored in the compute dtype are mapped, not copied (same numbers).
        try (Models.LoadedModel m = Models.loadFrozen(model.path, dtype.parse()); TextAssets text = TextAssets.load(model.path).orElse(null)) {
            CausalLM lm = m.model();
            List<long[]> inputs = readPrompts(text, lm.config().vocabSize());
            List<Long> stops = stopIds != null ? stopIds : m.defaultStopIds();
            List<String> stopText = stopStrings == null ? List.of() : stopStrings;
            if (!stopText.isEmpty() && text == null) throw new ConfigException("--stop needs a tokenizer.json in " + model.path);
            SamplingConfig config = new SamplingConfig(maxNewTokens, temperature, topK, topP, seed.value, stops, stopText, !noCache);
            long start = System.nanoTime();
            List<String> lines = new ArrayList<>();
            int generated = 0;
            for (int i = 0; i < inputs.size(); i += batchSize) {
                List<long[]> batch = inputs.subList(i, Math.min(inputs.size(), i + batchSize));
                List<Generator.Generation> gens = Generator.generate(lm, batch, config, text == null ? null : ids -> text.tokenizer().decode(ids, false));
                for (int j = 0; j < batch.size(); j++) {
                    ObjectNode o = JSON.createObjectNode();
                    var p = o.putArray("prompt_ids");
                    for (long id : batch.get(j)) p.add(id);
                    var c = o.putArray("completion_ids");
                    for (long id : gens.get(j).tokens()) c.add(id);
                    o.put("finish_reason", gens.get(j).finishReason().name().toLowerCase(java.util.Locale.ROOT));
                    if (text != null) o.put("completion", text.tokenizer().decode(gens.get(j).tokens(), true));
                    lines.add(JSON.writeValueAsString(o));
                    generated += gens.get(j).tokens().length;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            out.write(root, lines);
            root.spec.commandLine().getErr().printf("generated %d tokens for %d prompts in %.2f s (%.1f tokens/s)%n",
                    generated, inputs.size(), seconds, generated / seconds);
        }
        return 0;
    }

    private List<long[]> readPrompts(TextAssets text, int vocab) {
        if (prompts.prompt != null) {
            if (text == null) throw new ConfigException("--prompt needs a tokenizer.json in " + model.path + " (or pass --prompt-ids)");
            long[] ids = text.tokenizer().encode(prompts.prompt, true);
            check(ids, vocab, "--prompt");
            return List.of(ids);
        }
        if (prompts.promptIds != null) {
            check(prompts.promptIds, vocab, "--prompt-ids");
            return List.of(prompts.promptIds);
        }
        List<long[]> result = new ArrayList<>();
        for (PromptRecords.PromptRecord p : PromptRecords.read(prompts.data, text, vocab)) result.add(p.ids());
        return result;
    }

    private static void check(long[] ids, int vocab, String option) {
        if (ids.length == 0) throw new ConfigException(option + " is empty: generation needs at least one prompt token");
        for (int j = 0; j < ids.length; j++)
            if (ids[j] < 0 || ids[j] >= vocab)
                throw new ConfigException(option + "[" + j + "] = " + ids[j] + " is outside the vocabulary [0, " + vocab + ")");
    }
}
