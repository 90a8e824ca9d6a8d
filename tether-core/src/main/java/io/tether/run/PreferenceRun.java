package io.tether.run;

import io.tether.train.DataSplit;
import io.tether.train.GradientSync;
import io.tether.train.KtoTraining;
import io.tether.train.LearningRateDefault;
import io.tether.train.PreferenceTraining;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainerConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.DataFormatException;
import io.tether.data.JsonLines;
import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.Models;
import io.tether.objective.DpoLoss;
import io.tether.objective.KtoLoss;
import io.tether.text.TextAssets;

/**
 * {@code tether dpo|kto|orpo|simpo|cpo}: offline preference optimisation from a YAML config (TRL's DPOConfig names).
 *
 * <p>Reference log-probs come from the first that applies: a precomputed file ({@code ref_logprobs}, written by
 * {@code tether logprobs --out}, checked against the hashes of the data and the reference weights); the run's own
 * cache ({@code precompute_ref_log_probs}, reused when the hashes match); a reference checkpoint
 * ({@code ref_model}); a frozen copy of the initial policy. With precomputed log-probs no reference is loaded.
 * Reference-free methods (ORPO, SimPO, CPO) never load one.
 */
public final class PreferenceRun {
    private PreferenceRun() {}

    public static final double LN2 = Math.log(2);

