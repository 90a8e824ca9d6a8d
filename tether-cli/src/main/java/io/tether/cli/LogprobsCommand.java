package io.tether.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.data.TokenRecords;
import io.tether.engine.AtomicFiles;
import io.tether.model.LogProbs;
import io.tether.model.Models;
import io.tether.text.TextAssets;

@Command(name = "logprobs", mixinStandardHelpOptions = true,
        description = {"Sum of completion-token log-probabilities for each JSONL record.",
                "Records: {\"prompt_ids\": [...], \"completion_ids\": [...]} or {\"prompt_ids\", \"chosen_ids\", \"rejected_ids\"};",
                "with a tokenizer.json in the model directory also TRL's text and chat formats: prompt/completion,",
                "prompt/chosen/rejected (strings or message lists), messages (the last one is scored), text.",
                "Output: one line per input line, in order."})
final class LogprobsCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Mixin SharedOptions.Model model;

    @Option(names = "--data", required = true, description = "JSONL (or .jsonl.gz) records of token ids")
    Path data;

    @Mixin JsonlOutput out;

    @Option(names = "--per-token", description = "also write each completion token's log-prob")
    boolean perToken;

    @Mixin SharedOptions.BatchSize batchSize;

    @Mixin SharedOptions.ComputeDtype dtype;

    @Option(names = "--no-eos", description = "do not append EOS to text completions (TRL appends it)")
    boolean noEos;

    @Option(names = "--strict", description = "fail when a prompt's tokens are not a prefix of prompt+completion (default: warn)")
    boolean strict;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        int batchSize = this.batchSize.get();
        long start = System.nanoTime();
        // Scoring never trains: weights stored in the compute dtype are mapped, not copied (same numbers).
        try (Models.LoadedModel m = Models.loadFrozen(model.path, dtype.parse());
             TextAssets text = TextAssets.load(model.path).orElse(null)) {
            TokenRecords.TextEncoder encoder = text == null ? null : new TokenRecords.TextEncoder(text.tokenizer(), text.template(), !noEos);
            List<TokenRecords.TokenRecord> records = TokenRecords.read(data, m.model().config().vocabSize(), encoder);
            reportMismatches(records);
            List<LogProbs.Sequence> seqs = new ArrayList<>();
            for (TokenRecords.TokenRecord r : records) {
                if (r.isPreference()) {
                    seqs.add(new LogProbs.Sequence(r.prompt(), r.chosen()));
                    seqs.add(new LogProbs.Sequence(r.prompt(), r.rejected()));
                } else {
                    seqs.add(new LogProbs.Sequence(r.prompt(), r.completion()));
                }
            }
            List<LogProbs.Result> results = scoreByLength(m, seqs, batchSize);
            List<String> lines = new ArrayList<>(records.size());
            int k = 0;
            for (TokenRecords.TokenRecord r : records) {
                ObjectNode o = JsonlOutput.lineFor(r);
                if (r.isPreference()) {
                    put(o, "chosen_", results.get(k++));
                    put(o, "rejected_", results.get(k++));
                } else {
                    put(o, "", results.get(k++));
                }
                lines.add(JSON.writeValueAsString(o));
            }
            out.write(root, lines);
            if (out.path != null) {
                // The key a trainer checks before reusing these as reference log-probs: data and weights hashes.
                var key = io.tether.run.ReferenceLogProbs.key(data, model.path);
                AtomicFiles.write(out.path.resolveSibling(out.path.getFileName() + ".meta.json"), w -> w.write(key.toString() + "\n"));
            }
            root.spec.commandLine().getErr().printf("scored %d records (%d sequences) in %.1f s%n", records.size(), seqs.size(), (System.nanoTime() - start) / 1e9);
        }
        return 0;
    }

    /** Says, per record, where tokenize(prompt) is not a prefix of tokenize(prompt + completion); fails with --strict. */
    private void reportMismatches(List<TokenRecords.TokenRecord> records) {
        int n = 0;
        for (TokenRecords.TokenRecord r : records) {
            if (r.mismatch() == null) continue;
            n++;
            if (strict) throw new io.tether.data.DataFormatException(data, r.line(), r.mismatch());
            if (n <= 10) root.spec.commandLine().getErr().println("warning: " + data + ":" + r.line() + ": " + r.mismatch());
        }
        if (n > 10) root.spec.commandLine().getErr().println("warning: " + n + " records in all have prompt/completion token mismatches");
    }

    /** Batches sequences of similar length together (less padding); results come back in input order. */
    private static List<LogProbs.Result> scoreByLength(Models.LoadedModel m, List<LogProbs.Sequence> seqs, int batchSize) {
        Integer[] order = new Integer[seqs.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        java.util.Arrays.sort(order, Comparator.comparingInt(i -> seqs.get(i).prompt().length + seqs.get(i).completion().length));
        List<LogProbs.Sequence> sorted = new ArrayList<>();
        for (int i : order) sorted.add(seqs.get(i));
        List<LogProbs.Result> scored = LogProbs.score(m.model(), sorted, batchSize);
        LogProbs.Result[] back = new LogProbs.Result[seqs.size()];
        for (int i = 0; i < order.length; i++) back[order[i]] = scored.get(i);
        return java.util.Arrays.asList(back);
    }

    private void put(ObjectNode o, String prefix, LogProbs.Result r) {
        o.put(prefix + "logprob", r.logprob());
        o.put(prefix + "num_tokens", r.numTokens());
        if (perToken) {
            ArrayNode a = o.putArray(prefix + "token_logprobs");
            for (double v : r.tokenLogprobs()) a.add(v);
        }
    }
}
