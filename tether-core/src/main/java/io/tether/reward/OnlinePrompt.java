package io.tether.reward;

import java.util.List;
import java.util.Map;

/**
 * A prompt of an online method (GRPO, RLOO, PPO, online DPO): its token ids, its data record (for reward functions
 * such as an exact answer), its text, and, once the method has prepared it, the completions sampled for it.
 */
public record OnlinePrompt(long[] ids, Map<String, Object> record, String text, List<Experience> experiences) {
    public OnlinePrompt(long[] ids, Map<String, Object> record, String text) {
        this(ids, record, text, null);
    }

    public OnlinePrompt withExperiences(List<Experience> e) {
        return new OnlinePrompt(ids, record, text, List.copyOf(e));
    }
}
