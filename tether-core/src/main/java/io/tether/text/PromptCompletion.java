package io.tether.text;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import io.tether.engine.ConfigException;

/**
 * The one way every trainer turns a prompt and a completion into tokens, as TRL does: the prompt is tokenized on
 * its own (a chat prompt rendered with the generation prompt), the completion's tokens are whatever follows the
 * prompt's tokens in tokenize(prompt + completion). When the prompt's tokens are not a prefix of the whole (a
 * merge across the boundary, a template that renders history differently), the result says so; it is never hidden.
 */
public final class PromptCompletion {
    private PromptCompletion() {}

    /**
     * The prompt's own tokens, the completion's tokens (from the joint tokenization) and, when the prompt is not a
     * prefix of the joint tokens, where they first differ.
     */
    public record Tokenized(long[] promptIds, long[] completionIds, Mismatch mismatch) {
        /** prompt + completion ids, as the model sees them. */
        public long[] ids() {
            long[] all = Arrays.copyOf(promptIds, promptIds.length + completionIds.length);
            System.arraycopy(completionIds, 0, all, promptIds.length, completionIds.length);
            return all;
        }

        /** 1 on completion tokens. */
        public long[] completionMask() {
            long[] m = new long[promptIds.length + completionIds.length];
            Arrays.fill(m, promptIds.length, m.length, 1);
            return m;
        }
    }

    /** The first position where tokenize(prompt) and tokenize(prompt + completion) disagree. */
    public record Mismatch(int position, long promptToken, long jointToken, String detail) {}

    /**
     * Standard text: prompt ids = tokenize(prompt) with special tokens (BOS); joint = tokenize(prompt + completion
     * [+ eos]); completion ids = joint after the prompt's length.
     */
    public static Tokenized text(Tokenizer t, String prompt, String completion, boolean appendEos) {
        String eos = t.specialTokens().eos();
        if (appendEos && eos == null) throw new ConfigException("appending EOS needs a tokenizer with an eos_token");
        long[] promptIds = t.encode(prompt, true);
        long[] joint = t.encode(prompt + completion + (appendEos ? eos : ""), true);
        return split(t, promptIds, joint);
    }

    /**
     * Conversations: prompt = render(prompt messages, add_generation_prompt=True); joint = render(prompt +
     * completion messages); both tokenized without added special tokens (the template writes them).
     */
    public static Tokenized chat(Tokenizer t, ChatTemplate template, List<Map<String, Object>> promptMessages,
                                 List<Map<String, Object>> completionMessages, Map<String, Object> extra) {
        String promptText = template.render(promptMessages, true, extra).text();
        List<Map<String, Object>> all = new ArrayList<>(promptMessages);
        all.addAll(completionMessages);
        String jointText = template.render(all, false, extra).text();
        return split(t, t.encode(promptText, false), t.encode(jointText, false));
    }

    private static Tokenized split(Tokenizer t, long[] promptIds, long[] joint) {
        Mismatch mismatch = null;
        for (int i = 0; i < promptIds.length; i++) {
            if (i >= joint.length || joint[i] != promptIds[i]) {
                long jointToken = i < joint.length ? joint[i] : -1;
                String detail = "tokenize(prompt) is not a prefix of tokenize(prompt + completion) at token " + i + ": prompt has "
                        + show(t, promptIds[i]) + ", the joint text has " + (jointToken < 0 ? "nothing" : show(t, jointToken))
                        + " (the completion mask would be wrong here)";
                mismatch = new Mismatch(i, promptIds[i], jointToken, detail);
                break;
            }
        }
        long[] completion = joint.length > promptIds.length ? Arrays.copyOfRange(joint, promptIds.length, joint.length) : new long[0];
        return new Tokenized(promptIds, completion, mismatch);
    }

    private static String show(Tokenizer t, long id) {
        String token;
        try {
            token = t.idToToken(id);
        } catch (IllegalArgumentException e) {
            token = "?";
        }
        return id + " '" + token + "'";
    }

    /**
     * Ids of a rendered conversation and a mask that is 1 exactly on tokens inside the template's
     * {@code {% generation %}} spans (assistant-only loss).
     */
    public static long[][] assistantMask(Tokenizer t, ChatTemplate.Rendered rendered) {
        Tokenizer.Encoding e = t.encodeWithOffsets(rendered.text(), false);
        long[] mask = new long[e.ids().length];
        for (int i = 0; i < mask.length; i++) {
            for (int[] span : rendered.generationSpans()) {
                if (e.starts()[i] >= span[0] && e.ends()[i] <= span[1] && e.ends()[i] > e.starts()[i]) {
                    mask[i] = 1;
                    break;
                }
            }
        }
        return new long[][] {e.ids(), mask};
    }
}
