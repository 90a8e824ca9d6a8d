package io.tether.reward;

import io.tether.rollout.RewardScorer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

import io.tether.engine.ConfigException;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.objective.PairwiseLosses;
import io.tether.train.TrainingMethod;

/**
 * Bradley-Terry reward modelling as a method of the one training loop: chosen and rejected sequences are scored in
 * one batch of 2B rows, and each pair contributes −logσ(r_w − r_l − m) + c·(r_w + r_l)² (TRL's RewardTrainer with
 * margins and {@code center_rewards_coefficient}).
 */
public final class RewardTraining implements TrainingMethod<RewardTraining.Pair> {
    /** Full token sequences (prompt + response) of a comparison, its margin (0 if none) and where it came from. */
    public record Pair(long[] chosen, long[] rejected, double margin, String slice) {}

    private final double centerRewardsCoefficient;
    private final boolean useMargin;

    public RewardTraining(double centerRewardsCoefficient, boolean useMargin) {
        if (centerRewardsCoefficient < 0) throw new ConfigException("center_rewards_coefficient must be >= 0");
        this.centerRewardsCoefficient = centerRewardsCoefficient;
        this.useMargin = useMargin;
    }

    @Override
    public Output forward(CausalLM model, List<Pair> pairs) {
        int b = pairs.size();
        List<long[]> rows = new ArrayList<>(2 * b);
        for (Pair p : pairs) rows.add(p.chosen());
        for (Pair p : pairs) rows.add(p.rejected());
        Tensor rewards = RewardScorer.rewards(model, RewardScorer.padded(rows), RewardScorer.lengths(rows));   // (2B)
        Tensor chosen = rewards.narrow(0, 0, b), rejected = rewards.narrow(0, b, b);
        Tensor margin = null;
        if (useMargin) {
            double[] m = new double[b];
            for (int i = 0; i < b; i++) m[i] = pairs.get(i).margin();
            margin = Tensors.doubles(m, b).to(rewards.scalar_type());
        }
        PairwiseLosses.Output loss = PairwiseLosses.rewardModel(chosen, rejected, margin, centerRewardsCoefficient);
        // The loop normalises by pairs: turn the batch means back into sums.
        Tensor lossSum = loss.loss().mul(Tensors.scalar((double) b));
        double[] c = Tensors.toDoubles(chosen), r = Tensors.toDoubles(rejected);
        double correct = 0, margins = 0, sumC = 0, sumR = 0;
        for (int i = 0; i < b; i++) {
            correct += c[i] > r[i] ? 1 : 0;
            margins += c[i] - r[i];
            sumC += c[i];
            sumR += r[i];
        }
        Map<String, Double> metrics = new LinkedHashMap<>();
        metrics.put("accuracy", correct);
        metrics.put("margin", margins);
        metrics.put("rewards/chosen", sumC);
        metrics.put("rewards/rejected", sumR);
        // The loop divides every metric by the step's pairs; batch statistics are scaled by this batch's pairs so that
        // they read back as the batch's own (exact without accumulation, the micro-batch mean with it).
        double mean = (sumC + sumR) / (2 * b), var = 0, min = Double.MAX_VALUE, max = -Double.MAX_VALUE;
        for (int i = 0; i < b; i++) {
            for (double v : new double[] {c[i], r[i]}) {
                var += (v - mean) * (v - mean);
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
        }
        metrics.put("rewards/mean", mean * b);
        metrics.put("rewards/std", Math.sqrt(var / (2 * b)) * b);
        metrics.put("rewards/min", min * b);
        metrics.put("rewards/max", max * b);
        return new Output(lossSum, metrics);
    }
}
