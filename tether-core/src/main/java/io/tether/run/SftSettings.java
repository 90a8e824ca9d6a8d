package io.tether.run;

import io.tether.data.Truncation;
import io.tether.train.LearningRateDefault;

/**
 * {@code tether sft}'s own keys, named and defaulted as TRL's SFTConfig (v0.29.1); the rest is the {@link RunSpec}.
 * SFT keeps an example's start when it is over max_length (TRL's SFTTrainer truncates so), can start from a bare
 * config.json ({@code model_config}) and reads text records with a separate {@code tokenizer}.
 *
 * @param packing            TRL {@code packing}: several examples per row, attention isolated per example
 * @param completionOnlyLoss TRL {@code completion_only_loss}: loss on completion tokens only (else every token)
 * @param assistantOnlyLoss  TRL {@code assistant_only_loss}: for {@code messages} records, loss only on the tokens the
 *                           template marks with {@code {% generation %}} (else, as TRL, on the whole conversation)
 */
public record SftSettings(boolean packing, boolean completionOnlyLoss, boolean assistantOnlyLoss) {
    public static final RunSpec.Defaults DEFAULTS = new RunSpec.Defaults(Truncation.Mode.KEEP_START, false, false, 0.0, LearningRateDefault.SFT, true, true);

    /** TRL's defaults: no packing, loss on completions only. */
    public static SftSettings defaults() {
        return new SftSettings(false, true, false);
    }

    public static SftSettings read(ConfigTree c) {
        return new SftSettings(c.bool("packing", false), c.bool("completion_only_loss", true), c.bool("assistant_only_loss", false));
    }

    /** The whole run's configuration from YAML and overrides. */
    public static RunConfig<SftSettings> config(ConfigTree c) {
        return RunConfig.read(c, DEFAULTS, SftSettings::read);
    }
}
