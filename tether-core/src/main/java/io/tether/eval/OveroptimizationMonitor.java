package io.tether.eval;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.tether.train.Trainer;

/**
 * Watches an online run's proxy score (the reward model's {@code objective/scores}) against an independent gold
 * score ({@code objective/gold_scores}) and flags over-optimisation (Gao et al. 2023) as it happens: the proxy,
 * averaged over the last {@code window} logged steps, has risen by more than {@code tolerance} since the gold
 * average peaked, while the gold average has fallen by more than {@code tolerance} from that peak. Passes every
 * report on to the wrapped listener, and a notice when it first flags.
 */
public final class OveroptimizationMonitor implements Trainer.Listener {
    /** A flag: the step, the proxy and gold changes since the gold peak (at {@code peakStep}), and the KL then. */
    public record Flag(int step, int peakStep, double proxyGain, double goldDrop, double kl) {
        public String message() {
            return String.format("over-optimisation at step %d: the proxy score rose %+.3f while the gold score fell %.3f since step %d (KL %.2f)",
                    step, proxyGain, goldDrop, peakStep, kl);
        }
    }

    private final Trainer.Listener downstream;
    private final int window;
    private final double tolerance;
    private final List<double[]> points = new ArrayList<>();   // step, proxy, gold, kl
    private final List<Flag> flags = new ArrayList<>();
    private double bestGold = Double.NEGATIVE_INFINITY, proxyAtBest;
    private int bestStep;

    public OveroptimizationMonitor(Trainer.Listener downstream, int window, double tolerance) {
        if (window < 1) throw new IllegalArgumentException("window must be >= 1, got " + window);
        this.downstream = downstream == null ? new Trainer.Listener() {} : downstream;
        this.window = window;
        this.tolerance = tolerance;
    }

    public List<Flag> flags() {
        return List.copyOf(flags);
    }

    /** Every logged point that had both scores, in order: {step, proxy, gold, KL (NaN when not logged)}. */
    public List<double[]> points() {
        return points.stream().map(double[]::clone).toList();
    }

    @Override
    public void onStep(int step, int totalSteps, Map<String, Object> metrics) {
        downstream.onStep(step, totalSteps, metrics);
        if (!(metrics.get("objective/scores") instanceof Number proxy) || !(metrics.get("objective/gold_scores") instanceof Number gold)) return;
        double kl = metrics.get("objective/kl") instanceof Number k ? k.doubleValue() : Double.NaN;
        points.add(new double[] {step, proxy.doubleValue(), gold.doubleValue(), kl});
        if (points.size() < window) return;
        double p = 0, g = 0;
        for (double[] x : points.subList(points.size() - window, points.size())) { p += x[1]; g += x[2]; }
        p /= window;
        g /= window;
        if (g > bestGold) {
            bestGold = g;
            proxyAtBest = p;
            bestStep = step;
            return;
        }
        double gain = p - proxyAtBest, drop = bestGold - g;
        if (gain > tolerance && drop > tolerance) {
            Flag f = new Flag(step, bestStep, gain, drop, kl);
            if (flags.isEmpty()) downstream.onNotice(f.message());
            flags.add(f);
        }
    }

    @Override
    public void onEval(int step, Map<String, Object> metrics) {
        downstream.onEval(step, metrics);
    }

    @Override
    public void onCheckpoint(int step, Path dir) {
        downstream.onCheckpoint(step, dir);
    }

    @Override
    public void onSkippedBatch(int step, String reason) {
        downstream.onSkippedBatch(step, reason);
    }

    @Override
    public void onNotice(String message) {
        downstream.onNotice(message);
    }
}
