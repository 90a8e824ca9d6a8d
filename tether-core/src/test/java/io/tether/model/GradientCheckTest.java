package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Map;
import java.util.Random;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * Finite-difference checks in float64 of the gradient of every parameter tensor of every decoder family, so every
 * layer's backward (embedding, norms, projections, rotary attention with masks and GQA, MLPs, head) is covered.
 * The loss is a weighted sum of token log-probs over a padded batch, the quantity every trainer differentiates.
 */
class GradientCheckTest {
    private static final double EPS = 1e-6;

    @Test
    void llamaGradientsMatchFiniteDifferences() { check(TinyConfigs.llama()); }

    @Test
    void qwen2GradientsMatchFiniteDifferences() { check(TinyConfigs.qwen2()); }

    @Test
    void mistralSlidingWindowGradientsMatchFiniteDifferences() { check(TinyConfigs.mistral()); }

    @Test
    void gpt2GradientsMatchFiniteDifferences() { check(TinyConfigs.gpt2()); }

    /** Qwen3's per-head q_norm / k_norm (weights of head_dim shared by every head) and its explicit head_dim. */
    @Test
    void qwen3HeadNormGradientsMatchFiniteDifferences() { check(TinyConfigs.qwen3()); }

    /** OLMo 2's q_norm / k_norm over the full projections and its post-attention and post-feed-forward norms. */
    @Test
    void olmo2NormGradientsMatchFiniteDifferences() { check(TinyConfigs.olmo2()); }

    /** SmolLM3's layers without RoPE beside layers with it. */
    @Test
    void smolLm3NoRopeGradientsMatchFiniteDifferences() { check(TinyConfigs.smollm3()); }

    /** Phi-3's fused qkv_proj and gate_up_proj, partial rotary dimensions and longrope (9 tokens > its 8). */
    @Test
    void phi3FusedProjectionGradientsMatchFiniteDifferences() { check(TinyConfigs.phi3()); }

    /** Gemma 2's (1 + weight) norms before and after each sublayer, scaled embeddings, GeGLU and both soft-caps. */
    @Test
    void gemma2SoftcapGradientsMatchFiniteDifferences() { check(TinyConfigs.gemma2()); }

    /** Gemma 3's per-head (1 + weight) q/k norms and its sliding layers' own RoPE base beside the global layers'. */
    @Test
    void gemma3LocalGlobalGradientsMatchFiniteDifferences() { check(TinyConfigs.gemma3()); }

    private static void check(ModelConfig config) {
        try (CausalLM model = Models.create(config, DType.F64, 7); StepScope scope = new StepScope()) {
            model.setTrainable(true);
            Random rnd = new Random(3);
            int b = 2, t = 9;
            long[] ids = new long[b * t];
            for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(config.vocabSize());
            Tensor input = Tensors.longs(ids, b, t);
            // Row 1 is left-padded by 3 tokens so the padding-mask path is differentiated too.
            long[] mask = new long[b * t];
            for (int i = 0; i < mask.length; i++) mask[i] = (i >= t && i < t + 3) ? 0 : 1;
            Tensor attentionMask = Tensors.longs(mask, b, t);
            double[] w = new double[b * (t - 1)];
            for (int i = 0; i < w.length; i++) w[i] = rnd.nextGaussian();
            Tensor weights = Tensors.doubles(w, b, t - 1).mul(attentionMask.narrow(1, 1, t - 1).to(DType.F64.scalarType));

            Tensor loss = loss(model, input, attentionMask, weights);
            loss.backward();
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                Tensor p = e.getValue();
                Tensor grad = p.grad();
                assertTrue(grad.defined(), e.getKey() + " received no gradient");
                double[] analytic = Tensors.toDoubles(grad);
                Tensor flat = p.detach().view(-1);
                for (int probe = 0; probe < 3; probe++) {
                    int idx = rnd.nextInt((int) p.numel());
                    double plus, minus;
                    try (NoGradGuard g = new NoGradGuard()) {
                        flat.narrow(0, idx, 1).add_(Tensors.scalar(EPS));
                        plus = loss(model, input, attentionMask, weights).item_double();
                        flat.narrow(0, idx, 1).sub_(Tensors.scalar(2 * EPS));
                        minus = loss(model, input, attentionMask, weights).item_double();
                        flat.narrow(0, idx, 1).add_(Tensors.scalar(EPS));
                    }
                    double numeric = (plus - minus) / (2 * EPS);
                    double err = Math.abs(numeric - analytic[idx]);
                    assertTrue(err <= 1e-6 + 1e-5 * Math.abs(numeric),
                            config.architecture() + " " + e.getKey() + "[" + idx + "]: autograd " + analytic[idx] + " vs finite difference " + numeric);
                }
            }
        }
    }

    private static Tensor loss(CausalLM model, Tensor input, Tensor attentionMask, Tensor weights) {
        long t = input.size(1);
        // Position ids count real tokens only, as generation does for left padding.
        Tensor positions = attentionMask.cumsum(1).sub(Tensors.scalar(1L)).clamp_min(Tensors.scalar(0L));
        Tensor logits = model.forward(input, positions, attentionMask, null).narrow(1, 0, t - 1);
        Tensor targets = input.narrow(1, 1, t - 1).unsqueeze(-1);
        Tensor lp = torch.gather(logits, -1, targets).squeeze(-1).sub(torch.logsumexp(logits, new long[] {-1}, false));
        return lp.mul(weights).sum();
    }
}
