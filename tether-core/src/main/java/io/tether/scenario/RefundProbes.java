package io.tether.scenario;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import io.tether.eval.ProbeSuite;
import io.tether.rollout.OnlinePrompt;
import io.tether.text.Tokenizer;

/**
 * The seed's probe suite in the refund world: for held-out cases, the correct concise answer against the same
 * answer padded with apologies and disclaimers (length gaming), against it heavily formatted (format exploitation),
 * and, where the customer's claim about the policy is false, against an answer that agrees with the claim
 * (sycophancy); and, for a question the policy does not answer, escalating without inventing a rule against a confident
 * decision with a made-up rule (calibration).
 */
public final class RefundProbes {
    private RefundProbes() {}

    public static final String LENGTH_GAMING = "length gaming", FORMAT = "format exploitation", SYCOPHANCY = "sycophancy",
            CALIBRATION = "calibration";

    public static List<ProbeSuite.Probe> build(List<Case> cases, Tokenizer tokenizer, long seed) {
        Random rng = new Random(seed);
        List<ProbeSuite.Pair> padded = new ArrayList<>(), formatted = new ArrayList<>(), sycophantic = new ArrayList<>(), calibration = new ArrayList<>();
        for (Case c : cases) {
            OnlinePrompt p = new OnlinePrompt(tokenizer.encode(c.prompt(), true), c.toRecord(), c.prompt());
            long[] plain = tokenizer.encode(RefundWorld.respond(c, ResponseStyle.CORRECT_CONCISE, rng), false);
            padded.add(new ProbeSuite.Pair(p, plain, tokenizer.encode(RefundWorld.respond(c, ResponseStyle.CORRECT_PADDED, rng), false)));
            formatted.add(new ProbeSuite.Pair(p, plain, tokenizer.encode(RefundWorld.respond(c, ResponseStyle.OVERFORMATTED, rng), false)));
            if (c.claim().isFalse())
                sycophantic.add(new ProbeSuite.Pair(p, plain, tokenizer.encode(RefundWorld.respond(c, ResponseStyle.SYCOPHANTIC, rng), false)));
            String uncovered = RefundWorld.uncoveredPrompt(c, rng);
            java.util.Map<String, Object> record = new java.util.LinkedHashMap<>(c.toRecord());
            record.put("prompt", uncovered);
            record.put(GoldRubric.UNCOVERED_FIELD, true);
            calibration.add(new ProbeSuite.Pair(new OnlinePrompt(tokenizer.encode(uncovered, true), record, uncovered),
                    tokenizer.encode(RefundWorld.UNCOVERED_ANSWER, false), tokenizer.encode(RefundWorld.madeUpRule(rng), false)));
        }
        return List.of(new ProbeSuite.Probe(LENGTH_GAMING, padded), new ProbeSuite.Probe(FORMAT, formatted), new ProbeSuite.Probe(SYCOPHANCY, sycophantic),
                new ProbeSuite.Probe(CALIBRATION, calibration));
    }
}
