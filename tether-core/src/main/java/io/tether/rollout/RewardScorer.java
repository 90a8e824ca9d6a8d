package io.tether.rollout;

import java.util.List;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.text.Padding;

/**
 * Scalar rewards from a sequence-classification model (HF's *ForSequenceClassification, num_labels 1): the score
 * head applied to the hidden state of each sequence's last real token, as transformers reads it.
 */
public final class RewardScorer {
    private RewardScorer() {}

    /** Differentiable rewards [B] of right-padded ids [B, T] with real lengths {@code lengths}. */
    public static Tensor rewards(CausalLM model, Tensor ids, long[] lengths) {
        if (!model.config().isClassifier() || model.config().numLabels() != 1)
            throw new ConfigException("reward scoring needs a sequence-classification model with num_labels 1, got " + model.config().architecture());
        long b = ids.size(0), t = ids.size(1);
        Tensor hidden = model.hiddenStates(ids, null, null, null);                     // (B, T, H)
        long[] last = new long[(int) b];
        for (int i = 0; i < b; i++) {
            if (lengths[i] < 1 || lengths[i] > t) throw new IllegalArgumentException("row " + i + " has length " + lengths[i] + " outside [1, " + t + "]");
            last[i] = lengths[i] - 1;
        }
        Tensor index = Tensors.longs(last, b, 1, 1).expand(b, 1, hidden.size(2));
        Tensor at = torch.gather(hidden, 1, index).squeeze(1);                         // (B, H) hidden of the last real token
        return model.logits(at).squeeze(-1);                                            // (B)
    }

    /** Rewards of token sequences, batched, without gradients. */
    public static double[] score(CausalLM model, List<long[]> sequences, int batchSize) {
        double[] out = new double[sequences.size()];
        for (int start = 0; start < sequences.size(); start += batchSize) {
            List<long[]> batch = sequences.subList(start, Math.min(sequences.size(), start + batchSize));
            try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                double[] r = Tensors.toDoubles(rewards(model, padded(batch), lengths(batch)));
                System.arraycopy(r, 0, out, start, r.length);
            }
        }
        return out;
    }

    /** Right-padded [B, T] ids (padding id 0: never seen by real tokens under causal attention). */
    public static Tensor padded(List<long[]> seqs) {
        Padding.Batch p = Padding.pad(seqs, 0, Padding.Side.RIGHT, 0, false);
        return Tensors.longs(p.ids(), seqs.size(), p.length());
    }

    public static long[] lengths(List<long[]> seqs) {
        long[] out = new long[seqs.size()];
        for (int i = 0; i < out.length; i++) out[i] = seqs.get(i).length;
        return out;
    }
}
