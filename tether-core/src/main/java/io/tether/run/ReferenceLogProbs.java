package io.tether.run;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.DataFormatException;
import io.tether.data.JsonLines;
import io.tether.engine.AtomicFiles;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.Models;
import io.tether.train.PreferenceTraining;
import io.tether.train.RunDirectory;

/**
 * Where a preference run's reference log-probs come from, the first that applies: a precomputed file
 * ({@code ref_logprobs}, written by {@code tether logprobs --out}, checked against the hashes of the data and the
 * reference weights); the run's own cache ({@code precompute_ref_log_probs}, reused when the hashes match); with LoRA
 * and no reference named, the policy with its adapters off; a reference checkpoint ({@code ref_model}) or a frozen copy
 * of the initial policy, scored as the run goes. With precomputed log-probs no reference is loaded for training.
 * The reference's weights hash goes into provenance ({@code reference_weights}) and its source into {@code reference}.
 */
public final class ReferenceLogProbs {
    private ReferenceLogProbs() {}

    /** The pairs with their reference log-probs (when precomputed), and the reference model to score with live (else null). */
    record Pairs(List<PreferenceTraining.Pair> train, List<PreferenceTraining.Pair> eval, CausalLM model) {}

    /** A pairwise method's reference: none for a reference-free method ({@code reference} null). */
    static Pairs forPairs(RunSession s, PreferenceMethod.Reference reference, List<PreferenceTraining.Pair> train,
                          List<PreferenceTraining.Pair> eval) throws IOException {
        if (reference == null) {
            s.provenance().put("reference_weights", null);
            s.provenance().put("reference", "none (reference-free)");
            return new Pairs(train, eval, null);
        }
        RunSpec spec = s.spec();
        Path refDir = reference.refModel() != null ? reference.refModel() : spec.model();
        String weights = s.weightsHash(refDir);
        s.provenance().put("reference_weights", weights);
        ObjectNode key = key((String) s.provenance().get("data_sha256"), weights);
        CausalLM model = null;
        String source;
        if (reference.refLogprobs() != null) {
            train = withReference(train, readRefLogprobs(reference.refLogprobs(), key, spec.data(), refDir, train.size()));
            source = "precomputed file " + reference.refLogprobs();
        } else if (reference.precomputeRefLogProbs()) {
            // One pass over train and held-out pairs, cached under the hashes of the data and the reference.
            List<PreferenceTraining.Pair> both = new ArrayList<>(train);
            both.addAll(eval);
            Path cache = spec.outputDir().resolve("ref_logprobs.jsonl");
            double[][] cached = Files.exists(cache) ? tryCache(cache, key, both.size()) : null;
            if (cached == null) {
                // Loaded for this pass only (its hash is reference_weights above), so training holds one model.
                try (Models.LoadedModel ref = Models.loadFrozen(refDir, s.dtype())) {
                    cached = precompute(ref.model(), both, spec.trainer().perDeviceTrainBatchSize());
                }
                // Every rank computes the same values (its shard is taken later, by the loop); rank 0 writes them.
                if (s.gradientSync().writesFiles()) writeCache(cache, cached, key);
                source = "precomputed in this run from " + refDir;
            } else {
                source = "cached " + cache + " (reference not loaded)";
            }
            train = withReference(train, Arrays.copyOfRange(cached, 0, train.size()));
            eval = withReference(eval, Arrays.copyOfRange(cached, train.size(), both.size()));
        } else if (spec.lora() != null && reference.refModel() == null) {
            source = "the policy with its LoRA adapters disabled (one model in memory)";
        } else {
            model = s.loadFrozen(refDir, "reference");
            source = (reference.refModel() != null ? "checkpoint " : "frozen copy of the initial policy ") + refDir;
        }
        s.provenance().put("reference", source);
        return new Pairs(train, eval, model);
    }

    /** KTO's reference, scored as the run goes: the policy with its adapters off (null) or a frozen checkpoint. */
    static CausalLM forUnpaired(RunSession s, Path refModel) throws IOException {
        Path refDir = refModel != null ? refModel : s.spec().model();
        s.provenance().put("reference_weights", s.weightsHash(refDir));
        if (s.spec().lora() != null && refModel == null) {
            s.provenance().put("reference", "the policy with its LoRA adapters disabled");
            return null;
        }
        CausalLM model = s.loadFrozen(refDir, "reference");
        s.provenance().put("reference", "model " + refDir);
        return model;
    }

