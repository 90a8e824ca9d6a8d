package io.tether.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.DType;
import io.tether.engine.Tensors;

/** Attention masks shared by the decoders. */
final class Attention {
    private Attention() {}

    /**
     * The boolean mask [B, 1, T, past+T] for one layer, or null when none is needed: no padding mask, no window
     * that the sequence exceeds, and either no past (use SDPA's {@code is_causal}, see {@link #causal}) or a single
     * query, which may see every cached key.
     *
     * <p>Query i (absolute position past+i) may see key j iff j <= past+i, j is not padding, and, with a sliding
     * window W, past+i - j < W (HF's Mistral semantics). A padding query would see no key at all and SDPA would
     * return NaN for it; since 0 x NaN is NaN, that would poison real rows through the value product, so every
     * query may always see itself.
     */
    /** Whether SDPA's own causal masking applies: only without a past, since it aligns the triangle top-left. */
    static boolean causal(Tensor mask, int past) {
        return mask == null && past == 0;
    }

    static Tensor mask(long batch, long t, int past, Tensor attentionMask, int window) {
        long total = past + t;
        if (attentionMask != null && attentionMask.dim() == 4) {
            // A ready [B, 1, T, past+T] boolean mask (packed documents): used as given, as HF does with 4D masks.
            if (attentionMask.size(2) != t || attentionMask.size(3) != total)
                throw new IllegalArgumentException("4D attention mask must be [B, 1, " + t + ", " + total + "]");
            return attentionMask.to(DType.BOOL.scalarType);
        }
        boolean windowBites = window > 0 && total > window;
        if (attentionMask == null && !windowBites && (past == 0 || t == 1)) return null;
        Tensor q = Tensors.arange(t, DType.I64).add(Tensors.scalar(past)).view(t, 1);   // (T, 1) absolute query positions
        Tensor k = Tensors.arange(total, DType.I64).view(1, total);                     // (1, S) key positions
        Tensor allowed = k.le(q);                                                       // (T, S) causal
        if (windowBites) allowed = allowed.logical_and(q.sub(k).lt(Tensors.scalar(window)));
        Tensor m = allowed.view(1, 1, t, total);
        if (attentionMask != null) {
            if (attentionMask.size(1) != total)
                throw new IllegalArgumentException("attention mask covers " + attentionMask.size(1) + " tokens, expected past+T = " + total);
            Tensor keyValid = attentionMask.to(DType.BOOL.scalarType).view(batch, 1, 1, total);
            m = m.logical_and(keyValid);
        }
        Tensor self = k.eq(q).view(1, 1, t, total);
        return torch.logical_or(m, self);
    }
}
