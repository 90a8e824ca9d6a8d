package io.tether.train;

import io.tether.run.PreferenceMethod;
import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;

import org.bytedeco.pytorch.NoGradGuard;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.Models;
import io.tether.objective.DpoLoss;

/**
 * The reference-free losses as TRL computes them, checked in fp64 against sums of per-token log-probs taken one
 * sequence at a time (no padding): ORPO's NLL over prompt and completion, AlphaPO's reward shape reaching CPO and
 * SimPO from the config, and KTO's refusal of one-example batches.
 */
class ReferenceFreeFidelityTest {
    @BeforeAll
    static void load() {
        Torch.init();
    }

    /** Prompts of different lengths, so rows are padded differently in the batch. */
    static final List<PreferenceTraining.Pair> PAIRS = List.of(
            new PreferenceTraining.Pair(new long[] {9, 10, 11}, new long[] {12, 13}, new long[] {14}, Double.NaN, Double.NaN),
            new PreferenceTraining.Pair(new long[] {15}, new long[] {16, 17, 18, 19}, new long[] {20, 21}, Double.NaN, Double.NaN));

    /** log p(token j+1 | tokens ..j) of prompt + completion, one sequence alone. */
    static double[] tokenLogps(CausalLM policy, long[] prompt, long[] completion) {
        long[] ids = new long[prompt.length + completion.length];
        System.arraycopy(prompt, 0, ids, 0, prompt.length);
        System.arraycopy(completion, 0, ids, prompt.length, completion.length);
        return Tensors.toDoubles(LogProbs.tokenLogprobs(policy, Tensors.longs(ids, 1, ids.length)));
    }

    static double sum(double[] v, int from) {
        double s = 0;
        for (int i = from; i < v.length; i++) s += v[i];
        return s;
    }

    static double logSigmoid(double x) {
        return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
    }

