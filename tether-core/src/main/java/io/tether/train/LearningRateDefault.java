package io.tether.train;

import java.util.Locale;

/**
 * Each method's {@code learning_rate} default, as its TRL config class sets it at TRL v0.29.1 (every TRL config
 * overrides HF TrainingArguments' 5e-5). A method's default lives here and nowhere else; a config reads it through
 * {@link ConfigTree#trainerConfig(LearningRateDefault)}.
 */
public enum LearningRateDefault {
    SFT("SFTConfig", 2e-5),
    DPO("DPOConfig", 1e-6),
    KTO("KTOConfig", 1e-6),
    ORPO("ORPOConfig", 1e-6),
    /** CPO, SimPO and AlphaPO: TRL trains all three with CPOTrainer. */
    CPO("CPOConfig", 1e-6),
    REWARD("RewardConfig", 1e-4),
    PRM("PRMConfig", 1e-5),
    GRPO("GRPOConfig", 1e-6),
    RLOO("RLOOConfig", 1e-6),
    PPO("PPOConfig", 3e-6),
    ONLINE_DPO("OnlineDPOConfig", 5e-7);

    /** The TRL release these defaults were read from. */
    public static final String TRL_VERSION = "TRL v0.29.1";

    private final String trlConfig;
    private final double value;

    LearningRateDefault(String trlConfig, double value) {
        this.trlConfig = trlConfig;
        this.value = value;
    }

    public double value() { return value; }

    /** Where the default comes from, e.g. "TRL v0.29.1 DPOConfig default". */
    public String citation() {
        return String.format(Locale.ROOT, "%s %s default", TRL_VERSION, trlConfig);
    }
}
