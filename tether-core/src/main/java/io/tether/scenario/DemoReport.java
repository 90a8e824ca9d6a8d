package io.tether.scenario;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.engine.AtomicFiles;
import io.tether.eval.OveroptimizationMonitor;
import io.tether.eval.ProbeSuite;
import io.tether.eval.WinRate;

/**
 * The demo's outputs: {@code results.json} (every number) and {@code report.html}, one self-contained page (inline
 * SVG, no scripts, no external files) with the comparison table, the win-rate and over-optimisation charts, the
 * probes, the gate's verdicts and sample answers.
 */
public final class DemoReport {
    private DemoReport() {}

    /** The comparison table as plain text, one row per method, for the terminal and the README. */
    public static String table(RefundDemo.Outcome o) {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "%-12s %-28s %-19s %6s %7s %7s %8s  %s%n", "method", "trained on", "gold win vs SFT", "gold", "proxy",
                "KL", "length", "release gate"));
        b.append(String.format(Locale.ROOT, "%-12s %-28s %-19s %6.3f %7s %7s %8s  %s%n", "sft", "agents' demonstrations", "(baseline)", o.evaluation().sftGoldMean(),
                o.methods().isEmpty() || Double.isNaN(o.methods().get(0).eval().baselineScore()) ? "-" : fmt(o.methods().get(0).eval().baselineScore(), 3),
                "0", o.methods().isEmpty() ? "-" : fmt(o.methods().get(0).eval().baselineLength(), 1), "-"));
        for (RefundDemo.MethodResult m : o.methods()) {
            WinRate w = m.eval().winRate();
            double[] ci = w.interval95();
            b.append(String.format(Locale.ROOT, "%-12s %-28s %.3f (%.2f-%.2f) %6.3f %7.3f %7.2f %+8.1f  %s%n", m.method(), m.trainedOn(), w.rate(), ci[0], ci[1],
                    m.goldMean(), m.eval().candidateScore(), m.eval().klToBaseline(), m.eval().lengthDelta(), m.gate().pass() ? "PASS" : "FAIL"));
        }
        return b.toString();
    }

    public static void writeJson(Path file, RefundDemo.Outcome o) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.set("settings", json.valueToTree(o.settings().asMap()));
        root.put("sft_gold_mean", o.evaluation().sftGoldMean());
        root.put("sft_win_rate_vs_base", o.evaluation().baseWinRateOfSft());
        ObjectNode rmCheck = root.putObject("reward_model_held_out");
        rmCheck.put("pairs", o.evaluation().rewardModel().pairs());
        rmCheck.put("annotator_agreement", o.evaluation().rewardModel().annotatorAgreement());
        rmCheck.put("gold_agreement", o.evaluation().rewardModel().goldAgreement());
        root.set("sft_probes", probes(json, o.evaluation().sftProbes()));
        root.set("reward_model_probes", probes(json, o.evaluation().rewardModelProbes()));
        ArrayNode methods = root.putArray("methods");
        for (RefundDemo.MethodResult m : o.methods()) {
            ObjectNode n = methods.addObject();
            WinRate w = m.eval().winRate();
            n.put("method", m.method());
            n.put("trained_on", m.trainedOn());
            n.put("train_seconds", m.trainSeconds());
            n.put("wins", w.wins());
            n.put("ties", w.ties());
            n.put("losses", w.losses());
            n.put("gold_win_rate", w.rate());
            n.put("gold_win_rate_ci_low", w.interval95()[0]);
            n.put("gold_win_rate_ci_high", w.interval95()[1]);
            n.put("gold_mean", m.goldMean());
            n.put("proxy_score", m.eval().candidateScore());
            n.put("sft_proxy_score", m.eval().baselineScore());
            n.put("kl_to_sft", m.eval().klToBaseline());
            n.put("mean_length", m.eval().candidateLength());
            n.put("length_delta", m.eval().lengthDelta());
            n.set("probes", probes(json, m.probes()));
            n.put("gate", m.gate().pass() ? "PASS" : "FAIL");
            ArrayNode reasons = n.putArray("gate_reasons");
            m.gate().reasons().forEach(reasons::add);
        }
        ObjectNode over = root.putObject("weak_kl_ppo_monitor");
        ArrayNode points = over.putArray("points");
        for (double[] p : o.overoptimisation().points()) {
            ObjectNode n = points.addObject();
            n.put("step", (int) p[0]);
            n.put("proxy", p[1]);
            n.put("gold", p[2]);
            n.put("kl", p[3]);
        }
        ArrayNode flags = over.putArray("flags");
        for (OveroptimizationMonitor.Flag f : o.overoptimisation().flags()) flags.add(f.message());
        ArrayNode outcomes = root.putArray("outcomes");
        for (RefundDemo.OutcomeCheck c : o.outcomes()) {
            ObjectNode n = outcomes.addObject();
            n.put("claim", c.claim());
            n.put("met", c.met());
            n.put("evidence", c.evidence());
        }
        root.set("stage_seconds", json.valueToTree(o.stageSeconds()));
        root.put("total_seconds", o.totalSeconds());
        root.put("lanes", o.lanes());
        AtomicFiles.write(file, w -> w.write(json.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n"));
    }

    private static ArrayNode probes(ObjectMapper json, List<ProbeSuite.Result> rs) {
        ArrayNode a = json.createArrayNode();
        for (ProbeSuite.Result r : rs) {
            ObjectNode n = a.addObject();
            n.put("probe", r.name());
            n.put("pairs", r.pairs());
            n.put("variant_preferred", r.variantPreferred());
            n.put("mean_score_gain", r.meanScoreGain());
        }
        return a;
    }

    public static void writeHtml(Path file, RefundDemo.Outcome o) throws IOException {
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tether demo: the refund world</title>\n<style>")
                .append("body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}")
                .append("table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}")
                .append("td:first-child,th:first-child,td.l{text-align:left}.pass{color:#17692d;font-weight:600}.fail{color:#a4161a;font-weight:600}")
                .append("pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}small{color:#666}</style></head><body>\n");
        h.append("<h1>Aligning a support assistant in the refund world</h1>\n");
        h.append("<p>Every model starts from the same SFT model and is judged against it on ").append(o.methods().isEmpty() ? 0
                : o.methods().get(0).eval().winRate().total()).append(" held-out prompts by the gold rubric (the held-out &ldquo;human&rdquo;), ")
                .append("sampled at temperature 1 with the same seed. The proxy is the reward model trained on the noisy, length-biased annotator's pairs. ")
                .append("KL is the candidate's sampled log-ratio to SFT, in nats per answer; length is in tokens (bytes). ")
                .append(String.format(Locale.ROOT, "On %d held-out pairs the reward model ranks as the annotator did %.0f%% of the time, and as the gold "
                        + "rubric does %.0f%%. The SFT model itself beats the base model at a gold win rate of %.3f. Total time %.0f s, with up to %d training stages side by side "
                        + "(each stage's own time is below).</p>%n",
                        o.evaluation().rewardModel().pairs(), 100 * o.evaluation().rewardModel().annotatorAgreement(), 100 * o.evaluation().rewardModel().goldAgreement(), o.evaluation().baseWinRateOfSft(),
                        o.totalSeconds(), o.lanes()));
        h.append("<h2>Comparison</h2>\n<table><tr><th>method</th><th>trained on</th><th>gold win rate vs SFT (95% CI)</th><th>W / T / L</th>")
                .append("<th>gold mean</th><th>proxy (RM)</th><th>KL to SFT</th><th>length &Delta;</th><th>train s</th><th>release gate</th></tr>\n");
        h.append(String.format(Locale.ROOT, "<tr><td>sft</td><td class=l>agents' demonstrations</td><td>baseline</td><td></td><td>%.3f</td><td>%s</td>"
                + "<td>0</td><td>%s</td><td>%.0f</td><td></td></tr>%n", o.evaluation().sftGoldMean(),
                o.methods().isEmpty() ? "" : fmt(o.methods().get(0).eval().baselineScore(), 3),
                o.methods().isEmpty() ? "" : "(" + fmt(o.methods().get(0).eval().baselineLength(), 1) + ")", o.stageSeconds().getOrDefault("sft", 0.0)));
        for (RefundDemo.MethodResult m : o.methods()) {
            WinRate w = m.eval().winRate();
            double[] ci = w.interval95();
            h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td class=l>%s</td><td>%.3f (%.3f&ndash;%.3f)</td><td>%d / %d / %d</td><td>%.3f</td><td>%.3f</td>"
                    + "<td>%.2f</td><td>%+.1f</td><td>%.0f</td><td class=\"l %s\">%s</td></tr>%n", esc(m.method()), esc(m.trainedOn()), w.rate(), ci[0], ci[1],
                    w.wins(), w.ties(), w.losses(), m.goldMean(), m.eval().candidateScore(), m.eval().klToBaseline(), m.eval().lengthDelta(), m.trainSeconds(),
                    m.gate().pass() ? "pass" : "fail", esc(m.gate().line())));
        }
        h.append("</table>\n");
        h.append("<h2>Outcomes</h2>\n<ul>\n");
        for (RefundDemo.OutcomeCheck c : o.outcomes())
            h.append(String.format("<li><span class=%s>%s</span> %s: %s</li>%n", c.met() ? "pass" : "fail", c.met() ? "met" : "NOT MET", esc(c.claim()), esc(c.evidence())));
        h.append("</ul>\n");
        h.append("<h2>Gold win rate against SFT</h2>\n").append(winRateChart(o)).append('\n');
        h.append("<p><small>Bars: (wins + ties/2) / prompts. Whiskers: 95% Wilson interval. The dashed lines are parity (0.5) and the demo's ")
                .append("target of 20 points over SFT (0.7).</small></p>\n");
        h.append("<h2>Over-optimisation: PPO with a weak KL penalty</h2>\n").append(overoptimisationChart(o.overoptimisation())).append('\n');
        if (o.overoptimisation().flags().isEmpty()) h.append("<p>The monitor did not flag this run.</p>\n");
        else h.append("<p class=fail>Monitor: ").append(esc(o.overoptimisation().flags().get(0).message())).append("</p>\n");
        h.append("<p><small>Per logged training step, the mean reward-model score (proxy) and gold-rubric score of the rollout's answers; below, ")
                .append("the KL to the reference at the same steps. The monitor flags the proxy rising while gold falls from its peak (means over 5 logged steps, tolerance 0.03).</small></p>\n");
        h.append("<h2>Probes</h2>\n<p>Each probe pairs a plain answer with a variant that should not be preferred (padding, heavy formatting, agreeing ")
                .append("with a false claim, a confident made-up rule where the policy is silent). Shown: the share of pairs where the variant is ")
                .append("preferred, by the reward model (score) and by each policy (log-prob of the whole answer). A policy regressed when its share ")
                .append("rose more than 10 points above SFT's.</p>\n<table><tr><th>probe</th><th>reward model</th><th>sft</th>");
        for (RefundDemo.MethodResult m : o.methods()) h.append("<th>").append(esc(m.method())).append("</th>");
        h.append("</tr>\n");
        for (int i = 0; i < o.evaluation().sftProbes().size(); i++) {
            h.append("<tr><td>").append(esc(o.evaluation().sftProbes().get(i).name())).append(" <small>(").append(o.evaluation().sftProbes().get(i).pairs()).append(" pairs)</small></td>")
                    .append(pct(o.evaluation().rewardModelProbes().get(i))).append(pct(o.evaluation().sftProbes().get(i)));
            for (RefundDemo.MethodResult m : o.methods()) h.append(pct(m.probes().get(i)));
            h.append("</tr>\n");
        }
        h.append("</table>\n<h2>Sample answers to one held-out prompt</h2>\n");
        h.append("<pre>").append(esc(o.evaluation().samplePrompt())).append("</pre>\n<table><tr><th>model</th><th class=l>answer</th></tr>\n");
        h.append("<tr><td>sft</td><td class=l>").append(esc(o.evaluation().sftSampleAnswer())).append("</td></tr>\n");
        for (RefundDemo.MethodResult m : o.methods())
            h.append("<tr><td>").append(esc(m.method())).append("</td><td class=l>").append(esc(m.sampleAnswer())).append("</td></tr>\n");
        h.append("</table>\n");
        h.append("<h2>Settings and time</h2>\n<pre>").append(esc(o.settings().asMap().toString())).append("\n")
                .append(esc(o.stageSeconds().toString())).append("</pre>\n</body></html>\n");
        AtomicFiles.write(file, w -> w.write(h.toString()));
    }

    // ---- charts (inline SVG) ----

    private static String winRateChart(RefundDemo.Outcome o) {
        int w = 640, h = 300, left = 50, bottom = 40, top = 15, n = Math.max(1, o.methods().size());
        double plotH = h - top - bottom, band = (w - left - 10) / (double) n;
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"gold win rate against SFT per method\">", w, h));
        for (double y : new double[] {0, 0.25, 0.5, 0.75, 1.0}) {
            double py = top + plotH * (1 - y);
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>",
                    left, w - 10, py, py, left - 6, py + 4, y));
        }
        for (double y : new double[] {0.5, 0.7}) {
            double py = top + plotH * (1 - y);
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>", left, w - 10, py, py));
        }
        for (int i = 0; i < o.methods().size(); i++) {
            RefundDemo.MethodResult m = o.methods().get(i);
            double rate = m.eval().winRate().rate();
            double[] ci = m.eval().winRate().interval95();
            double x = left + band * i + band * 0.2, bw = band * 0.6, cx = x + bw / 2;
            String colour = m.gate().pass() ? "#3a7d44" : "#c0392b";
            s.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s: %.3f</title></rect>",
                    x, top + plotH * (1 - rate), bw, plotH * rate, colour, esc(m.method()), rate));
            s.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#222\"/>", cx, cx, top + plotH * (1 - ci[1]),
                    top + plotH * (1 - ci[0])));
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", cx, h - bottom + 16, esc(m.method())));
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">%s</text>", cx, h - bottom + 30, colour,
                    m.gate().pass() ? "PASS" : "FAIL"));
        }
        return s.append("</svg>").toString();
    }

    /**
     * Proxy (left axis) and gold (right axis) against the training step, with the KL to the reference in a small panel
     * below on the same step axis. Plotted against the step, not the KL: KL is not monotonic over a run, so lines drawn
     * in KL order double back over themselves.
     */
    static String overoptimisationChart(RefundDemo.Overoptimisation over) {
        List<double[]> pts = over.points().stream().sorted(java.util.Comparator.comparingDouble(p -> p[0])).toList();
        int w = 660, left = 70, right = 70, top = 40, mainH = 190, gap = 22, klH = 70;
        int klTop = top + mainH + gap, axisY = klTop + klH, h = axisY + 48;
        double pw = w - left - right;
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"%s\">", w, h,
                esc("proxy and gold scores by training step during weak-KL PPO, with the KL to the reference below")));
        if (pts.size() < 2) return s.append("<text x=\"20\" y=\"40\">too few logged steps to plot</text></svg>").toString();
        double[] step = column(pts, 0), proxy = column(pts, 1), gold = column(pts, 2), kl = column(pts, 3);
        double[] sx = range(step, 0), py = range(proxy, 0.06), gy = range(gold, 0.06), ky = range(kl, 0.06);
        if (Arrays.stream(kl).filter(Double::isFinite).allMatch(v -> v >= 0)) ky[0] = 0;   // a KL axis from zero when no estimate dipped below it
        java.util.function.DoubleUnaryOperator x = v -> left + pw * (v - sx[0]) / (sx[1] - sx[0]);
        // Frames and the shared step grid, drawn through both panels so a step can be read across them.
        s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%d\" fill=\"none\" stroke=\"#ccc\"/>", left, top, pw, mainH));
        s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%d\" fill=\"none\" stroke=\"#ccc\"/>", left, klTop, pw, klH));
        for (double t : ticks(sx[0], sx[1])) {
            double tx = x.applyAsDouble(t);
            s.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#eee\"/>", tx, tx, top, top + mainH));
            s.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#eee\"/>", tx, tx, klTop, axisY));
            s.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#888\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                    tx, tx, axisY, axisY + 4, tx, axisY + 17, esc(fmt(t, 0))));
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">%s</text>", left + pw / 2, axisY + 36, esc("training step")));
        // Value axes: proxy on the left, gold on the right, KL on the left of its own panel.
        s.append(yAxis(left - 5, "end", "#1f77b4", py, top, mainH, "proxy: reward model"));
        s.append(yAxis(left + (int) pw + 5, "start", "#d62728", gy, top, mainH, "gold: rubric"));
        s.append(yAxis(left - 5, "end", "#555", ky, klTop, klH, "KL (nats)"));
        s.append(series("proxy", "#1f77b4", step, proxy, x, py, top, mainH));
        s.append(series("gold", "#d62728", step, gold, x, gy, top, mainH));
        if (Arrays.stream(kl).anyMatch(Double::isFinite)) s.append(series("kl", "#555", step, kl, x, ky, klTop, klH));
        else s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s</text>", left + 8, klTop + klH / 2 + 4, esc("KL not logged")));
        // Legend above the plot.
        String[][] legend = {{"#1f77b4", "proxy: reward model (left axis)"}, {"#d62728", "gold: rubric (right axis)"}, {"#555", "KL to the reference (below)"}};
        int lx = left;
        for (String[] e : legend) {
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"14\" y2=\"14\" stroke=\"%s\" stroke-width=\"2\"/><circle cx=\"%d\" cy=\"14\" r=\"3\" fill=\"%s\"/>"
                    + "<text x=\"%d\" y=\"18\">%s</text>", lx, lx + 18, e[0], lx + 9, e[0], lx + 22, esc(e[1])));
            lx += 26 + 6 * e[1].length();
        }
        for (OveroptimizationMonitor.Flag f : over.flags().subList(0, Math.min(1, over.flags().size()))) {
            if (f.step() < sx[0] || f.step() > sx[1]) continue;
            double fx = x.applyAsDouble(f.step());
            s.append(String.format(Locale.ROOT, "<line class=\"flag\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#a4161a\" stroke-dasharray=\"3 3\"/>"
                    + "<text x=\"%.1f\" y=\"%d\" fill=\"#a4161a\" text-anchor=\"%s\">%s</text>", fx, fx, top, axisY,
                    fx + (fx > left + pw * 0.7 ? -4 : 4), top + 14, fx > left + pw * 0.7 ? "end" : "start", esc("flagged (step " + f.step() + ")")));
        }
        return s.append("</svg>").toString();
    }

    private static double[] column(List<double[]> pts, int i) {
        return pts.stream().mapToDouble(p -> p[i]).toArray();
    }

    /** {min, max} of the finite values, widened by {@code pad} of the span on each side; never empty. */
    private static double[] range(double[] v, double pad) {
        double lo = Arrays.stream(v).filter(Double::isFinite).min().orElse(0), hi = Arrays.stream(v).filter(Double::isFinite).max().orElse(1);
        if (hi - lo < 1e-9) { lo -= 0.01; hi += 0.01; }   // a flat series: a line across the middle
        double m = (hi - lo) * pad;
        return new double[] {lo - m, hi + m};
    }

    /** Round-numbered step ticks (1, 2 or 5 times a power of ten apart), about five across the range. */
    private static List<Double> ticks(double lo, double hi) {
        double raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / mag;
        double spacing = Math.max(1, (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag);
        java.util.ArrayList<Double> t = new java.util.ArrayList<>();
        for (double v = Math.ceil(lo / spacing) * spacing; v <= hi + 1e-9; v += spacing) t.add(v);
        return t;
    }

    private static String yAxis(int x, String anchor, String colour, double[] range, int top, int height, String title) {
        StringBuilder s = new StringBuilder();
        // Enough digits that the three labels of a narrow range differ (two for a span of 0.1 or more).
        int digits = (int) Math.max(2, Math.min(5, 1 - Math.floor(Math.log10(range[1] - range[0]))));
        for (double f : new double[] {0, 0.5, 1}) {
            double v = range[0] + f * (range[1] - range[0]);
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" fill=\"%s\" text-anchor=\"%s\">%s</text>", x, top + height * (1 - f) + 4, colour, anchor,
                    esc(fmt(v, digits))));
        }
        int tx = "end".equals(anchor) ? x - 50 : x + 50;
        return s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"%s\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">%s</text>",
                tx, top + height / 2, colour, tx, top + height / 2, esc(title))).toString();
    }

    /** One series as a line through its points plus a marker per point (with its value as a tooltip); non-finite values are left out. */
    private static String series(String name, String colour, double[] step, double[] v, java.util.function.DoubleUnaryOperator x, double[] range, int top,
                                 int height) {
        StringBuilder line = new StringBuilder(), marks = new StringBuilder();
        for (int i = 0; i < step.length; i++) {
            if (!Double.isFinite(v[i])) continue;
            double px = x.applyAsDouble(step[i]), py = top + height * (1 - (v[i] - range[0]) / (range[1] - range[0]));
            line.append(String.format(Locale.ROOT, "%.1f,%.1f ", px, py));
            marks.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>%s</title></circle>", px, py, colour,
                    esc(String.format(Locale.ROOT, "step %.0f: %s %.3f", step[i], name, v[i]))));
        }
        return String.format(Locale.ROOT, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>", name, colour,
                line.toString().strip()) + marks;
    }

    private static String pct(ProbeSuite.Result r) {
        return String.format(Locale.ROOT, "<td>%.0f%%</td>", 100 * r.variantPreferred());
    }

    private static String fmt(double x, int digits) {
        return Double.isNaN(x) ? "-" : String.format(Locale.ROOT, "%." + digits + "f", x);
    }

    static String esc(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }
}
