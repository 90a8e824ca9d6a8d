package io.tether.reward;

import java.util.Locale;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** A reward-model evaluation as JSON (for files) and as a readable table (for people). */
public final class EvalJson {
    private EvalJson() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    public static String of(RewardEvaluation.Report r) {
        ObjectNode o = JSON.createObjectNode();
        o.put("pairs", r.pairs());
        o.put("accuracy", r.accuracy());
        o.put("loss", r.meanLoss());
        ObjectNode slices = o.putObject("accuracy_by_slice");
        r.accuracyBySlice().forEach((k, v) -> slices.putObject(k).put("accuracy", v[0]).put("pairs", (int) v[1]));
        ObjectNode byLength = o.putObject("accuracy_by_length");
        r.accuracyByLength().forEach((k, v) -> byLength.putObject(k).put("accuracy", v[0]).put("pairs", (int) v[1]));
        ArrayNode bins = o.putArray("reliability");
        for (RewardEvaluation.Bin b : r.reliability()) {
            ObjectNode n = bins.addObject().put("low", b.low()).put("high", b.high()).put("pairs", b.count());
            if (b.count() > 0) n.put("confidence", b.meanConfidence()).put("accuracy", b.accuracy());
        }
        o.put("expected_calibration_error", r.expectedCalibrationError());
        o.putObject("rewards").put("mean", r.meanReward()).put("std", r.stdReward()).put("min", r.minReward()).put("max", r.maxReward());
        o.put("length_correlation", r.lengthCorrelation());
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String table(RewardEvaluation.Report r) {
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "pairs %d   accuracy %.3f   loss %.4f   ECE %.3f   reward mean %.3f std %.3f [%.3f, %.3f]   corr(reward, length) %+.3f%n",
                r.pairs(), r.accuracy(), r.meanLoss(), r.expectedCalibrationError(), r.meanReward(), r.stdReward(), r.minReward(), r.maxReward(), r.lengthCorrelation()));
        if (Math.abs(r.lengthCorrelation()) > 0.3)
            s.append(String.format(Locale.ROOT, "warning: rewards correlate with response length (%+.2f): a policy can gain reward by padding%n", r.lengthCorrelation()));
        s.append("slice                          accuracy   pairs\n");
        for (Map.Entry<String, double[]> e : r.accuracyBySlice().entrySet())
            s.append(String.format(Locale.ROOT, "%-30s %8.3f %7d%n", e.getKey(), e.getValue()[0], (int) e.getValue()[1]));
        for (Map.Entry<String, double[]> e : r.accuracyByLength().entrySet())
            s.append(String.format(Locale.ROOT, "%-30s %8.3f %7d%n", "length " + e.getKey(), e.getValue()[0], (int) e.getValue()[1]));
        s.append("confidence bin     pairs   mean confidence   accuracy\n");
        for (RewardEvaluation.Bin b : r.reliability())
            s.append(String.format(Locale.ROOT, "[%.2f, %.2f)   %7d   %15s   %8s%n", b.low(), b.high(), b.count(),
                    b.count() == 0 ? "-" : String.format(Locale.ROOT, "%.3f", b.meanConfidence()), b.count() == 0 ? "-" : String.format(Locale.ROOT, "%.3f", b.accuracy())));
        return s.toString();
    }
}
