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
    private final Tensor cos; // (maxPositions, headDim)
    private final Tensor sin; // (maxPositions, headDim)
    private final int maxPositions;

    Rope(ModelConfig c, DType dtype) {
        int dim = c.headDim();
        DType tableType = dtype == DType.F64 ? DType.F64 : DType.F32;
        double[] invFreq = inverseFrequencies(c, tableType);
        // Tables cover the configured context, and more if the caller asks for longer sequences.
        maxPositions = Math.max(c.maxPositionEmbeddings(), 1);
        Tensor inv = Tensors.doubles(invFreq, invFreq.length).to(tableType.scalarType);
        Tensor pos = Tensors.arange(maxPositions, tableType);
        Tensor freqs = torch.outer(pos, inv);                         // (P, dim/2)
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), -1);   // (P, dim)
        cos = emb.cos().to(dtype.scalarType);
        sin = emb.sin().to(dtype.scalarType);
    }

    /**
     * HF's {@code inv_freq}: 1 / theta^(2j/dim), rescaled for rope_scaling. In fp32 HF evaluates
     * {@code theta ** (arange(0, dim, 2).float() / dim)}; computing the same expression in the table dtype
     * keeps our rounding identical.
     */
    static double[] inverseFrequencies(ModelConfig c, DType tableType) {
        int dim = c.headDim();
        double[] inv = new double[dim / 2];
        for (int j = 0; j < inv.length; j++) {
            if (tableType == DType.F32) {
                float exponent = (float) (2 * j) / (float) dim;
                float p = (float) Math.pow((float) c.ropeTheta(), exponent);
                inv[j] = 1.0f / p;
            } else {
                inv[j] = 1.0 / Math.pow(c.ropeTheta(), (double) (2 * j) / dim);
            }
        }
        ModelConfig.RopeScaling s = c.ropeScaling();
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

    /** cos and sin for positions [B, T], each shaped (B, 1, T, headDim) to broadcast over heads. */
    Tensor[] at(Tensor positions) {
        long b = positions.size(0), t = positions.size(1);
        Tensor flat = positions.reshape(-1);
        long maxPos = flat.max().item_long();
        if (maxPos >= maxPositions || flat.min().item_long() < 0)
            throw new ConfigException("position " + maxPos + " is outside the rotary table [0, " + maxPositions + ")");
        Tensor c = cos.index_select(0, flat).view(b, 1, t, -1);
        Tensor s = sin.index_select(0, flat).view(b, 1, t, -1);
        return new Tensor[] {c, s};
    }

    /** x * cos + rotate_half(x) * sin for x (B, H, T, headDim). */
    static Tensor apply(Tensor x, Tensor cos, Tensor sin) {
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
    }
}
