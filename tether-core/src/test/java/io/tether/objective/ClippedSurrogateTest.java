package io.tether.objective;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/**
 * The one clipped surrogate −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)A) that PPO, GRPO and RLOO share, in fp64 against
 * the formula in plain Java doubles: bitwise, element by element, over ratios below, inside, on and above the clip
 * range and advantages of both signs and zero. The same equality for each user shows they compute what they did.
 */
class ClippedSurrogateTest {
    static final int B = 6, T = 40;
    static final double EPS_LOW = 0.2, EPS_HIGH = 0.28;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    /** −min(ρA, clip(ρ)A), one element, in Java doubles. */
    static double surrogate(double ratio, double advantage, double epsLow, double epsHigh) {
        double clipped = Math.max(1 - epsLow, Math.min(1 + epsHigh, ratio));
        return -Math.min(ratio * advantage, clipped * advantage);
    }

    /** Log-probs [B, T] and old log-probs whose ratios spread over [0.5, 1.6], some exactly 1; advantages [B] of both signs and 0. */
    static double[][] inputs() {
        Random r = new Random(20);
        double[] logp = new double[B * T], old = new double[B * T], adv = {1.3, -0.7, 0.0, 2.5, -1.9, 0.4};
        for (int i = 0; i < logp.length; i++) {
            logp[i] = -5 * r.nextDouble();
            old[i] = i % 7 == 0 ? logp[i] : logp[i] - Math.log(0.5 + 1.1 * r.nextDouble());
        }
        return new double[][] {logp, old, adv};
    }

    @Test
    void theSurrogateAndWhereItClipsMatchTheFormulaBitwise() {
        try (StepScope s = new StepScope()) {
            // Ratios on the bounds themselves as well as off them.
            double[] ratio = {0.5, 1 - EPS_LOW, 0.9, 1.0, 1 + EPS_HIGH, 1.5, 0.5, 1 - EPS_LOW, 1.1, 1 + EPS_HIGH, 1.5, 1.0};
            double[] adv = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0, -2.0, 0.0};
            Tensor rt = Tensors.doubles(ratio, ratio.length), at = Tensors.doubles(adv, adv.length);
            double[] got = Tensors.toDoubles(Ppo.clippedSurrogate(rt, at, EPS_LOW, EPS_HIGH));
            boolean[] clipped = new boolean[ratio.length];
            long[] flags = Tensors.toLongs(Ppo.surrogateClipped(rt, at, EPS_LOW, EPS_HIGH).to(io.tether.engine.DType.I64.scalarType));
            for (int i = 0; i < ratio.length; i++) {
                assertEquals(Double.doubleToLongBits(surrogate(ratio[i], adv[i], EPS_LOW, EPS_HIGH)), Double.doubleToLongBits(got[i]), "element " + i);
                double c = Math.max(1 - EPS_LOW, Math.min(1 + EPS_HIGH, ratio[i]));
                clipped[i] = -c * adv[i] > -ratio[i] * adv[i];
                assertEquals(clipped[i] ? 1 : 0, flags[i], "clipped flag of element " + i);
            }
            // Pessimism: with A > 0 only a ratio above 1 + ε_high clips; with A < 0 only one below 1 − ε_low.
            assertArrayEquals(new boolean[] {false, false, false, false, false, true, true, false, false, false, false, false}, clipped);
        }
    }

    @Test
    void ppoGrpoAndRlooComputeTheSharedSurrogate() {
        double[][] in = inputs();
        try (StepScope s = new StepScope()) {
            Tensor logp = Tensors.doubles(in[0], B, T), old = Tensors.doubles(in[1], B, T), adv = Tensors.doubles(in[2], B);
            // The ratios as libtorch computes exp, so that only the surrogate is compared.
            double[] ratio = Tensors.toDoubles(logp.sub(old).exp());
            double[] perToken = new double[B * T];
            for (int i = 0; i < perToken.length; i++) perToken[i] = surrogate(ratio[i], in[2][i / T], EPS_LOW, EPS_HIGH);

            // GRPO per token (β = 0: the surrogate alone), DAPO's asymmetric clip.
            var grpo = new Grpo.Config(EPS_LOW, EPS_HIGH, 0.0, "grpo", "group", T);
            assertBitwise(perToken, Tensors.toDoubles(Grpo.perTokenLoss(grpo, logp, old, logp, adv, Tensors.ones(io.tether.engine.DType.F64, B, T))), "GRPO");

            // PPO per token, symmetric clip, advantages per token.
            double[] tokenAdv = new double[B * T], ppo = new double[B * T];
            for (int i = 0; i < tokenAdv.length; i++) {
                tokenAdv[i] = in[2][i / T] * (1 + (i % 3)) - 0.5 * (i % 2);
                ppo[i] = surrogate(ratio[i], tokenAdv[i], EPS_LOW, EPS_LOW);
            }
            assertBitwise(ppo, Tensors.toDoubles(Ppo.policyLoss(logp, old, Tensors.doubles(tokenAdv, B, T), EPS_LOW)), "PPO");

            // RLOO per completion: column 0's ratios stand for sequence ratios; the loss is their mean.
            Tensor seqLogp = logp.narrow(1, 0, 1).squeeze(1).contiguous(), seqOld = old.narrow(1, 0, 1).squeeze(1).contiguous();
            double[] seqRatio = Tensors.toDoubles(seqLogp.sub(seqOld).exp()), perSeq = new double[B];
            for (int i = 0; i < B; i++) perSeq[i] = surrogate(seqRatio[i], in[2][i], EPS_LOW, EPS_HIGH);
            double mean = Tensors.doubles(perSeq, B).mean().item_double();
            assertEquals(Double.doubleToLongBits(mean), Double.doubleToLongBits(Rloo.loss(seqLogp, seqOld, adv, EPS_LOW, EPS_HIGH).item_double()), "RLOO");
        }
    }

    /** d/dlogp of the summed PPO surrogate: −Aρ where the unclipped term is taken, 0 where the clip holds it. */
    @Test
    void theGradientFlowsOnlyThroughTheUnclippedTerm() {
        double[][] in = inputs();
        try (StepScope s = new StepScope()) {
            Tensor logp = Tensors.doubles(in[0], B, T).requires_grad_(true), old = Tensors.doubles(in[1], B, T);
            Tensor adv = Tensors.doubles(in[2], B).unsqueeze(1);
            Ppo.clippedSurrogate(logp.sub(old).exp(), adv, EPS_LOW, EPS_HIGH).sum().backward();
            double[] grad = Tensors.toDoubles(logp.grad().contiguous()), ratio = Tensors.toDoubles(logp.sub(old).exp().detach());
            int clippedCount = 0;
            for (int i = 0; i < grad.length; i++) {
                double a = in[2][i / T], r = ratio[i];
                boolean held = (a > 0 && r > 1 + EPS_HIGH) || (a < 0 && r < 1 - EPS_LOW);
                clippedCount += held ? 1 : 0;
                assertEquals(held ? 0 : -a * r, grad[i], 1e-15, "token " + i);
            }
            assertTrue(clippedCount > 10, "the inputs should exercise the clip: " + clippedCount);
        }
    }

    static void assertBitwise(double[] expected, double[] actual, String who) {
        assertEquals(expected.length, actual.length, who);
        for (int i = 0; i < expected.length; i++)
            assertEquals(Double.doubleToLongBits(expected[i]), Double.doubleToLongBits(actual[i]), who + " element " + i + ": " + expected[i] + " vs " + actual[i]);
    }
}
