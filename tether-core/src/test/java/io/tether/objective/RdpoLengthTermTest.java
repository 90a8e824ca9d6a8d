package io.tether.objective;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/**
 * R-DPO's length term (Park et al. 2024). loss-vectors.json has no R-DPO vectors (neither TRL nor OpenRLHF implements
 * it), so the expected values are the paper's formula, −log σ(β·δ + α·(|y_w| − |y_l|)), evaluated here in plain double
 * arithmetic, independently of the tensor code.
 */
class RdpoLengthTermTest {
    // Three pairs: chosen longer, chosen shorter, equal lengths.
    static final double[] PC = {-40.0, -12.5, -20.0}, PR = {-15.0, -30.0, -21.0}, RC = {-41.0, -13.0, -20.5}, RR = {-14.0, -29.0, -20.0};
    static final double[] NC = {60, 18, 25}, NR = {20, 45, 25};

    @BeforeAll
    static void init() {
        Torch.init();
    }

    static double[] perPair(DpoLoss.Config cfg) {
        try (StepScope s = new StepScope()) {
            Tensor[] t = new Tensor[6];
            double[][] cols = {PC, PR, RC, RR, NC, NR};
            for (int i = 0; i < 6; i++) t[i] = Tensors.doubles(cols[i], 3);
            return Tensors.toDoubles(DpoLoss.compute(cfg, new DpoLoss.Inputs(t[0], t[1], t[2], t[3], t[4], t[5], null, null)).perPair());
        }
    }

    static DpoLoss.Config cfg(String loss, double beta, double alpha) {
        return new DpoLoss.Config(beta, List.of(loss), null, 0.0, "reverse_kl", 0.5, 0.05, DpoLoss.Semantics.TRL, alpha);
    }

    @Test
    void sigmoidAndHingeMatchThePaperFormula() {
        double beta = 0.3, alpha = 0.02;
        double[] sigmoid = perPair(cfg("sigmoid", beta, alpha)), hinge = perPair(cfg("hinge", beta, alpha));
        for (int i = 0; i < 3; i++) {
            double x = beta * ((PC[i] - RC[i]) - (PR[i] - RR[i])) + alpha * (NC[i] - NR[i]);
            assertEquals(Math.log1p(Math.exp(-x)), sigmoid[i], 1e-12, "sigmoid pair " + i);
            assertEquals(Math.max(0, 1 - x), hinge[i], 1e-12, "hinge pair " + i);
        }
    }

    @Test
    void lengthExplainsAwayOnlyTheLongerChosen() {
        double[] plain = perPair(cfg("sigmoid", 0.3, 0)), rdpo = perPair(cfg("sigmoid", 0.3, 0.02));
        assertTrue(rdpo[0] < plain[0], "a longer chosen answer already explains part of the preference: less loss, less push");
        assertTrue(rdpo[1] > plain[1], "a shorter chosen answer must win on its log-ratio alone: more loss");
        assertEquals(plain[2], rdpo[2], 1e-12, "equal lengths: R-DPO is DPO");
    }

    @Test
    void refusedWhereTheLossDoesNotReadTheLogit() {
        var e = assertThrows(IllegalArgumentException.class, () -> cfg("ipo", 0.3, 0.02));
        assertTrue(e.getMessage().contains("rdpo_alpha") && e.getMessage().contains("ipo"), e.getMessage());
        var negative = assertThrows(IllegalArgumentException.class, () -> cfg("sigmoid", 0.3, -0.1));
        assertTrue(negative.getMessage().contains("rdpo_alpha must be >= 0"), negative.getMessage());
    }
}
