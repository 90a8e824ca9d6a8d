package io.tether.data;

import java.nio.file.Path;

/** One record of preference data, whatever file format it came from; {@link PreferenceReader} produces them. */
public sealed interface PreferenceRecord permits PreferencePair, UnpairedFeedback, PromptOnly, RatedCompletions, Demonstration {
    /**
     * Where a record came from: the file, its 1-based line (for JSON arrays, the line the element starts on) and its
     * 1-based position among the file's records ({@code index}: every non-blank line or array element counts, so in
     * JSONL it is the line unless blank lines intervene; it tells apart the elements of a one-line JSON array).
     */
    record Origin(Path file, long line, long index) {
        @Override
        public String toString() {
            return file + ":" + line;
        }
    }

    /** The source's prompt id, or null; {@link PromptKeys} derives one from the prompt text when it is absent. */
    String promptId();

    Turns prompt();

    Origin origin();
}
