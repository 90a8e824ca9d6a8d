package io.tether.data;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import io.tether.engine.ConfigException;

/**
 * TRL's length limits on tokenized records, counting what they cut (TRL v0.24):
 * <ul>
 * <li>DPO family ({@link #pair}): the prompt keeps its last {@code max_prompt_length} tokens, completions their first
 * {@code max_completion_length}; prompt+completion over {@code max_length} loses its end ({@code keep_start}) or its
 * start ({@code keep_end}, TRL's default). TRL cuts the chosen and the rejected row separately; here both share one
 * prompt, cut so that the longer side fits, so the pair is still compared under the same context.</li>
 * <li>KTO ({@link #unpaired}): as one row of the DPO family. TRL's KTOTrainer (v0.24) instead cuts an over-long
 * record's prompt to max_prompt_length and its completion to max_length - max_prompt_length, which with a model of
 * 512 positions (max_length = max_prompt_length = 512) would drop every over-long record.</li>
 * <li>Whole sequences ({@link #sequence}, SFT and reward models): the first (or last) {@code max_length} tokens, or,
 * with {@link Mode#DROP} (TRL's RewardTrainer filter), the record is left out.</li>
 * </ul>
 * A record that would keep no prompt token or no completion token is dropped (TRL would train on it with an empty
 * loss mask), and counted.
 */
public final class Truncation {
    public enum Mode {
        KEEP_END, KEEP_START, DROP;

        public String key() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** {@code keep_end}, {@code keep_start} or (where {@code dropAllowed}) {@code drop}. */
        public static Mode parse(String s, boolean dropAllowed) {
            for (Mode m : values()) if (m.key().equals(s) && (dropAllowed || m != DROP)) return m;
            throw new ConfigException("key 'truncation_mode': expected keep_end" + ", keep_start" + (dropAllowed ? " or drop" : "") + ", got '" + s + "'");
        }
    }

    private final int maxLength, maxPromptLength, maxCompletionLength;
    private final Mode mode;
    private long truncated, tokensCut, dropped;

    /** {@code maxPromptLength} and {@code maxCompletionLength} 0: no separate limit. */
    public Truncation(int maxLength, int maxPromptLength, int maxCompletionLength, Mode mode) {
        if (maxLength < 2) throw new ConfigException("key 'max_length': must be >= 2, got " + maxLength);
        if (maxPromptLength < 0) throw new ConfigException("key 'max_prompt_length': must be >= 1, got " + maxPromptLength);
        if (maxCompletionLength < 0) throw new ConfigException("key 'max_completion_length': must be >= 1, got " + maxCompletionLength);
        this.maxLength = maxLength;
        this.maxPromptLength = maxPromptLength;
        this.maxCompletionLength = maxCompletionLength;
        this.mode = mode;
    }

    /** TRL's default max_length (DPOConfig, KTOConfig, SFTConfig, RewardConfig at v0.24), capped at the model's positions. */
    public static int defaultMaxLength(int modelPositions) {
        return Math.min(1024, modelPositions);
    }

    /** TRL's default max_prompt_length (512), capped at {@code maxLength}. */
    public static int defaultMaxPromptLength(int maxLength) {
        return Math.min(512, maxLength);
    }

    public int maxLength() { return maxLength; }

    public int maxPromptLength() { return maxPromptLength; }

    public Mode mode() { return mode; }

    /** {prompt, chosen, rejected} within the limits, or null (dropped). */
    public long[][] pair(long[] prompt, long[] chosen, long[] rejected) {
        long before = (long) prompt.length * 2 + chosen.length + rejected.length;
        long[] p = keepEnd(prompt, maxPromptLength), c = keepStart(chosen, maxCompletionLength), r = keepStart(rejected, maxCompletionLength);
        int over = p.length + Math.max(c.length, r.length) - maxLength;
        if (over > 0) {
            if (mode == Mode.KEEP_END) {
                p = over < p.length ? Arrays.copyOfRange(p, over, p.length) : new long[0];
            } else {
                int room = maxLength - p.length;
                c = keepStart(c, Math.max(room, 0), true);
                r = keepStart(r, Math.max(room, 0), true);
            }
        }
        return count(before, (long) p.length * 2 + c.length + r.length, p.length == 0 || c.length == 0 || r.length == 0) ? null : new long[][] {p, c, r};
    }

    /** {prompt, completion} within the limits, as one row of {@link #pair}, or null (dropped). */
    public long[][] unpaired(long[] prompt, long[] completion) {
        long before = prompt.length + completion.length;
        long[] p = keepEnd(prompt, maxPromptLength), c = keepStart(completion, maxCompletionLength);
        int over = p.length + c.length - maxLength;
        if (over > 0) {
            if (mode == Mode.KEEP_END) p = over < p.length ? Arrays.copyOfRange(p, over, p.length) : new long[0];
            else c = keepStart(c, Math.max(maxLength - p.length, 0), true);
        }
        return count(before, p.length + c.length, p.length == 0 || c.length == 0) ? null : new long[][] {p, c};
    }

    /** A whole sequence within max_length (its start, or its end), or null when the mode drops over-long ones. */
    public long[] sequence(long[] ids) {
        if (ids.length <= maxLength) return ids;
        if (mode == Mode.DROP) {
            dropped++;
            return null;
        }
        truncated++;
        tokensCut += ids.length - maxLength;
        return mode == Mode.KEEP_END ? Arrays.copyOfRange(ids, ids.length - maxLength, ids.length) : Arrays.copyOf(ids, maxLength);
    }

    /** A prompt to generate from: its last max_prompt_length tokens. */
    public long[] prompt(long[] ids) {
        long[] p = keepEnd(ids, maxPromptLength);
        count(ids.length, p.length, false);
        return p;
    }

    private boolean count(long before, long after, boolean drop) {
        if (drop) {
            dropped++;
            return true;
        }
        if (after < before) {
            truncated++;
            tokensCut += before - after;
        }
        return false;
    }

    private static long[] keepEnd(long[] ids, int n) {
        return n <= 0 || ids.length <= n ? ids : Arrays.copyOfRange(ids, ids.length - n, ids.length);
    }

    private static long[] keepStart(long[] ids, int n) {
        return keepStart(ids, n, false);
    }

    private static long[] keepStart(long[] ids, int n, boolean zeroMeansNothing) {
        if (n <= 0 && !zeroMeansNothing) return ids;
        return ids.length <= n ? ids : Arrays.copyOf(ids, Math.max(n, 0));
    }

    /** Records cut (still trained on), tokens cut from them, and records dropped. */
    public long truncated() { return truncated; }

    public long tokensCut() { return tokensCut; }

    public long dropped() { return dropped; }

    /** For metrics and provenance: the limits and the counts. */
    public Map<String, Object> report() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("max_length", maxLength);
        if (maxPromptLength > 0) m.put("max_prompt_length", maxPromptLength);
        if (maxCompletionLength > 0) m.put("max_completion_length", maxCompletionLength);
        m.put("truncation_mode", mode.key());
        m.put("records_truncated", truncated);
        m.put("tokens_truncated", tokensCut);
        m.put("records_dropped", dropped);
        return m;
    }

    /** One line for the log. */
    public String summary(String what) {
        return String.format(Locale.ROOT, "%s: max_length %d%s, truncation_mode %s: %d records truncated (%d tokens cut), %d dropped", what, maxLength,
                maxPromptLength > 0 ? ", max_prompt_length " + maxPromptLength : "", mode.key(), truncated, tokensCut, dropped);
    }
}
