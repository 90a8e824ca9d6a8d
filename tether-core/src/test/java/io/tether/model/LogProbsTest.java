package io.tether.model;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

class LogProbsTest {
    private static List<LogProbs.Sequence> randomSequences(int n, int vocab, long seed) {
        Random r = new Random(seed);
        List<LogProbs.Sequence> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long[] p = new long[1 + r.nextInt(6)], c = new long[1 + r.nextInt(7)];
            for (int j = 0; j < p.length; j++) p[j] = r.nextInt(vocab);
            for (int j = 0; j < c.length; j++) c[j] = r.nextInt(vocab);
            out.add(new LogProbs.Sequence(p, c));
        }
        return out;
    }

    @Test
    void logprobDoesNotDependOnPaddingOrBatchCompany() {
        for (ModelConfig config : TinyConfigs.all()) {
            try (CausalLM model = Models.create(config, DType.F32, 11)) {
                List<LogProbs.Sequence> seqs = randomSequences(7, config.vocabSize(), 5);
                List<LogProbs.Result> batched = LogProbs.score(model, seqs, 7);
                List<LogProbs.Result> inPairs = LogProbs.score(model, seqs, 2);
                for (int i = 0; i < seqs.size(); i++) {
                    LogProbs.Result alone = LogProbs.score(model, List.of(seqs.get(i)), 1).get(0);
                    assertEquals(alone.numTokens(), seqs.get(i).completion().length);
                    assertEquals(alone.logprob(), batched.get(i).logprob(), 2e-5, config.architecture() + " sequence " + i + " in a batch of 7");
                    assertEquals(alone.logprob(), inPairs.get(i).logprob(), 2e-5, config.architecture() + " sequence " + i + " in pairs");
                    assertTrue(alone.logprob() < 0);
                }
            }
        }
    }

    @Test
    void perTokenLogprobsAreNormalisedNextTokenProbabilities() {
        try (CausalLM model = Models.create(TinyConfigs.llama(), DType.F64, 2); StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            long[] prompt = {3, 1, 4}, completion = {1, 5, 9};
            LogProbs.Result r = LogProbs.score(model, List.of(new LogProbs.Sequence(prompt, completion)), 1).get(0);
            Tensor logits = model.forward(Tensors.longs(new long[] {3, 1, 4, 1, 5, 9}, 1, 6));
            Tensor lsm = torch.log_softmax(logits, -1);
            double sum = 0;
            for (int j = 0; j < 3; j++) {
                double expected = lsm.select(1, 2 + j).select(1, completion[j]).item_double();
                assertEquals(expected, r.tokenLogprobs()[j], 1e-12);
                sum += expected;
            }
            assertEquals(sum, r.logprob(), 1e-12);
            // Probabilities over the vocabulary sum to one at every position.
            double[] total = Tensors.toDoubles(lsm.exp().sum(new long[] {-1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()));
            for (double v : total) assertEquals(1.0, v, 1e-12);
        }
    }

    @Test
    void differentiableSumsMatchScores() {
        try (CausalLM model = Models.create(TinyConfigs.gpt2(), DType.F64, 4); StepScope s = new StepScope()) {
            List<LogProbs.Sequence> seqs = randomSequences(3, 13, 9);
            int len = 0;
            for (LogProbs.Sequence q : seqs) len = Math.max(len, q.prompt().length + q.completion().length);
            long[] ids = new long[3 * len], mask = new long[3 * len];
            for (int b = 0; b < 3; b++) {
                LogProbs.Sequence q = seqs.get(b);
                System.arraycopy(q.prompt(), 0, ids, b * len, q.prompt().length);
                System.arraycopy(q.completion(), 0, ids, b * len + q.prompt().length, q.completion().length);
                for (int j = 0; j < q.completion().length; j++) mask[b * len + q.prompt().length + j] = 1;
            }
            double[] sums = Tensors.toDoubles(LogProbs.sequenceLogprobs(model, Tensors.longs(ids, 3, len), Tensors.longs(mask, 3, len)));
            List<LogProbs.Result> scored = LogProbs.score(model, seqs, 3);
            for (int b = 0; b < 3; b++) assertEquals(scored.get(b).logprob(), sums[b], 1e-10);
        }
    }

    @Test
    void rejectsIdsOutsideTheVocabularyAndEmptyPrompts() {
        try (CausalLM model = Models.create(TinyConfigs.llama(), DType.F32, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LogProbs.score(model, List.of(new LogProbs.Sequence(new long[] {1}, new long[] {2, 13})), 1));
            assertTrue(e.getMessage().contains("completion token 1 has id 13"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new LogProbs.Sequence(new long[0], new long[] {1}));
            assertTrue(e.getMessage().contains("empty prompt"));
        }
    }
}
