package io.tether.engine;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * Readable wrappers for the few libtorch calls whose Java signatures need placeholder arguments, and copies
 * between Java arrays and tensors. Every tensor made here owns its memory natively: {@code from_blob} over
 * memory that Java may free gives wrong gradients later (engine-notes.md), so it is always cloned.
 */
public final class Tensors {
    private Tensors() {}

    public static TensorOptions options(DType dtype) {
        return new TensorOptions().dtype(new ScalarTypeOptional(dtype.scalarType));
    }

    public static Tensor floats(float[] data, long... shape) {
        checkCount(data.length, shape);
        try (FloatPointer p = new FloatPointer(data)) {
            return torch.from_blob(p, shape, options(DType.F32)).clone();
        }
    }

    public static Tensor doubles(double[] data, long... shape) {
        checkCount(data.length, shape);
        try (DoublePointer p = new DoublePointer(data)) {
            return torch.from_blob(p, shape, options(DType.F64)).clone();
        }
    }

    public static Tensor longs(long[] data, long... shape) {
        checkCount(data.length, shape);
        try (LongPointer p = new LongPointer(data)) {
            return torch.from_blob(p, shape, options(DType.I64)).clone();
        }
    }

    public static Tensor bools(boolean[] data, long... shape) {
        checkCount(data.length, shape);
        byte[] bytes = new byte[data.length];
        for (int i = 0; i < data.length; i++) bytes[i] = (byte) (data[i] ? 1 : 0);
        try (BytePointer p = new BytePointer(bytes)) {
            return torch.from_blob(p, shape, options(DType.BOOL)).clone();
        }
    }

    public static Tensor zeros(DType dtype, long... shape) {
        return torch.zeros(shape, options(dtype));
    }

    public static Tensor ones(DType dtype, long... shape) {
        return torch.ones(shape, options(dtype));
    }

    public static Tensor empty(DType dtype, long... shape) {
        return torch.empty(shape, options(dtype), new MemoryFormatOptional());
    }

    /** {@code x} clamped to [min, max], both bounds given (libtorch's clamp takes each as an optional). */
    public static Tensor clamp(Tensor x, double min, double max) {
        return x.clamp(new ScalarOptional(scalar(min)), new ScalarOptional(scalar(max)));
    }

    public static Tensor arange(long end, DType dtype) {
        return torch.arange(new Scalar(end), options(dtype));
    }

    /** A floating-point scalar: it promotes integer tensors to float. */
    public static Scalar scalar(double v) {
        return new Scalar(v);
    }

    /** An integral scalar: integer tensors stay integer (an int64 + double scalar would become float). */
    public static Scalar scalar(long v) {
        return new Scalar(v);
    }

    public static float[] toFloats(Tensor t) {
        Tensor c = t.detach().to(DType.F32.scalarType).contiguous();
        float[] out = new float[Math.toIntExact(c.numel())];
        if (out.length > 0) c.data_ptr_float().get(out);   // an empty tensor has no data pointer
        return out;
    }

    public static double[] toDoubles(Tensor t) {
        Tensor c = t.detach().to(DType.F64.scalarType).contiguous();
        double[] out = new double[Math.toIntExact(c.numel())];
        if (out.length > 0) c.data_ptr_double().get(out);   // an empty tensor has no data pointer
        return out;
    }

    public static long[] toLongs(Tensor t) {
        Tensor c = t.detach().to(DType.I64.scalarType).contiguous();
        long[] out = new long[Math.toIntExact(c.numel())];
        if (out.length > 0) c.data_ptr_long().get(out);   // an empty tensor has no data pointer
        return out;
    }

