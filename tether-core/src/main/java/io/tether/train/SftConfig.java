package io.tether.train;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

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
 * @param maxLength          TRL {@code max_length}: longer examples are truncated (keeping their start)
 * @param packing            TRL {@code packing}: several examples per row, attention isolated per example
 * @param completionOnlyLoss TRL {@code completion_only_loss}: loss on completion tokens only (else every token)
 * @param dtype              compute dtype of the weights (fp32; fp64 for checks)
 * @param tokenizer          directory with tokenizer.json (and chat template) for text records; default: the model's
 * @param assistantOnlyLoss  TRL {@code assistant_only_loss}: for {@code messages} records, loss only on the tokens the
 *                           template marks with {@code {% generation %}} (else, as TRL, on the whole conversation)
 */
public record SftConfig(Path model, Path modelConfig, Path tokenizer, Path data, Path evalData, double evalFraction, Path outputDir,
                        int maxLength, boolean packing, boolean completionOnlyLoss, boolean assistantOnlyLoss, String dtype, TrainerConfig trainer,
                        io.tether.model.LoraAdapters.Config lora) {
    public SftConfig {
        if ((model == null) == (modelConfig == null)) throw new IllegalArgumentException("key 'model': give exactly one of 'model' (an HF directory) or 'model_config' (a config.json to initialise from)");
        if (data == null) throw new IllegalArgumentException("key 'data': missing");
        if (outputDir == null) throw new IllegalArgumentException("key 'output_dir': missing");
        if (!(evalFraction >= 0 && evalFraction < 1)) throw new IllegalArgumentException("key 'eval_fraction': must be in [0, 1), got " + evalFraction);
        if (evalData != null && evalFraction > 0) throw new IllegalArgumentException("key 'eval_fraction': give either 'eval_data' or 'eval_fraction', not both");
        if (maxLength < 2) throw new IllegalArgumentException("key 'max_length': must be >= 2, got " + maxLength);
        io.tether.engine.DType.parse(dtype);
    }

    public static SftConfig from(ConfigTree c) {
        Path model = c.path("model"), modelConfig = c.path("model_config"), tokenizer = c.path("tokenizer"), data = c.path("data"), evalData = c.path("eval_data");
        double evalFraction = c.number("eval_fraction", 0.0);
        Path out = c.path("output_dir");
        int maxLength = c.integer("max_length", 1024);
        boolean packing = c.bool("packing", false), completionOnly = c.bool("completion_only_loss", true);
        boolean assistantOnly = c.bool("assistant_only_loss", false);
        String dtype = c.string("dtype", "fp32");
        TrainerConfig trainer = c.trainerConfig();
        io.tether.model.LoraAdapters.Config lora = PeftSettings.from(c);
        c.rejectUnknownKeys();
        return c.validated(() -> new SftConfig(model, modelConfig, tokenizer, data, evalData, evalFraction, out, maxLength, packing, completionOnly, assistantOnly, dtype, trainer, lora));
    }

    /** Every setting, defaults included, as written to the run's config.yaml. */
    public Map<String, Object> resolved() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", model == null ? null : model.toString());
        m.put("model_config", modelConfig == null ? null : modelConfig.toString());
        m.put("tokenizer", tokenizer == null ? null : tokenizer.toString());
        m.put("data", data.toString());
        m.put("eval_data", evalData == null ? null : evalData.toString());
        m.put("eval_fraction", evalFraction);
        m.put("output_dir", outputDir.toString());
        m.put("max_length", maxLength);
        m.put("packing", packing);
        m.put("completion_only_loss", completionOnlyLoss);
        m.put("assistant_only_loss", assistantOnlyLoss);
        m.put("dtype", dtype);
        TrainerConfig t = trainer;
        m.put("max_steps", t.maxSteps());
        m.put("num_train_epochs", t.numTrainEpochs());
        m.put("per_device_train_batch_size", t.perDeviceTrainBatchSize());
        m.put("gradient_accumulation_steps", t.gradientAccumulationSteps());
        m.put("learning_rate", t.learningRate());
        m.put("lr_scheduler_type", t.lrSchedulerType());
        m.put("warmup_steps", t.warmupSteps());
        m.put("warmup_ratio", t.warmupRatio());
        m.put("weight_decay", t.weightDecay());
        m.put("adam_beta1", t.adamBeta1());
        m.put("adam_beta2", t.adamBeta2());
        m.put("adam_epsilon", t.adamEpsilon());
        m.put("max_grad_norm", t.maxGradNorm());
        m.put("seed", t.seed());
        m.put("logging_steps", t.loggingSteps());
        m.put("eval_steps", t.evalSteps());
        m.put("save_steps", t.saveSteps());
        m.put("save_total_limit", t.saveTotalLimit());
        m.put("nan_policy", t.nanPolicy());
        m.put("use_peft", lora != null);
        if (lora != null) {
            m.put("lora_r", lora.r());
            m.put("lora_alpha", lora.alpha());
            m.put("lora_dropout", lora.dropout());
            m.put("lora_target_modules", lora.targetModules());
            m.put("use_rslora", lora.useRslora());
        }
        m.put("bf16", t.bf16());
        return m;
    }
}
