package io.tether.scenario;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A stand-in for paid human labellers: mostly agrees with the {@link GoldRubric}, but with probability
 * {@code lengthBias} it prefers the longer answer whatever it says, and then with probability {@code noise} flips its
 * label. Length bias is what makes reward hacking possible here: a reward model fit to these labels learns to like
 * padding, which the rubric penalises, so the hack shows as proxy reward rising while gold score falls. Its labels
 * come from one seeded stream, so the same calls in the same order give the same labels; it is not thread-safe.
 */
public final class NoisyAnnotator {
    private final double noise, lengthBias;
    private final long seed;
    private final Random rng;
    private final GoldRubric rubric = new GoldRubric();
    /** The gold score from which an answer earns a thumbs up: correct answers, padded or not, and nothing worse. */
    static final double THUMBS_UP_SCORE = 0.75;

    /** Why a label came out as it did (for tests and diagnostics; the rows record the settings, not the cause). */
    public enum Cause { RUBRIC, RUBRIC_TIE, LENGTH, NOISE }

    /** A verdict on a pair: whether the first answer is preferred, the rubric's score of first minus second, and why. */
    public record Label(boolean prefersFirst, double rubricMargin, Cause cause) {}

    public NoisyAnnotator(double noise, double lengthBias, long seed) {
        if (!(noise >= 0 && noise <= 1)) throw new IllegalArgumentException("noise must be in [0, 1], got " + noise);
        if (!(lengthBias >= 0 && lengthBias <= 1)) throw new IllegalArgumentException("length bias must be in [0, 1], got " + lengthBias);
        this.noise = noise;
        this.lengthBias = lengthBias;
        this.seed = seed;
        this.rng = new Random(seed);
    }

    public double noise() { return noise; }

    public double lengthBias() { return lengthBias; }

    /** The annotator's name in provenance, with every setting that shapes its labels. */
    public String name() {
        return "noisy-annotator(noise=" + noise + ",length_bias=" + lengthBias + ",seed=" + seed + ")";
    }

    /** Labels a pair; a forced choice, so a rubric tie is settled by a coin. */
    public Label label(Case c, String first, String second) {
        double margin = rubric.score(c, first) - rubric.score(c, second);
        boolean prefersFirst;
        Cause cause;
        if (rng.nextDouble() < lengthBias && first.length() != second.length()) {
            prefersFirst = first.length() > second.length();
            cause = Cause.LENGTH;
        } else if (margin != 0) {
            prefersFirst = margin > 0;
            cause = Cause.RUBRIC;
        } else {
            prefersFirst = rng.nextBoolean();
            cause = Cause.RUBRIC_TIE;
        }
        if (rng.nextDouble() < noise) {
            prefersFirst = !prefersFirst;
            cause = Cause.NOISE;
        }
        return new Label(prefersFirst, margin, cause);
    }

    /** A thumbs up or down for one answer (KTO): up when the rubric scores it {@link #THUMBS_UP_SCORE} or more, or, under length bias, when it is long. */
    public boolean thumbsUp(Case c, String response) {
        boolean up = rng.nextDouble() < lengthBias ? response.strip().length() > GoldRubric.CONCISE_LENGTH : rubric.score(c, response) >= THUMBS_UP_SCORE;
        return rng.nextDouble() < noise ? !up : up;
    }

    /**
     * A labelled pair as a TRL preference row ({@code prompt}, {@code chosen}, {@code rejected}, {@code prompt_id}) with
     * its provenance: who labelled it and how noisily, the rubric's margin of chosen over rejected (negative when the
     * annotator went against the rubric), and the styles that generated chosen and rejected, in that order.
     */
    public Map<String, Object> preferenceRow(Case c, ResponseStyle firstStyle, String first, ResponseStyle secondStyle, String second) {
        Label l = label(c, first, second);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("prompt", c.prompt());
        row.put("chosen", l.prefersFirst() ? first : second);
        row.put("rejected", l.prefersFirst() ? second : first);
        row.put("prompt_id", c.id());
        row.put("annotator", name());
        row.put("noise", noise);
        row.put("length_bias", lengthBias);
        row.put("rubric", GoldRubric.VERSION);
        row.put("rubric_margin", round(l.prefersFirst() ? l.rubricMargin() : -l.rubricMargin()));
        ResponseStyle chosen = l.prefersFirst() ? firstStyle : secondStyle, rejected = l.prefersFirst() ? secondStyle : firstStyle;
        row.put("generator", RefundWorld.GENERATOR);
        row.put("generator_styles", List.of(style(chosen), style(rejected)));
        row.put("chosen_generator", style(chosen));
        row.put("rejected_generator", style(rejected));
        return row;
    }

    static String style(ResponseStyle s) {
        return s.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Six decimals: enough for a margin, and free of binary noise such as 0.30000000000000004 in the files. */
    static double round(double x) {
        return Math.round(x * 1e6) / 1e6;
    }
}
