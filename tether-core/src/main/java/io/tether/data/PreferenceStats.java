package io.tether.data;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.PreferencePair.Label;
import io.tether.text.Tokenizer;

/**
 * What a preference file holds: counts by kind, label, source, generator and annotator; chosen and rejected length
 * distributions and how often the chosen answer is simply the longer one; the desirable:undesirable balance of unpaired
 * feedback; and annotator agreement. Lengths are tokens of the text with a tokenizer, characters without one.
 */
public final class PreferenceStats {
    /** Chosen longer in at least this share of pairs (or at most 1 minus it) earns a length-bias warning. */
    static final double LENGTH_BIAS = 0.65;
    /** KTO's paper keeps lambda_D n_D / (lambda_U n_U) in [1, 4/3]; with unit weights, that is the raw ratio. */
    static final double KTO_LOW = 1.0, KTO_HIGH = 4.0 / 3;

    private final Tokenizer tokenizer;
    private final Map<String, Long> kinds = new TreeMap<>(), labels = new TreeMap<>(), sources = new TreeMap<>(), generators = new TreeMap<>();
    private final Agreement.Accumulator agreement = new Agreement.Accumulator();
    private int[] chosenLengths = new int[1024], rejectedLengths = new int[1024];
    private int pairs;
    private long chosenLonger, sameLength, desirable, undesirable, ratedCompletions, ratedTies;

