package io.tether.run;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.ProcessGroup;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.LoraAdapters;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.text.TextAssets;
import io.tether.train.DataParallel;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Trainer;
import io.tether.train.TrainingMethod;

/**
 * One run's setup, in the one order every method follows: open the run directory (refusing a finished run without
 * resume), read the model's config and tokenizer, read and check the data before any model is loaded (a bad record
 * stops the run with nothing written), load the models (every one's weights hash goes into provenance), write the
 * resolved config and provenance, build the {@link Trainer}, save the finished model, close everything it loaded.
 * It is the single place that knows about the process's place in a run (today a world of one: {@link #gradientSync}).
 *
 * <pre>{@code
 * try (RunSession s = RunSession.open(config, resume, listener)) {
 *     RunSpec spec = config.spec();
 *     var train = s.read(spec.data(), TokenRecords.Use.PAIRS);          // before any model
 *     Models.LoadedModel policy = s.loadPolicy();                      // LoRA attached, initial_weights hashed
 *     s.writeRecords(s.truncation(true), true);                        // config.yaml, provenance.json
 *     return s.trainer(policy.model(), method, examples, heldOut).train(resume);
 * }
 * }</pre>
 */
public final class RunSession implements AutoCloseable {
    private final RunConfig<?> config;
    private final RunSpec spec;
    private final boolean resume;
    private final RunDirectory run;
    private final ModelConfig modelConfig;
    private final TextAssets text;
    private final Trainer.Listener listener;
    private final Map<String, Object> provenance;
    private final Map<Path, TokenRecords.Read<?>> reads = new LinkedHashMap<>();
    private final Map<Path, String> weightsHashes = new HashMap<>();
    private final List<AutoCloseable> owned = new ArrayList<>();
    private Truncation truncation;
    /** This process's part in the run, decided once by {@link #gradientSync}. */
    private GradientSync sync;

    private RunSession(RunConfig<?> config, boolean resume, RunDirectory run, ModelConfig modelConfig, TextAssets text, Trainer.Listener listener,
                       Map<String, Object> provenance) {
        this.config = config;
        this.spec = config.spec();
        this.resume = resume;
        this.run = run;
        this.modelConfig = modelConfig;
        this.text = text;
        this.listener = listener == null ? new Trainer.Listener() {} : listener;
        this.provenance = provenance;
        if (text != null) owned.add(text);
    }

    /** Opens the run: the directory, the model's config (not its weights) and the tokenizer. */
    public static RunSession open(RunConfig<?> config, boolean resume, Trainer.Listener listener) throws IOException {
        Torch.init();
        RunSpec spec = config.spec();
        RunDirectory run = RunDirectory.open(spec.outputDir(), resume);
        ModelConfig modelConfig = spec.model() != null ? DataSettings.modelConfig(spec.model()) : ModelConfig.readFile(spec.modelConfig());
        Path textDir = spec.textSource();
        TextAssets text = textDir == null ? null : TextAssets.load(textDir).orElse(null);
        if (spec.tokenizer() != null && text == null) throw new ConfigException("key 'tokenizer': no tokenizer.json in " + spec.tokenizer());
        Map<String, Object> provenance = Provenance.start(spec.trainer().seed(), spec.data(), spec.evalData(), resume);
        return new RunSession(config, resume, run, modelConfig, text, listener, provenance);
    }

    public RunSpec spec() { return spec; }

    public boolean resume() { return resume; }

    public RunDirectory directory() { return run; }

    /** The model's config.json, read before its weights. */
    public ModelConfig modelConfig() { return modelConfig; }

    /** The tokenizer and chat template, or null when the model directory has none (token-id data only). */
    public TextAssets text() { return text; }

    public Trainer.Listener listener() { return listener; }

    public DType dtype() { return DType.parse(spec.dtype()); }

    /** The provenance being assembled: methods add their own facts (counts, the reference's source) before {@link #writeRecords}. */
    public Map<String, Object> provenance() { return provenance; }

    /**
     * The length limits in force for this model (max_length from the model's positions when unset); the first call
     * fixes them, and the same object counts what reading truncates and drops.
     */
    public Truncation truncation(boolean promptLimits) {
        if (truncation == null) truncation = spec.reading().truncation(modelConfig.maxPositionEmbeddings(), promptLimits);
        return truncation;
    }

    /** Uses a truncation a method computes itself (online prompts' limits); counted and reported as the session's. */
    public Truncation truncation(Truncation own) {
        if (truncation != null && truncation != own) throw new IllegalStateException("the run's truncation is already fixed");
        truncation = own;
        return own;
    }

