package io.tether.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Tensors;

/**
 * Rotary position embeddings in Hugging Face's "rotate half" layout: the head dimension is split in two halves
 * that rotate together, x' = x cos + rotate_half(x) sin with rotate_half(x) = [-x2, x1].
 *
 * <p>The cos/sin tables are computed as HF computes them (inverse frequencies in at least fp32, angles as
 * position x frequency) and cast to the model dtype, so fp32 logits match transformers.
 */
final class Rope implements AutoCloseable {
    private final Tensor cos; // (maxPositions, rotaryDim)
    private final Tensor sin; // (maxPositions, rotaryDim)
    /** longrope's tables with the long factors, used by a forward reaching past {@link #longFrom}; else null. */
    private final Tensor longCos, longSin;
    private final int longFrom;
    private final int maxPositions;

    Rope(ModelConfig c, DType dtype) {
        this(c, dtype, c.ropeTheta(), c.ropeScaling());
    }

    /** Tables for base {@code theta} and {@code s} instead of the config's own (Gemma 3's local layers). */
    Rope(ModelConfig c, DType dtype, double theta, ModelConfig.RopeScaling s) {
        DType tableType = dtype == DType.F64 ? DType.F64 : DType.F32;
        // Tables cover the configured context, and more if the caller asks for longer sequences.
        maxPositions = Math.max(c.maxPositionEmbeddings(), 1);
        Tensor[] table = table(inverseFrequencies(c.rotaryDim(), theta, s, tableType, false), s.attentionFactor(), tableType, dtype);
        cos = table[0];
        sin = table[1];
        if (s.type().equals("longrope")) {
            Tensor[] longTable = table(inverseFrequencies(c.rotaryDim(), theta, s, tableType, true), s.attentionFactor(), tableType, dtype);
            longCos = longTable[0];
            longSin = longTable[1];
            longFrom = s.originalMaxPositionEmbeddings();
        } else {
            longCos = longSin = null;
            longFrom = Integer.MAX_VALUE;
        }
    }

