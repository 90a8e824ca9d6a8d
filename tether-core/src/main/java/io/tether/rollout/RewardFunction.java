package io.tether.rollout;

import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A programmatic reward: a score for a completion of a prompt, or empty when the completion cannot be scored
 * (e.g. it states no final answer). Online trainers (GRPO, RLOO, PPO) combine several as a weighted sum.
 */
@FunctionalInterface
public interface RewardFunction {
    /**
     * @param prompt      the prompt as text (empty for token-level tasks)
     * @param completion  the decoded completion
     * @param tokens      the completion's token ids
     * @param record      the data record's fields (e.g. a reference answer)
     */
    OptionalDouble score(String prompt, String completion, long[] tokens, Map<String, Object> record);

    /**
     * GSM8K-style verifiable answers: 1 when the completion's final answer ("#### 42", or the last number in it)
     * equals the record's (its {@code answer} field's "#### n"), else 0; unscorable when the completion has no number.
     */
    static RewardFunction exactAnswer(String answerField) {
        Pattern marked = Pattern.compile("####\\s*(-?[\\d,]*\\.?\\d+)");
        Pattern number = Pattern.compile("-?[\\d,]*\\.?\\d+");
        return (prompt, completion, tokens, record) -> {
            Object ref = record.get(answerField);
            if (ref == null) return OptionalDouble.empty();
            Matcher m = marked.matcher(ref.toString());
            String expected = m.find() ? m.group(1) : ref.toString().trim();
            Matcher c = marked.matcher(completion);
            String got = null;
            if (c.find()) got = c.group(1);
            else {
                Matcher any = number.matcher(completion);
                while (any.find()) got = any.group();
            }
            if (got == null) return OptionalDouble.empty();
            return OptionalDouble.of(normalise(got).equals(normalise(expected)) ? 1.0 : 0.0);
        };
    }

    private static String normalise(String n) {
        String s = n.replace(",", "");
        if (s.contains(".")) s = s.replaceAll("0+$", "").replaceAll("\\.$", "");
        return s;
    }

    /** 1 when the completion matches {@code regex} (a format check), else 0. */
    static RewardFunction matches(String regex) {
        Pattern p = Pattern.compile(regex, Pattern.DOTALL);
        return (prompt, completion, tokens, record) -> OptionalDouble.of(p.matcher(completion).find() ? 1.0 : 0.0);
    }

    /** −penalty per token beyond {@code maxTokens} (a length penalty against padding the answer). */
    static RewardFunction lengthPenalty(int maxTokens, double penaltyPerToken) {
        return (prompt, completion, tokens, record) -> OptionalDouble.of(-penaltyPerToken * Math.max(0, tokens.length - maxTokens));
    }

    /** Σ w_i · f_i, counting unscorable parts as 0; unscorable only when every part is. */
    static RewardFunction weightedSum(List<RewardFunction> functions, List<Double> weights) {
        if (functions.size() != weights.size()) throw new IllegalArgumentException(functions.size() + " reward functions but " + weights.size() + " weights");
        return (prompt, completion, tokens, record) -> {
            double total = 0;
            boolean any = false;
            for (int i = 0; i < functions.size(); i++) {
                OptionalDouble s = functions.get(i).score(prompt, completion, tokens, record);
                if (s.isPresent()) {
                    total += weights.get(i) * s.getAsDouble();
                    any = true;
                }
            }
            return any ? OptionalDouble.of(total) : OptionalDouble.empty();
        };
    }
}