    public record Config(String method, Path model, Path refModel, Path refLogprobs, boolean precomputeRefLogProbs, Path data, Path evalData,
                         double evalFraction, Path outputDir, DataSettings reading, DpoLoss.Config dpo, double simpoGamma, double cpoAlpha,
                         double desirableWeight, double undesirableWeight, boolean syncRefModel, double refModelMixupAlpha,
                         int refModelSyncSteps, Double ldAlpha, boolean useWeighting, String ktoLossType, String dtype, TrainerConfig trainer,
                         io.tether.model.LoraAdapters.Config lora, Map<String, Object> resolved, String cpoLossType,
                         PreferenceTraining.ReferenceFree referenceFreeOptions) {

        public static Config from(String method, ConfigTree c) {
            Path model = c.path("model"), ref = c.path("ref_model"), refLogprobs = c.path("ref_logprobs"), data = c.path("data"),
                    evalData = c.path("eval_data"), out = c.path("output_dir");
            boolean precompute = c.bool("precompute_ref_log_probs", false);
            double evalFraction = c.number("eval_fraction", 0.0);
            // TRL's DPOConfig and KTOConfig (v0.24) both default truncation_mode to keep_end.
            DataSettings reading = DataSettings.from(c, io.tether.data.Truncation.Mode.KEEP_END, false, true);
            double beta = c.number("beta", method.equals("simpo") ? 2.0 : 0.1);
            List<String> types = new ArrayList<>();
            JsonNode lt = c.raw("loss_type");
            if (lt != null && lt.isArray()) lt.forEach(x -> types.add(x.asText()));
            else types.add(c.string("loss_type", method.equals("kto") ? "kto" : method.equals("simpo") ? "simpo" : "sigmoid"));
            String ktoLossType = "kto";
            if (method.equals("kto")) {
                ktoLossType = types.get(0);
                if (types.size() != 1 || !(ktoLossType.equals("kto") || ktoLossType.equals("apo_zero_unpaired")))
                    throw new ConfigException("key 'loss_type': KTO takes kto or apo_zero_unpaired, got " + types);
                types.set(0, "sigmoid");
            }
            // TRL's CPOConfig loss_type for cpo and simpo (the simpo command is CPO with SimPO's defaults); alphapo is TRL's
            // shorthand for simpo with cpo_alpha 0, its reward shaped by 'alpha'.
            String cpoLossType = types.get(0);
            if (method.equals("cpo") || method.equals("simpo")) {
                if (types.size() != 1 || !List.of("sigmoid", "simpo", "alphapo").contains(cpoLossType))
                    throw new ConfigException("key 'loss_type': " + method + " takes sigmoid, simpo or alphapo, got " + types);
                types.set(0, "sigmoid");
            }
            List<Double> weights = null;
            JsonNode lw = c.raw("loss_weights");
            if (lw != null && lw.isArray()) {
                weights = new ArrayList<>();
                for (JsonNode w : lw) weights.add(w.asDouble());
            } else if (lw != null) {
                throw new ConfigException("key 'loss_weights': expected a list of numbers, got " + lw);
            }
            double smoothing = c.number("label_smoothing", 0.0);
            String fdiv = c.string("f_divergence_type", "reverse_kl");
            double falpha = c.number("f_alpha_divergence_coef", 0.5), tau = c.number("discopop_tau", 0.05);
            String semantics = c.string("semantics", "trl");
            double rdpoAlpha = c.number("rdpo_alpha", 0.0);
            double gamma = c.number("simpo_gamma", 0.5), cpoAlpha = c.number("cpo_alpha", method.equals("simpo") ? 0.0 : 1.0);
            double alphapoAlpha = method.equals("cpo") || method.equals("simpo") ? c.number("alpha", 0.0) : 0.0;
            String orpoNll = method.equals("orpo") ? c.string("orpo_nll_tokens", "prompt_and_completion") : "prompt_and_completion";
            if (!orpoNll.equals("prompt_and_completion") && !orpoNll.equals("completion"))
                throw new ConfigException("key 'orpo_nll_tokens': expected prompt_and_completion (TRL's ORPO) or completion, got '" + orpoNll + "'");
            if (cpoLossType.equals("alphapo") && (method.equals("cpo") || method.equals("simpo"))) {
                if (cpoAlpha != 0 && c.given("cpo_alpha"))
                    throw new ConfigException("key 'cpo_alpha': loss_type alphapo trains without the NLL term (cpo_alpha 0, as TRL's CPOConfig sets it); "
                            + "use loss_type simpo with 'alpha' to keep it");
                cpoAlpha = 0.0;
            }
            double dw = c.number("desirable_weight", 1.0), uw = c.number("undesirable_weight", 1.0);
            boolean sync = c.bool("sync_ref_model", false);
            double mixup = c.number("ref_model_mixup_alpha", 0.6);
            int syncSteps = c.integer("ref_model_sync_steps", 512);
            Double ldAlpha = c.raw("ld_alpha") != null ? c.number("ld_alpha", 1.0) : null;
            boolean useWeighting = c.bool("use_weighting", false);
            String dtype = c.string("dtype", "fp32");
            TrainerConfig t = c.trainerConfig(LearningRateDefault.forPreference(method));
            if (method.equals("kto") && ktoLossType.equals("kto") && t.perDeviceTrainBatchSize() < 2)
                // TRL's KTOTrainer refuses this too ("Actual (not effective) batch size must be > 1"): gradient accumulation does not help.
                throw new ConfigException("key 'per_device_train_batch_size': KTO estimates its KL term from each batch's prompts paired with "
                        + "other examples' completions, so a batch needs at least 2 examples (got 1; gradient_accumulation_steps does not count). "
                        + "loss_type apo_zero_unpaired needs no KL term");
            io.tether.model.LoraAdapters.Config lora = PeftSettings.from(c);
            c.rejectUnknownKeys();
            if (lora != null && sync) throw new ConfigException("key 'sync_ref_model': TR-DPO needs a separate reference model, and with use_peft the reference is the policy without adapters");
            if (model == null) throw new ConfigException("key 'model': missing");
            if (data == null) throw new ConfigException("key 'data': missing");
            if (out == null) throw new ConfigException("key 'output_dir': missing");
            if (sync && (refLogprobs != null || precompute)) throw new ConfigException("key 'sync_ref_model': TR-DPO moves the reference, so it cannot use precomputed reference log-probs");
            if (ldAlpha != null && (refLogprobs != null || precompute)) throw new ConfigException("key 'ld_alpha': LD-DPO weights the reference's tokens too, so it needs a live reference, not precomputed sums");
            if (ldAlpha != null && !(ldAlpha >= 0 && ldAlpha <= 1)) throw new ConfigException("key 'ld_alpha': must be in [0, 1]");
            if (rdpoAlpha != 0 && !method.equals("dpo")) throw new ConfigException("key 'rdpo_alpha': R-DPO's length term is a DPO loss term; " + method + " does not read it");
            DpoLoss.Semantics sem = switch (semantics) {
                case "trl" -> DpoLoss.Semantics.TRL;
                case "trl_legacy" -> DpoLoss.Semantics.TRL_LEGACY;
                case "openrlhf" -> DpoLoss.Semantics.OPENRLHF;
                default -> throw new ConfigException("key 'semantics': expected trl, trl_legacy or openrlhf");
            };
            List<Double> w = weights;
            DpoLoss.Config dpo = c.validated(() -> new DpoLoss.Config(beta, types, w, smoothing, fdiv, falpha, tau, sem, rdpoAlpha));
            Map<String, Object> resolved = new LinkedHashMap<>();
            resolved.put("method", method);
            resolved.putAll(c.resolved());
            String cpoLoss = !(method.equals("cpo") || method.equals("simpo")) ? null : cpoLossType.equals("sigmoid") ? "sigmoid" : "simpo";
            return new Config(method, model, ref, refLogprobs, precompute, data, evalData, evalFraction, out, reading, dpo, gamma, cpoAlpha,
                    dw, uw, sync, mixup, syncSteps, ldAlpha, useWeighting, ktoLossType, dtype, t, lora, resolved, cpoLoss,
                    c.validated(() -> new PreferenceTraining.ReferenceFree(alphapoAlpha, orpoNll.equals("prompt_and_completion"))));
        }

        /** DPO with the sigmoid loss alone: the loss whose start at ln 2 the diagnostics know. */
        boolean sigmoidDpo() {
            return method.equals("dpo") && dpo.lossType().equals(List.of("sigmoid"));
        }

        boolean referenceFree() {
            return method.equals("orpo") || method.equals("simpo") || method.equals("cpo");
        }
    }

