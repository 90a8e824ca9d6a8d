package io.tether.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import picocli.CommandLine.Option;

import io.tether.run.ConfigTree;

/** The options every training command shares: a YAML file, key=value overrides, their shorthands, and --resume. */
final class RunOptions {
    @Option(names = "--config", description = "YAML file of settings")
    Path config;

    @Option(names = "--set", description = "override a setting: key=value (repeatable), e.g. --set learning_rate=1e-4")
    List<String> overrides = new ArrayList<>();

    @Option(names = "--model", description = "shorthand for --set model=DIR") Path model;
    @Option(names = "--data", description = "shorthand for --set data=FILE") Path data;
    @Option(names = "--output-dir", description = "shorthand for --set output_dir=DIR") Path outputDir;
    @Option(names = "--max-steps", description = "shorthand for --set max_steps=N") Integer maxSteps;

    @Option(names = "--resume", description = "continue from the newest checkpoint in output_dir")
    boolean resume;

    /** The settings: the file, then --set overrides, then the shorthands. */
    ConfigTree settings() {
        List<String> all = new ArrayList<>(overrides);
        if (model != null) all.add("model=" + model);
        if (data != null) all.add("data=" + data);
        if (outputDir != null) all.add("output_dir=" + outputDir);
        if (maxSteps != null) all.add("max_steps=" + maxSteps);
        return ConfigTree.load(config, all);
    }
}
