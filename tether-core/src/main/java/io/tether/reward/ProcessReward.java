package io.tether.reward;

import io.tether.rollout.RewardScorer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.ConfigException;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.text.Tokenizer;
import io.tether.train.TrainingMethod;

/**
 * Process reward models (Lightman et al. 2023, TRL's PRMTrainer): a token classifier that reads, at the separator
 * after each reasoning step, whether the step is good. Training is cross-entropy at those positions only; a step's
 * score is P(good) there; best-of-n keeps the candidate whose weakest step scores highest.
 */
public final class ProcessReward implements TrainingMethod<ProcessReward.Example> {
    /** Token ids, the positions of the step separators and their labels (1 good, 0 bad). */
    public record Example(long[] ids, int[] stepPositions, int[] labels) {}

    /**
     * TRL's tokenization: prompt tokens, then each step's tokens followed by the separator's; the label sits on the
     * separator's last token; BOS first when the tokenizer has one. With {@code lastStepOnly} only the final step
     * is labelled.
     */
    public static Example tokenize(Tokenizer t, String prompt, List<String> steps, List<Boolean> labels, String separator, boolean lastStepOnly) {
        if (labels != null && labels.size() != steps.size())
            throw new IllegalArgumentException(steps.size() + " steps but " + labels.size() + " labels");
        List<Long> ids = new ArrayList<>();
        if (t.specialTokens().bosId() != null) ids.add(t.specialTokens().bosId());
        for (long id : t.encode(prompt, false)) ids.add(id);
        long[] sep = t.encode(separator, false);
        if (sep.length == 0) throw new ConfigException("the step separator tokenizes to nothing");
        List<Integer> positions = new ArrayList<>(), stepLabels = new ArrayList<>();
        for (int s = 0; s < steps.size(); s++) {
            for (long id : t.encode(steps.get(s), false)) ids.add(id);
            for (long id : sep) ids.add(id);
            if (!lastStepOnly || s == steps.size() - 1) {
                positions.add(ids.size() - 1);
                stepLabels.add(labels == null ? -1 : labels.get(s) ? 1 : 0);
            }
        }
        long[] out = new long[ids.size()];
        for (int i = 0; i < out.length; i++) out[i] = ids.get(i);
        return new Example(out, positions.stream().mapToInt(Integer::intValue).toArray(), stepLabels.stream().mapToInt(Integer::intValue).toArray());
    }

    @Override
    public long units(List<Example> examples) {
        long n = 0;
        for (Example e : examples) n += e.stepPositions().length;
        return n;
    }

    @Override
    public Output forward(CausalLM model, List<Example> examples) {
        Tensor logits = stepLogits(model, examples);                              // (steps, 2)
        long[] labels = new long[(int) logits.size(0)];
        int k = 0;
        for (Example e : examples) for (int l : e.labels()) labels[k++] = l;
        Tensor target = Tensors.longs(labels, labels.length);
        Tensor logp = torch.log_softmax(logits.to(model.dtype().scalarType), -1);
        Tensor nll = torch.gather(logp, 1, target.unsqueeze(1)).sum().neg();
        long[] predicted = Tensors.toLongs(logits.argmax(new LongOptional(-1), false));
        double correct = 0;
        for (int i = 0; i < labels.length; i++) correct += predicted[i] == labels[i] ? 1 : 0;
        return new Output(nll, Map.of("step_accuracy", correct));
    }

    /** Head outputs [total steps, 2] at every example's step positions. */
    static Tensor stepLogits(CausalLM model, List<Example> examples) {
        if (!model.config().isTokenClassifier() || model.config().numLabels() != 2)
            throw new ConfigException("a process reward model is a token classifier with 2 labels, got " + model.config().architecture());
        List<long[]> rows = new ArrayList<>();
        for (Example e : examples) rows.add(e.ids());
        Tensor logits = model.forward(RewardScorer.padded(rows));                 // (B, T, 2)
        long t = logits.size(1);
        List<Long> flat = new ArrayList<>();
        for (int b = 0; b < examples.size(); b++) for (int p : examples.get(b).stepPositions()) flat.add(b * t + p);
        long[] idx = flat.stream().mapToLong(Long::longValue).toArray();
        return logits.reshape(-1, 2).index_select(0, Tensors.longs(idx, idx.length));
    }

    /** P(good) of every step of every example, without gradients. */
    public static List<double[]> stepScores(CausalLM model, List<Example> examples) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            double[] p = Tensors.toDoubles(torch.softmax(stepLogits(model, examples), -1).select(1, 1));
            List<double[]> out = new ArrayList<>();
            int k = 0;
            for (Example e : examples) {
                double[] scores = new double[e.stepPositions().length];
                for (int i = 0; i < scores.length; i++) scores[i] = p[k++];
                out.add(scores);
            }
            return out;
        }
    }

    /** Index of the candidate whose weakest step scores highest (PRM-guided best-of-n, min aggregation). */
    public static int bestOfN(CausalLM model, List<Example> candidates) {
        List<double[]> scores = stepScores(model, candidates);
        int best = -1;
        double bestMin = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < scores.size(); i++) {
            double min = Double.POSITIVE_INFINITY;
            for (double v : scores.get(i)) min = Math.min(min, v);
            if (min > bestMin) {
                bestMin = min;
                best = i;
            }
        }
        return best;
    }
}
