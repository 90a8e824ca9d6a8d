package io.tether.reward;

import io.tether.rollout.RewardScorer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import io.tether.model.CausalLM;

/**
 * How good a reward model is on held-out comparisons: pairwise accuracy overall and by slice, calibration of the
 * Bradley-Terry probability σ(r_w − r_l) (a reliability table and the expected calibration error), reward
 * statistics, and the correlation of rewards with response length, the reward-hacking risk that longer answers
 * simply score higher.
 */
public final class RewardEvaluation {
    private RewardEvaluation() {}

    public record Bin(double low, double high, int count, double meanConfidence, double accuracy) {}

    public record Report(int pairs, double accuracy, Map<String, double[]> accuracyBySlice, Map<String, double[]> accuracyByLength, List<Bin> reliability,
                         double expectedCalibrationError, double meanReward, double stdReward, double minReward, double maxReward,
                         double lengthCorrelation, double meanLoss) {}

    /** Scores each pair once; {@code bins} confidence bins over [0.5, 1] for the reliability table. */
    public static Report evaluate(CausalLM model, List<RewardTraining.Pair> pairs, int batchSize, int bins) {
        List<long[]> seqs = new ArrayList<>();
        for (RewardTraining.Pair p : pairs) {
            seqs.add(p.chosen());
            seqs.add(p.rejected());
        }
        double[] r = RewardScorer.score(model, seqs, batchSize);
        return report(pairs, r, bins);
    }

    /** The report from precomputed rewards (chosen, rejected interleaved per pair). */
    static Report report(List<RewardTraining.Pair> pairs, double[] r, int bins) {
        int n = pairs.size();
        double correct = 0, loss = 0;
        Map<String, double[]> bySlice = new TreeMap<>();
        Map<Integer, double[]> byLength = new TreeMap<>();
        int[] count = new int[bins];
        double[] confSum = new double[bins], hits = new double[bins];
        for (int i = 0; i < n; i++) {
            double d = r[2 * i] - r[2 * i + 1];
            boolean right = d > 0;
            correct += right ? 1 : 0;
            loss += Math.log1p(Math.exp(-Math.abs(d))) + Math.max(-d, 0);   // −log σ(d), stably
            double[] s = bySlice.computeIfAbsent(pairs.get(i).slice() == null ? "(none)" : pairs.get(i).slice(), k -> new double[2]);
            s[0] += right ? 1 : 0;
            s[1] += 1;
            // Length buckets by powers of two of the pair's mean response length (tokens).
            int mean = (pairs.get(i).chosen().length + pairs.get(i).rejected().length) / 2;
            double[] lb = byLength.computeIfAbsent(Integer.highestOneBit(Math.max(1, mean)), k -> new double[2]);
            lb[0] += right ? 1 : 0;
            lb[1] += 1;
            // Confidence in the predicted winner, σ(|d|) in [0.5, 1].
            double conf = 1 / (1 + Math.exp(-Math.abs(d)));
            int b = Math.min(bins - 1, (int) ((conf - 0.5) / 0.5 * bins));
            count[b]++;
            confSum[b] += conf;
            hits[b] += right ? 1 : 0;
        }
        List<Bin> reliability = new ArrayList<>();
        double ece = 0;
        for (int b = 0; b < bins; b++) {
            double low = 0.5 + 0.5 * b / bins, high = 0.5 + 0.5 * (b + 1) / bins;
            if (count[b] == 0) {
                reliability.add(new Bin(low, high, 0, Double.NaN, Double.NaN));
                continue;
            }
            double conf = confSum[b] / count[b], acc = hits[b] / count[b];
            reliability.add(new Bin(low, high, count[b], conf, acc));
            ece += (double) count[b] / n * Math.abs(acc - conf);
        }
        Map<String, double[]> slices = new LinkedHashMap<>();
        bySlice.forEach((k, v) -> slices.put(k, new double[] {v[0] / v[1], v[1]}));
        Map<String, double[]> lengths = new LinkedHashMap<>();
        byLength.forEach((k, v) -> lengths.put(k + "-" + (2 * k - 1) + " tokens", new double[] {v[0] / v[1], v[1]}));
        double mean = 0, min = Double.MAX_VALUE, max = -Double.MAX_VALUE;
        for (double v : r) {
            mean += v;
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        mean /= r.length;
        double var = 0;
        for (double v : r) var += (v - mean) * (v - mean);
        double[] responseLengths = new double[r.length];
        for (int i = 0; i < n; i++) {
            responseLengths[2 * i] = pairs.get(i).chosen().length;
            responseLengths[2 * i + 1] = pairs.get(i).rejected().length;
        }
        return new Report(n, correct / n, slices, lengths, reliability, ece, mean, Math.sqrt(var / r.length), min, max, pearson(r, responseLengths), loss / n);
    }

    static double pearson(double[] a, double[] b) {
        int n = a.length;
        double ma = 0, mb = 0;
        for (int i = 0; i < n; i++) {
            ma += a[i];
            mb += b[i];
        }
        ma /= n;
        mb /= n;
        double cov = 0, va = 0, vb = 0;
        for (int i = 0; i < n; i++) {
            cov += (a[i] - ma) * (b[i] - mb);
            va += (a[i] - ma) * (a[i] - ma);
            vb += (b[i] - mb) * (b[i] - mb);
        }
        return va == 0 || vb == 0 ? 0 : cov / Math.sqrt(va * vb);
    }
}
