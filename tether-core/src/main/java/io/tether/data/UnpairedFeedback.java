package io.tether.data;

/** One completion judged on its own (KTO): desirable or not. */
public record UnpairedFeedback(String promptId, Turns prompt, Turns completion, boolean desirable, String source, Origin origin)
        implements PreferenceRecord {}
