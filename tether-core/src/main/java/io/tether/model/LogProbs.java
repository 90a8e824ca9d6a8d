package io.tether.model;

import java.util.ArrayList;
import java.util.List;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * Sequence log-probabilities: log p(completion | prompt) = sum over completion tokens of log softmax(logits)[token].
 *
 * <p>Batches are right-padded. Under causal attention a real token never sees the padding after it, so a
 * sequence's log-prob does not depend on how much padding or which other sequences share its batch.
 */
public final class LogProbs {
    private LogProbs() {}

    /** A prompt (at least one token: the first token has no prediction) and a completion to score. */
    public record Sequence(long[] prompt, long[] completion) {
        public Sequence {
            if (prompt.length == 0) throw new IllegalArgumentException("empty prompt: at least one token (e.g. BOS) must precede the completion");
        }
    }

    /** Summed log-prob, the number of completion tokens, and the per-token log-probs. */
    public record Result(double logprob, int numTokens, double[] tokenLogprobs) {}

    /**
     * Differentiable per-row sums for training: returns [B] log-probs of the completion tokens of each row.
     * {@code inputIds} [B, L] right-padded; {@code completionMask} [B, L] is 1 where the token at that position is a
     * completion token to score (never position 0).
     */
    public static Tensor sequenceLogprobs(CausalLM model, Tensor inputIds, Tensor completionMask) {
        return tokenLogprobs(model, inputIds).mul(completionMask.narrow(1, 1, inputIds.size(1) - 1).to(model.dtype().scalarType)).sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional());
    }

    /** log p(token[t] | tokens[<t]) for t = 1..L-1: shape [B, L-1]. */
    public static Tensor tokenLogprobs(CausalLM model, Tensor inputIds) {
        return tokenLogprobs(predictionLogits(model, inputIds, null, null), inputIds);
    }

    /**
     * The logits that predict tokens 1..L-1, [B, L-1, V], in the weights' dtype: under bf16 autocast the head's
     * output is bf16, too coarse for a log-softmax. Position ids and mask as {@link CausalLM#forward} takes them.
     */
    public static Tensor predictionLogits(CausalLM model, Tensor inputIds, Tensor positionIds, Tensor attentionMask) {
        return predictionLogits(model, model.hiddenStates(inputIds, positionIds, attentionMask, null));
    }

    /** {@link #predictionLogits} from hidden states [B, L, hidden] the caller also needs (e.g. for a value head). */
    public static Tensor predictionLogits(CausalLM model, Tensor hidden) {
        return model.logits(hidden).narrow(1, 0, hidden.size(1) - 1).to(model.dtype().scalarType);
    }

    /** log p(token[t] | tokens[<t]) for t = 1..L-1, [B, L-1], from {@link #predictionLogits}. */
    public static Tensor tokenLogprobs(Tensor predictionLogits, Tensor inputIds) {
        Tensor targets = inputIds.narrow(1, 1, inputIds.size(1) - 1).unsqueeze(-1);        // (B, L-1, 1)
        Tensor picked = torch.gather(predictionLogits, -1, targets).squeeze(-1);            // (B, L-1)
        return picked.sub(torch.logsumexp(predictionLogits, new long[] {-1}, false));
    }

    /** Scores sequences in batches of {@code batchSize}, without gradients, each batch in its own scope. */
    public static List<Result> score(CausalLM model, List<Sequence> sequences, int batchSize) {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be >= 1");
        int vocab = model.config().vocabSize();
        for (int i = 0; i < sequences.size(); i++) checkIds(sequences.get(i), i, vocab);
        List<Result> out = new ArrayList<>(sequences.size());
        for (int start = 0; start < sequences.size(); start += batchSize) {
            List<Sequence> batch = sequences.subList(start, Math.min(sequences.size(), start + batchSize));
            try (StepScope scope = new StepScope(); NoGradGuard noGrad = new NoGradGuard()) {
                out.addAll(scoreBatch(model, batch));
            }
        }
        return out;
    }

    private static List<Result> scoreBatch(CausalLM model, List<Sequence> batch) {
        List<long[]> prompts = new ArrayList<>(batch.size()), completions = new ArrayList<>(batch.size());
        for (Sequence s : batch) { prompts.add(s.prompt()); completions.add(s.completion()); }
        PromptCompletionRows rows = PromptCompletionRows.of(prompts, completions, 0);   // right padding: never seen by real tokens
        if (rows.length() < 2) {
            List<Result> empty = new ArrayList<>();
            for (int b = 0; b < batch.size(); b++) empty.add(new Result(0, 0, new double[0]));
            return empty;
        }
        double[] lp = Tensors.toDoubles(tokenLogprobs(model, rows.idsTensor()));
        List<Result> results = new ArrayList<>(batch.size());
        for (int b = 0; b < batch.size(); b++) {
            Sequence s = batch.get(b);
            int n = s.completion().length;
            double[] per = new double[n];
            double sum = 0;
            for (int j = 0; j < n; j++) {
                per[j] = lp[rows.predictionIndex(b, j)];
                sum += per[j];
            }
            results.add(new Result(sum, n, per));
        }
        return results;
    }

    private static void checkIds(Sequence s, int index, int vocab) {
        for (int part = 0; part < 2; part++) {
            long[] ids = part == 0 ? s.prompt() : s.completion();
            for (int j = 0; j < ids.length; j++)
                if (ids[j] < 0 || ids[j] >= vocab)
                    throw new IllegalArgumentException("sequence " + index + ": " + (part == 0 ? "prompt" : "completion") + " token " + j
                            + " has id " + ids[j] + ", outside the vocabulary [0, " + vocab + ")");
        }
    }
}
