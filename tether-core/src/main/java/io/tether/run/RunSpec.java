package io.tether.run;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.model.LoraAdapters;
import io.tether.train.LearningRateDefault;
import io.tether.train.TrainerConfig;

/**
 * The keys every run shares, read once: where the model and data come from, where the run goes, the compute dtype,
 * how data is read and cut ({@link DataSettings}), the loop's TrainingArguments ({@link TrainerConfig}) and LoRA
 * ({@link PeftSettings}). Each method's own keys live in its settings record beside this one. YAML and {@code --set}
 * bind through {@link #read}; Java callers build the record directly ({@link #of} and the {@code with} methods).
 *
 * @param model       an HF model directory to start from (null only for SFT from {@code modelConfig})
 * @param modelConfig a config.json for a freshly initialised model (SFT from scratch), else null
 * @param tokenizer   a directory with tokenizer.json (and chat template) when the model's own is not the one; else null
 * @param data        training records
 * @param evalData    held-out records, or null to split off {@code evalFraction} of {@code data}
 * @param evalFraction share of {@code data} held out when evalData is null (split by seed)
 * @param outputDir   the run directory
 * @param dtype       compute dtype of the weights: fp32 (fp64 for checks); {@code bf16: true} is the trainer's autocast
 * @param reading     invalid_records and TRL's length limits
 * @param trainer     the loop's TrainingArguments
 * @param lora        LoRA adapters (TRL's use_peft and lora_* keys), or null for full fine-tuning
 * @param resolved    every setting in force, defaults included, as written to the run's config.yaml (empty: the records' own form)
 */
public record RunSpec(Path model, Path modelConfig, Path tokenizer, Path data, Path evalData, double evalFraction, Path outputDir,
                      String dtype, DataSettings reading, TrainerConfig trainer, LoraAdapters.Config lora, Map<String, Object> resolved) {

    public RunSpec {
        if (model == null && modelConfig == null) throw new ConfigException("key 'model': missing");
        if (model != null && modelConfig != null) throw new ConfigException("key 'model': give exactly one of 'model' (an HF directory) or 'model_config' (a config.json to initialise from)");
        if (data == null) throw new ConfigException("key 'data': missing");
        if (outputDir == null) throw new ConfigException("key 'output_dir': missing");
        if (!(evalFraction >= 0 && evalFraction < 1)) throw new ConfigException("key 'eval_fraction': must be in [0, 1), got " + evalFraction);
        if (evalData != null && evalFraction > 0) throw new ConfigException("key 'eval_fraction': give either 'eval_data' or 'eval_fraction', not both");
        DType.parse(dtype);
        if (reading == null) throw new ConfigException("key 'max_length': no data settings");
        if (trainer == null) throw new ConfigException("key 'max_steps': no trainer settings");
        resolved = resolved == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(resolved));
    }

    /**
     * How a method's common keys differ: its TRL truncation_mode default (and whether {@code drop} is one), whether
     * it reads prompt length limits, its eval_fraction and learning-rate defaults, and whether it can start from a
     * bare config.json or take held-out data. A null truncationMode: the method reads no length keys here (online
     * methods cut prompts under their own max_prompt_length).
     */
    public record Defaults(Truncation.Mode truncationMode, boolean dropAllowed, boolean promptLimits, double evalFraction,
                           LearningRateDefault learningRate, boolean fromScratch, boolean evalData) {}

    /** Reads the common keys and builds the spec (see {@link RunConfig#read}, which also reads the method's keys). */
    public static RunSpec read(ConfigTree c, Defaults d) {
        return reader(c, d).get();
    }

    /**
     * Reads the common keys now and builds the spec when asked: a misspelt key is then reported as unknown (with
     * its did-you-mean) before the key it was meant to be is reported missing.
     */
    static java.util.function.Supplier<RunSpec> reader(ConfigTree c, Defaults d) {
        Path model = c.path("model"), modelConfig = d.fromScratch() ? c.path("model_config") : null, tokenizer = d.fromScratch() ? c.path("tokenizer") : null;
        Path data = c.path("data"), evalData = d.evalData() ? c.path("eval_data") : null;
        // eval_data replaces the default split (the reward model's 0.1): a given file is the held-out set.
        double evalFraction = d.evalData() ? c.number("eval_fraction", evalData != null ? 0 : d.evalFraction()) : 0;
        Path out = c.path("output_dir");
        DataSettings reading = DataSettings.from(c, d.truncationMode(), d.dropAllowed(), d.promptLimits());
        String dtype = c.string("dtype", "fp32");
        TrainerConfig trainer = c.trainerConfig(d.learningRate());
        LoraAdapters.Config lora = PeftSettings.from(c);
        return () -> c.validated(() -> new RunSpec(model, modelConfig, tokenizer, data, evalData, evalFraction, out, dtype, reading, trainer, lora, Map.of()));
    }

    /** A run with every common default: fp32, TRL's reading limits (truncation keep_end), no held-out data, no LoRA. */
    public static RunSpec of(Path model, Path data, Path outputDir, TrainerConfig trainer) {
        return new RunSpec(model, null, null, data, null, 0, outputDir, "fp32",
                new DataSettings(io.tether.data.TokenRecords.InvalidRecords.ERROR, 0, 0, 0, Truncation.Mode.KEEP_END), trainer, null, Map.of());
    }

    public RunSpec withResolved(Map<String, Object> resolved) {
        return new RunSpec(model, modelConfig, tokenizer, data, evalData, evalFraction, outputDir, dtype, reading, trainer, lora, resolved);
    }

    public RunSpec withEvalData(Path evalData, double evalFraction) {
        return new RunSpec(model, modelConfig, tokenizer, data, evalData, evalFraction, outputDir, dtype, reading, trainer, lora, resolved);
    }

    public RunSpec withReading(DataSettings reading) {
        return new RunSpec(model, modelConfig, tokenizer, data, evalData, evalFraction, outputDir, dtype, reading, trainer, lora, resolved);
    }

    public RunSpec withLora(LoraAdapters.Config lora) {
        return new RunSpec(model, modelConfig, tokenizer, data, evalData, evalFraction, outputDir, dtype, reading, trainer, lora, resolved);
    }

    public RunSpec withDtype(String dtype) {
        return new RunSpec(model, modelConfig, tokenizer, data, evalData, evalFraction, outputDir, dtype, reading, trainer, lora, resolved);
    }

    public RunSpec withTokenizer(Path tokenizer) {
        return new RunSpec(model, modelConfig, tokenizer, data, evalData, evalFraction, outputDir, dtype, reading, trainer, lora, resolved);
    }

    /** Where the tokenizer (and chat template) comes from: {@code tokenizer} if set, else the model's directory (null from scratch). */
    public Path textSource() {
        return tokenizer != null ? tokenizer : model;
    }
}
