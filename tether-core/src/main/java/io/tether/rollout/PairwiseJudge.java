package io.tether.rollout;

/**
 * A judge that compares two completions of one prompt, as TRL's pairwise judges do (PairRM, an LLM judge, or a
 * rubric): which is better, or neither. Online DPO can label its pairs with one instead of scoring each completion.
 */
@FunctionalInterface
public interface PairwiseJudge {
    enum Verdict { FIRST, SECOND, TIE }

    /**
     * @param prompt  the prompt with its record (e.g. the facts a rubric checks)
     * @param first   the first completion's decoded text (empty without a tokenizer)
     * @param second  the second completion's decoded text
     */
    Verdict judge(OnlinePrompt prompt, long[] firstTokens, String first, long[] secondTokens, String second);
}
