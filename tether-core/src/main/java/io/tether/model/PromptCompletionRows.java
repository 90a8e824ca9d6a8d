package io.tether.model;

import java.util.List;

import org.bytedeco.pytorch.Tensor;

import io.tether.engine.Tensors;

/**
 * Prompt + completion rows right-padded (with token 0) to one length L, and where each completion token is predicted:
 * token j of row i's completion sits at position p_i + j, so column p_i + j − 1 of the [N, L − 1] prediction logits
 * ({@link LogProbs#predictionLogits}) predicts it. The one place that arithmetic is written.
 *
 * @param ids     the rows, [N, L] flattened
 * @param length  L: the longest row, at least the minimum asked for
 */
public record PromptCompletionRows(long[] ids, int rows, int length, int[] promptLengths, int[] completionLengths) {
    /** Lays out {@code prompts[i] + completions[i]}; every prompt needs a token (the first token has no prediction). */
    public static PromptCompletionRows of(List<long[]> prompts, List<long[]> completions, int minLength) {
        int n = prompts.size(), len = minLength;
        for (int i = 0; i < n; i++) len = Math.max(len, prompts.get(i).length + completions.get(i).length);
        long[] ids = new long[n * len];
        int[] promptLengths = new int[n], completionLengths = new int[n];
        for (int i = 0; i < n; i++) {
            long[] p = prompts.get(i), c = completions.get(i);
            if (p.length == 0) throw new IllegalArgumentException("row " + i + ": empty prompt");
            System.arraycopy(p, 0, ids, i * len, p.length);
            System.arraycopy(c, 0, ids, i * len + p.length, c.length);
            promptLengths[i] = p.length;
            completionLengths[i] = c.length;
        }
        return new PromptCompletionRows(ids, n, len, promptLengths, completionLengths);
    }

    /** The column of the [N, L − 1] predictions that predicts completion token {@code j} of {@code row}: p + j − 1. */
    public int predictionColumn(int row, int j) {
        return promptLengths[row] + j - 1;
    }

    /** {@link #predictionColumn} in the flattened [N, L − 1] predictions. */
    public int predictionIndex(int row, int j) {
        return row * (length - 1) + predictionColumn(row, j);
    }

    /** The rows as an int64 tensor [N, L]. */
    public Tensor idsTensor() {
        return Tensors.longs(ids, rows, length);
    }
}
