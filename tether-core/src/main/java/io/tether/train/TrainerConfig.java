package io.tether.train;

import io.tether.engine.ConfigException;

/**
 * The loop's knobs, named as HF {@code TrainingArguments} names them (YAML keys are these names).
 *
 * @param maxSteps                  {@code max_steps}: optimizer steps; 0 means {@code numTrainEpochs} over the data
 * @param numTrainEpochs            {@code num_train_epochs}, used when maxSteps is 0
 * @param perDeviceTrainBatchSize   {@code per_device_train_batch_size}: examples per micro-batch
 * @param gradientAccumulationSteps {@code gradient_accumulation_steps}: micro-batches per optimizer step
 * @param learningRate              {@code learning_rate}: each method's TRL default, see {@link LearningRateDefault}
 * @param lrSchedulerType           {@code lr_scheduler_type}: constant, linear or cosine
 * @param warmupSteps               {@code warmup_steps}; overrides warmupRatio when > 0
 * @param warmupRatio               {@code warmup_ratio} of the total steps
 * @param maxGradNorm               {@code max_grad_norm}; 0 disables clipping
 * @param loggingSteps              {@code logging_steps}: a metrics line every N optimizer steps
 * @param evalSteps                 {@code eval_steps}: held-out loss every N steps (0: only at the end)
 * @param saveSteps                 {@code save_steps}: a checkpoint every N steps (0: only at the end)
 * @param saveTotalLimit            {@code save_total_limit}: checkpoints kept (oldest deleted first)
 * @param nanPolicy                 what a non-finite loss or gradient does: "stop" (report and fail) or "skip"
 * @param bf16                      {@code bf16}: bf16 autocast over fp32 master weights, where the CPU's bf16 matmuls
 *                                  are faster (measured at start; otherwise the run stays in fp32 and says so)
 * @param gradientCheckpointing     {@code gradient_checkpointing}: keep one block's activations, recompute in backward
 */
