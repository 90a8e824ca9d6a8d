package io.tether.train;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.objective.KtoLoss;

/**
 * KTO on unpaired thumbs-up/down completions as a method of the one loop. The KL reference point z0 comes, as in
 * TRL, from mismatched pairs: each prompt scored with the next example's completion, under policy and reference.
 */
public final class KtoTraining implements TrainingMethod<KtoTraining.Example> {
    public record Example(long[] prompt, long[] completion, boolean desirable) {}

    private final KtoLoss.Config config;
    private final CausalLM reference;
    private final int maxLength;

    /** @param maxLength the longest prompt + completion scored; mismatched pairs are cut to it as examples are */
    public KtoTraining(KtoLoss.Config config, CausalLM reference, int maxLength) {
        if (maxLength < 2) throw new IllegalArgumentException("max length must be >= 2, got " + maxLength);
        this.config = config;
        this.reference = reference;
        this.maxLength = maxLength;
    }

    @Override
    public Output forward(CausalLM model, List<Example> batch) {
        int b = batch.size();
        List<long[]> prompts = new ArrayList<>(), completions = new ArrayList<>();
        for (Example e : batch) { prompts.add(e.prompt()); completions.add(e.completion()); }
        // Mismatched completions for the KL estimate: prompt i with completion i+1 (TRL shifts the batch by one).
        // A short prompt's completion after a long prompt can pass max_length: cut it as the examples were cut.
        for (int i = 0; i < b; i++) {
            long[] prompt = batch.get(i).prompt(), other = batch.get((i + 1) % b).completion();
            prompts.add(prompt);
            completions.add(java.util.Arrays.copyOf(other, Math.max(1, Math.min(other.length, maxLength - prompt.length))));
        }
        PreferenceTraining.Scored pol = PreferenceTraining.score(model, prompts, completions);
        Tensor refAll = PreferenceTraining.referenceScores(model, prompts, completions, reference, null).logps().detach();
        boolean[] labels = new boolean[b];
        for (int i = 0; i < b; i++) labels[i] = batch.get(i).desirable();
        KtoLoss.Output o = KtoLoss.compute(config, Tensors.bools(labels, b), pol.logps().narrow(0, 0, b), refAll.narrow(0, 0, b),
                pol.logps().narrow(0, b, b).detach(), refAll.narrow(0, b, b));
        Map<String, Double> m = new LinkedHashMap<>();
        double[] d = Tensors.toDoubles(o.desirableRewards()), u = Tensors.toDoubles(o.undesirableRewards());
        double sd = 0, su = 0;
        for (double v : d) sd += v;
        for (double v : u) su += v;
        m.put("rewards/chosen_sum", sd);
        m.put("rewards/rejected_sum", su);
        m.put("kl", o.kl() * b);
        return new Output(o.loss().mul(Tensors.scalar((double) b)), m);
    }
}
