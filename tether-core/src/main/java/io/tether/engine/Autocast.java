package io.tether.engine;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A bf16 autocast region on the CPU: matmuls run in bf16 while the weights (fp32 masters) and the optimizer stay
 * in fp32. Closing the region clears autocast's cache of bf16 weight copies: without that, later steps reuse
 * stale copies and the model silently stops learning (engine-notes.md, "Autocast cache").
 */
public final class Autocast implements AutoCloseable {
    private final boolean enabled;
    private static volatile Boolean bf16Faster;

    private Autocast(boolean enabled) {
        this.enabled = enabled;
        if (enabled) {
            torch.set_autocast_dtype(DeviceType.CPU, ScalarType.BFloat16);
            torch.set_autocast_enabled(DeviceType.CPU, true);
        }
    }

    /** Opens a bf16 region if {@code enabled}, else a no-op region. */
    public static Autocast bf16(boolean enabled) {
        return new Autocast(enabled);
    }

    public static boolean active() {
        return torch.is_autocast_enabled(DeviceType.CPU);
    }

    /**
     * Whether bf16 matmuls beat fp32 on this CPU, measured once (a 512x512 product, best of 5): CPUs without bf16
     * units emulate it and get slower, so bf16 is used only where it pays.
     */
    public static boolean bf16Pays() {
        if (bf16Faster == null) {
            try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                Tensor a = torch.randn(512, 512), b = torch.randn(512, 512);
                double f32 = best(a, b), bf16 = best(a.to(ScalarType.BFloat16), b.to(ScalarType.BFloat16));
                bf16Faster = bf16 < f32 * 0.9;
            }
        }
        return bf16Faster;
    }

    private static double best(Tensor a, Tensor b) {
        double best = Double.MAX_VALUE;
        for (int r = 0; r < 5; r++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < 4; i++) a.matmul(b);
            best = Math.min(best, System.nanoTime() - t0);
        }
        return best;
    }

    @Override
    public void close() {
        if (enabled) {
            torch.set_autocast_enabled(DeviceType.CPU, false);
            torch.clear_cache();
        }
    }
}
