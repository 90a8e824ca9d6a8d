package io.tether.data;

import java.util.List;

/** One prompt with several scored completions (UltraFeedback-style), to be binarized into pairs. */
public record RatedCompletions(String promptId, Turns prompt, List<Rated> completions, String source, Origin origin) implements PreferenceRecord {
    /** A completion with its score; {@code generator} is the model that wrote it, or null. */
    public record Rated(Turns completion, double score, String generator) {}

    public RatedCompletions {
        completions = List.copyOf(completions);
    }
}
