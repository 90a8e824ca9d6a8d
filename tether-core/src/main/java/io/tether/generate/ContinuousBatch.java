package io.tether.generate;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.generate.Generator.FinishReason;
import io.tether.model.CausalLM;
import io.tether.model.KvCache;

/**
 * Continuous batching: rows join and leave between decode steps, each decode step feeds one token for every live
 * row. The rows joining at one step are prefilled together (left-padded, with an explicit padding mask even when
 * alone, so a row takes the same kernels alone or with others) and their keys and values are laid out beside the running rows' on one column timeline ({@link KvCache#assemble}):
 * each row is left-padded to the batch's length, the attention mask hides the padding and position ids count the
 * row's real tokens only, as in {@link Generator}. Finished rows are dropped at the next step, and columns no live
 * row uses are trimmed, so the cache stays as wide as the longest live row.
 *
 * <p>Every row samples with a {@link Sampler} of its own, seeded from its own seed, so its draws depend on its own
 * logits only: a seeded request yields the same tokens alone or in any batch (the decode step always passes a
 * padding mask, so alone and batched rows take the same attention kernel). Not thread-safe: one thread (a
 * scheduler) owns a batch, its model and its tensors.
 */
public final class ContinuousBatch implements AutoCloseable {
    private final CausalLM model;
    private final List<Row> running = new ArrayList<>();
    private final List<Row> joining = new ArrayList<>();
    private KvCache cache;
    private int[] padStart = new int[0];   // per running row: first cache column it uses

    public ContinuousBatch(CausalLM model) {
        this.model = model;
    }

    /** One request's sequence in the batch. */
    public final class Row {
        private final long[] prompt;
        private final SamplingConfig config;
        private final int topLogprobs;
        private final int budget;
        private final Sampler sampler;
        private final List<Token> tokens = new ArrayList<>();
        private KvCache prefill;    // the cache its prompt was prefilled into, until it joins the running batch
        private int prefillRow;     // its row there
        private FinishReason finish;
        private boolean cancelled;

        private Row(long[] prompt, SamplingConfig config, int topLogprobs, int budget) {
            this.prompt = prompt;
            this.config = config;
            this.topLogprobs = topLogprobs;
            this.budget = budget;
            this.sampler = new Sampler(config);
        }

        public long[] prompt() { return prompt; }
        public List<Token> tokens() { return tokens; }
        /** Null while the row still generates. */
        public FinishReason finishReason() { return finish; }
        public boolean done() { return finish != null || cancelled; }

        /** Ends the row (a stop string, a timeout, a gone client); it leaves the batch at the next step. */
        public void stop(FinishReason reason) {
            if (finish == null) finish = reason;
        }

        public void cancel() { cancelled = true; }

        public long[] tokenIds() {
            long[] ids = new long[tokens.size()];
            for (int i = 0; i < ids.length; i++) ids[i] = tokens.get(i).id();
            return ids;
        }

        private void accept(long id, double logprob, long[] topIds, double[] topLogprobs) {
            tokens.add(new Token(id, logprob, topIds, topLogprobs));
            if (config.stopTokenIds().contains(id)) finish = FinishReason.EOS;
            else if (tokens.size() >= budget) finish = FinishReason.LENGTH;
        }

        private long pending() { return tokens.get(tokens.size() - 1).id(); }
    }

    /**
     * A generated token, its log-prob under the model's distribution (log-softmax of the raw logits, before
     * temperature and top-p, as vLLM reports by default) and, when asked for, the most likely alternatives.
     * Log-probs are NaN when the row did not ask for them.
     */
    public record Token(long id, double logprob, long[] topIds, double[] topLogprobs) {}

    /** Rows that still generate or finished at the last step (they are removed at the next one). */
    public int size() { return running.size() + joining.size(); }

    /** Rows still generating. */
    public int live() {
        int n = 0;
        for (Row r : running) if (!r.done()) n++;
        for (Row r : joining) if (!r.done()) n++;
        return n;
    }

    /**
     * Prefills {@code prompt} and samples its first token; the row joins the running rows at the next
     * {@link #step}. {@code topLogprobs}: -1 for no log-probs, else how many alternatives per token (0 = only the
     * chosen token's log-prob). The row may be done already (first token a stop token, or a budget of one).
     */
    public Row join(long[] prompt, SamplingConfig config, int topLogprobs) {
        return join(List.of(prompt), List.of(config), List.of(topLogprobs)).get(0);
    }

