package io.tether.train;

import java.util.Collection;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/** Global-norm gradient clipping as {@code torch.nn.utils.clip_grad_norm_}. */
public final class GradientClipping {
    private GradientClipping() {}

    /**
     * The L2 norm of all gradients taken together (accumulated in float64), after scaling them by
     * min(1, maxNorm / (norm + 1e-6)) when {@code maxNorm > 0}. Returns the norm before clipping, which may be
     * NaN or infinite: the caller's guard decides what to do with that.
     */
    public static double clip(Collection<Tensor> params, double maxNorm) {
        double sumSq = 0;
        try (StepScope scope = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            for (Tensor p : params) {
                Tensor grad = p.grad();
                if (!grad.defined()) continue;
                double n = grad.to(io.tether.engine.DType.F64.scalarType).norm().item_double();
                sumSq += n * n;
            }
            double norm = Math.sqrt(sumSq);
            if (maxNorm > 0 && Double.isFinite(norm)) {
                double coef = maxNorm / (norm + 1e-6);
                if (coef < 1) {
                    for (Tensor p : params) {
                        Tensor grad = p.grad();
                        if (grad.defined()) grad.mul_(Tensors.scalar(coef));
                    }
                }
            }
            return norm;
        }
    }
}
