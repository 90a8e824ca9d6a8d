package io.tether.objective;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Path;

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