    /**
     * Prefills several prompts in one left-padded forward (the requests that arrived since the last step) and
     * samples each one's first token. The prefill always passes an explicit padding mask, padded or not, so a row
     * takes the same attention kernel alone as among others.
     */
    public List<Row> join(List<long[]> prompts, List<SamplingConfig> configs, List<Integer> topLogprobs) {
        int vocab = model.config().vocabSize();
        int positions = model.config().maxPositionEmbeddings();
        List<Row> rows = new ArrayList<>();
        int maxLen = 0;
        for (int i = 0; i < prompts.size(); i++) {
            long[] prompt = prompts.get(i);
            if (prompt.length == 0) throw new ConfigException("prompt is empty: generation needs at least one token");
            for (int j = 0; j < prompt.length; j++)
                if (prompt[j] < 0 || prompt[j] >= vocab)
                    throw new ConfigException("prompt token " + j + " has id " + prompt[j] + ", outside the vocabulary [0, " + vocab + ")");
            int budget = Math.min(configs.get(i).maxNewTokens(), positions - prompt.length);
            if (budget < 1)
                throw new ConfigException("the prompt has " + prompt.length + " tokens, which leaves no room to generate within the model's "
                        + positions + " positions (max_position_embeddings)");
            maxLen = Math.max(maxLen, prompt.length);
        }
        for (int i = 0; i < prompts.size(); i++) {
            long[] prompt = prompts.get(i);
            rows.add(new Row(prompt.clone(), configs.get(i), topLogprobs.get(i), Math.min(configs.get(i).maxNewTokens(), positions - prompt.length)));
        }
        if (rows.isEmpty()) return rows;
        int b = rows.size();
        long[] ids = new long[b * maxLen], mask = new long[b * maxLen], pos = new long[b * maxLen];
        for (int i = 0; i < b; i++) {
            long[] p = rows.get(i).prompt;
            int pad = maxLen - p.length;
            System.arraycopy(p, 0, ids, i * maxLen + pad, p.length);
            for (int j = pad; j < maxLen; j++) {
                mask[i * maxLen + j] = 1;
                pos[i * maxLen + j] = j - pad;
            }
        }
        KvCache own = model.newCache(b, maxLen);
        try (NoGradGuard g = new NoGradGuard(); StepScope scope = new StepScope()) {
            Tensor logits = model.forward(Tensors.longs(ids, b, maxLen), Tensors.longs(pos, b, maxLen), Tensors.longs(mask, b, maxLen), own);
            pick(rows, logits.select(1, maxLen - 1));   // [B, V]
        } catch (RuntimeException e) {
            own.close();
            for (Row r : rows) r.sampler.close();
            throw e;
        }
        boolean anyLive = false;
        for (int i = 0; i < b; i++) {
            Row r = rows.get(i);
            if (r.done()) {
                r.sampler.close();
            } else {
                r.prefill = own;
                r.prefillRow = i;
                joining.add(r);
                anyLive = true;
            }
        }
        if (!anyLive) own.close();
        return rows;
    }

    /**
     * Drops finished rows, merges joined ones, and runs one decode step for every live row. Returns the rows that
     * took part (each got one more token, or finished); empty when no row was live.
     */
    public List<Row> step() {
        relayout();
        if (running.isEmpty()) return List.of();
        int b = running.size();
        int length = cache.length();
        long[] input = new long[b], positions = new long[b], mask = new long[b * (length + 1)];
        for (int r = 0; r < b; r++) {
            Row row = running.get(r);
            input[r] = row.pending();
            positions[r] = length - padStart[r];   // real tokens so far = this token's position
            for (int c = padStart[r]; c <= length; c++) mask[r * (length + 1) + c] = 1;
        }
        try (NoGradGuard g = new NoGradGuard(); StepScope scope = new StepScope()) {
            Tensor logits = model.forward(Tensors.longs(input, b, 1), Tensors.longs(positions, b, 1), Tensors.longs(mask, b, length + 1), cache);
            pick(running, logits.select(1, 0));
        }
        return List.copyOf(running);
    }

