package io.tether.model;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

import org.bytedeco.pytorch.AutoGradMode;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorBase;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.VoidTensorHook;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.Autocast;
import io.tether.engine.DType;
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
        return tokenLogprobs(model, inputIds, null, null);
    }

    /** {@link #tokenLogprobs(CausalLM, Tensor)} with position ids and mask as {@link CausalLM#forward} takes them. */
    public static Tensor tokenLogprobs(CausalLM model, Tensor inputIds, Tensor positionIds, Tensor attentionMask) {
        return tokenScores(model, model.hiddenStates(inputIds, positionIds, attentionMask, null), inputIds, 1, EnumSet.noneOf(Extra.class)).logps();
    }

    /**
     * The logits that predict tokens 1..L-1, [B, L-1, V], in the weights' dtype: under bf16 autocast the head's
     * output is bf16, too coarse for a log-softmax. Position ids and mask as {@link CausalLM#forward} takes them.
     * This materialises B x (L-1) x V: scoring goes through {@link #tokenScores}, which does not.
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

    /** Per-position figures a caller may want beside the log-probs, computed from the logits without gradient. */
    public enum Extra {
        /** The mean of the (unscaled) logits over the vocabulary (TRL's {@code logits/chosen}). */
        MEAN_LOGIT,
        /** The entropy of softmax(logits / temperature) (TRL's {@code policy/entropy_avg}). */
        ENTROPY,
        /** log Σ_v p_v² of softmax(logits / temperature) (WPO's weight). */
        LOG_SUM_SQUARES
    }

    /**
     * Per-position figures [B, L-1] of the predictions of tokens 1..L-1: log-probs at {@code temperature}
     * (differentiable unless under no-grad) and each asked-for {@link Extra} (no gradient; null when not asked).
     */
    public record TokenScores(Tensor logps, Tensor meanLogits, Tensor entropy, Tensor logSumSquares) {}

    /**
     * Elements of one chunk's logits when the chunk size is automatic: 2^25 (128 MB in fp32), so Qwen2.5's vocabulary
     * of 151,936 gets 220 positions per chunk and a vocabulary of 4,096 gets 8,192 (a whole bench batch: one chunk).
     */
    static final long AUTO_CHUNK_ELEMENTS = 1L << 25;

    private static volatile int chunkPositions = Integer.getInteger("tether.logprobs.chunk", -1);

    /**
     * Positions per chunk of {@link #tokenScores}: -1 (the default) sizes chunks automatically from the vocabulary,
     * n > 0 takes n positions per chunk, 0 computes the full B x (L-1) x V logits at once (the unchunked path).
     * Process-wide, also settable with {@code -Dtether.logprobs.chunk=n}. Returns the previous setting.
     */
    public static int setChunkPositions(int n) {
        if (n < -1) throw new IllegalArgumentException("chunk positions must be -1 (automatic), 0 (unchunked) or positive: " + n);
        int old = chunkPositions;
        chunkPositions = n;
        return old;
    }

    public static int chunkPositions() {
        return chunkPositions;
    }

    /**
     * Log-probs (and extras) of the tokens 1..L-1 of {@code inputIds} [B, L] from the model's final hidden states
     * {@code hidden} [B, L, H], without ever holding B x (L-1) x V logits: the positions are scored in chunks, each
     * chunk's logits dropped as soon as its figures are taken.
     *
     * <p>libtorch's custom autograd Functions are out of reach from Java, so the backward is assembled from what the
     * bindings offer. Per token the log-prob's gradient with respect to its hidden state h_t is a vector v_t (the head's
     * Jacobian applied to onehot(y_t) - softmax); the forward computes it chunk by chunk (a small backward to a detached
     * leaf) and returns lp + (Σ h·v − stopgrad(Σ h·v)): the value is lp exactly (x − x is 0) and autograd carries
     * g_t·v_t to h_t through the model's own graph, so a value head sharing {@code hidden} (PPO) backpropagates in the
     * same {@code loss.backward()}. The head's weights, when they train (full fine-tuning; never under LoRA, which does
     * not target the head), get their gradient from a zero leaf added to the result: a hook on it receives g during
     * {@code loss.backward()}, recomputes each chunk's logits from the detached hidden states and back-propagates g
     * into the head. Cost: two head matmuls in the forward (values and v), two more in the hook when the head
     * trains; the unchunked path costs three.
     */
    public static TokenScores tokenScores(CausalLM model, Tensor hidden, Tensor inputIds, double temperature, Set<Extra> extras) {
        long b = hidden.size(0), len = hidden.size(1), d = hidden.size(2), n = b * (len - 1);
        boolean grad = GradMode.is_enabled();
        boolean hiddenGrad = grad && hidden.requires_grad();
        int setting = chunkPositions;
        long rows = setting > 0 ? setting : Math.max(1, AUTO_CHUNK_ELEMENTS / model.config().vocabSize());
        // One chunk would hold all the logits anyway: the unchunked path does that with one head matmul fewer.
        if (setting == 0 || n <= rows) return fullScores(model, hidden, inputIds, temperature, extras);
        boolean headGrad = grad && headTrains(model, hidden);
        DType dtype = model.dtype();
        Tensor flat = hidden.narrow(1, 0, len - 1).reshape(n, d);                  // (N, H), with the graph to hidden
        Tensor values = flat.detach();
        Tensor targets = inputIds.narrow(1, 1, len - 1).reshape(n);                  // (N)
        List<Tensor> lps = new ArrayList<>(), vs = new ArrayList<>(), means = new ArrayList<>(), ents = new ArrayList<>(), sums = new ArrayList<>();
        for (long start = 0; start < n; start += rows) {
            long s0 = start, m = Math.min(rows, n - start);
            Tensor[] r = StepScope.scopedAll(() -> {
                Tensor x = values.narrow(0, s0, m), tc = targets.narrow(0, s0, m);
                Tensor logits, lp, v = null;
                if (hiddenGrad) {
                    x = x.detach().requires_grad_(true);
                    logits = model.logits(x).to(dtype.scalarType);
                    lp = pick(scaled(logits, temperature), tc);
                    // Only x's gradient: the head's weights are not in inputs, so this backward leaves them alone.
                    torch.backward(new TensorVector(lp), new TensorVector(torch.ones_like(lp)), new BoolOptional(), false, new TensorVector(x));
                    v = x.grad().detach();   // grad() is a reference into x, which this scope frees
                    lp = lp.detach();
                } else {
                    try (NoGradGuard g = new NoGradGuard()) {
                        logits = model.logits(x).to(dtype.scalarType);
                        lp = pick(scaled(logits, temperature), tc);
                    }
                }
                Tensor[] ex = extrasOf(logits, temperature, extras);
                return new Tensor[] {lp, v, ex[0], ex[1], ex[2]};
            });
            lps.add(r[0]);
            if (r[1] != null) vs.add(r[1]);
            if (r[2] != null) means.add(r[2]);
            if (r[3] != null) ents.add(r[3]);
            if (r[4] != null) sums.add(r[4]);
        }
        Tensor lp = cat(lps);
        if (hiddenGrad) {
            Tensor hv = flat.mul(cat(vs)).sum(new long[] {-1}, false, new ScalarTypeOptional());   // (N): gradient v_t to h_t
            lp = lp.add(hv.sub(hv.detach()));
        }
        if (headGrad) {
            // A zero leaf added to the result: its gradient is the loss's gradient g of each log-prob, and its hook (run
            // inside loss.backward()) back-propagates g through each chunk's recomputed logits into the head's weights.
            Tensor leaf = Tensors.zeros(dtype, n).requires_grad_(true);
            leaf.register_hook(new HeadBackward(model, values, targets, temperature, rows, Autocast.active()));
            lp = lp.add(leaf);
        }
        return new TokenScores(lp.view(b, len - 1), shaped(means, b, len), shaped(ents, b, len), shaped(sums, b, len));
    }

    /**
     * The head weights' share of the backward, as a hook on the zero leaf: g through each chunk's recomputed logits.
     * The autograd engine runs hooks with gradient mode off, so the recompute turns it back on; the nested backward
     * is reentrant, as PyTorch's reentrant checkpointing does it. Created in the step's scope, which frees it (and the
     * hook's native thunk) with the leaf.
     */
    private static final class HeadBackward extends VoidTensorHook {
        private final CausalLM model;
        private final Tensor values, targets;
        private final double temperature;
        private final long rows;
        private final boolean autocast;

        HeadBackward(CausalLM model, Tensor values, Tensor targets, double temperature, long rows, boolean autocast) {
            this.model = model;
            this.values = values;
            this.targets = targets;
            this.temperature = temperature;
            this.rows = rows;
            this.autocast = autocast;
        }

        @Override
        public void call(TensorBase gradient) {
            Tensor g = new Tensor(gradient);
            long n = values.size(0);
            for (long start = 0; start < n; start += rows) {
                long m = Math.min(rows, n - start);
                try (StepScope scope = new StepScope(); AutoGradMode on = new AutoGradMode(true); Autocast region = Autocast.bf16(autocast)) {
                    Tensor lp = pick(scaled(model.logits(values.narrow(0, start, m)).to(model.dtype().scalarType), temperature), targets.narrow(0, start, m));
                    torch.backward(new TensorVector(lp), new TensorVector(g.narrow(0, start, m)), new BoolOptional(), false, new TensorVector());
                }
            }
        }
    }

    /** The unchunked path: the full prediction logits, as before chunking (for a batch that fits one chunk, and for comparison). */
    static TokenScores fullScores(CausalLM model, Tensor hidden, Tensor inputIds, double temperature, Set<Extra> extras) {
        Tensor logits = predictionLogits(model, hidden);
        Tensor lp = tokenLogprobs(scaled(logits, temperature), inputIds);
        Tensor[] ex = extrasOf(logits, temperature, extras);
        return new TokenScores(lp, ex[0], ex[1], ex[2]);
    }

    /** Whether gradient reaches the head's own weights (full fine-tuning): probed on one position. */
    private static boolean headTrains(CausalLM model, Tensor hidden) {
        return StepScope.scoped(() -> model.logits(hidden.detach().narrow(0, 0, 1).narrow(1, 0, 1))).requires_grad();
    }

    private static Tensor scaled(Tensor logits, double temperature) {
        return temperature > 0 && temperature != 1 ? logits.div(Tensors.scalar(temperature)) : logits;
    }

    /** log softmax(logits)[target] per row, as {@link #tokenLogprobs(Tensor, Tensor)} computes it. */
    private static Tensor pick(Tensor logits, Tensor targets) {
        Tensor picked = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1);
        return picked.sub(torch.logsumexp(logits, new long[] {-1}, false));
    }

    /** {mean logit, entropy, log Σ p²} over the last dimension, each null unless asked for; no gradient. */
    private static Tensor[] extrasOf(Tensor logits, double temperature, Set<Extra> extras) {
        Tensor[] out = new Tensor[3];
        if (extras.isEmpty()) return out;
        try (NoGradGuard g = new NoGradGuard()) {
            Tensor l = logits.detach();
            if (extras.contains(Extra.MEAN_LOGIT)) out[0] = l.mean(new long[] {-1}, false, new ScalarTypeOptional());
            if (extras.contains(Extra.ENTROPY) || extras.contains(Extra.LOG_SUM_SQUARES)) {
                Tensor logp = torch.log_softmax(scaled(l, temperature), -1);
                if (extras.contains(Extra.ENTROPY)) out[1] = logp.exp().mul(logp).sum(new long[] {-1}, false, new ScalarTypeOptional()).neg();
                if (extras.contains(Extra.LOG_SUM_SQUARES)) out[2] = torch.logsumexp(logp.mul(Tensors.scalar(2.0)), new long[] {-1}, false);
            }
        }
        return out;
    }

    private static Tensor cat(List<Tensor> parts) {
        return parts.size() == 1 ? parts.get(0) : torch.cat(new TensorVector(parts.toArray(new Tensor[0])), 0);
    }

    private static Tensor shaped(List<Tensor> parts, long b, long len) {
        return parts.isEmpty() ? null : cat(parts).view(b, len - 1);
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
