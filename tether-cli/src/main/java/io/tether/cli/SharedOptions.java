package io.tether.cli;

import java.nio.file.Path;

import picocli.CommandLine.Option;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;

/**
 * Options several commands share, as picocli mixins: declared once, so the name, default, help and check are the
 * same in every command that takes them ({@link RunOptions} holds the training commands' own; {@link JsonlOutput}
 * the {@code --out} of the commands that write JSONL).
 */
final class SharedOptions {
    private SharedOptions() {}

    /** {@code --model}: the checkpoint a command loads and runs (generate, logprobs, rm score, rm eval). */
    static final class Model {
        @Option(names = "--model", required = true, paramLabel = "<model>", description = "Hugging Face model directory (config.json + safetensors)")
        Path path;
    }

    /** {@code --dtype}: the dtype a command computes in (generate, logprobs). */
    static final class ComputeDtype {
        @Option(names = "--dtype", defaultValue = "fp32", paramLabel = "<dtype>", description = "compute dtype: fp32, fp64 or bf16 (default: ${DEFAULT-VALUE})")
        String name;

        DType parse() {
            return DType.parse(name);
        }
    }

    /** {@code --batch-size}: how many sequences go through the model together (generate, logprobs, eval, rm score, rm eval). */
    static final class BatchSize {
        @Option(names = "--batch-size", defaultValue = "8", paramLabel = "<batchSize>", description = "sequences per forward pass (default: ${DEFAULT-VALUE})")
        int value;

        /** The batch size, checked: at least 1. */
        int get() {
            if (value < 1) throw new ConfigException("--batch-size must be >= 1, got " + value);
            return value;
        }
    }

    /** {@code --seed}: the sampling seed of commands that generate (generate, eval). */
    static final class SamplingSeed {
        @Option(names = "--seed", defaultValue = "0", paramLabel = "<seed>", description = "sampling seed (default: ${DEFAULT-VALUE})")
        long value;
    }
}
