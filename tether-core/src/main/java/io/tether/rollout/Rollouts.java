package io.tether.rollout;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.OptionalDouble;
import java.util.function.Function;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Tensors;
import io.tether.generate.Generator;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.model.LogProbs;
import io.tether.model.LoraAdapters;
import io.tether.model.PromptCompletionRows;
import io.tether.objective.NanStats;

/**
 * What the online methods share: sampling G completions per prompt from the current policy (prompts prefilled once
 * and shared), scoring them with reward functions or a reward model, and the per-token log-probs and values of
 * (prompt, completion) rows laid out completion-first, [N, T] with T the longest completion.
 */
public final class Rollouts {
    private Rollouts() {}

    /**
     * Scores of completions, one per row (prompt i of the rows paired with completion i); NaN for unscorable.
     * Implementations: reward functions, a reward model, a weighted sum of both.
     */
    @FunctionalInterface
    public interface Scorer {
        double[] score(List<OnlinePrompt> prompts, List<long[]> completions);
    }

    /** A {@link RewardFunction} as a scorer; {@code decoder} turns completion ids to text (null: empty text). */
    public static Scorer of(RewardFunction f, Function<long[], String> decoder) {
        return (prompts, completions) -> {
            double[] out = new double[completions.size()];
            for (int i = 0; i < out.length; i++) {
                OnlinePrompt p = prompts.get(i);
                long[] c = completions.get(i);
                OptionalDouble r = f.score(p.text() == null ? "" : p.text(), decoder == null ? "" : decoder.apply(c), c, p.record());
                out[i] = r.isPresent() ? r.getAsDouble() : Double.NaN;
            }
            return out;
        };
    }

    /** A reward model's score of prompt + completion (the last real token's head output), in batches. */
    public static Scorer rewardModel(CausalLM model, int batchSize) {
        return (prompts, completions) -> {
            List<long[]> rows = new ArrayList<>(completions.size());
            for (int i = 0; i < completions.size(); i++) rows.add(concat(prompts.get(i).ids(), completions.get(i)));
            return RewardScorer.score(model, rows, batchSize);
        };
    }

    /** Σ w_k s_k, unscorable parts counted as 0; unscorable only when every part is. */
    public static Scorer weightedSum(List<Scorer> parts, List<Double> weights) {
        if (parts.size() != weights.size()) throw new IllegalArgumentException(parts.size() + " reward sources but " + weights.size() + " weights");
        if (parts.size() == 1 && weights.get(0) == 1.0) return parts.get(0);
        return (prompts, completions) -> {
            double[] total = new double[completions.size()];
            boolean[] any = new boolean[total.length];
            for (int k = 0; k < parts.size(); k++) {
                double[] s = parts.get(k).score(prompts, completions);
                for (int i = 0; i < s.length; i++) if (!Double.isNaN(s[i])) { total[i] += weights.get(k) * s[i]; any[i] = true; }
            }
            for (int i = 0; i < total.length; i++) if (!any[i]) total[i] = Double.NaN;
            return total;
        };
    }

    /**
     * Reward shaping after scoring: {@code missing_eos_penalty} is subtracted from a completion that hit the budget
     * without a stop token (TRL), scores are clipped to [clipLow, clipHigh] (OpenRLHF's reward clip range), and with
     * {@code normalize} standardised over the rollout's scorable completions, (s − mean)/(std + 1e-8), so that a
     * reward model's scale does not set the step size.
     */
    public record Shaping(double missingEosPenalty, double clipLow, double clipHigh, boolean normalize) {
        public static final Shaping NONE = new Shaping(0, Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY, false);

        public Shaping(double missingEosPenalty, double clipLow, double clipHigh) {
            this(missingEosPenalty, clipLow, clipHigh, false);
        }

        public Shaping {
            if (missingEosPenalty < 0) throw new ConfigException("key 'missing_eos_penalty': must be >= 0, got " + missingEosPenalty);
            if (!(clipLow < clipHigh)) throw new ConfigException("reward clip range must be low < high, got [" + clipLow + ", " + clipHigh + "]");
        }

        public double apply(double score, boolean truncated) {
            if (Double.isNaN(score)) return score;
            double s = truncated ? score - missingEosPenalty : score;
            return Math.max(clipLow, Math.min(clipHigh, s));
        }
    }

    /**
     * Samples {@code groupSize} completions of every prompt (group by group), scores them and attaches them to
     * their prompts. Runs without gradients; the prompts' rows are prefilled once per group.
     */
    public static List<OnlinePrompt> sampleAndScore(CausalLM policy, List<OnlinePrompt> prompts, int groupSize, SamplingConfig sampling,
                                                    Function<long[], String> decoder, Scorer scorer, Shaping shaping) {
        List<long[]> ids = new ArrayList<>(prompts.size());
        for (OnlinePrompt p : prompts) ids.add(p.ids());
        List<Generator.Generation> gens;
        try (NoGradGuard g = new NoGradGuard()) {
            gens = Generator.generate(policy, ids, groupSize, sampling, decoder);
        }
        List<OnlinePrompt> rowPrompts = new ArrayList<>(gens.size());
        List<long[]> completions = new ArrayList<>(gens.size());
        for (int i = 0; i < gens.size(); i++) {
            rowPrompts.add(prompts.get(i / groupSize));
            completions.add(gens.get(i).tokens());
        }
        double[] scores = scorer.score(rowPrompts, completions);
        List<OnlinePrompt> out = new ArrayList<>(prompts.size());
        for (int p = 0; p < prompts.size(); p++) {
            List<Experience> group = new ArrayList<>(groupSize);
            for (int k = 0; k < groupSize; k++) {
                Generator.Generation gen = gens.get(p * groupSize + k);
                Experience e = new Experience(gen.tokens(), gen.truncated(), gen.logprobs());
                e.score = shaping.apply(scores[p * groupSize + k], gen.truncated());
                group.add(e);
            }
            out.add(prompts.get(p).withExperiences(group));
        }
        if (shaping.normalize()) normalize(out);
        return out;
    }

