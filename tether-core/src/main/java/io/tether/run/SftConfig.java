package io.tether.run;

import io.tether.train.LearningRateDefault;
import io.tether.train.TrainerConfig;
import java.nio.file.Path;
import java.util.Map;

import io.tether.engine.ConfigException;

/**
 * {@code tether sft}'s settings: where the model and data come from, how examples become rows, and the loop's
 * TrainingArguments. Key names follow TRL's SFTConfig.
 *
 * @param model              an HF model directory to start from (or null with {@code modelConfig})
 * @param modelConfig        a config.json for a freshly initialised model (training from scratch)
 * @param data               training records (JSONL: prompt_ids + completion_ids)
 * @param evalData           held-out records, or null to split off {@code evalFraction} of {@code data}
 * @param evalFraction       share of {@code data} held out when evalData is null (split by seed)
 * @param outputDir          the run directory
 * @param reading            TRL {@code max_length} (default min(1024, the model's positions)): longer examples are truncated,
 *                           keeping their start ({@code truncation_mode: keep_start}, as TRL's SFTTrainer) or their end;
 *                           and {@code invalid_records}
 * @param packing            TRL {@code packing}: several examples per row, attention isolated per example
 * @param completionOnlyLoss TRL {@code completion_only_loss}: loss on completion tokens only (else every token)
 * @param dtype              compute dtype of the weights (fp32; fp64 for checks)
 * @param tokenizer          directory with tokenizer.json (and chat template) for text records; default: the model's
 * @param assistantOnlyLoss  TRL {@code assistant_only_loss}: for {@code messages} records, loss only on the tokens the
 *                           template marks with {@code {% generation %}} (else, as TRL, on the whole conversation)
 * @param resolved           every setting in force, defaults included, as written to the run's config.yaml
 */
public record SftConfig(Path model, Path modelConfig, Path tokenizer, Path data, Path evalData, double evalFraction, Path outputDir,
                        DataSettings reading, boolean packing, boolean completionOnlyLoss, boolean assistantOnlyLoss, String dtype, TrainerConfig trainer,
                        io.tether.model.LoraAdapters.Config lora, Map<String, Object> resolved) {
    public SftConfig {
        if ((model == null) == (modelConfig == null)) throw new ConfigException("key 'model': give exactly one of 'model' (an HF directory) or 'model_config' (a config.json to initialise from)");
        if (data == null) throw new ConfigException("key 'data': missing");
        if (outputDir == null) throw new ConfigException("key 'output_dir': missing");
        if (!(evalFraction >= 0 && evalFraction < 1)) throw new ConfigException("key 'eval_fraction': must be in [0, 1), got " + evalFraction);
        if (evalData != null && evalFraction > 0) throw new ConfigException("key 'eval_fraction': give either 'eval_data' or 'eval_fraction', not both");
        io.tether.engine.DType.parse(dtype);
    }

    public static SftConfig from(ConfigTree c) {
        Path model = c.path("model"), modelConfig = c.path("model_config"), tokenizer = c.path("tokenizer"), data = c.path("data"), evalData = c.path("eval_data");
        double evalFraction = c.number("eval_fraction", 0.0);
        Path out = c.path("output_dir");
        DataSettings reading = DataSettings.from(c, io.tether.data.Truncation.Mode.KEEP_START, false, false);
        boolean packing = c.bool("packing", false), completionOnly = c.bool("completion_only_loss", true);
        boolean assistantOnly = c.bool("assistant_only_loss", false);
        String dtype = c.string("dtype", "fp32");
        TrainerConfig trainer = c.trainerConfig(LearningRateDefault.SFT);
        io.tether.model.LoraAdapters.Config lora = PeftSettings.from(c);
        c.rejectUnknownKeys();
        return c.validated(() -> new SftConfig(model, modelConfig, tokenizer, data, evalData, evalFraction, out, reading, packing, completionOnly, assistantOnly, dtype, trainer, lora, c.resolved()));
    }
}
