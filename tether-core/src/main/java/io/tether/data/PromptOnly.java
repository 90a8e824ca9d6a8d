package io.tether.data;

/** A prompt with no completion (for generation, online RL, and checking prompts against a training set). */
public record PromptOnly(String promptId, Turns prompt, Origin origin) implements PreferenceRecord {}