    static List<PreferenceTraining.Pair> withReference(List<PreferenceTraining.Pair> pairs, double[][] ref) {
        List<PreferenceTraining.Pair> out = new ArrayList<>();
        for (int i = 0; i < pairs.size(); i++) out.add(pairs.get(i).withReference(ref[i][0], ref[i][1]));
        return out;
    }

    static double[][] precompute(CausalLM ref, List<PreferenceTraining.Pair> pairs, int batch) {
        List<LogProbs.Sequence> seqs = new ArrayList<>();
        for (PreferenceTraining.Pair p : pairs) {
            seqs.add(new LogProbs.Sequence(p.prompt(), p.chosen()));
            seqs.add(new LogProbs.Sequence(p.prompt(), p.rejected()));
        }
        List<LogProbs.Result> r = LogProbs.score(ref, seqs, batch);
        double[][] out = new double[pairs.size()][2];
        for (int i = 0; i < pairs.size(); i++) {
            out[i][0] = r.get(2 * i).logprob();
            out[i][1] = r.get(2 * i + 1).logprob();
        }
        return out;
    }

    /** The key of a reference log-prob file: the data's and the reference weights' hashes. */
    public static ObjectNode key(Path data, Path refDir) throws IOException {
        return key(Provenance.sha256(data), Provenance.weightsHash(refDir));
    }

    private static ObjectNode key(String dataSha256, String referenceWeights) {
        ObjectNode k = RunDirectory.JSON.createObjectNode();
        k.put("data_sha256", dataSha256);
        k.put("model_weights", referenceWeights);
        return k;
    }

    static void writeCache(Path cache, double[][] values, ObjectNode key) throws IOException {
        AtomicFiles.write(cache.resolveSibling(cache.getFileName() + ".meta.json"), w -> w.write(key.toString() + "\n"));
        AtomicFiles.write(cache, w -> {
            for (double[] v : values) w.write("{\"chosen_logprob\": " + v[0] + ", \"rejected_logprob\": " + v[1] + "}\n");
        });
    }

    /** The cache's values when its key matches the data and reference; null (recompute) otherwise. */
    static double[][] tryCache(Path cache, ObjectNode key, int n) throws IOException {
        Path meta = cache.resolveSibling(cache.getFileName() + ".meta.json");
        if (!Files.exists(meta) || !RunDirectory.JSON.readTree(meta.toFile()).equals(key)) return null;
        return readValues(cache, n);
    }

    /** A {@code tether logprobs} output for this data and reference; a mismatch names what differs. */
    static double[][] readRefLogprobs(Path file, ObjectNode k, Path data, Path refDir, int n) throws IOException {
        Path meta = file.resolveSibling(file.getFileName() + ".meta.json");
        if (!Files.exists(meta)) throw new DataFormatException(file, 0, "no " + meta.getFileName() + " beside it: write it with `tether logprobs --out`, which records the data and model hashes");
        JsonNode m = RunDirectory.JSON.readTree(meta.toFile());
        if (!m.path("data_sha256").equals(k.get("data_sha256"))) throw new DataFormatException(file, 0, "was computed for other data (data_sha256 differs from " + data + ")");
        if (!m.path("model_weights").equals(k.get("model_weights"))) throw new DataFormatException(file, 0, "was computed with other reference weights than " + refDir);
        return readValues(file, n);
    }

    private static double[][] readValues(Path file, int n) {
        List<double[]> out = new ArrayList<>();
        JsonLines.forEach(file, (line, v) -> {
            if (!v.has("chosen_logprob") || !v.has("rejected_logprob")) throw new DataFormatException(file, line, "expected chosen_logprob and rejected_logprob");
            out.add(new double[] {v.get("chosen_logprob").asDouble(), v.get("rejected_logprob").asDouble()});
        });
        if (out.size() != n) throw new DataFormatException(file, 0, "has " + out.size() + " lines for " + n + " pairs");
        return out.toArray(new double[0][]);
    }
}