    /** Standardises the rollout's scorable scores: (s − mean)/(std + 1e-8), NaN (unscorable) left as it is. */
    private static void normalize(List<OnlinePrompt> prompts) {
        List<Experience> rows = experiences(prompts);
        double[] scores = new double[rows.size()];
        for (int i = 0; i < scores.length; i++) scores[i] = rows.get(i).score;
        double mean = NanStats.mean(scores, 0, scores.length), std = NanStats.std(scores, 0, scores.length);
        for (Experience e : rows) e.score = (e.score - mean) / (std + 1e-8);
    }

    /** Every prompt's experiences, in order: the rows of {@link #layout}. */
    public static List<Experience> experiences(List<OnlinePrompt> prompts) {
        List<Experience> out = new ArrayList<>();
        for (OnlinePrompt p : prompts) out.addAll(p.experiences());
        return out;
    }

    /** Every (prompt, experience) row of the prompts, in order. */
    public static Layout layout(List<OnlinePrompt> prompts) {
        List<long[]> ps = new ArrayList<>(), cs = new ArrayList<>();
        for (OnlinePrompt p : prompts)
            for (Experience e : p.experiences()) { ps.add(p.ids()); cs.add(e.tokens); }
        return Layout.of(ps, cs);
    }

    /**
     * Rows of prompt + completion, right-padded to [N, L], and where each completion token's prediction sits:
     * column {@code index[i, j]} of the [N, L-1] prediction logits predicts completion token j of row i.
     */
    public record Layout(Tensor ids, Tensor index, Tensor mask, int rows, int completionLength, int[] lengths) {
        public static Layout of(List<long[]> prompts, List<long[]> completions) {
            PromptCompletionRows rows = PromptCompletionRows.of(prompts, completions, 2);
            int n = rows.rows(), t = 1;
            for (long[] c : completions) t = Math.max(t, c.length);
            long[] index = new long[n * t];
            double[] mask = new double[n * t];
            int[] lengths = rows.completionLengths();
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < lengths[i]; j++) {
                    index[i * t + j] = rows.predictionColumn(i, j);
                    mask[i * t + j] = 1;
                }
            }
            return new Layout(rows.idsTensor(), Tensors.longs(index, n, t), Tensors.doubles(mask, n, t), n, t, lengths);
        }

        /** A [N, T] tensor's rows as Java arrays trimmed to each completion's length. */
        public double[][] perRow(Tensor v) {
            double[] flat = Tensors.toDoubles(v.to(DType.F64.scalarType).contiguous());
            double[][] out = new double[rows][];
            for (int i = 0; i < rows; i++) out[i] = Arrays.copyOfRange(flat, i * completionLength, i * completionLength + lengths[i]);
            return out;
        }

        /** Java arrays (each up to its row's length) as a [N, T] tensor, zero past the end. */
        public Tensor tensor(double[][] perRow, DType dtype) {
            double[] flat = new double[rows * completionLength];
            for (int i = 0; i < rows; i++) System.arraycopy(perRow[i], 0, flat, i * completionLength, perRow[i].length);
            return Tensors.doubles(flat, rows, completionLength).to(dtype.scalarType);
        }

        public Tensor mask(DType dtype) {
            return mask.to(dtype.scalarType);
        }
    }

    /**
     * Per-token log-probs [N, T] of the completions under {@code model} at {@code temperature} (logits / T, as the
     * samples were drawn; 1 for greedy), zero past each completion's end; differentiable unless under no-grad.
     */
    public static Tensor completionLogps(CausalLM model, Layout l, double temperature) {
        Tensor hidden = model.hiddenStates(l.ids(), null, null, null);
        Tensor all = LogProbs.tokenScores(model, hidden, l.ids(), temperature, EnumSet.noneOf(LogProbs.Extra.class)).logps();   // (N, L-1)
        return completionPart(all, l).mul(l.mask(model.dtype()));
    }

    /** The completion positions [N, T] of per-position figures [N, L-1] (log-probs, entropies). */
    public static Tensor completionPart(Tensor perPosition, Layout l) {
        return torch.gather(perPosition, 1, l.index());
    }

    /**
     * Per-token values [N, T] from a value model with a one-output head (a reward model's architecture): the head
     * applied to the hidden state that predicts each completion token, zero past the end.
     */
    public static Tensor completionValues(CausalLM valueModel, Layout l) {
        Tensor hidden = valueModel.hiddenStates(l.ids(), null, null, null);                      // (N, L, H)
        Tensor v = valueModel.logits(hidden).squeeze(-1).narrow(1, 0, l.ids().size(1) - 1);     // (N, L-1)
        return torch.gather(v, 1, l.index()).mul(l.mask(valueModel.dtype()));
    }

    /**
     * The reference's per-token log-probs, without gradient: the reference model's, or, with LoRA and no reference
     * model, the policy's with its adapters switched off (one model in memory).
     */
    public static double[][] referenceLogps(CausalLM policy, CausalLM reference, Layout l, double temperature) {
        try (NoGradGuard g = new NoGradGuard()) {
            if (reference != null) return l.perRow(completionLogps(reference, l, temperature));
            if (policy.lora() == null) throw new IllegalStateException("no reference: give a reference model or train LoRA adapters");
            try (LoraAdapters.Disabled off = policy.lora().disabled()) {
                return l.perRow(completionLogps(policy, l, temperature));
            }
        }
    }

    static long[] concat(long[] a, long[] b) {
        long[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
