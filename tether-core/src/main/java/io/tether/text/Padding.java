package io.tether.text;

import java.util.List;

import io.tether.engine.ConfigException;

/** Batches of token sequences padded on the left (generation) or right (training), optionally truncated. */
public final class Padding {
    private Padding() {}

    public enum Side { LEFT, RIGHT }

    /** Row-major ids [B * length], attention mask (1 = real), and each row's real length. */
    public record Batch(long[] ids, long[] attentionMask, int[] lengths, int length) {}

    /**
     * Pads every sequence to the longest (or to {@code maxLength} when > 0). Sequences longer than maxLength are an
     * error unless {@code truncate}, which keeps their start (TRL's {@code keep_start}).
     */
    public static Batch pad(List<long[]> sequences, long padId, Side side, int maxLength, boolean truncate) {
        int longest = 0;
        for (long[] s : sequences) longest = Math.max(longest, s.length);
        int length = maxLength > 0 ? maxLength : longest;
        if (maxLength > 0 && longest > maxLength && !truncate)
            throw new ConfigException("a sequence of " + longest + " tokens exceeds max_length " + maxLength + " (enable truncation)");
        long[] ids = new long[sequences.size() * length], mask = new long[ids.length];
        int[] lengths = new int[sequences.size()];
        java.util.Arrays.fill(ids, padId);
        for (int b = 0; b < sequences.size(); b++) {
            long[] s = sequences.get(b);
            int n = Math.min(s.length, length);
            lengths[b] = n;
            int offset = b * length + (side == Side.LEFT ? length - n : 0);
            System.arraycopy(s, 0, ids, offset, n);
            java.util.Arrays.fill(mask, offset, offset + n, 1);
        }
        return new Batch(ids, mask, lengths, length);
    }

    /** The tokenizer's pad id; a tokenizer without one is an error, never a silent 0. */
    public static long padId(Tokenizer t) {
        SpecialTokens s = t.specialTokens();
        if (s.padId() != null) return s.padId();
        throw new ConfigException("the tokenizer has no pad_token; set one (often the eos_token) in tokenizer_config.json");
    }
}
