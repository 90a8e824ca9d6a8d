package io.tether.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.engine.DType;
import io.tether.model.LoraAdapters;
import io.tether.model.Models;

@Command(name = "merge", mixinStandardHelpOptions = true,
        description = "Merge a PEFT LoRA adapter into its base model and write a plain HF checkpoint.")
final class MergeCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Option(names = "--model", required = true, description = "the base model directory") Path model;
    @Option(names = "--adapter", required = true, description = "adapter directory (adapter_config.json + adapter_model.safetensors)") Path adapter;
    @Option(names = "--out", required = true, description = "where to write the merged model") Path out;
    @Option(names = "--dtype", description = "storage dtype (default: as the base stores it)") String dtype;

    @Override
    public Integer call() throws IOException {
        root.initEngine();
        try (Models.LoadedModel base = Models.load(model, DType.F32)) {
            LoraAdapters.load(base.model(), adapter).merge();
            Models.save(base.model(), out, dtype == null ? null : DType.parse(dtype), base.storedDtypes(), model, Models.DEFAULT_MAX_SHARD_BYTES);
        }
        root.spec.commandLine().getErr().println("merged " + adapter + " into " + model + " -> " + out);
        return 0;
    }
}
