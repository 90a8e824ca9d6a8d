package io.tether.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import io.tether.engine.ConfigException;

/**
 * Rated completions into one pair per prompt, as UltraFeedback's binarized sets are made: the best-scored completion
 * is chosen; rejected is the worst, or a random one scored strictly lower. A prompt whose completions all tie gives
 * no pair (the caller counts it); ties are never broken by position.
 */
public final class Binarize {
    private Binarize() {}

    public enum Strategy {
        BEST_WORST, BEST_RANDOM;

        public static Strategy parse(String name) {
            return switch (name) {
                case "best-worst" -> BEST_WORST;
                case "best-random" -> BEST_RANDOM;
                default -> throw new ConfigException("unknown binarization '" + name + "'; expected best-worst or best-random");
            };
        }
    }

    /** The pair, or null when every completion has the best score. The random draw depends on the seed and the record's position in its file. */
    public static PreferencePair pair(RatedCompletions rc, Strategy strategy, long seed) {
        List<RatedCompletions.Rated> cs = rc.completions();
        if (cs.size() < 2) return null;
        RatedCompletions.Rated best = cs.get(0);
        for (var c : cs) if (c.score() > best.score()) best = c;
        List<RatedCompletions.Rated> lower = new ArrayList<>();
        for (var c : cs) if (c.score() < best.score()) lower.add(c);
        if (lower.isEmpty()) return null;
        RatedCompletions.Rated other;
        if (strategy == Strategy.BEST_WORST) {
            other = lower.get(0);
            for (var c : lower) if (c.score() < other.score()) other = c;
        } else {
            other = lower.get(new Random(PromptKeys.combine(seed, rc.origin().index())).nextInt(lower.size()));
        }
        return new PreferencePair(rc.promptId(), rc.prompt(), best.completion(), other.completion(), PreferencePair.Label.CHOSEN,
                best.score() - other.score(), best.score(), other.score(), List.of(), null, best.generator(), other.generator(), rc.source(), rc.origin());
    }
}
