package io.tether.objective;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/** Vectors 47-55 of loss-vectors.json: the GRPO family and the PPO pieces. */
class OnlineRlVectorsTest {
    static JsonNode vectors;

    @BeforeAll
    static void load() throws IOException {
        Torch.init();
        vectors = new ObjectMapper().readTree(Path.of(System.getProperty("tether.shared", "../shared")).resolve("reference/loss-vectors.json").toFile());
    }

    /** Ragged per-token lists as [B, T] plus a mask. */
    static org.bytedeco.pytorch.Tensor[] rows(JsonNode lists, DType dt) {
        int b = lists.size(), t = 0;
        for (JsonNode l : lists) t = Math.max(t, l.size());
        double[] v = new double[b * t], m = new double[b * t];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < lists.get(i).size(); j++) {
                v[i * t + j] = lists.get(i).get(j).asDouble();
                m[i * t + j] = 1;
            }
        return new org.bytedeco.pytorch.Tensor[] {Tensors.doubles(v, b, t).to(dt.scalarType), Tensors.doubles(m, b, t).to(dt.scalarType)};
    }

    @Test
    void grpoFamilyInFp64AndFp32() {
        for (DType dt : new DType[] {DType.F64, DType.F32}) {
            double tol = dt == DType.F64 ? 1e-9 : 2e-6;
            for (int i = 47; i <= 54; i++) {
                JsonNode v = vectors.get(i), p = v.get("params"), in = v.get("inputs");
                try (StepScope s = new StepScope()) {
                    var cfg = new Grpo.Config(p.get("epsilon").asDouble(), p.get("epsilon_high").asDouble(), p.get("beta").asDouble(),
                            v.get("loss_type").asText().substring("grpo:".length()), p.get("scale_rewards").asText(), p.get("max_completion_length").asInt());
                    var logps = rows(in.get("logps"), dt);
                    double[] a = Grpo.advantages(doubles(in.get("group_rewards")), in.get("group_rewards").size(), cfg.scaleRewards());
                    if (i == 47) assertArrayEquals(new double[] {1.30531, -0.783186, 0.261062, -0.783186}, a, 1e-5);
                    var adv = Tensors.doubles(a, a.length).to(dt.scalarType);
                    double loss = Grpo.loss(cfg, logps[0], rows(in.get("old_logps"), dt)[0], rows(in.get("ref_logps"), dt)[0], adv, logps[1]).item_double();
                    assertEquals(v.get("expected_loss").asDouble(), loss, tol, "vector " + i + " " + dt);
                }
            }
        }
    }

    /**
     * GSPO's sequence ratio and every loss type's normaliser, on values worked out by hand. Row 1: log-ratios 0.2 and
     * −0.1 (mean 0.05), A = 1, so ρ = e^0.05 = 1.0512710963760241, inside [0.8, 1.2]: each token's loss is −ρ. Row 2:
     * log-ratios 0.5, 0.5, −0.1 (mean 0.3), A = −0.5, ρ = e^0.3 = 1.3498588075760032: min(ρA, 1.2A) = ρA, so each
     * token's loss is 0.5ρ = 0.6749294037880016. (Per-token ratios would differ: row 1's e^0.2 = 1.2214 would clip to 1.2.)
     */
    @Test
    void gspoSequenceRatioAndLossNormalisersByHand() {
        double l1 = -1.0512710963760241, l2 = 0.6749294037880016;
        try (StepScope s = new StepScope()) {
            var logps = Tensors.doubles(new double[] {-1.0, -2.0, 0, -0.5, -0.5, -0.5}, 2, 3);
            var old = Tensors.doubles(new double[] {-1.2, -1.9, 0, -1.0, -1.0, -0.4}, 2, 3);
            var mask = Tensors.doubles(new double[] {1, 1, 0, 1, 1, 1}, 2, 3);
            var adv = Tensors.doubles(new double[] {1.0, -0.5}, 2);
            Map<String, Double> expected = Map.of("grpo", (l1 + l2) / 2, "bnpo", (2 * l1 + 3 * l2) / 5, "dapo", (2 * l1 + 3 * l2) / 5,
                    "dr_grpo", (2 * l1 + 3 * l2) / (2 * 4));
            for (var e : expected.entrySet()) {
                var cfg = new Grpo.Config(0.2, 0.2, 0.0, e.getKey(), "group", 4, true);
                assertEquals(e.getValue(), Grpo.loss(cfg, logps, old, logps, adv, mask).item_double(), 1e-12, e.getKey());
            }
            // d loss / d logp_t under grpo: ρ depends on the mean log-ratio, so dρ/dlogp_t = ρ/|y|; the mean over 2 rows halves it.
            var leaf = logps.clone().requires_grad_(true);
            Grpo.loss(new Grpo.Config(0.2, 0.2, 0.0, "grpo", "group", 4, true), leaf, old, leaf.detach(), adv, mask).backward();
            double g1 = -1.0512710963760241 / 2 / 2, g2 = 0.5 * 1.3498588075760032 / 3 / 2;
            assertArrayEquals(new double[] {g1, g1, 0, g2, g2, g2}, Tensors.toDoubles(leaf.grad().contiguous()), 1e-12);
            // With row 2 truncated and masked out, dapo still divides by all 5 completion tokens (TRL's num_items_in_batch), bnpo by the 2 trained.
            var trained = Tensors.doubles(new double[] {1, 1, 0, 0, 0, 0}, 2, 3);
            assertEquals(2 * l1 / 5, Grpo.loss(new Grpo.Config(0.2, 0.2, 0.0, "dapo", "group", 4, true), logps, old, logps, adv, trained, 5).item_double(), 1e-12);
            assertEquals(l1, Grpo.loss(new Grpo.Config(0.2, 0.2, 0.0, "bnpo", "group", 4, true), logps, old, logps, adv, trained, 5).item_double(), 1e-12);
        }
    }

    @Test
    void ppoPieces() {
        JsonNode v = vectors.get(55), p = v.get("params"), in = v.get("inputs"), e = v.get("expected");
        try (StepScope s = new StepScope()) {
            var logp = Tensors.doubles(new double[] {in.get("logprob").asDouble()}, 1);
            var ref = Tensors.doubles(new double[] {in.get("ref_logprob").asDouble()}, 1);
            assertEquals(e.get("k1").asDouble(), Ppo.k1(logp, ref).item_double(), 1e-12);
            assertEquals(e.get("k2").asDouble(), Ppo.k2(logp, ref).item_double(), 1e-12);
            assertEquals(e.get("k3").asDouble(), Ppo.k3(logp, ref).item_double(), 1e-12);
        }
        double[] kl = new double[in.get("per_token_kl_k1").size()], values = new double[in.get("values").size()];
        for (int i = 0; i < kl.length; i++) kl[i] = in.get("per_token_kl_k1").get(i).asDouble();
        for (int i = 0; i < values.length; i++) values[i] = in.get("values").get(i).asDouble();
        double[] rewards = Ppo.tokenRewards(kl, p.get("kl_coef").asDouble(), in.get("score").asDouble());
        assertArrayEquals(doubles(e.get("token_rewards")), rewards, 1e-12);
        double[][] gae = Ppo.gae(rewards, values, p.get("gamma").asDouble(), p.get("lam").asDouble());
        assertArrayEquals(doubles(e.get("gae_advantages_unwhitened")), gae[0], 1e-12);
        assertArrayEquals(doubles(e.get("returns")), gae[1], 1e-12);
        JsonNode a = p.get("adaptive");
        assertEquals(e.get("adaptive_kl_coef_after_update").asDouble(),
                Ppo.adaptiveKl(a.get("init_kl_coef").asDouble(), a.get("current_kl").asDouble(), a.get("target").asDouble(), a.get("horizon").asDouble(), a.get("n_steps").asInt()), 1e-12);
    }

    @Test
    void klEstimatorsByNameAndTheAdaptiveControllerDirection() {
        try (StepScope s = new StepScope()) {
            var logp = Tensors.doubles(new double[] {-1.3, -0.2}, 2);
            var ref = Tensors.doubles(new double[] {-1.0, -0.7}, 2);
            // u = logp − ref = (−0.3, 0.5): k1 = u, k2 = u²/2, k3 = e^{−u} − 1 + u.
            assertArrayEquals(new double[] {-0.3, 0.5}, Tensors.toDoubles(Ppo.kl("k1", logp, ref)), 1e-12);
            assertArrayEquals(new double[] {0.045, 0.125}, Tensors.toDoubles(Ppo.kl("k2", logp, ref)), 1e-12);
            assertArrayEquals(new double[] {Math.exp(0.3) - 1.3, Math.exp(-0.5) - 0.5}, Tensors.toDoubles(Ppo.kl("k3", logp, ref)), 1e-12);
            assertThrows(IllegalArgumentException.class, () -> Ppo.kl("k4", logp, ref));
        }
        // TRL's AdaptiveKLController (v0.11.4 trl/trainer/utils.py): β ← β(1 + clip(KL/target − 1, ±0.2)·n/horizon).
        // β 0.2, target 6, horizon 10000, n 256: n/horizon = 0.0256.
        assertEquals(0.2 * (1 + 0.2 * 0.0256), Ppo.adaptiveKl(0.2, 8.0, 6, 10000, 256), 1e-15, "KL 8 above target: up, error clipped to +0.2");
        assertEquals(0.200512, Ppo.adaptiveKl(0.2, 6.6, 6, 10000, 256), 1e-15, "KL 6.6: error +0.1, up");
        assertEquals(0.2, Ppo.adaptiveKl(0.2, 6.0, 6, 10000, 256), 1e-15, "on target: unchanged");
        assertEquals(0.199488, Ppo.adaptiveKl(0.2, 5.4, 6, 10000, 256), 1e-15, "KL 5.4: error −0.1, down");
        assertEquals(0.198976, Ppo.adaptiveKl(0.2, 0.0, 6, 10000, 256), 1e-15, "KL 0 below target: down, error clipped to −0.2");
    }

    static double[] doubles(JsonNode a) {
        double[] d = new double[a.size()];
        for (int i = 0; i < d.length; i++) d[i] = a.get(i).asDouble();
        return d;
    }

    @Test
    void clippedLossesClip() {
        try (StepScope s = new StepScope()) {
            var logp = Tensors.doubles(new double[] {0.5, -0.5}, 2);
            var old = Tensors.doubles(new double[] {0.0, 0.0}, 2);
            var adv = Tensors.doubles(new double[] {1.0, -1.0}, 2);
            double[] l = Tensors.toDoubles(Ppo.policyLoss(logp, old, adv, 0.2));
            assertEquals(-1.2, l[0], 1e-12, "a gain beyond 1+ε earns nothing more");
            assertEquals(Math.exp(-0.5) < 0.8 ? 0.8 : Math.exp(-0.5), l[1], 1e-12);
            double[] v = Tensors.toDoubles(Ppo.valueLoss(Tensors.doubles(new double[] {2.0}, 1), Tensors.doubles(new double[] {1.0}, 1), Tensors.doubles(new double[] {1.0}, 1), 0.2));
            assertEquals(0.5, v[0], 1e-12, "the unclipped error dominates: max(1, 0.04) / 2");
        }
    }
}