    public static Trainer.Result run(Config c, boolean resume, Trainer.Listener listener) throws IOException {
        Torch.init();
        DType dtype = DType.parse(c.dtype());
        RunDirectory run = RunDirectory.open(c.outputDir(), resume);
        // The data first, read and checked as `tether data validate` reads it and tokenized: a bad record stops the
        // run here, before any model is loaded or any file written.
        io.tether.model.ModelConfig modelConfig = DataSettings.modelConfig(c.model());
        boolean kto = c.method().equals("kto");
        Truncation truncation = c.reading().truncation(modelConfig.maxPositionEmbeddings(), true);
        TokenRecords.Use use = kto ? TokenRecords.Use.UNPAIRED : TokenRecords.Use.PAIRS;
        TokenRecords.Read<TokenRecords.TokenRecord> records, evalRecords;
        TextAssets text = TextAssets.load(c.model()).orElse(null);
        try {
            TokenRecords.TextEncoder enc = text == null ? null : new TokenRecords.TextEncoder(text.tokenizer(), text.template(), true);
            int vocab = modelConfig.vocabSize();
            records = TokenRecords.read(c.data(), vocab, enc, use, c.reading().invalidRecords(), null);
            evalRecords = c.evalData() != null ? TokenRecords.read(c.evalData(), vocab, enc, use, c.reading().invalidRecords(), null) : null;
        } catch (RuntimeException e) {
            if (text != null) text.close();
            throw e;
        }
        Models.LoadedModel policy = Models.load(c.model(), dtype);
        if (c.lora() != null) io.tether.model.LoraAdapters.attach(policy.model(), c.lora(), c.trainer().seed());
        boolean adapterReference = c.lora() != null && c.refModel() == null && c.refLogprobs() == null && !c.precomputeRefLogProbs();
        CausalLM reference = null;
        try {
            Trainer.Listener diagnostics = new Diagnostics(listener, c);
            Map<String, Object> provenance = Provenance.start(c.trainer().seed(), c.data(), c.evalData(), resume);
            Map<Path, TokenRecords.Read<?>> reads = new LinkedHashMap<>();
            reads.put(c.data(), records);
            if (evalRecords != null) reads.put(c.evalData(), evalRecords);
            List<KtoTraining.Example> ktoTrain = null, ktoEval = null;
            List<PreferenceTraining.Pair> pairTrain = null, pairEval = null;
            if (kto) {
                ktoTrain = unpaired(records.records(), truncation);
                ktoEval = evalRecords == null ? null : unpaired(evalRecords.records(), truncation);
            } else {
                pairTrain = pairs(records.records(), truncation);
                pairEval = evalRecords == null ? null : pairs(evalRecords.records(), truncation);
            }
            DataSettings.report(diagnostics, provenance, c.reading(), truncation, reads);
            run.writeConfig(DataSettings.resolved(c.resolved(), truncation, true));
            Path refDir = c.refModel() != null ? c.refModel() : c.model();
            // Each hash once: checkpoints can be many gigabytes, and the reference is usually the initial policy itself.
            String initialWeights = Provenance.weightsHash(c.model());
            String referenceWeights = c.referenceFree() ? null : refDir.equals(c.model()) ? initialWeights : Provenance.weightsHash(refDir);
            provenance.put("initial_weights", initialWeights);
            provenance.put("reference_weights", referenceWeights);
            ObjectNode refKey = key((String) provenance.get("data_sha256"), referenceWeights);
            if (kto) {
                List<List<KtoTraining.Example>> split = DataSplit.trainAndHeldOut(ktoTrain, ktoEval, c.evalFraction(), c.trainer().seed());
                List<KtoTraining.Example> train = split.get(0), eval = split.get(1);
                if (adapterReference) {
                    provenance.put("reference", "the policy with its LoRA adapters disabled");
                } else {
                    reference = Models.load(refDir, dtype).model();
                    provenance.put("reference", "model " + refDir);
                }
                run.writeProvenance(provenance);
                // TRL's check: desirable_weight * n_desirable / (undesirable_weight * n_undesirable) should lie in [1, 4/3].
                long nd = train.stream().filter(KtoTraining.Example::desirable).count(), nu = train.size() - nd;
                double ratio = nu == 0 ? Double.POSITIVE_INFINITY : c.desirableWeight() * nd / (c.undesirableWeight() * nu);
                if (ratio < 1 || ratio > 4.0 / 3)
                    diagnostics.onNotice(String.format(java.util.Locale.ROOT, "KTO: desirable_weight x %d desirable / (undesirable_weight x %d undesirable) = %.2f is outside "
                            + "[1, 4/3]; the KTO paper recommends weights that bring it into that range", nd, nu, ratio));
                var method = new KtoTraining(new KtoLoss.Config(c.dpo().beta(), c.desirableWeight(), c.undesirableWeight(), c.ktoLossType()), reference, truncation.maxLength());
                return finish(c, run, policy, new Trainer<>(policy.model(), method, train, eval, c.trainer(), run, GradientSync.SINGLE_PROCESS, diagnostics, c.model()).train(resume));
            }
            List<List<PreferenceTraining.Pair>> split = DataSplit.trainAndHeldOut(pairTrain, pairEval, c.evalFraction(), c.trainer().seed());
            List<PreferenceTraining.Pair> train = split.get(0), eval = split.get(1);
            warnLengthBias(train, c.method(), diagnostics);
            if (diagnostics instanceof Diagnostics d) d.dataCounts(dataCounts(train));
            String source;
            if (c.referenceFree()) {
                source = "none (reference-free)";
            } else if (c.refLogprobs() != null) {
                train = withReference(train, readRefLogprobs(c.refLogprobs(), refKey, c.data(), refDir, train.size()));
                source = "precomputed file " + c.refLogprobs();
            } else if (c.precomputeRefLogProbs()) {
                // One pass over train and held-out pairs, cached under the hashes of the data and the reference.
                List<PreferenceTraining.Pair> both = new ArrayList<>(train);
                both.addAll(eval);
                Path cache = c.outputDir().resolve("ref_logprobs.jsonl");
                double[][] cached = Files.exists(cache) ? tryCache(cache, refKey, both.size()) : null;
                if (cached == null) {
                    try (Models.LoadedModel ref = Models.load(refDir, dtype)) {
                        cached = precompute(ref.model(), both, c.trainer().perDeviceTrainBatchSize());
                    }
                    writeCache(cache, cached, refKey);
                    source = "precomputed in this run from " + refDir;
                } else {
                    source = "cached " + cache + " (reference not loaded)";
                }
                train = withReference(train, java.util.Arrays.copyOfRange(cached, 0, train.size()));
                eval = withReference(eval, java.util.Arrays.copyOfRange(cached, train.size(), both.size()));
            } else if (adapterReference) {
                source = "the policy with its LoRA adapters disabled (one model in memory)";
            } else {
                reference = Models.load(refDir, dtype).model();
                source = (c.refModel() != null ? "checkpoint " : "frozen copy of the initial policy ") + refDir;
            }
            provenance.put("reference", source);
            run.writeProvenance(provenance);
            if (!eval.isEmpty() && c.refLogprobs() != null) {
                diagnostics.onNotice("held-out evaluation is skipped: ref_logprobs covers the training data only (use precompute_ref_log_probs to cover both)");
                eval = List.of();
            }
            if (diagnostics instanceof Diagnostics d) d.trackSampledLength(policy.model(), run, eval, policy.defaultStopIds());
            if (c.sigmoidDpo() && !resume)
                diagnostics.onNotice(c.dpo().rdpoAlpha() > 0
                        ? "the loss starts at the mean of −log σ(rdpo_alpha·(|y_w| − |y_l|)), not ln 2: the policy begins as the reference, and R-DPO's length term alone separates each pair"
                        : "a loss near ln 2 ≈ 0.693 is expected at the start: the policy begins as the reference, so every pair's margin is 0");
            PreferenceTraining.Kind kind = switch (c.method()) {
                case "dpo" -> PreferenceTraining.Kind.DPO;
                case "orpo" -> PreferenceTraining.Kind.ORPO;
                case "simpo", "cpo" -> c.cpoLossType().equals("simpo") ? PreferenceTraining.Kind.SIMPO : PreferenceTraining.Kind.CPO;
                default -> throw new IllegalArgumentException("unknown method " + c.method());
            };
            var settings = new PreferenceTraining.Settings(kind, c.dpo(), c.simpoGamma(), c.cpoAlpha(), reference,
                    c.syncRefModel() ? c.refModelMixupAlpha() : 0, c.syncRefModel() ? c.refModelSyncSteps() : 0, c.ldAlpha(), c.useWeighting(),
                    c.referenceFreeOptions());
            return finish(c, run, policy, new Trainer<>(policy.model(), new PreferenceTraining(settings), train, eval, c.trainer(), run,
                    GradientSync.SINGLE_PROCESS, diagnostics, c.model()).train(resume));
        } finally {
            policy.close();
            if (reference != null) reference.close();
            if (text != null) text.close();
        }
    }

