package io.tether.data;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Inter-annotator agreement on nominal labels: Cohen's kappa for two annotators, Krippendorff's alpha for any number
 * (missing votes allowed), and how often each annotator departs from the others' majority. Votes on a pair are
 * oriented like the stored pair (chosen first), so the labels are "chosen", "rejected" and "tie".
 */
public final class Agreement {
    private Agreement() {}

    /** Cohen's kappa, (p_o - p_e) / (1 - p_e), for two annotators' labels on the same items (NaN when p_e is 1). */
    public static double cohenKappa(List<String> a, List<String> b) {
        if (a.size() != b.size() || a.isEmpty()) throw new IllegalArgumentException("kappa needs two equally long, non-empty label lists");
        int n = a.size(), agree = 0;
        Map<String, Integer> countA = new HashMap<>(), countB = new HashMap<>();
        for (int i = 0; i < n; i++) {
            if (a.get(i).equals(b.get(i))) agree++;
            countA.merge(a.get(i), 1, Integer::sum);
            countB.merge(b.get(i), 1, Integer::sum);
        }
        double po = (double) agree / n, pe = 0;
        for (var e : countA.entrySet()) pe += (double) e.getValue() / n * countB.getOrDefault(e.getKey(), 0) / n;
        return pe == 1 ? Double.NaN : (po - pe) / (1 - pe);
    }

    /**
     * Krippendorff's alpha for nominal data: 1 - (n-1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k, where o is the
     * coincidence matrix over units with at least two values (each ordered pair of values in unit u adds 1/(m_u-1)).
     * Each unit lists the values it received; missing ones are simply absent. NaN when there is no variation.
     */
    public static double krippendorffAlpha(List<? extends Collection<String>> units) {
        Map<String, Map<String, Double>> o = new HashMap<>();
        for (Collection<String> unit : units) {
            int m = unit.size();
            if (m < 2) continue;
            List<String> vs = new ArrayList<>(unit);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    if (i != j) o.computeIfAbsent(vs.get(i), k -> new HashMap<>()).merge(vs.get(j), 1.0 / (m - 1), Double::sum);
        }
        Map<String, Double> nc = new HashMap<>();
        double n = 0, disagreeObserved = 0;
        for (var row : o.entrySet()) {
            for (var cell : row.getValue().entrySet()) {
                nc.merge(row.getKey(), cell.getValue(), Double::sum);
                n += cell.getValue();
                if (!cell.getKey().equals(row.getKey())) disagreeObserved += cell.getValue();
            }
        }
        double disagreeExpected = 0;
        for (var c : nc.entrySet())
            for (var k : nc.entrySet())
                if (!c.getKey().equals(k.getKey())) disagreeExpected += c.getValue() * k.getValue();
        return disagreeExpected == 0 ? Double.NaN : 1 - (n - 1) * disagreeObserved / disagreeExpected;
    }

    /** Agreement over a data set: kappa when exactly two annotators voted, alpha always, and per-annotator figures. */
    public record Report(int annotators, long unitsWithVotes, long unitsWithSeveralVotes, Double cohenKappa, Double krippendorffAlpha,
            Map<String, Long> votes, Map<String, Double> disagreementRate) {}

    /** Collects the votes of pairs (4 bytes a vote) and computes a {@link Report}. */
    public static final class Accumulator {
        private final Map<String, Integer> annotatorIndex = new LinkedHashMap<>();
        private final List<int[]> units = new ArrayList<>();   // each vote packed: annotator << 2 | verdict

        public void add(PreferencePair p) {
            if (p.votes().isEmpty()) return;
            int[] unit = new int[p.votes().size()];
            for (int i = 0; i < unit.length; i++) {
                var v = p.votes().get(i);
                int who = annotatorIndex.computeIfAbsent(v.annotator(), k -> annotatorIndex.size());
                unit[i] = who << 2 | v.verdict().ordinal();
            }
            units.add(unit);
        }

        public boolean isEmpty() {
            return units.isEmpty();
        }

        public Report report() {
            List<String> names = new ArrayList<>(annotatorIndex.keySet());
            int a = names.size();
            PreferencePair.Verdict[] verdicts = PreferencePair.Verdict.values();
            List<List<String>> alphaUnits = new ArrayList<>();
            long[] votes = new long[a], departures = new long[a], compared = new long[a];
            List<String> first = new ArrayList<>(), second = new ArrayList<>();
            long several = 0;
            for (int[] unit : units) {
                List<String> values = new ArrayList<>();
                for (int v : unit) values.add(verdicts[v & 3].json());
                alphaUnits.add(values);
                if (unit.length >= 2) several++;
                for (int i = 0; i < unit.length; i++) {
                    int who = unit[i] >>> 2;
                    votes[who]++;
                    int[] others = new int[verdicts.length];
                    for (int j = 0; j < unit.length; j++) if (j != i) others[unit[j] & 3]++;
                    int majority = strictMajority(others);
                    if (majority < 0) continue;
                    compared[who]++;
                    if ((unit[i] & 3) != majority) departures[who]++;
                }
                if (a == 2 && unit.length == 2 && unit[0] >>> 2 != unit[1] >>> 2) {
                    int x = unit[0] >>> 2 == 0 ? 0 : 1;
                    first.add(verdicts[unit[x] & 3].json());
                    second.add(verdicts[unit[1 - x] & 3].json());
                }
            }
            Map<String, Long> voteCounts = new TreeMap<>();
            Map<String, Double> rates = new TreeMap<>();
            for (int i = 0; i < a; i++) {
                voteCounts.put(names.get(i), votes[i]);
                if (compared[i] > 0) rates.put(names.get(i), (double) departures[i] / compared[i]);
            }
            Double kappa = first.isEmpty() ? null : finite(cohenKappa(first, second));
            return new Report(a, units.size(), several, kappa, finite(krippendorffAlpha(alphaUnits)), voteCounts, rates);
        }

        private static int strictMajority(int[] counts) {
            int best = 0;
            for (int i = 1; i < counts.length; i++) if (counts[i] > counts[best]) best = i;
            if (counts[best] == 0) return -1;
            for (int i = 0; i < counts.length; i++) if (i != best && counts[i] == counts[best]) return -1;
            return best;
        }

        private static Double finite(double x) {
            return Double.isNaN(x) ? null : x;
        }
    }
}
