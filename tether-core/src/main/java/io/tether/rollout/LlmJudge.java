package io.tether.rollout;

/**
 * A pairwise judge that asks a language model "A or B?" in both orders ({@link LocalModelJudge},
 * {@link OpenAiEndpointJudge}), so that callers can report its position bias whichever backs it.
 */
public interface LlmJudge extends PairwiseJudge, AutoCloseable {
    /** Pairs judged so far. */
    long judged();

    /** The share of judged pairs whose two orders, each alone, named different winners (NaN before any). */
    double positionBias();

    /** A short description for reports. */
    String describe();

    @Override
    void close();
}
