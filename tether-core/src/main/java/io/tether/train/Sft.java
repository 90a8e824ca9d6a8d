package io.tether.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.DType;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;

/**
 * Supervised fine-tuning: the loss is the negative log-likelihood of the tokens marked in each example's loss mask
 * (the completion or assistant tokens by default, every token for full-text loss), summed over tokens; the loop
 * divides by the number of such tokens in the step. A row's first token is never a target: nothing predicts it.
 *
 * <p>With packing, rows hold several examples back to back: attention is block-diagonal (a token never sees
 * another document) and positions restart at 0 for each document, so every example's loss equals its unpacked loss.
 */
public final class Sft implements TrainingMethod<Sft.Row> {
    /** One tokenized example: ids and a 0/1 mask of the tokens that count in the loss. */
    public record Example(long[] ids, long[] lossMask) {
        public Example {
            if (ids.length != lossMask.length) throw new IllegalArgumentException("ids and loss mask differ in length");
            if (ids.length == 0) throw new IllegalArgumentException("empty example");
        }
    }

    /** A training row: one example, or several packed ({@code documentStarts} gives each one's first index). */
    public record Row(long[] ids, long[] lossMask, int[] documentStarts) {
        long targets() {
            long n = 0;
            for (int i = 1; i < lossMask.length; i++) if (!isDocumentStart(i)) n += lossMask[i];
            return n;
        }

        boolean isDocumentStart(int i) {
            for (int s : documentStarts) if (s == i) return true;
            return false;
        }
    }

    /** Truncates each example to {@code maxLength} (keeping its start) and makes one row of it. */
    public static List<Row> rows(List<Example> examples, int maxLength) {
        List<Row> out = new ArrayList<>();
        for (Example e : examples) {
            int n = Math.min(maxLength, e.ids().length);
            out.add(new Row(java.util.Arrays.copyOf(e.ids(), n), java.util.Arrays.copyOf(e.lossMask(), n), new int[] {0}));
        }
        return out;
    }

    /**
     * Packs examples, in order, into rows of at most {@code maxLength} tokens (first fit in sequence; an example
     * longer than maxLength is truncated and gets a row of its own).
     */
    public static List<Row> pack(List<Example> examples, int maxLength) {
        List<Row> out = new ArrayList<>();
        List<Example> current = new ArrayList<>();
        int used = 0;
        for (Example e : examples) {
            int n = Math.min(maxLength, e.ids().length);
            if (used + n > maxLength && !current.isEmpty()) {
                out.add(concat(current));
                current.clear();
                used = 0;
            }
            current.add(n == e.ids().length ? e : new Example(java.util.Arrays.copyOf(e.ids(), n), java.util.Arrays.copyOf(e.lossMask(), n)));
            used += n;
        }
        if (!current.isEmpty()) out.add(concat(current));
        return out;
    }

    private static Row concat(List<Example> docs) {
        int total = 0;
        for (Example d : docs) total += d.ids().length;
        long[] ids = new long[total], mask = new long[total];
        int[] starts = new int[docs.size()];
        int at = 0;
        for (int i = 0; i < docs.size(); i++) {
            Example d = docs.get(i);
            starts[i] = at;
            System.arraycopy(d.ids(), 0, ids, at, d.ids().length);
            System.arraycopy(d.lossMask(), 0, mask, at, d.lossMask().length);
            at += d.ids().length;
        }
        return new Row(ids, mask, starts);
    }

    @Override
    public long units(List<Row> rows) {
        long n = 0;
        for (Row r : rows) n += r.targets();
        return n;
    }

    @Override
    public Output forward(CausalLM model, List<Row> rows) {
        int b = rows.size(), len = 0;
        boolean packed = false;
        for (Row r : rows) {
            len = Math.max(len, r.ids().length);
            packed |= r.documentStarts().length > 1;
        }
        if (len < 2) return new Output(Tensors.zeros(model.dtype(), 1).sum(), Map.of());
        long[] ids = new long[b * len], targetMask = new long[b * (len - 1)], positions = new long[b * len], document = new long[b * len];
        for (int i = 0; i < b; i++) {
            Row r = rows.get(i);
            System.arraycopy(r.ids(), 0, ids, i * len, r.ids().length);
            int doc = 0;
            for (int t = 0; t < len; t++) {
                if (doc + 1 < r.documentStarts().length && t == r.documentStarts()[doc + 1]) doc++;
                boolean real = t < r.ids().length;
                positions[i * len + t] = real ? t - r.documentStarts()[doc] : 0;
                // Padding gets its own document id so no real token attends to it.
                document[i * len + t] = real ? doc : -1 - t;
                if (t >= 1 && real && r.lossMask()[t] == 1 && !r.isDocumentStart(t)) targetMask[i * (len - 1) + t - 1] = 1;
            }
        }
        Tensor input = Tensors.longs(ids, b, len);
        Tensor mask = null, positionIds = null;
        if (packed) {
            Tensor docs = Tensors.longs(document, b, len);
            Tensor same = docs.unsqueeze(2).eq(docs.unsqueeze(1));                          // (B, T, T)
            Tensor causal = torch.ones(new long[] {len, len}, Tensors.options(DType.BOOL)).tril(0);
            mask = same.logical_and(causal).unsqueeze(1);                                     // (B, 1, T, T)
            positionIds = Tensors.longs(positions, b, len);
        }
        Tensor tokenLogprobs = LogProbs.tokenLogprobs(model, input, positionIds, mask);   // (B, L-1), chunked over the vocabulary
        Tensor weights = Tensors.longs(targetMask, b, len - 1).to(model.dtype().scalarType);
        Tensor nll = tokenLogprobs.mul(weights).sum().neg();
        return new Output(nll, Map.of());
    }
}