    /** cos and sin of position x frequency for every position, times HF's attention_scaling, in {@code dtype}. */
    private Tensor[] table(double[] invFreq, double attentionFactor, DType tableType, DType dtype) {
        Tensor inv = Tensors.doubles(invFreq, invFreq.length).to(tableType.scalarType);
        Tensor pos = Tensors.arange(maxPositions, tableType);
        Tensor freqs = torch.outer(pos, inv);                         // (P, dim/2)
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), -1);   // (P, dim)
        Tensor c = emb.cos(), s = emb.sin();
        if (attentionFactor != 1) {
            Tensor c0 = c, s0 = s;
            c = c.mul(Tensors.scalar(attentionFactor));
            s = s.mul(Tensors.scalar(attentionFactor));
            c0.close();
            s0.close();
        }
        Tensor[] out = {c.to(dtype.scalarType), s.to(dtype.scalarType)};
        // The float32 intermediates are freed now, not at some later GC: with Gemma 3's 32k-131k positions they
        // are 0.1-0.5 GB per table (a frozen model's resident memory was 0.3 GB above the JVM's before this).
        for (Tensor t : new Tensor[] {inv, pos, freqs, emb, c, s}) t.close();
        return out;
    }

    /**
     * HF's {@code inv_freq}: 1 / theta^(2j/dim), rescaled for rope_scaling. In fp32 HF evaluates
     * {@code theta ** (arange(0, dim, 2).float() / dim)}; computing the same expression in the table dtype
     * keeps our rounding identical.
     */
    static double[] inverseFrequencies(ModelConfig c, DType tableType) {
        return inverseFrequencies(c, tableType, false);
    }

    /** As above; for longrope, divided by the long factors when {@code long_} and the short ones otherwise. */
    static double[] inverseFrequencies(ModelConfig c, DType tableType, boolean long_) {
        return inverseFrequencies(c.rotaryDim(), c.ropeTheta(), c.ropeScaling(), tableType, long_);
    }

    private static double[] inverseFrequencies(int dim, double theta, ModelConfig.RopeScaling s, DType tableType, boolean long_) {
        java.util.List<Double> ext = s.type().equals("longrope") ? (long_ ? s.longFactor() : s.shortFactor()) : null;
        double[] inv = new double[dim / 2];
        for (int j = 0; j < inv.length; j++) {
            if (tableType == DType.F32) {
                float exponent = (float) (2 * j) / (float) dim;
                float p = (float) Math.pow((float) theta, exponent);
                // longrope: 1 / (ext * base^(2j/dim)), the product rounded to fp32 as torch computes it.
                inv[j] = ext == null ? 1.0f / p : 1.0f / (ext.get(j).floatValue() * p);
            } else {
                double p = Math.pow(theta, (double) (2 * j) / dim);
                inv[j] = ext == null ? 1.0 / p : 1.0 / (ext.get(j) * p);
            }
        }
        switch (s.type()) {
            case "linear" -> {
                for (int j = 0; j < inv.length; j++) inv[j] /= s.factor();
            }
            case "llama3" -> {
                // Meta's band rescaling: long wavelengths are slowed by `factor`, short ones kept, and the band
                // between interpolated smoothly.
                double lowWavelen = s.originalMaxPositionEmbeddings() / s.lowFreqFactor();
                double highWavelen = s.originalMaxPositionEmbeddings() / s.highFreqFactor();
                for (int j = 0; j < inv.length; j++) {
                    double wavelen = 2 * Math.PI / inv[j];
                    if (wavelen > lowWavelen) {
                        inv[j] = inv[j] / s.factor();
                    } else if (wavelen >= highWavelen) {
                        double smooth = (s.originalMaxPositionEmbeddings() / wavelen - s.lowFreqFactor())
                                / (s.highFreqFactor() - s.lowFreqFactor());
                        inv[j] = (1 - smooth) * inv[j] / s.factor() + smooth * inv[j];
                    }
                }
            }
            default -> { }
        }
        if (tableType == DType.F32) for (int j = 0; j < inv.length; j++) inv[j] = (float) inv[j];
        return inv;
    }

    /**
     * cos and sin for positions [B, T], each shaped (B, 1, T, rotaryDim) to broadcast over heads. With longrope, a
     * row whose largest position + 1 in this forward exceeds original_max_position_embeddings uses the long factors
     * for all its positions, as HF's dynamic_rope_update decides per forward. Keys cached before the switch keep
     * their short rotation (transformers' forward does the same; its Phi-3 generate drops the cache at the switch
     * and recomputes it). HF decides once for the whole batch (by its largest position), so a short row batched with
     * a long one would change; Tether decides per row, so a row gets what it gets alone.
     */
    Tensor[] at(Tensor positions) {
        long b = positions.size(0), t = positions.size(1);
        Tensor flat = positions.reshape(-1);
        long maxPos = flat.max().item_long();
        if (maxPos >= maxPositions || flat.min().item_long() < 0)
            throw new ConfigException("position " + maxPos + " is outside the rotary table [0, " + maxPositions + ")");
        Tensor c = cos.index_select(0, flat).view(b, 1, t, -1);
        Tensor s = sin.index_select(0, flat).view(b, 1, t, -1);
        if (longCos == null || maxPos + 1 <= longFrom) return new Tensor[] {c, s};
        long[] all = Tensors.toLongs(positions);
        boolean[] rowLong = new boolean[(int) b];
        for (int r = 0; r < b; r++)
            for (int i = 0; i < t; i++) rowLong[r] |= all[(int) (r * t + i)] + 1 > longFrom;
        Tensor useLong = Tensors.bools(rowLong, b, 1, 1, 1);
        Tensor lc = longCos.index_select(0, flat).view(b, 1, t, -1);
        Tensor ls = longSin.index_select(0, flat).view(b, 1, t, -1);
        return new Tensor[] {torch.where(useLong, lc, c), torch.where(useLong, ls, s)};
    }

    /**
     * x * cos + rotate_half(x) * sin for x (B, H, T, headDim) over the first rotaryDim (= cos's width) dimensions;
     * the rest of each head passes through unrotated (Phi-3's partial rotary factor).
     */
    static Tensor apply(Tensor x, Tensor cos, Tensor sin) {
        long rotary = cos.size(-1);
        if (rotary < x.size(-1)) {
            Tensor rotated = apply(x.narrow(-1, 0, rotary), cos, sin);
            return torch.cat(new TensorVector(rotated, x.narrow(-1, rotary, x.size(-1) - rotary)), -1);
        }
        long half = x.size(-1) / 2;
        Tensor x1 = x.narrow(-1, 0, half);
        Tensor x2 = x.narrow(-1, half, half);
        Tensor rotated = torch.cat(new TensorVector(x2.neg(), x1), -1);
        return x.mul(cos).add(rotated.mul(sin));
    }

    @Override
    public void close() {
        cos.close();
        sin.close();
        if (longCos != null) {
            longCos.close();
            longSin.close();
        }
    }
}
