package io.tether.reward;

import java.util.Locale;

import com.fasterxml.jackson.annotation.JsonValue;

import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.run.ConfigTree;
import io.tether.run.RunConfig;
import io.tether.run.RunSpec;
import io.tether.train.LearningRateDefault;

/**
 * {@code tether rm train}'s own keys; the rest is the {@link RunSpec}. The Bradley-Terry keys are named as TRL's
 * RewardConfig (v0.29.1), the process keys as its PRMConfig (v0.29.1); {@code kind} and {@code slice_field} are
 * Tether's (TRL has a trainer class per kind and no sliced evaluation).
 *
 * @param kind                     {@code bradley_terry} (a sequence classifier on pairs) or {@code process} (a token
 *                                 classifier on stepwise records)
 * @param centerRewardsCoefficient TRL RewardConfig {@code center_rewards_coefficient}: weight of the (r_w + r_l)² term
 *                                 that pulls rewards towards zero; 0 disables it (TRL's None)
 * @param sliceField               the record field that names a pair's slice in the held-out evaluation
 * @param stepSeparator            TRL PRMConfig {@code step_separator}: the text after each step, where its label sits
 * @param trainOnLastStepOnly      TRL PRMConfig {@code train_on_last_step_only}: label only each record's final step
 */
public record RewardSettings(Kind kind, double centerRewardsCoefficient, String sliceField, String stepSeparator, boolean trainOnLastStepOnly) {

    /** The two kinds of reward model, each with the common keys' defaults of its TRL config. */
    public enum Kind {
        BRADLEY_TERRY(LearningRateDefault.REWARD),
        PROCESS(LearningRateDefault.PRM);

        private final RunSpec.Defaults defaults;

        Kind(LearningRateDefault learningRate) {
            // Both TRL trainers hold out nothing by default; Tether splits off 10% so that every run reports held-out
            // accuracy. TRL's RewardTrainer (v0.24 on) leaves out pairs longer than max_length: drop is the default,
            // keep_start/keep_end truncate them instead.
            this.defaults = new RunSpec.Defaults(Truncation.Mode.DROP, true, false, 0.1, learningRate, false, true);
        }

        /** How this kind's common keys differ (the learning_rate default: RewardConfig 1e-4, PRMConfig 1e-5). */
        public RunSpec.Defaults defaults() { return defaults; }

        @JsonValue
        public String key() { return name().toLowerCase(Locale.ROOT); }

        public static Kind parse(String key) {
            for (Kind k : values()) if (k.key().equals(key)) return k;
            throw new ConfigException("key 'kind': expected bradley_terry or process, got '" + key + "'");
        }
    }

    public RewardSettings {
        if (kind == null) throw new ConfigException("key 'kind': missing");
        if (!(centerRewardsCoefficient >= 0)) throw new ConfigException("key 'center_rewards_coefficient': must be >= 0");
        if (sliceField == null) throw new ConfigException("key 'slice_field': missing");
        if (stepSeparator == null || stepSeparator.isEmpty()) throw new ConfigException("key 'step_separator': must not be empty");
    }

    /** A Bradley-Terry reward model with TRL's defaults: no centering, slices by {@code source}, PRM keys as PRMConfig. */
    public static RewardSettings defaults() {
        return new RewardSettings(Kind.BRADLEY_TERRY, 0.0, "source", "\n", false);
    }

    /** The same settings for a process reward model. */
    public RewardSettings withKind(Kind kind) {
        return new RewardSettings(kind, centerRewardsCoefficient, sliceField, stepSeparator, trainOnLastStepOnly);
    }

    public static RewardSettings read(ConfigTree c) {
        RewardSettings d = defaults();
        Kind kind = kind(c);
        double center = c.number("center_rewards_coefficient", d.centerRewardsCoefficient());
        String slice = c.string("slice_field", d.sliceField());
        String separator = c.string("step_separator", d.stepSeparator());
        boolean lastOnly = c.bool("train_on_last_step_only", d.trainOnLastStepOnly());
        return c.validated(() -> new RewardSettings(kind, center, slice, separator, lastOnly));
    }

    /**
     * The whole run's configuration from YAML and overrides. {@code kind} is read before the common keys because the
     * learning_rate default is the kind's.
     */
    public static RunConfig<RewardSettings> config(ConfigTree c) {
        return RunConfig.read(c, kind(c).defaults(), RewardSettings::read);
    }

    private static Kind kind(ConfigTree c) {
        return Kind.parse(c.string("kind", defaults().kind().key()));
    }
}