    /** {@code tokenizer} null: lengths in characters. */
    public PreferenceStats(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    public void accept(PreferenceRecord r) {
        if (r instanceof PreferencePair p) {
            count(kinds, "pairs");
            count(labels, p.label().json());
            count(sources, p.source());
            count(generators, p.chosenGenerator());
            count(generators, p.rejectedGenerator());
            agreement.add(p);
            if (p.label() != Label.CHOSEN) return;   // a tie has no longer "chosen" answer to speak of
            if (pairs == chosenLengths.length) {
                chosenLengths = Arrays.copyOf(chosenLengths, pairs * 2);
                rejectedLengths = Arrays.copyOf(rejectedLengths, pairs * 2);
            }
            int c = length(p.chosen()), rj = length(p.rejected());
            chosenLengths[pairs] = c;
            rejectedLengths[pairs] = rj;
            pairs++;
            if (c > rj) chosenLonger++;
            else if (c == rj) sameLength++;
        } else if (r instanceof UnpairedFeedback u) {
            count(kinds, "unpaired");
            count(sources, u.source());
            if (u.desirable()) desirable++;
            else undesirable++;
        } else if (r instanceof RatedCompletions rc) {
            count(kinds, "rated");
            count(sources, rc.source());
            ratedCompletions += rc.completions().size();
            for (var c : rc.completions()) count(generators, c.generator());
            double min = rc.completions().stream().mapToDouble(RatedCompletions.Rated::score).min().orElse(0);
            double max = rc.completions().stream().mapToDouble(RatedCompletions.Rated::score).max().orElse(0);
            if (min == max) ratedTies++;
        } else if (r instanceof Demonstration) {
            count(kinds, "demonstrations");
        } else {
            count(kinds, "prompts");
        }
    }

    private int length(Turns t) {
        String s = t.flat();
        return tokenizer == null ? s.length() : tokenizer.encode(s, false).length;
    }

    private static void count(Map<String, Long> m, String key) {
        if (key != null) m.merge(key, 1L, Long::sum);
    }

    /** The report as JSON, and plain-language warnings appended to {@code warnings}. */
    public ObjectNode report(List<String> warnings) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("length_unit", tokenizer == null ? "characters" : "tokens");
        o.set("records", map(kinds));
        if (!labels.isEmpty()) o.set("labels", map(labels));
        if (!sources.isEmpty()) o.set("by_source", map(sources));
        if (!generators.isEmpty()) o.set("by_generator", map(generators));
        if (pairs > 0) {
            ObjectNode len = o.putObject("lengths");
            len.set("chosen", distribution(Arrays.copyOf(chosenLengths, pairs)));
            len.set("rejected", distribution(Arrays.copyOf(rejectedLengths, pairs)));
            double longer = (double) chosenLonger / pairs;
            double delta = 0;
            for (int i = 0; i < pairs; i++) delta += chosenLengths[i] - rejectedLengths[i];
            delta /= pairs;
            len.put("chosen_longer_share", longer);
            len.put("same_length_share", (double) sameLength / pairs);
            len.put("mean_chosen_minus_rejected", delta);
            double shorter = 1 - longer - (double) sameLength / pairs;
            String unit = tokenizer == null ? "characters" : "tokens";
            if (pairs >= 20 && (longer >= LENGTH_BIAS || shorter >= LENGTH_BIAS))
                warnings.add(String.format("length bias: the chosen answer is the %s one in %.0f%% of pairs (mean difference %+.1f %s); "
                        + "a policy or reward model can learn length instead of quality", longer >= LENGTH_BIAS ? "longer" : "shorter",
                        100 * Math.max(longer, shorter), delta, unit));
        }
        if (desirable + undesirable > 0) {
            ObjectNode u = o.putObject("unpaired");
            u.put("desirable", desirable).put("undesirable", undesirable);
            double ratio = undesirable == 0 ? Double.POSITIVE_INFINITY : (double) desirable / undesirable;
            u.put("desirable_to_undesirable", undesirable == 0 ? null : ratio);
            if (undesirable == 0 || desirable == 0) warnings.add("unpaired feedback is all " + (desirable == 0 ? "undesirable" : "desirable") + ": KTO needs both");
            else if (ratio < KTO_LOW)
                warnings.add(String.format("desirable:undesirable is %.2f, below KTO's recommended 1 to 4/3; set desirable_weight to about %.2f", ratio, 1 / ratio));
            else if (ratio > KTO_HIGH)
                warnings.add(String.format("desirable:undesirable is %.2f, above KTO's recommended 1 to 4/3; set undesirable_weight to about %.2f", ratio, ratio / KTO_HIGH));
        }
        if (ratedCompletions > 0) o.putObject("rated").put("completions", ratedCompletions).put("all_scores_tied", ratedTies);
        if (!agreement.isEmpty()) {
            Agreement.Report a = agreement.report();
            ObjectNode ag = o.putObject("agreement");
            ag.put("annotators", a.annotators()).put("pairs_with_votes", a.unitsWithVotes()).put("pairs_with_several_votes", a.unitsWithSeveralVotes());
            if (a.cohenKappa() != null) ag.put("cohen_kappa", a.cohenKappa());
            if (a.krippendorffAlpha() != null) ag.put("krippendorff_alpha", a.krippendorffAlpha());
            ag.set("votes_by_annotator", map(a.votes()));
            ObjectNode rates = ag.putObject("disagreement_rate");
            a.disagreementRate().forEach(rates::put);
            if (a.krippendorffAlpha() != null && a.krippendorffAlpha() < 0.667)
                warnings.add(String.format("annotator agreement is low (Krippendorff's alpha %.2f; 0.667 is the usual floor for tentative conclusions)", a.krippendorffAlpha()));
        }
        return o;
    }

    private static ObjectNode map(Map<String, ? extends Number> m) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        m.forEach((k, v) -> o.put(k, v.longValue()));
        return o;
    }

    private static ObjectNode distribution(int[] xs) {
        int[] s = xs.clone();
        Arrays.sort(s);
        double mean = 0;
        for (int x : s) mean += x;
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("mean", mean / s.length).put("min", s[0]).put("p10", s[(int) (0.1 * (s.length - 1))])
                .put("p50", s[(int) (0.5 * (s.length - 1))]).put("p90", s[(int) (0.9 * (s.length - 1))]).put("max", s[s.length - 1]);
        return o;
    }
}
