package io.tether.scenario;

import java.io.IOException;
import java.nio.file.Path;
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
        h.append("<p><small>Per logged step, the mean reward-model score (proxy) and gold-rubric score of the rollout's answers, against the KL to ")
                .append("the reference. The monitor flags the proxy rising while gold falls from its peak (means over 5 logged steps, tolerance 0.03).</small></p>\n");
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

    private static String overoptimisationChart(RefundDemo.Overoptimisation over) {
        List<double[]> pts = over.points();
        int w = 640, h = 300, left = 50, right = 50, bottom = 40, top = 15;
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                + "font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"proxy and gold scores against KL during weak-KL PPO\">", w, h));
        if (pts.size() < 2) return s.append("<text x=\"20\" y=\"40\">too few logged steps to plot</text></svg>").toString();
        // x: KL to the reference where logged, else the step.
        boolean byKl = pts.stream().allMatch(p -> Double.isFinite(p[3]));
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY, pMin = Double.POSITIVE_INFINITY, pMax = Double.NEGATIVE_INFINITY;
        double gMin = Double.POSITIVE_INFINITY, gMax = Double.NEGATIVE_INFINITY;
        for (double[] p : pts) {
            double x = byKl ? p[3] : p[0];
            xMin = Math.min(xMin, x); xMax = Math.max(xMax, x);
            pMin = Math.min(pMin, p[1]); pMax = Math.max(pMax, p[1]);
            gMin = Math.min(gMin, p[2]); gMax = Math.max(gMax, p[2]);
        }
        if (xMax == xMin) xMax = xMin + 1;
        if (pMax == pMin) pMax = pMin + 1e-3;
        if (gMax == gMin) gMax = gMin + 1e-3;
        double pw = w - left - right, ph = h - top - bottom;
        StringBuilder proxy = new StringBuilder(), gold = new StringBuilder();
        for (double[] p : pts) {
            double x = left + pw * ((byKl ? p[3] : p[0]) - xMin) / (xMax - xMin);
            proxy.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, top + ph * (1 - (p[1] - pMin) / (pMax - pMin))));
            gold.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, top + ph * (1 - (p[2] - gMin) / (gMax - gMin))));
        }
        s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#ccc\"/>", left, top, pw, ph));
        s.append("<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"").append(proxy).append("\"/>");
        s.append("<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"").append(gold).append("\"/>");
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"#1f77b4\" text-anchor=\"end\">%.2f</text><text x=\"%d\" y=\"%.0f\" fill=\"#1f77b4\" text-anchor=\"end\">%.2f</text>",
                left - 4, top + 10, pMax, left - 4, top + ph, pMin));
        s.append(String.format(Locale.ROOT, "<text x=\"%.0f\" y=\"%d\" fill=\"#d62728\">%.2f</text><text x=\"%.0f\" y=\"%.0f\" fill=\"#d62728\">%.2f</text>",
                left + pw + 4, top + 10, gMax, left + pw + 4, top + ph, gMin));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%.2f</text><text x=\"%.0f\" y=\"%d\" text-anchor=\"end\">%.2f</text>", left, h - bottom + 16, xMin,
                left + pw, h - bottom + 16, xMax));
        s.append(String.format(Locale.ROOT, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">%s</text>", left + pw / 2, h - 8,
                byKl ? "KL to the reference (nats per answer)" : "step"));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"#1f77b4\">proxy: reward model (left axis)</text>", left + 8, top + 16));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"#d62728\">gold: rubric (right axis)</text>", left + 8, top + 32));
        for (OveroptimizationMonitor.Flag f : over.flags().subList(0, Math.min(1, over.flags().size()))) {
            double[] at = pts.stream().filter(p -> (int) p[0] == f.step()).findFirst().orElse(null);
            if (at == null) continue;
            double x = left + pw * ((byKl ? at[3] : at[0]) - xMin) / (xMax - xMin);
            s.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.0f\" stroke=\"#a4161a\" stroke-dasharray=\"3 3\"/>"
                    + "<text x=\"%.1f\" y=\"%d\" fill=\"#a4161a\">flagged (step %d)</text>", x, x, top, top + ph, x + 4, top + 48, f.step()));
        }
        return s.append("</svg>").toString();
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
