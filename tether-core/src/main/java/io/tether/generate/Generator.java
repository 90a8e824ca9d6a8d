package io.tether.generate;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.model.KvCache;

/**
 * Batched autoregressive generation. Prompts of different lengths are left-padded so that every row's next token
 * comes from the last column; the attention mask hides the padding and position ids count real tokens only, so a
 * row generates the same tokens alone or in a batch. With the cache, the prompt is prefilled once and each step
 * feeds one token per row. For G samples of one prompt (GRPO, RLOO, online DPO) the prompt is prefilled once, not G
 * times: its keys and values are copied into each sample's rows of the cache (prefix sharing).
 */
public final class Generator {
    private Generator() {}

    public enum FinishReason { EOS, STOP_STRING, LENGTH }

    /**
     * Generated tokens (without the prompt), why generation stopped, and each token's log-prob under the sampling
     * distribution softmax(logits / temperature) (before top-k/top-p, as TRL records the "old" log-probs; at
     * temperature 0 the plain softmax).
     */
    public record Generation(long[] tokens, FinishReason finishReason, double[] logprobs) {
        /** True when the completion hit the token budget without a stop token or string. */
        public boolean truncated() { return finishReason == FinishReason.LENGTH; }
    }

    public static List<Generation> generate(CausalLM model, List<long[]> prompts, SamplingConfig config) {
        return generate(model, prompts, config, null);
    }

    /**
     * @param decoder turns generated token ids into text; needed only for stop strings
     */
    public static List<Generation> generate(CausalLM model, List<long[]> prompts, SamplingConfig config,
                                            Function<long[], String> decoder) {
        return generate(model, prompts, 1, config, decoder);
    }

    /**
     * {@code groupSize} samples of every prompt, returned group by group (prompt 0's samples first). With the cache
     * each distinct prompt is prefilled once and shared by its group; without it every row recomputes its prompt.
     */
    public static List<Generation> generate(CausalLM model, List<long[]> uniquePrompts, int groupSize, SamplingConfig config,
                                            Function<long[], String> decoder) {
        if (groupSize < 1) throw new IllegalArgumentException("group size must be >= 1, got " + groupSize);
        if (uniquePrompts.isEmpty()) return List.of();
        List<long[]> prompts = new ArrayList<>(uniquePrompts.size() * groupSize);
        for (long[] p : uniquePrompts) for (int k = 0; k < groupSize; k++) prompts.add(p);
        if (!config.stopStrings().isEmpty() && decoder == null)
            throw new ConfigException("stop strings need a tokenizer to decode the completion");
        int vocab = model.config().vocabSize();
        int b = prompts.size(), promptLen = 0;
        for (int i = 0; i < b; i++) {
            long[] p = prompts.get(i);
            if (p.length == 0) throw new IllegalArgumentException("prompt " + i + " is empty: generation needs at least one token");
            for (int j = 0; j < p.length; j++)
                if (p[j] < 0 || p[j] >= vocab)
                    throw new IllegalArgumentException("prompt " + i + " token " + j + " has id " + p[j] + ", outside the vocabulary [0, " + vocab + ")");
            promptLen = Math.max(promptLen, p.length);
        }
        // A row stops (LENGTH) when prompt and completion fill the model's positions: scoring that sequence later
        // (log-probs, a reward model's last token) must fit too, and past the table positions are undefined.
        int positionsAvailable = model.config().maxPositionEmbeddings();
        int[] budget = new int[b];
        for (int i = 0; i < b; i++) {
            budget[i] = Math.min(config.maxNewTokens(), positionsAvailable - prompts.get(i).length);
            if (budget[i] < 1)
                throw new ConfigException("prompt " + i + " has " + prompts.get(i).length + " tokens, which leaves no room to generate within the model's "
                        + positionsAvailable + " positions (max_position_embeddings)");
        }
        int total = promptLen + config.maxNewTokens();
        // Left padding: row i's prompt occupies the last prompts[i].length columns of the prompt block.
        long[] ids = new long[b * promptLen];
        long[] mask = new long[b * total];
        long[] positions = new long[b * total];
        boolean padded = false;
        for (int i = 0; i < b; i++) {
            long[] p = prompts.get(i);
            int pad = promptLen - p.length;
            padded |= pad > 0;
            System.arraycopy(p, 0, ids, i * promptLen + pad, p.length);
            for (int j = 0; j < total; j++) {
                mask[i * total + j] = j >= pad ? 1 : 0;
                // Clamped: a row that stopped at the last position still feeds (ignored) padding while others go on.
                positions[i * total + j] = Math.min(Math.max(0, j - pad), positionsAvailable - 1);
            }
        }
        long[][] out = new long[b][config.maxNewTokens()];
        double[][] outLogprobs = new double[b][config.maxNewTokens()];
        int[] produced = new int[b];
        FinishReason[] finished = new FinishReason[b];
        Tensor maskAll = Tensors.longs(mask, b, total);
        Tensor positionsAll = Tensors.longs(positions, b, total);
        Tensor sequence = Tensors.longs(ids, b, promptLen);   // prompt + generated so far (uncached path)
        long padId = 0;
        try (NoGradGuard noGrad = new NoGradGuard(); Sampler sampler = new Sampler(config);
             KvCache cache = config.useCache() ? model.newCache(b, total) : null) {
            Tensor input = sequence;
            for (int step = 0; step < config.maxNewTokens(); step++) {
                try (StepScope scope = new StepScope()) {
                    int seen = promptLen + step;  // tokens whose keys exist after this forward
                    Tensor stepMask = padded ? maskAll.narrow(1, 0, seen) : null;
                    Tensor stepPositions;
                    Tensor logits;
                    if (cache != null && step == 0 && groupSize > 1) {
                        logits = prefillShared(model, sequence, positionsAll, stepMask, groupSize, promptLen, cache);
                    } else if (cache != null) {
                        long t = input.size(1);
                        stepPositions = positionsAll.narrow(1, seen - t, t);
                        logits = model.forward(input, stepPositions, stepMask, cache);
                    } else {
                        stepPositions = positionsAll.narrow(1, 0, seen);
                        logits = model.forward(sequence, stepPositions, stepMask, null);
                    }
                    Tensor last = logits.select(1, logits.size(1) - 1);       // (B, V)
                    Tensor nextIds = sampler.next(last);
                    long[] next = Tensors.toLongs(nextIds);
                    double[] nextLogprobs = Tensors.toDoubles(samplingLogprobs(last, nextIds, config));
                    for (int i = 0; i < b; i++) {
                        if (finished[i] != null) {
                            next[i] = padId;
                            continue;
                        }
                        outLogprobs[i][produced[i]] = nextLogprobs[i];
                        out[i][produced[i]++] = next[i];
                        if (config.stopTokenIds().contains(next[i])) finished[i] = FinishReason.EOS;
                        else if (!config.stopStrings().isEmpty() && containsStop(decoder.apply(Arrays.copyOf(out[i], produced[i])), config))
                            finished[i] = FinishReason.STOP_STRING;
                        else if (produced[i] >= budget[i]) finished[i] = FinishReason.LENGTH;
                    }
                    boolean allDone = true;
                    for (FinishReason f : finished) allDone &= f != null;
                    if (allDone) break;
                    Tensor nextTensor = Tensors.longs(next, b, 1);
                    // The step's inputs outlive its scope; the previous ones are released here.
                    if (cache != null) {
                        if (input != sequence) input.close();
                        input = StepScope.keep(nextTensor);
                    } else {
                        Tensor grown = torch.cat(new TensorVector(sequence, nextTensor), 1);
                        sequence.close();
                        sequence = StepScope.keep(grown);
                    }
                }
            }
        }
        List<Generation> result = new ArrayList<>(b);
        for (int i = 0; i < b; i++)
            result.add(new Generation(Arrays.copyOf(out[i], produced[i]), finished[i] == null ? FinishReason.LENGTH : finished[i],
                    Arrays.copyOf(outLogprobs[i], produced[i])));
        return result;
    }