public record TrainerConfig(int maxSteps, double numTrainEpochs, int perDeviceTrainBatchSize, int gradientAccumulationSteps,
                            double learningRate, String lrSchedulerType, int warmupSteps, double warmupRatio,
                            double weightDecay, double adamBeta1, double adamBeta2, double adamEpsilon, double maxGradNorm,
                            long seed, int loggingSteps, int evalSteps, int saveSteps, int saveTotalLimit, String nanPolicy,
                            boolean bf16, boolean gradientCheckpointing) {
    public TrainerConfig {
        require(maxSteps >= 0, "max_steps", "must be >= 0, got " + maxSteps);
        require(maxSteps > 0 || numTrainEpochs > 0, "num_train_epochs", "must be > 0 when max_steps is 0");
        require(perDeviceTrainBatchSize >= 1, "per_device_train_batch_size", "must be >= 1, got " + perDeviceTrainBatchSize);
        require(gradientAccumulationSteps >= 1, "gradient_accumulation_steps", "must be >= 1, got " + gradientAccumulationSteps);
        require(learningRate >= 0, "learning_rate", "must be >= 0, got " + learningRate);
        LrSchedule.Kind.parse(lrSchedulerType);
        require(warmupSteps >= 0, "warmup_steps", "must be >= 0");
        require(warmupRatio >= 0 && warmupRatio < 1, "warmup_ratio", "must be in [0, 1), got " + warmupRatio);
        require(maxGradNorm >= 0, "max_grad_norm", "must be >= 0 (0 disables clipping)");
        require(loggingSteps >= 1, "logging_steps", "must be >= 1");
        require(evalSteps >= 0, "eval_steps", "must be >= 0");
        require(saveSteps >= 0, "save_steps", "must be >= 0");
        require(saveTotalLimit >= 1, "save_total_limit", "must be >= 1");
        require(nanPolicy.equals("stop") || nanPolicy.equals("skip"), "nan_policy", "must be 'stop' or 'skip', got '" + nanPolicy + "'");
        new AdamW.Config(learningRate, adamBeta1, adamBeta2, adamEpsilon, weightDecay);
    }

    public TrainerConfig(int maxSteps, double numTrainEpochs, int perDeviceTrainBatchSize, int gradientAccumulationSteps,
                         double learningRate, String lrSchedulerType, int warmupSteps, double warmupRatio,
                         double weightDecay, double adamBeta1, double adamBeta2, double adamEpsilon, double maxGradNorm,
                         long seed, int loggingSteps, int evalSteps, int saveSteps, int saveTotalLimit, String nanPolicy, boolean bf16) {
        this(maxSteps, numTrainEpochs, perDeviceTrainBatchSize, gradientAccumulationSteps, learningRate, lrSchedulerType, warmupSteps, warmupRatio,
                weightDecay, adamBeta1, adamBeta2, adamEpsilon, maxGradNorm, seed, loggingSteps, evalSteps, saveSteps, saveTotalLimit, nanPolicy, bf16, false);
    }

    public TrainerConfig withGradientCheckpointing(boolean on) {
        return new TrainerConfig(maxSteps, numTrainEpochs, perDeviceTrainBatchSize, gradientAccumulationSteps, learningRate, lrSchedulerType, warmupSteps,
                warmupRatio, weightDecay, adamBeta1, adamBeta2, adamEpsilon, maxGradNorm, seed, loggingSteps, evalSteps, saveSteps, saveTotalLimit, nanPolicy, bf16, on);
    }

    /** TRL SFTConfig / HF TrainingArguments defaults (the learning rate SFT's; other methods have their own). */
    public static TrainerConfig defaults() {
        return new TrainerConfig(0, 1.0, 8, 1, LearningRateDefault.SFT.value(), "linear", 0, 0.0, 0.0, 0.9, 0.999, 1e-8, 1.0, 42, 10, 0, 500, 3, "stop", false);
    }

    public AdamW.Config adam() {
        return new AdamW.Config(learningRate, adamBeta1, adamBeta2, adamEpsilon, weightDecay);
    }

    /** This config as a builder, to change a few settings from Java ({@code TrainerConfig.defaults().toBuilder().maxSteps(100).build()}). */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.maxSteps = maxSteps;
        b.numTrainEpochs = numTrainEpochs;
        b.perDeviceTrainBatchSize = perDeviceTrainBatchSize;
        b.gradientAccumulationSteps = gradientAccumulationSteps;
        b.learningRate = learningRate;
        b.lrSchedulerType = lrSchedulerType;
        b.warmupSteps = warmupSteps;
        b.warmupRatio = warmupRatio;
        b.weightDecay = weightDecay;
        b.adamBeta1 = adamBeta1;
        b.adamBeta2 = adamBeta2;
        b.adamEpsilon = adamEpsilon;
        b.maxGradNorm = maxGradNorm;
        b.seed = seed;
        b.loggingSteps = loggingSteps;
        b.evalSteps = evalSteps;
        b.saveSteps = saveSteps;
        b.saveTotalLimit = saveTotalLimit;
        b.nanPolicy = nanPolicy;
        b.bf16 = bf16;
        b.gradientCheckpointing = gradientCheckpointing;
        return b;
    }

    /** Settings for Java callers; {@link #build} validates them as the YAML keys are validated. */
    public static final class Builder {
        private int maxSteps;
        private double numTrainEpochs;
        private int perDeviceTrainBatchSize;
        private int gradientAccumulationSteps;
        private double learningRate;
        private String lrSchedulerType;
        private int warmupSteps;
        private double warmupRatio;
        private double weightDecay;
        private double adamBeta1;
        private double adamBeta2;
        private double adamEpsilon;
        private double maxGradNorm;
        private long seed;
        private int loggingSteps;
        private int evalSteps;
        private int saveSteps;
        private int saveTotalLimit;
        private String nanPolicy;
        private boolean bf16;
        private boolean gradientCheckpointing;

        public Builder maxSteps(int v) { maxSteps = v; return this; }
        public Builder numTrainEpochs(double v) { numTrainEpochs = v; return this; }
        public Builder perDeviceTrainBatchSize(int v) { perDeviceTrainBatchSize = v; return this; }
        public Builder gradientAccumulationSteps(int v) { gradientAccumulationSteps = v; return this; }
        public Builder learningRate(double v) { learningRate = v; return this; }
        public Builder lrSchedulerType(String v) { lrSchedulerType = v; return this; }
        public Builder warmupSteps(int v) { warmupSteps = v; return this; }
        public Builder warmupRatio(double v) { warmupRatio = v; return this; }
        public Builder weightDecay(double v) { weightDecay = v; return this; }
        public Builder adamBeta1(double v) { adamBeta1 = v; return this; }
        public Builder adamBeta2(double v) { adamBeta2 = v; return this; }
        public Builder adamEpsilon(double v) { adamEpsilon = v; return this; }
        public Builder maxGradNorm(double v) { maxGradNorm = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        public Builder loggingSteps(int v) { loggingSteps = v; return this; }
        public Builder evalSteps(int v) { evalSteps = v; return this; }
        public Builder saveSteps(int v) { saveSteps = v; return this; }
        public Builder saveTotalLimit(int v) { saveTotalLimit = v; return this; }
        public Builder nanPolicy(String v) { nanPolicy = v; return this; }
        public Builder bf16(boolean v) { bf16 = v; return this; }
        public Builder gradientCheckpointing(boolean v) { gradientCheckpointing = v; return this; }

        public TrainerConfig build() {
            return new TrainerConfig(maxSteps, numTrainEpochs, perDeviceTrainBatchSize, gradientAccumulationSteps, learningRate, lrSchedulerType, warmupSteps, warmupRatio, weightDecay, adamBeta1, adamBeta2, adamEpsilon, maxGradNorm, seed, loggingSteps, evalSteps, saveSteps, saveTotalLimit, nanPolicy, bf16, gradientCheckpointing);
        }
    }

    private static void require(boolean ok, String key, String message) {
        if (!ok) throw new ConfigException("key '" + key + "': " + message);
    }
}