    private static Trainer.Result finish(Config c, RunDirectory run, Models.LoadedModel policy, Trainer.Result r) throws IOException {
        PeftSettings.saveResult(policy.model(), run.root(), c.model(), c.model(), policy.storedDtypes());
        return r;
    }

    /** Pairs within the length limits (TRL's DPO truncation; see {@link Truncation#pair}); dropped ones are counted there. */
    static List<PreferenceTraining.Pair> pairs(List<TokenRecords.TokenRecord> records, Truncation truncation) {
        List<PreferenceTraining.Pair> out = new ArrayList<>();
        for (TokenRecords.TokenRecord r : records) {
            long[][] cut = truncation.pair(r.prompt(), r.chosen(), r.rejected());
            if (cut != null) out.add(new PreferenceTraining.Pair(cut[0], cut[1], cut[2], Double.NaN, Double.NaN));
        }
        return out;
    }

    /** Unpaired examples: records with a boolean label, or preference pairs split into a desirable and an undesirable one (TRL's KTO truncation). */
    static List<KtoTraining.Example> unpaired(List<TokenRecords.TokenRecord> records, Truncation truncation) {
        List<KtoTraining.Example> out = new ArrayList<>();
        for (TokenRecords.TokenRecord r : records) {
            if (r.isPreference()) {
                example(out, truncation.unpaired(r.prompt(), r.chosen()), true);
                example(out, truncation.unpaired(r.prompt(), r.rejected()), false);
            } else {
                example(out, truncation.unpaired(r.prompt(), r.completion()), r.desirable());
            }
        }
        return out;
    }

