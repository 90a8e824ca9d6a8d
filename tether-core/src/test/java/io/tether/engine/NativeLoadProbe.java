package io.tether.engine;

import org.bytedeco.pytorch.Tensor;

/** Run in a child JVM by {@link NativeLoadTest}: loads libtorch and does one matmul. */
public final class NativeLoadProbe {
    private NativeLoadProbe() {}

    public static void main(String[] args) {
        Torch.init();
        Tensor a = Tensors.floats(new float[] {1, 2, 3, 4}, 2, 2);
        float[] r = Tensors.toFloats(a.matmul(a));
        System.out.println("probe-ok " + r[0] + " " + r[3] + " libtorch " + Torch.version());
    }
}
