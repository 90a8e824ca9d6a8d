package io.tether.model;

import java.nio.file.Path;

/** Paths to the shared real artifacts (never copied into the repo). */
public final class Fixtures {
    private Fixtures() {}

    public static Path shared() {
        return Path.of(System.getProperty("tether.shared", "../shared"));
    }

    public static Path checkpoint(String name) {
        return shared().resolve("fixtures/checkpoints").resolve(name);
    }

    public static final String LLAMA = "verl-arithmetic-llama";
    public static final String GPT2 = "lm-buddy-fake-gpt2";
    public static final String GPT2_BACKBONE = "lm-buddy-tiny-gpt2";
}
