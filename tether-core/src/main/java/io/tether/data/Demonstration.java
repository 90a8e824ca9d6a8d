package io.tether.data;

/** A prompt with the completion to imitate (SFT); a {@code text} record has an empty text prompt. */
public record Demonstration(String promptId, Turns prompt, Turns completion, Origin origin) implements PreferenceRecord {}