    /**
     * Prefills each distinct prompt once (rows 0, g, 2g, ... of the left-padded prompt block) into a cache of its
     * own, copies those keys and values into every row of its group in {@code cache}, and returns the last-position
     * logits repeated per row [B*g, 1, V].
     */
    private static Tensor prefillShared(CausalLM model, Tensor rowsPrompt, Tensor positionsAll, Tensor rowsMask, int g,
                                        int promptLen, KvCache cache) {
        long rows = rowsPrompt.size(0), groups = rows / g;
        long[] firstOfGroup = new long[(int) groups];
        for (int i = 0; i < groups; i++) firstOfGroup[i] = (long) i * g;
        Tensor pick = Tensors.longs(firstOfGroup, groups);
        Tensor ids = rowsPrompt.index_select(0, pick);
        Tensor positions = positionsAll.narrow(1, 0, promptLen).index_select(0, pick);
        Tensor mask = rowsMask == null ? null : rowsMask.index_select(0, pick);
        try (KvCache prefix = model.newCache(groups, promptLen)) {
            Tensor logits = model.forward(ids, positions, mask, prefix);
            long[] groupOfRow = new long[(int) rows];
            for (int r = 0; r < rows; r++) groupOfRow[r] = r / g;
            Tensor spread = Tensors.longs(groupOfRow, rows);
            cache.copyRowsFrom(prefix, spread);
            return logits.narrow(1, logits.size(1) - 1, 1).index_select(0, spread);
        }
    }

    /** log softmax(logits / T)[token] per row (T = 1 when greedy). */
    private static Tensor samplingLogprobs(Tensor lastLogits, Tensor tokens, SamplingConfig config) {
        // At least fp32 (bf16 logits are too coarse for a log-softmax); fp64 models keep fp64.
        Tensor scores = Tensors.dtype(lastLogits) == DType.F64 ? lastLogits : lastLogits.to(DType.F32.scalarType);
        if (!config.greedy()) scores = scores.div(Tensors.scalar(config.temperature()));
        Tensor picked = torch.gather(scores, -1, tokens.unsqueeze(-1)).squeeze(-1);
        return picked.sub(torch.logsumexp(scores, new long[] {-1}, false));
    }

    private static boolean containsStop(String text, SamplingConfig config) {
        for (String s : config.stopStrings()) if (text.contains(s)) return true;
        return false;
    }
}