    /** Samples each row's next token from its row of {@code last} [B, V] with the row's own sampler. */
    private static void pick(List<Row> rows, Tensor last) {
        boolean anyLogprobs = false;
        int maxTop = 0;
        for (Row r : rows) {
            anyLogprobs |= r.topLogprobs >= 0;
            maxTop = Math.max(maxTop, r.topLogprobs);
        }
        Tensor logprobs = null;
        double[] lp = null;
        long[] topIds = null;
        double[] topLp = null;
        long v = last.size(1);
        if (anyLogprobs) {
            Tensor scores = Tensors.dtype(last) == DType.F64 ? last : last.to(DType.F32.scalarType);
            logprobs = torch.log_softmax(scores, -1);
            if (maxTop > 0) {
                T_TensorTensor_T top = torch.topk(logprobs, Math.min(maxTop, v), -1, true, true);
                topLp = Tensors.toDoubles(top.get0().to(DType.F64.scalarType).contiguous());
                topIds = Tensors.toLongs(top.get1().contiguous());
            }
        }
        long[] chosen = new long[rows.size()];
        for (int r = 0; r < rows.size(); r++) chosen[r] = Tensors.toLongs(rows.get(r).sampler.next(last.narrow(0, r, 1)))[0];
        if (logprobs != null)
            lp = Tensors.toDoubles(torch.gather(logprobs, -1, Tensors.longs(chosen, rows.size(), 1)).squeeze(-1).to(DType.F64.scalarType).contiguous());
        int k = (int) Math.min(maxTop, v);
        for (int r = 0; r < rows.size(); r++) {
            Row row = rows.get(r);
            if (row.done()) continue;
            long[] ti = null;
            double[] tl = null;
            if (row.topLogprobs > 0) {
                int n = (int) Math.min(row.topLogprobs, v);
                ti = Arrays.copyOfRange(topIds, r * k, r * k + n);
                tl = Arrays.copyOfRange(topLp, r * k, r * k + n);
            }
            row.accept(chosen[r], row.topLogprobs >= 0 ? lp[r] : Double.NaN, ti, tl);
        }
    }

    /** Lays out the live rows on one column timeline when rows joined or left (or the cache is full). */
    private void relayout() {
        List<Integer> keep = new ArrayList<>();
        for (int r = 0; r < running.size(); r++) {
            Row row = running.get(r);
            if (row.done()) row.sampler.close();
            else keep.add(r);
        }
        List<Row> joined = new ArrayList<>();
        java.util.Set<KvCache> prefills = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Row row : joining) {
            prefills.add(row.prefill);
            if (row.done()) row.sampler.close();
            else joined.add(row);
        }
        joining.clear();
        if (joined.isEmpty()) {
            for (KvCache c : prefills) c.close();
            prefills.clear();
        }
        boolean changed = keep.size() != running.size() || !joined.isEmpty();
        if (!changed && (cache == null || cache.length() < cache.capacity())) return;
        List<Row> rows = new ArrayList<>();
        List<KvCache.Slice> slices = new ArrayList<>();
        List<Integer> realColumns = new ArrayList<>();
        int length = 0, headroom = 0;
        if (!keep.isEmpty()) {
            int drop = Integer.MAX_VALUE;
            for (int r : keep) drop = Math.min(drop, padStart[r]);
            long[] idx = new long[keep.size()];
            for (int i = 0; i < idx.length; i++) {
                int r = keep.get(i);
                idx[i] = r;
                rows.add(running.get(r));
                realColumns.add(cache.length() - padStart[r]);
            }
            slices.add(new KvCache.Slice(cache, idx, drop));
            length = cache.length() - drop;
        }
        // Rows prefilled together come from one cache: one slice each, without the padding none of them uses.
        java.util.Map<KvCache, List<Row>> groups = new java.util.IdentityHashMap<>();
        for (Row row : joined) groups.computeIfAbsent(row.prefill, k -> new ArrayList<>()).add(row);
        for (Row row : joined) {
            List<Row> group = groups.remove(row.prefill);
            if (group == null) continue;
            KvCache source = row.prefill;
            long[] idx = new long[group.size()];
            int drop = Integer.MAX_VALUE;
            for (int i = 0; i < idx.length; i++) {
                Row g = group.get(i);
                idx[i] = g.prefillRow;
                drop = Math.min(drop, source.length() - g.prompt.length);
                rows.add(g);
                realColumns.add(g.prompt.length);
            }
            slices.add(new KvCache.Slice(source, idx, drop));
            length = Math.max(length, source.length() - drop);
        }
        for (Row row : rows) headroom = Math.max(headroom, row.budget - row.tokens.size() + 1);
        KvCache next = rows.isEmpty() ? null : KvCache.assemble(slices, length, length + headroom);
        if (cache != null) cache.close();
        for (KvCache c : prefills) c.close();
        for (Row row : joined) row.prefill = null;
        cache = next;
        running.clear();
        running.addAll(rows);
        padStart = new int[rows.size()];
        for (int i = 0; i < rows.size(); i++) padStart[i] = length - realColumns.get(i);
    }

    @Override
    public void close() {
        for (Row row : running) row.sampler.close();
        java.util.Set<KvCache> prefills = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Row row : joining) {
            prefills.add(row.prefill);
            row.sampler.close();
        }
        for (KvCache c : prefills) c.close();
        running.clear();
        joining.clear();
        if (cache != null) cache.close();
        cache = null;
    }
}
