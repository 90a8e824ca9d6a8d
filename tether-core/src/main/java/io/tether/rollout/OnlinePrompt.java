package io.tether.rollout;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.data.PromptRecords;
import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.text.TextAssets;

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

    /** Prompts as {@link PromptRecords} reads them; each keeps its whole record for reward functions and judges (e.g. 'answer'). */
    public static List<OnlinePrompt> read(Path file, TextAssets text, int vocab) {
        return of(PromptRecords.read(file, text, vocab));
    }

    /** As {@link #read(Path, TextAssets, int)}, under {@code policy}, each prompt cut to its last max_prompt_length tokens by {@code truncation} (or null). */
    public static TokenRecords.Read<OnlinePrompt> read(Path file, TextAssets text, int vocab, TokenRecords.InvalidRecords policy, Truncation truncation) {
        TokenRecords.Read<PromptRecords.PromptRecord> read = PromptRecords.read(file, text, vocab, policy, truncation);
        return new TokenRecords.Read<>(of(read.records()), read.problems(), read.unsettled());
    }

    private static List<OnlinePrompt> of(List<PromptRecords.PromptRecord> records) {
        ObjectMapper json = new ObjectMapper();
        List<OnlinePrompt> out = new ArrayList<>();
        for (PromptRecords.PromptRecord p : records)
            out.add(new OnlinePrompt(p.ids(), json.convertValue(p.source(), new TypeReference<Map<String, Object>>() {}), p.text()));
        return out;
    }
}
