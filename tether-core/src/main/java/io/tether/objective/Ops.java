package io.tether.objective;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.Tensors;

/** The handful of element-wise functions the losses are written in, named as the papers write them. */
final class Ops {
    private Ops() {}

    /** log σ(x), computed stably. */
    static Tensor logSigmoid(Tensor x) {
        return torch.log_sigmoid(x);
    }

    static Tensor sigmoid(Tensor x) {
        return torch.sigmoid(x);
    }

    /** log(1 - exp(x)) for x < 0, stably (Mächler's log1mexp: log1p(-exp(x)) below -ln 2, log(-expm1(x)) above). */
    static Tensor log1mexp(Tensor x) {
        Tensor small = x.exp().neg().log1p();
        Tensor large = x.expm1().neg().log();
        return torch.where(x.lt(Tensors.scalar(-Math.log(2))), small, large);
    }

    static Tensor scale(Tensor x, double s) {
        return x.mul(Tensors.scalar(s));
    }

    static Tensor plus(Tensor x, double s) {
        return x.add(Tensors.scalar(s));
    }

    static Tensor square(Tensor x) {
        return x.mul(x);
    }
}
