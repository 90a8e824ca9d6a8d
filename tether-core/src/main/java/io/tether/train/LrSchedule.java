package io.tether.train;

import io.tether.engine.ConfigException;

/**
 * Learning-rate multipliers as HF's {@code get_*_schedule_with_warmup}: linear warmup from 0 over
 * {@code warmupSteps}, then constant, linear decay to 0, or half-cosine decay to 0 at {@code totalSteps}.
 * Steps are optimizer steps, counted from 0 for the first update.
 */
public record LrSchedule(Kind kind, double peakLr, int warmupSteps, int totalSteps) {
    /** HF's {@code lr_scheduler_type} names. */
    public enum Kind {
        CONSTANT, LINEAR, COSINE;

        public static Kind parse(String s) {
            return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "constant", "constant_with_warmup" -> CONSTANT;
                case "linear" -> LINEAR;
                case "cosine" -> COSINE;
                default -> throw new ConfigException("lr_scheduler_type '" + s + "' is not supported (expected constant, linear or cosine)");
            };
        }
    }

    public LrSchedule {
        if (warmupSteps < 0) throw new ConfigException("warmup_steps must be >= 0, got " + warmupSteps);
        if (totalSteps < 1) throw new ConfigException("the run must have at least one optimizer step");
    }

    /** The learning rate for optimizer step {@code step} (0-based). */
    public double at(int step) {
        if (step < warmupSteps) return peakLr * step / Math.max(1, warmupSteps);
        return switch (kind) {
            case CONSTANT -> peakLr;
            case LINEAR -> peakLr * Math.max(0.0, (double) (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
            case COSINE -> {
                double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
                yield peakLr * Math.max(0.0, 0.5 * (1 + Math.cos(Math.PI * progress)));
            }
        };
    }
}