    public static long[] shape(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) s[i] = t.size(i);
        return s;
    }

    public static DType dtype(Tensor t) {
        return DType.of(t.scalar_type());
    }

    /** The raw bytes of a contiguous CPU tensor, viewed in place (valid while the tensor lives). */
    public static BytePointer bytes(Tensor contiguous) {
        Pointer p = contiguous.data_ptr();
        return new BytePointer(p).capacity(contiguous.nbytes());
    }

    /**
     * {@code scaled_dot_product_attention} with the arguments spelled out. {@code boolMask} (true = may attend)
     * and {@code scale} (default 1/sqrt(headDim)) may be null; {@code gqa} lets k/v have fewer heads than q.
     */
    public static Tensor attention(Tensor q, Tensor k, Tensor v, Tensor boolMask, boolean causal, boolean gqa, Double scale) {
        TensorOptional mask = boolMask == null ? new TensorOptional() : new TensorOptional(boolMask);
        DoubleOptional s = scale == null ? new DoubleOptional() : new DoubleOptional(scale);
        if (!Autocast.active()) return torch.scaled_dot_product_attention(q, k, v, mask, 0.0, causal, s, gqa);
        // SDPA in bf16 is 10-15x slower than fp32 on CPUs (engine-notes.md): attention runs in fp32 even under
        // autocast; the projections around it still get bf16 matmuls.
        torch.set_autocast_enabled(torch.DeviceType.CPU, false);
        try {
            torch.ScalarType f32 = DType.F32.scalarType;
            return torch.scaled_dot_product_attention(q.to(f32), k.to(f32), v.to(f32), mask, 0.0, causal, s, gqa);
        } finally {
            torch.set_autocast_enabled(torch.DeviceType.CPU, true);
        }
    }

    /**
     * Attention with soft-capped scores (Gemma 2's {@code attn_logit_softcapping}), which SDPA cannot do, written as
     * transformers' eager_attention_forward: scores = q k^T x scale, then cap x tanh(scores / cap), then the mask,
     * softmax in float32 (float64 for a float64 model, whose reference is float64), times v. {@code boolMask}
     * (true = may attend) null means causal attention when {@code causal}, else every key. k and v may have fewer
     * heads than q (grouped-query attention: each KV head serves q.size(1) / k.size(1) query heads, as repeat_kv).
     * Runs outside autocast, like {@link #attention}.
     */
    public static Tensor softcappedAttention(Tensor q, Tensor k, Tensor v, Tensor boolMask, boolean causal, double scale, double cap) {
        boolean autocast = Autocast.active();
        if (autocast) torch.set_autocast_enabled(torch.DeviceType.CPU, false);
        try {
            torch.ScalarType compute = dtype(q) == DType.F64 ? DType.F64.scalarType : DType.F32.scalarType;
            Tensor qf = q.to(compute), kf = k.to(compute), vf = v.to(compute);
            long b = k.size(0), kvHeads = k.size(1), s = k.size(2), d = k.size(3), groups = q.size(1) / kvHeads;
            if (groups > 1) {
                kf = kf.unsqueeze(2).expand(b, kvHeads, groups, s, d).reshape(b, kvHeads * groups, s, d);
                vf = vf.unsqueeze(2).expand(b, kvHeads, groups, s, vf.size(3)).reshape(b, kvHeads * groups, s, vf.size(3));
            }
            Tensor scores = qf.matmul(kf.transpose(-2, -1)).mul(scalar(scale));
            scores = scores.div(scalar(cap)).tanh().mul(scalar(cap));
            Tensor allowed = boolMask;
            if (allowed == null && causal) {
                long t = q.size(2);
                Tensor queryPos = arange(t, DType.I64).add(scalar(s - t)).view(t, 1);
                allowed = arange(s, DType.I64).view(1, s).le(queryPos).view(1, 1, t, s);
            }
            if (allowed != null) scores = scores.masked_fill(allowed.logical_not(), scalar(Double.NEGATIVE_INFINITY));
            return scores.softmax(-1).matmul(vf).to(q.scalar_type());
        } finally {
            if (autocast) torch.set_autocast_enabled(torch.DeviceType.CPU, true);
        }
    }

    /** RMSNorm over the last dimension with a learned weight (Llama: x / rms(x) * weight). */
    public static Tensor rmsNorm(Tensor x, Tensor weight, double eps) {
        return torch.rms_norm(x, new long[] {x.size(-1)}, new TensorOptional(weight), new DoubleOptional(eps));
    }

    /** LayerNorm over the last dimension (GPT-2). */
    public static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, double eps) {
        return torch.layer_norm(x, new long[] {x.size(-1)}, new TensorOptional(weight), new TensorOptional(bias), eps, false);
    }

    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        return bias == null ? torch.linear(x, weight) : torch.linear(x, weight, new TensorOptional(bias));
    }

    private static void checkCount(int n, long[] shape) {
        long expected = 1;
        for (long s : shape) expected = Math.multiplyExact(expected, s);
        if (expected != n) throw new IllegalArgumentException("data has " + n + " elements but shape needs " + expected);
    }
}
