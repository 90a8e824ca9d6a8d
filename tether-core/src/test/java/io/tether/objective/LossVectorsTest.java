package io.tether.objective;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/**
 * Every preference and reward-model vector of ../shared/reference/loss-vectors.json (0-46; the GRPO and PPO ones
 * belong to the online-RL objectives) in float64 to 1e-9 and float32 to 2e-6: batch loss, per-pair losses and
 * logged rewards.
 */
class LossVectorsTest {
    static JsonNode vectors;

    @BeforeAll
    static void load() throws IOException {
        Torch.init();
        vectors = new ObjectMapper().readTree(Path.of(System.getProperty("tether.shared", "../shared")).resolve("reference/loss-vectors.json").toFile());
    }

    record Result(double loss, double[] perPair, double[] chosen, double[] rejected) {}

    @Test
    void float64MatchesEveryPreferenceVector() {
        check(DType.F64, 1e-9);
    }

    @Test
    void float32MatchesEveryPreferenceVector() {
        check(DType.F32, 2e-6);
    }

    private static void check(DType dtype, double tol) {
        List<String> failures = new ArrayList<>();
        int checked = 0;
        for (int i = 0; i <= 46; i++) {
            JsonNode v = vectors.get(i);
            try (StepScope s = new StepScope()) {
                Result r = evaluate(v, dtype);
                checked++;
                compare(failures, i, "loss", v.get("expected_loss").asDouble(), r.loss(), tol);
                compareAll(failures, i, "per-pair", v.get("expected_per_pair_loss"), r.perPair(), tol);
                if (v.hasNonNull("expected_chosen_reward") && r.chosen() != null) compareAll(failures, i, "chosen reward", v.get("expected_chosen_reward"), r.chosen(), tol);
                if (v.hasNonNull("expected_rejected_reward") && r.rejected() != null) compareAll(failures, i, "rejected reward", v.get("expected_rejected_reward"), r.rejected(), tol);
            }
        }
        assertEquals(47, checked);
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    private static void compare(List<String> failures, int i, String what, double expected, double actual, double tol) {
        if (!(Math.abs(expected - actual) <= tol * Math.max(1, Math.abs(expected))))
            failures.add("vector " + i + " " + vectors.get(i).get("loss_type").asText() + " " + what + ": expected " + expected + ", got " + actual);
    }

    private static void compareAll(List<String> failures, int i, String what, JsonNode expected, double[] actual, double tol) {
        if (expected.size() != actual.length) {
            failures.add("vector " + i + " " + what + ": expected " + expected.size() + " values, got " + actual.length);
            return;
        }
        for (int k = 0; k < actual.length; k++) compare(failures, i, what + "[" + k + "]", expected.get(k).asDouble(), actual[k], tol);
    }

    static Tensor t(JsonNode array, DType dtype) {
        double[] d = new double[array.size()];
        for (int i = 0; i < d.length; i++) d[i] = array.get(i).asDouble();
        return Tensors.doubles(d, d.length).to(dtype.scalarType);
    }

    static Tensor scalar(double v, DType dtype) {
        return Tensors.doubles(new double[] {v}).to(dtype.scalarType).squeeze();
    }

    static double[] d(Tensor x) {
        return Tensors.toDoubles(x);
    }

    /** Pads per-token lists into [B, T] (zeros past each row's end). */
    static Tensor rows(List<JsonNode> lists, DType dtype, int width) {
        double[] out = new double[lists.size() * width];
        for (int b = 0; b < lists.size(); b++) for (int j = 0; j < lists.get(b).size(); j++) out[b * width + j] = lists.get(b).get(j).asDouble();
        return Tensors.doubles(out, lists.size(), width).to(dtype.scalarType);
    }

    static Result evaluate(JsonNode v, DType dt) {
        String type = v.get("loss_type").asText();
        String sem = v.get("semantics").asText();
        JsonNode p = v.get("params"), in = v.get("inputs");
        double beta = p.path("beta").asDouble(0.1);
        switch (type) {
            case "kto", "apo_zero_unpaired" -> {
                KtoLoss.Config c = new KtoLoss.Config(beta, p.path("desirable_weight").asDouble(1), p.path("undesirable_weight").asDouble(1), type);
                boolean[] labels = new boolean[in.get("label").size()];
                for (int i = 0; i < labels.length; i++) labels[i] = in.get("label").get(i).asBoolean();
                KtoLoss.Output o = KtoLoss.compute(c, Tensors.bools(labels, labels.length), t(in.get("policy_logps"), dt), t(in.get("ref_logps"), dt),
                        t(in.get("policy_KL_logps"), dt), t(in.get("ref_KL_logps"), dt));
                return new Result(o.loss().item_double(), d(o.perExample()), d(o.desirableRewards()), d(o.undesirableRewards()));
            }
            case "orpo" -> {
                PairwiseLosses.Output o = PairwiseLosses.orpo(beta, t(in.get("policy_chosen_avg_logps"), dt), t(in.get("policy_rejected_avg_logps"), dt), scalar(in.get("chosen_nll").asDouble(), dt));
                return new Result(o.loss().item_double(), d(o.perPair()), d(o.chosenRewards()), d(o.rejectedRewards()));
            }
            case "cpo_sigmoid" -> {
                PairwiseLosses.Output o = PairwiseLosses.cpo(beta, p.path("label_smoothing").asDouble(0), p.path("cpo_alpha").asDouble(1),
                        t(in.get("policy_chosen_logps"), dt), t(in.get("policy_rejected_logps"), dt), scalar(in.get("chosen_nll").asDouble(), dt));
                return new Result(o.loss().item_double(), d(o.perPair()), d(o.chosenRewards()), d(o.rejectedRewards()));
            }
            case "simpo", "alphapo" -> {
                Tensor cw = t(in.get("policy_chosen_avg_logps"), dt), cl = t(in.get("policy_rejected_avg_logps"), dt), nll = scalar(in.get("chosen_nll").asDouble(), dt);
                PairwiseLosses.Output o = type.equals("simpo")
                        ? PairwiseLosses.simpo(beta, p.get("simpo_gamma").asDouble(), p.path("cpo_alpha").asDouble(1), cw, cl, nll)
                        : PairwiseLosses.alphapo(beta, p.get("simpo_gamma").asDouble(), p.get("alpha").asDouble(), p.path("cpo_alpha").asDouble(1), cw, cl, nll);
                return new Result(o.loss().item_double(), d(o.perPair()), d(o.chosenRewards()), d(o.rejectedRewards()));
            }
            case "reward_model" -> {
                Tensor margin = p.get("use_margin").asBoolean() ? t(in.get("margin"), dt) : null;
                double center = p.get("center_rewards_coefficient").isNull() ? 0 : p.get("center_rewards_coefficient").asDouble();
                PairwiseLosses.Output o = PairwiseLosses.rewardModel(t(in.get("rewards_chosen"), dt), t(in.get("rewards_rejected"), dt), margin, center);
                return new Result(o.loss().item_double(), d(o.perPair()), d(o.chosenRewards()), d(o.rejectedRewards()));
            }
            default -> {
                return dpo(v, dt);
            }
        }
    }

    static Result dpo(JsonNode v, DType dt) {
        String sem = v.get("semantics").asText();
        JsonNode p = v.get("params"), in = v.get("inputs");
        DpoLoss.Semantics semantics = sem.startsWith("OpenRLHF") ? DpoLoss.Semantics.OPENRLHF
                : sem.startsWith("trl<=0.28") ? DpoLoss.Semantics.TRL_LEGACY : DpoLoss.Semantics.TRL;
        List<String> types = new ArrayList<>();
        List<Double> weights = null;
        if (p.has("loss_type")) {
            p.get("loss_type").forEach(x -> types.add(x.asText()));
            weights = new ArrayList<>();
            for (JsonNode w : p.get("loss_weights")) weights.add(w.asDouble());
        } else {
            types.add(v.get("loss_type").asText());
        }
        double alphaDefault = semantics == DpoLoss.Semantics.TRL_LEGACY ? 1.0 : 0.5;
        DpoLoss.Config cfg = new DpoLoss.Config(p.path("beta").asDouble(0.1), types, weights, p.path("label_smoothing").asDouble(0),
                p.path("f_divergence_type").asText("reverse_kl"), p.path("f_alpha_divergence_coef").asDouble(alphaDefault),
                p.path("discopop_tau").asDouble(0.05), semantics);
        Tensor pc, pr, rc, rr, nc = null, nr = null, sft = null, weightsPerPair = null;
        if (p.has("ld_alpha")) {
            JsonNode a = in.get("policy_chosen_token_logps"), b = in.get("policy_rejected_token_logps");
            int width = Math.max(a.size(), b.size());
            Tensor shared = Tensors.longs(new long[] {Math.min(a.size(), b.size())}, 1);
            double alpha = p.get("ld_alpha").asDouble();
            pc = DpoLoss.ldLogps(rows(List.of(a), dt, width), shared, alpha);
            pr = DpoLoss.ldLogps(rows(List.of(b), dt, width), shared, alpha);
            rc = DpoLoss.ldLogps(rows(List.of(in.get("ref_chosen_token_logps")), dt, width), shared, alpha);
            rr = DpoLoss.ldLogps(rows(List.of(in.get("ref_rejected_token_logps")), dt, width), shared, alpha);
        } else if (p.path("use_weighting").asBoolean(false)) {
            Tensor[] chosen = logitsAndTokens(in.get("chosen_logits"), in.get("chosen_tokens"), dt);
            Tensor[] rejected = logitsAndTokens(in.get("rejected_logits"), in.get("rejected_tokens"), dt);
            pc = sequenceLogp(chosen);
            pr = sequenceLogp(rejected);
            rc = t(in.get("ref_chosen_logps"), dt);
            rr = t(in.get("ref_rejected_logps"), dt);
            weightsPerPair = DpoLoss.wpoWeight(chosen[0], chosen[1], io.tether.engine.Tensors.ones(DType.I64, chosen[1].size(0), chosen[1].size(1)))
                    .mul(DpoLoss.wpoWeight(rejected[0], rejected[1], io.tether.engine.Tensors.ones(DType.I64, rejected[1].size(0), rejected[1].size(1))));
        } else {
            pc = t(in.get("policy_chosen_logps"), dt);
            pr = t(in.get("policy_rejected_logps"), dt);
            rc = t(in.get("ref_chosen_logps"), dt);
            rr = t(in.get("ref_rejected_logps"), dt);
            nc = t(in.get("chosen_num_tokens"), dt);
            nr = t(in.get("rejected_num_tokens"), dt);
        }
        if (in.has("chosen_completion_token_logps")) {
            double sum = 0;
            int n = 0;
            for (JsonNode row : in.get("chosen_completion_token_logps")) for (JsonNode x : row) { sum += x.asDouble(); n++; }
            sft = scalar(-sum / n, dt);   // token-mean NLL over every chosen completion token of the batch
        }
        DpoLoss.Output o = DpoLoss.compute(cfg, new DpoLoss.Inputs(pc, pr, rc, rr, nc, nr, sft, weightsPerPair));
        return new Result(o.loss().item_double(), d(o.perPair()), d(o.chosenRewards()), d(o.rejectedRewards()));
    }

    /** One sequence's logits [1, T, V] and tokens [1, T]. */
    static Tensor[] logitsAndTokens(JsonNode logits, JsonNode tokens, DType dt) {
        int tlen = logits.size(), vocab = logits.get(0).size();
        double[] flat = new double[tlen * vocab];
        for (int i = 0; i < tlen; i++) for (int j = 0; j < vocab; j++) flat[i * vocab + j] = logits.get(i).get(j).asDouble();
        long[] ids = new long[tlen];
        for (int i = 0; i < tlen; i++) ids[i] = tokens.get(i).asLong();
        return new Tensor[] {Tensors.doubles(flat, 1, tlen, vocab).to(dt.scalarType), Tensors.longs(ids, 1, tlen)};
    }

    static Tensor sequenceLogp(Tensor[] lt) {
        Tensor lsm = org.bytedeco.pytorch.global.torch.log_softmax(lt[0], -1);
        return org.bytedeco.pytorch.global.torch.gather(lsm, -1, lt[1].unsqueeze(-1)).squeeze(-1).sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional());
    }
}
