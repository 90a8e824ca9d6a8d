package io.tether.train;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.model.PromptCompletionRows;
import io.tether.rollout.Rollouts;

/**
 * The prompt + completion row layout that scoring (LogProbs), preference training and the online rollouts share: in
 * fp64 each gives every completion token the log-prob of an unpadded forward over that token's own prefix, and the
 * three give bitwise the same values on the same rows.
 */
class CompletionRowLayoutTest {
    static final ModelConfig TINY = ModelConfig.llama(32, 32, 2, 4, 2, 64, 64);

    @BeforeAll
    static void init() {
        Torch.init();
    }

    /** Ragged prompts (1 to 4 tokens) and completions (0 to 5 tokens), the longest row unique so padding is exercised. */
    static List<long[]>[] rows() {
        Random r = new Random(3);
        List<long[]> prompts = new ArrayList<>(), completions = new ArrayList<>();
        int[][] shape = {{1, 3}, {4, 5}, {2, 0}, {3, 1}, {1, 5}};
        for (int[] s : shape) {
            long[] p = new long[s[0]], c = new long[s[1]];
            for (int i = 0; i < p.length; i++) p[i] = 1 + r.nextInt(31);
            for (int i = 0; i < c.length; i++) c[i] = 1 + r.nextInt(31);
            prompts.add(p);
            completions.add(c);
        }
        @SuppressWarnings("unchecked") List<long[]>[] out = new List[] {prompts, completions};
        return out;
    }

    @Test
    void theLayoutPutsTokensWhereTheirPredictionsAre() {
        List<long[]>[] in = rows();
        PromptCompletionRows rows = PromptCompletionRows.of(in[0], in[1], 0);
        assertEquals(9, rows.length());
        assertEquals(12, PromptCompletionRows.of(in[0], in[1], 12).length(), "a minimum length pads further");
        for (int i = 0; i < rows.rows(); i++) {
            long[] p = in[0].get(i), c = in[1].get(i);
            for (int j = 0; j < c.length; j++) {
                // The prediction column t predicts the token at position t + 1.
                assertEquals(c[j], rows.ids()[i * rows.length() + rows.predictionColumn(i, j) + 1]);
                assertEquals(i * (rows.length() - 1) + rows.predictionColumn(i, j), rows.predictionIndex(i, j));
            }
            assertEquals(p[p.length - 1], rows.ids()[i * rows.length() + rows.predictionColumn(i, 0)], "completion token 0 is predicted from the prompt's last");
            for (int t = p.length + c.length; t < rows.length(); t++) assertEquals(0, rows.ids()[i * rows.length() + t], "right padding");
        }
        var e = assertThrows(IllegalArgumentException.class, () -> PromptCompletionRows.of(List.of(new long[] {1}, new long[0]), List.of(new long[] {2}, new long[] {3}), 0));
        assertEquals("row 1: empty prompt", e.getMessage());
    }

    @Test
    void scoringPreferenceTrainingAndRolloutsGiveEachTokenItsPrefixLogprob() {
        List<long[]>[] in = rows();
        List<long[]> prompts = in[0], completions = in[1];
        int n = prompts.size();
        try (CausalLM model = Models.create(TINY, DType.F64, 5); StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            // Reference: log softmax of the last position of an unpadded forward over the prompt and the completion's first j tokens.
            double[][] reference = new double[n][];
            for (int i = 0; i < n; i++) {
                long[] p = prompts.get(i), c = completions.get(i);
                reference[i] = new double[c.length];
                for (int j = 0; j < c.length; j++) {
                    long[] prefix = new long[p.length + j];
                    System.arraycopy(p, 0, prefix, 0, p.length);
                    System.arraycopy(c, 0, prefix, p.length, j);
                    Tensor logits = model.logits(model.hiddenStates(Tensors.longs(prefix, 1, prefix.length), null, null, null));
                    Tensor last = torch.log_softmax(logits.select(1, prefix.length - 1).squeeze(0), -1);
                    reference[i][j] = Tensors.toDoubles(last.contiguous())[(int) c[j]];
                }
            }

            List<LogProbs.Sequence> seqs = new ArrayList<>();
            for (int i = 0; i < n; i++) seqs.add(new LogProbs.Sequence(prompts.get(i), completions.get(i)));
            List<LogProbs.Result> scored = LogProbs.score(model, seqs, n);

            PreferenceTraining.Scored pref = PreferenceTraining.score(model, prompts, completions);
            double[] prefTokens = Tensors.toDoubles(pref.tokenLogps().contiguous()), prefMask = Tensors.toDoubles(pref.mask().contiguous());
            double[] prefSums = Tensors.toDoubles(pref.logps());
            int cols = (int) pref.tokenLogps().size(1);

            Rollouts.Layout layout = Rollouts.Layout.of(prompts, completions);
            double[][] rollout = layout.perRow(Rollouts.completionLogps(model, layout, 1.0));

            for (int i = 0; i < n; i++) {
                int p = prompts.get(i).length, len = completions.get(i).length;
                assertEquals(len, scored.get(i).numTokens());
                assertEquals(len, rollout[i].length);
                int masked = 0;
                for (int t = 0; t < cols; t++) masked += prefMask[i * cols + t] == 1 ? 1 : 0;
                assertEquals(len, masked, "preference mask of row " + i);
                for (int j = 0; j < len; j++) {
                    double lp = scored.get(i).tokenLogprobs()[j];
                    assertEquals(reference[i][j], lp, 1e-12, "row " + i + " token " + j);
                    assertEquals(1.0, prefMask[i * cols + p + j - 1], "preference mask at the token's prediction");
                    assertEquals(Double.doubleToLongBits(lp), Double.doubleToLongBits(prefTokens[i * cols + p + j - 1]), "preference row " + i + " token " + j);
                    assertEquals(Double.doubleToLongBits(lp), Double.doubleToLongBits(rollout[i][j]), "rollout row " + i + " token " + j);
                }
                assertEquals(scored.get(i).logprob(), prefSums[i], 1e-12, "preference sum of row " + i);
            }
        }
    }
}