    static double loss(CausalLM policy, PreferenceTraining.Settings settings) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            return new PreferenceTraining(settings).forward(policy, PAIRS).lossSum().item_double() / PAIRS.size();
        }
    }

    @Test
    void orpoNllCoversPromptAndCompletionByDefaultAndCompletionOnlyAsAnOption() {
        double lambda = 0.1;
        try (CausalLM policy = Models.create(PreferenceTrainingTest.CONFIG, DType.F64, 7)) {
            double nllAll = 0, nllCompletion = 0, oddsTerm = 0;
            long tokensAll = 0, tokensCompletion = 0;
            for (PreferenceTraining.Pair p : PAIRS) {
                double[] w = tokenLogps(policy, p.prompt(), p.chosen()), l = tokenLogps(policy, p.prompt(), p.rejected());
                int start = p.prompt().length - 1;   // the first completion token is predicted at the prompt's last position
                nllAll -= sum(w, 0);
                tokensAll += w.length;
                nllCompletion -= sum(w, start);
                tokensCompletion += p.chosen().length;
                double aw = sum(w, start) / p.chosen().length, al = sum(l, start) / p.rejected().length;
                double logOdds = (aw - al) - (Math.log(-Math.expm1(aw)) - Math.log(-Math.expm1(al)));
                oddsTerm += logSigmoid(logOdds);
            }
            oddsTerm /= PAIRS.size();
            double trl = nllAll / tokensAll - lambda * oddsTerm, completionOnly = nllCompletion / tokensCompletion - lambda * oddsTerm;
            var dpo = DpoLoss.Config.of(lambda, "sigmoid");
            assertEquals(trl, loss(policy, new PreferenceTraining.Settings(PreferenceTraining.Kind.ORPO, dpo, 0, 0, null, 0, 0)), 1e-10,
                    "TRL's ORPO: NLL over every predicted token of prompt and completion, padding masked");
            assertEquals(completionOnly, loss(policy, new PreferenceTraining.Settings(PreferenceTraining.Kind.ORPO, dpo, 0, 0, null, 0, 0, null, false,
                    new PreferenceTraining.ReferenceFree(0, false))), 1e-10, "orpo_nll_tokens: completion");
            assertNotEquals(trl, completionOnly, 1e-3, "the two differ on this data");
        }
    }

    @Test
    void orpoNllTokensIsAConfigKeyOfOrpoAlone() {
        assertTrue(((PreferenceMethod.Orpo) PreferenceMethod.config("orpo", LearningRateDefaultTest.tree()).method()).nllWithPrompt());
        assertFalse(((PreferenceMethod.Orpo) PreferenceMethod.config("orpo", LearningRateDefaultTest.tree("orpo_nll_tokens=completion")).method()).nllWithPrompt());
        var bad = assertThrows(IllegalArgumentException.class, () -> PreferenceMethod.config("orpo", LearningRateDefaultTest.tree("orpo_nll_tokens=all")));
        assertTrue(bad.getMessage().contains("key 'orpo_nll_tokens'"), bad.getMessage());
        var other = assertThrows(IllegalArgumentException.class, () -> PreferenceMethod.config("dpo", LearningRateDefaultTest.tree("orpo_nll_tokens=completion")));
        assertTrue(other.getMessage().contains("key 'orpo_nll_tokens': unknown key"), other.getMessage());
    }

    @Test
    void alphapoIsReachableAsTrlsCpoConfigExposesIt() {
        // loss_type alphapo: SimPO without the NLL term (TRL's CPOConfig.__post_init__ sets cpo_alpha 0), reward shaped by alpha.
        var config = PreferenceMethod.config("cpo", LearningRateDefaultTest.tree("loss_type=alphapo", "alpha=0.25", "beta=2.5", "simpo_gamma=1.375"));
        var c = (PreferenceMethod.Cpo) config.method();
        assertEquals("simpo", c.lossType());
        assertEquals(0.0, c.cpoAlpha());
        assertEquals(0.25, c.alpha());
        assertEquals("alphapo", config.spec().resolved().get("loss_type"));
        var kept = assertThrows(IllegalArgumentException.class, () -> PreferenceMethod.config("cpo", LearningRateDefaultTest.tree("loss_type=alphapo", "cpo_alpha=1.0")));
        assertTrue(kept.getMessage().contains("key 'cpo_alpha'"), kept.getMessage());
        var hinge = assertThrows(IllegalArgumentException.class, () -> PreferenceMethod.config("cpo", LearningRateDefaultTest.tree("loss_type=hinge")));
        assertTrue(hinge.getMessage().contains("key 'loss_type': cpo takes sigmoid, simpo or alphapo"), hinge.getMessage());
        assertEquals("simpo", ((PreferenceMethod.Simpo) PreferenceMethod.config("simpo", LearningRateDefaultTest.tree()).method()).cpo().lossType(), "the simpo command is CPO's simpo loss");
        assertEquals("sigmoid", ((PreferenceMethod.Cpo) PreferenceMethod.config("cpo", LearningRateDefaultTest.tree()).method()).lossType());
        var dpo = assertThrows(IllegalArgumentException.class, () -> PreferenceMethod.config("dpo", LearningRateDefaultTest.tree("alpha=0.25")));
        assertTrue(dpo.getMessage().contains("key 'alpha': unknown key"), dpo.getMessage());
    }

    @Test
    void alphaShapesTheRewardOfCpoAndSimpo() {
        double beta = 2.5, gamma = 1.375, alpha = 0.25;
        try (CausalLM policy = Models.create(PreferenceTrainingTest.CONFIG, DType.F64, 7)) {
            double simpo = 0, cpo = 0, nll = 0;
            long chosenTokens = 0;
            for (PreferenceTraining.Pair p : PAIRS) {
                int start = p.prompt().length - 1;
                double sw = sum(tokenLogps(policy, p.prompt(), p.chosen()), start), sl = sum(tokenLogps(policy, p.prompt(), p.rejected()), start);
                double aw = sw / p.chosen().length, al = sl / p.rejected().length;
                simpo -= logSigmoid(beta * ((1 - Math.exp(-alpha * aw)) / alpha - (1 - Math.exp(-alpha * al)) / alpha) - gamma);
                cpo -= logSigmoid(beta * ((1 - Math.exp(-alpha * sw)) / alpha - (1 - Math.exp(-alpha * sl)) / alpha));
                nll -= sw;
                chosenTokens += p.chosen().length;
            }
            simpo /= PAIRS.size();
            cpo = cpo / PAIRS.size() + nll / chosenTokens;   // cpo_alpha 1: plus the chosen completions' token-mean NLL
            var shaped = new PreferenceTraining.ReferenceFree(alpha, true);
            var dpo = DpoLoss.Config.of(beta, "sigmoid");
            assertEquals(simpo, loss(policy, new PreferenceTraining.Settings(PreferenceTraining.Kind.SIMPO, dpo, gamma, 0.0, null, 0, 0, null, false, shaped)), 1e-10);
            assertEquals(cpo, loss(policy, new PreferenceTraining.Settings(PreferenceTraining.Kind.CPO, dpo, 0, 1.0, null, 0, 0, null, false, shaped)), 1e-10);
        }
    }

    @Test
    void ktoRefusesOneExampleBatchesAsTrlDoes() {
        var e = assertThrows(IllegalArgumentException.class, () -> PreferenceMethod.config("kto",
                LearningRateDefaultTest.tree("per_device_train_batch_size=1", "gradient_accumulation_steps=8")));
        assertTrue(e.getMessage().contains("key 'per_device_train_batch_size'") && e.getMessage().contains("at least 2"), e.getMessage());
        // apo_zero_unpaired has no KL term, so one example per batch is fine; and two examples are enough for kto.
        assertEquals(1, PreferenceMethod.config("kto", LearningRateDefaultTest.tree("per_device_train_batch_size=1", "loss_type=apo_zero_unpaired"))
                .spec().trainer().perDeviceTrainBatchSize());
        assertEquals(2, PreferenceMethod.config("kto", LearningRateDefaultTest.tree("per_device_train_batch_size=2")).spec().trainer().perDeviceTrainBatchSize());
    }
}