    /** Text records become token ids as TRL tokenizes them (EOS appended to completions), with the chat template. */
    public TokenRecords.TextEncoder encoder() {
        return text == null ? null : new TokenRecords.TextEncoder(text.tokenizer(), text.template(), true);
    }

    /** Reads and checks a data file as {@code tether data validate} does; what it skipped is reported with the run's records. */
    public TokenRecords.Read<TokenRecords.TokenRecord> read(Path file, TokenRecords.Use use) {
        TokenRecords.Read<TokenRecords.TokenRecord> r = TokenRecords.read(file, modelConfig.vocabSize(), encoder(), use, spec.reading().invalidRecords(), null);
        reads.put(file, r);
        return r;
    }

    /** Records a read done by a method's own reader (online prompts), so it is reported with the rest. */
    public <R> TokenRecords.Read<R> recordRead(Path file, TokenRecords.Read<R> read) {
        reads.put(file, read);
        return read;
    }

    /** The sha256 of a model directory's weights, computed once per directory (checkpoints can be many gigabytes). */
    public String weightsHash(Path dir) throws IOException {
        String h = weightsHashes.get(dir);
        if (h == null) {
            h = Provenance.weightsHash(dir);
            weightsHashes.put(dir, h);
        }
        return h;
    }

    /** The policy from {@code model}, with LoRA attached when the spec asks; its weights hash is {@code initial_weights}. */
    public Models.LoadedModel loadPolicy() throws IOException {
        return loadPolicy(m -> m);
    }