    private static void example(List<KtoTraining.Example> out, long[][] cut, boolean desirable) {
        if (cut != null) out.add(new KtoTraining.Example(cut[0], cut[1], desirable));
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

    /** Ties (identical chosen and rejected) and contradictions (the same comparison with the opposite label). */
    static String dataCounts(List<PreferenceTraining.Pair> pairs) {
        java.util.Set<String> seen = new java.util.HashSet<>();
        int ties = 0, contradictions = 0;
        for (PreferenceTraining.Pair p : pairs) {
            String prompt = java.util.Arrays.toString(p.prompt()), c = java.util.Arrays.toString(p.chosen()), r = java.util.Arrays.toString(p.rejected());
            if (c.equals(r)) ties++;
            if (seen.contains(prompt + "|" + r + "|" + c)) contradictions++;
            seen.add(prompt + "|" + c + "|" + r);
        }
        return pairs.size() + " pairs, " + ties + " ties, " + contradictions + " contradicted by an opposite-label duplicate";
    }

    /** The seed's length-bias check: chosen systematically longer than rejected lets a policy win by padding. */
    static void warnLengthBias(List<PreferenceTraining.Pair> pairs, String method, Trainer.Listener l) {
        if (pairs.isEmpty()) return;
        int longer = 0;
        double ratio = 0;
        for (PreferenceTraining.Pair p : pairs) {
            longer += p.chosen().length > p.rejected().length ? 1 : 0;
            ratio += (double) p.chosen().length / Math.max(1, p.rejected().length);
        }
        double share = (double) longer / pairs.size();
        ratio /= pairs.size();
        if (share > 0.65 || ratio > 1.25)
            l.onNotice(String.format(java.util.Locale.ROOT, "length bias: chosen is longer than rejected in %.0f%% of pairs (mean length ratio %.2f); "
                    + "the policy can learn to be verbose rather than right%s", 100 * share, ratio,
                    method.equals("dpo") ? " (rdpo_alpha or ld_alpha discount length)" : ""));
    }

    /**
     * The 0.693 trap: DPO's loss starts at ln 2 (policy = reference). If it is still within 0.01 of ln 2 after a
     * tenth of the run while gradients flow, the data likely carries no signal (contradictory labels, ties, leakage,
     * missing coverage); if gradients are zero, the policy is not updating. "Still" is the mean of the last three
     * logged losses, each within 0.05 of ln 2: one batch of 8 noisy pairs can log 0.696 in a run whose loss has fallen
     * to 0.37 (the demo's DPO did at step 50 of 80), and three can average 0.685 from 0.52, 0.57 and 0.96 (a 160-step
     * run at step 35). Without signal every batch's margins stay near 0, so every logged loss sits near ln 2.
     */
    static final class Diagnostics implements Trainer.Listener {
        private final Trainer.Listener inner;
        private final Config c;
        private boolean warned;
        private final java.util.ArrayDeque<Double> recentLosses = new java.util.ArrayDeque<>();
        private CausalLM policy;
        private RunDirectory run;
        private List<PreferenceTraining.Pair> evalPairs = List.of();
        private List<Long> stopIds = List.of();

        Diagnostics(Trainer.Listener inner, Config c) {
            this.inner = inner == null ? new Trainer.Listener() {} : inner;
            this.c = c;
        }

        /** Enables tracking of the policy's greedy response length on (up to 8) held-out prompts at every evaluation. */
        private String counts = "";

        void dataCounts(String counts) {
            this.counts = counts;
        }

        void trackSampledLength(CausalLM policy, RunDirectory run, List<PreferenceTraining.Pair> eval, List<Long> stopIds) {
            this.policy = policy;
            this.run = run;
            this.evalPairs = eval.subList(0, Math.min(8, eval.size()));
            this.stopIds = stopIds;
        }

        @Override
        public void onStep(int step, int total, Map<String, Object> m) {
            inner.onStep(step, total, m);
            // R-DPO's length term moves the starting loss off ln 2, so the check would read a shifted baseline.
            if (!c.sigmoidDpo() || c.dpo().rdpoAlpha() > 0) return;
            double latest = (Double) m.get("loss"), grad = (Double) m.get("grad_norm");
            recentLosses.addLast(latest);
            if (recentLosses.size() > 3) recentLosses.removeFirst();
            double loss = recentLosses.stream().mapToDouble(Double::doubleValue).average().orElse(latest);
            boolean eachNear = recentLosses.stream().allMatch(x -> Math.abs(x - LN2) < 0.05);
            if (!warned && recentLosses.size() == 3 && step >= Math.max(10, total / 10) && Math.abs(loss - LN2) < 0.01 && eachNear) {
                warned = true;
                inner.onNotice(grad == 0
                        ? "loss stuck at ln 2 with zero gradients: the policy is not updating (frozen parameters, zero learning rate?)"
                        : String.format(java.util.Locale.ROOT, "loss still %.4f ≈ ln 2 (mean of the last 3 logged) after %d steps while gradients flow (norm %.3g): the pairs carry little "
                        + "learnable signal; the usual causes are contradictory labels, ties, leakage between splits and missing coverage (training data: %s)",
                        loss, step, grad, counts));
            }
        }

        @Override
        public void onEval(int step, Map<String, Object> m) {
            inner.onEval(step, m);
            if (policy == null || evalPairs.isEmpty()) return;
            double chosen = 0;
            int longest = 0;
            List<long[]> prompts = new ArrayList<>();
            for (PreferenceTraining.Pair p : evalPairs) {
                chosen += p.chosen().length;
                longest = Math.max(longest, p.chosen().length);
                prompts.add(p.prompt());
            }
            chosen /= evalPairs.size();
            var config = new io.tether.generate.SamplingConfig(Math.max(8, 2 * longest), 0, 0, 1.0, 0, stopIds, List.of(), true);
            double sampled = 0;
            for (var g : io.tether.generate.Generator.generate(policy, prompts, config)) sampled += g.tokens().length;
            sampled /= prompts.size();
            try {
                run.appendMetrics(Trainer.orderedMap("step", step, "eval/sampled_length", sampled, "eval/chosen_length", chosen));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            if (sampled > 1.5 * chosen)
                inner.onNotice(String.format(java.util.Locale.ROOT, "step %d: greedy responses average %.1f tokens against %.1f for chosen ones: the policy is growing verbose", step, sampled, chosen));
        }

        @Override public void onStart(int totalSteps, double learningRate) { inner.onStart(totalSteps, learningRate); }

        @Override public void onCheckpoint(int step, Path dir) { inner.onCheckpoint(step, dir); }

        @Override public void onSkippedBatch(int step, String reason) { inner.onSkippedBatch(step, reason); }

        @Override public void onNotice(String message) { inner.onNotice(message); }
    }
}
