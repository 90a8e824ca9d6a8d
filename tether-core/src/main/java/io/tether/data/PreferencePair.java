package io.tether.data;

import java.util.List;

/**
 * A prompt with two completions, stored so that {@code chosen} is the preferred one (a source label of
 * {@code rejected} is applied by swapping). {@code label} says whether the preference is settled: a tie or an
 * unresolved disagreement between annotators stays flagged, never silently turned into a preference.
 *
 * @param margin        how strongly chosen is preferred (source's {@code margin}, or the score difference), or null
 * @param chosenScore   the chosen completion's rating, or null
 * @param votes         annotators' individual verdicts (empty when the source has none)
 * @param agreement     share of votes agreeing with the label, or null without votes
 * @param source        the source's {@code source} field (a subset or dataset name), or null
 */
public record PreferencePair(String promptId, Turns prompt, Turns chosen, Turns rejected, Label label, Double margin,
        Double chosenScore, Double rejectedScore, List<Vote> votes, Double agreement, String chosenGenerator,
        String rejectedGenerator, String source, Origin origin) implements PreferenceRecord {

    /** Whether the pair says which completion is better. */
    public enum Label {
        CHOSEN, TIE, UNRESOLVED;

        public String json() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** One annotator's verdict on this pair, oriented like the stored pair. */
    public record Vote(String annotator, Verdict verdict) {}

    public enum Verdict {
        CHOSEN, REJECTED, TIE;

        public Verdict swapped() {
            return this == CHOSEN ? REJECTED : this == REJECTED ? CHOSEN : TIE;
        }

        public String json() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public PreferencePair {
        votes = List.copyOf(votes);
    }

    public PreferencePair withLabel(Label newLabel) {
        return new PreferencePair(promptId, prompt, chosen, rejected, newLabel, margin, chosenScore, rejectedScore, votes, agreement,
                chosenGenerator, rejectedGenerator, source, origin);
    }

    /** The same pair with chosen and rejected exchanged (and everything attached to them). */
    public PreferencePair swapped() {
        return new PreferencePair(promptId, prompt, rejected, chosen, label, margin == null ? null : -margin, rejectedScore, chosenScore,
                votes.stream().map(v -> new Vote(v.annotator(), v.verdict().swapped())).toList(), agreement,
                rejectedGenerator, chosenGenerator, source, origin);
    }
}