    /**
     * As {@link #loadPolicy()}, with the model turned into what the method trains before LoRA goes on (a reward model
     * gets its score head); {@code convert} returns the model to keep (closing the loaded one if it replaces it).
     */
    public Models.LoadedModel loadPolicy(java.util.function.UnaryOperator<CausalLM> convert) throws IOException {
        if (spec.model() == null) throw new IllegalStateException("a run from model_config has no checkpoint to load; use createPolicy");
        String hash = weightsHash(spec.model());
        Models.LoadedModel loaded = Models.load(spec.model(), dtype());
        CausalLM model;
        try {
            model = convert.apply(loaded.model());
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
        Models.LoadedModel kept = model == loaded.model() ? loaded : new Models.LoadedModel(model, loaded.source(), loaded.storedDtypes());
        owned.add(kept);
        if (spec.lora() != null) LoraAdapters.attach(model, spec.lora(), spec.trainer().seed());
        provenance.put("initial_weights", hash);
        return kept;
    }

    /** A freshly initialised policy from {@code model_config} (training from scratch), seeded by the run's seed. */
    public CausalLM createPolicy() throws IOException {
        CausalLM model = Models.create(modelConfig, dtype(), spec.trainer().seed());
        owned.add(model);
        if (spec.lora() != null) LoraAdapters.attach(model, spec.lora(), spec.trainer().seed());
        provenance.put("initial_weights", "fresh init, seed " + spec.trainer().seed() + ", config sha256 " + Provenance.sha256(spec.modelConfig()));
        return model;
    }

    /**
     * A frozen model the run reads (reference, reward model), closed with the session; its weights hash goes into
     * provenance as {@code <role>_weights}. Weights stored in the run's dtype are memory-mapped, not copied
     * ({@link Models#loadFrozen(Path, DType)}); others are converted, so the numbers are those of a copy.
     */
    public CausalLM loadFrozen(Path dir, String role) throws IOException {
        return hashed(dir, role, Models.loadFrozen(dir, dtype()).model());
    }

    /** A model the run trains that does not start from the policy (PPO's critic from a reward model): a full copy. */
    public CausalLM loadTrainable(Path dir, String role) throws IOException {
        return hashed(dir, role, Models.load(dir, dtype()).model());
    }

    private CausalLM hashed(Path dir, String role, CausalLM m) throws IOException {
        owned.add(m);
        provenance.put(role + "_weights", weightsHash(dir));
        return m;
    }

    /** Closes {@code c} with the session (last opened, first closed). */
    public <T extends AutoCloseable> T own(T c) {
        owned.add(c);
        return c;
    }

    /**
     * Writes the run's records: what reading skipped and cut (also told to the listener), the resolved config (with
     * the length limits in force; max_length too when {@code withMaxLength}) and the provenance assembled so far.
     * Called again after more provenance is known, it rewrites both files.
     */
    public void writeRecords(boolean withMaxLength) throws IOException {
        if (!gradientSync().writesFiles()) return;   // rank 0 writes the run's records
        if (!provenance.containsKey("data_reading")) DataSettings.report(listener, provenance, spec.reading(), truncation, reads);
        Map<String, Object> resolved = spec.resolved().isEmpty() ? Provenance.recordForm(spec, config.method()) : spec.resolved();
        run.writeConfig(truncation == null ? resolved : DataSettings.resolved(resolved, truncation, withMaxLength));
        run.writeProvenance(provenance);
    }

    /**
     * The process's part in the run: with torchrun's variables naming a world of more than one (WORLD_SIZE, RANK,
     * MASTER_ADDR, MASTER_PORT; {@code tether launch} sets them) it joins the c10d group, closed with the session,
     * and refuses to start when another rank's resolved config or data differs, naming what; otherwise a world of one.
     */
    public GradientSync gradientSync() {
        if (sync != null) return sync;
        ProcessGroup.Env env = ProcessGroup.Env.read(System.getenv());
        if (env == null) return sync = GradientSync.SINGLE_PROCESS;
        ProcessGroup group = own(ProcessGroup.join(env));
        refuseDifferingRanks(group);
        provenance.put("world_size", env.worldSize());
        return sync = new DataParallel(group);
    }

    /** The trainer for this run: its loop settings, directory, gradient sync, listener and tokenizer (copied into checkpoints). */
    public <E> Trainer<E> trainer(CausalLM model, TrainingMethod<E> method, List<E> train, List<E> eval) {
        return trainer(model, method, train, eval, listener);
    }

    /** As {@link #trainer(CausalLM, TrainingMethod, List, List)} with a method's own listener (diagnostics wrapping the run's). */
    public <E> Trainer<E> trainer(CausalLM model, TrainingMethod<E> method, List<E> train, List<E> eval, Trainer.Listener listener) {
        return new Trainer<>(model, method, train, eval, spec.trainer(), run, gradientSync(), listener, spec.textSource());
    }

    /**
     * Saves the finished model under {@code model/} (HF layout, the tokenizer beside it) and, with LoRA, the adapter
     * under {@code adapter/}; weights keep the dtypes they were stored in when {@code storedDtypes} is given.
     */
    public void saveResult(CausalLM model, Map<String, DType> storedDtypes) throws IOException {
        if (!gradientSync().writesFiles()) return;   // every rank holds the same weights; rank 0 saves them
        PeftSettings.saveResult(model, run.root(), spec.model(), spec.textSource(), storedDtypes);
    }

    /**
     * Every rank must train the same thing on the same data: each puts its resolved config (key by key) and its data
     * files' hashes in the store, and a rank that differs from rank 0 stops the run there, naming the keys or files.
     */
    private void refuseDifferingRanks(ProcessGroup group) {
        Map<String, String> mine = new java.util.TreeMap<>();
        Map<String, Object> resolved = spec.resolved().isEmpty() ? Provenance.recordForm(spec, config.method()) : spec.resolved();
        resolved.forEach((k, v) -> mine.put("config key '" + k + "'", String.valueOf(v)));
        for (String k : new String[] {"data_sha256", "eval_data_sha256"})
            if (provenance.containsKey(k)) mine.put("data hash " + k, String.valueOf(provenance.get(k)));
        String encoded;
        try {
            encoded = RunDirectory.JSON.writeValueAsString(mine);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        String[] all = group.exchange("run-identity", encoded);
        // Every rank checks every rank against rank 0, so each one stops with the same message (none is left waiting).
        Map<String, String> first = decode(all[0]);
        for (int r = 1; r < all.length; r++) {
            Map<String, String> other = decode(all[r]);
            List<String> differ = new ArrayList<>();
            java.util.Set<String> keys = new java.util.TreeSet<>(first.keySet());
            keys.addAll(other.keySet());
            for (String k : keys)
                if (!java.util.Objects.equals(first.get(k), other.get(k))) differ.add(k + " (rank 0: " + first.get(k) + ", rank " + r + ": " + other.get(k) + ")");
            if (!differ.isEmpty())
                throw new ConfigException("rank " + r + " differs from rank 0 in " + String.join("; ", differ) + ": every rank must run the same config on the same data");
        }
    }

    private static Map<String, String> decode(String json) {
        try {
            return RunDirectory.JSON.readValue(json, new com.fasterxml.jackson.core.type.TypeReference<java.util.TreeMap<String, String>>() {});
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                if (first == null) first = e instanceof RuntimeException re ? re : new IllegalStateException(e);
            }
        }
        owned.clear();
        if (first != null) throw first;
    }
}
