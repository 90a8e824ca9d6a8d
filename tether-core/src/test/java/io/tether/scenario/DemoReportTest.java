package io.tether.scenario;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import javax.xml.parsers.DocumentBuilderFactory;

import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

import io.tether.eval.OveroptimizationMonitor;

/** The report's over-optimisation chart reads left to right in training steps, with the KL in its own panel. */
class DemoReportTest {
    // Ten logged steps of a weak-KL run: the proxy climbs, gold peaks at step 8 and falls, and the KL goes back and
    // forth (as sampled KL does), so a chart drawn in KL order would double back on itself.
    static final int[] STEPS = {2, 4, 6, 8, 10, 12, 14, 16, 18, 20};
    static final double[] PROXY = {0.10, 0.14, 0.19, 0.25, 0.30, 0.36, 0.41, 0.47, 0.52, 0.58};
    static final double[] GOLD = {0.50, 0.53, 0.55, 0.56, 0.54, 0.51, 0.47, 0.44, 0.40, 0.37};
    static final double[] KL = {0.2, 0.5, 0.9, 0.7, 1.4, 1.1, 2.0, 1.6, 2.5, 2.2};

    static RefundDemo.Overoptimisation run() {
        List<double[]> points = new ArrayList<>();
        for (int i = 0; i < STEPS.length; i++) points.add(new double[] {STEPS[i], PROXY[i], GOLD[i], KL[i]});
        return new RefundDemo.Overoptimisation(points, List.of(new OveroptimizationMonitor.Flag(14, 8, 0.16, 0.09, 2.0)));
    }

    @Test
    void proxyAndGoldArePlottedInStepOrderWithKlInItsOwnPanelOnTheSameStepAxis() throws Exception {
        Document svg = parse(DemoReport.overoptimisationChart(run()));
        double[][] proxy = polyline(svg, "proxy"), gold = polyline(svg, "gold");
        for (double[][] series : List.of(proxy, gold)) assertEquals(STEPS.length, series.length, "one point per logged step");
        for (int i = 1; i < STEPS.length; i++) {
            assertTrue(proxy[i][0] > proxy[i - 1][0], "x rises with the step: point " + i + " at x " + proxy[i][0] + " after " + proxy[i - 1][0]);
            // Linear in the step: equal step gaps are equal distances (coordinates are written to 0.1 px).
            double perStep = (proxy[i][0] - proxy[0][0]) / (STEPS[i] - STEPS[0]), first = (proxy[1][0] - proxy[0][0]) / (STEPS[1] - STEPS[0]);
            assertEquals(first, perStep, 0.1, "x is proportional to the step");
            assertEquals(proxy[i][0], gold[i][0], 1e-9, "gold shares the step axis");
            // SVG y grows downwards: a rising proxy climbs.
            assertTrue(proxy[i][1] < proxy[i - 1][1], "proxy rises at point " + i);
        }
        double[][] kl = polyline(svg, "kl");
        assertEquals(STEPS.length, kl.length, "one KL point per logged step");
        for (int i = 1; i < STEPS.length; i++) {
            assertEquals(proxy[i][0], kl[i][0], 1e-9, "the KL panel shares the step axis");
            assertEquals(Math.signum(KL[i] - KL[i - 1]), -Math.signum(kl[i][1] - kl[i - 1][1]), "the KL line follows the KL up and down at point " + i);
        }
        int peak = 3;
        for (int i = 0; i < STEPS.length; i++)
            if (i != peak) assertTrue(gold[i][1] > gold[peak][1], "gold is highest at step " + STEPS[peak] + ", point " + i);

        double mainBottom = 0, klTop = Double.POSITIVE_INFINITY;
        for (double[] p : proxy) mainBottom = Math.max(mainBottom, p[1]);
        for (double[] p : gold) mainBottom = Math.max(mainBottom, p[1]);
        for (double[] p : kl) klTop = Math.min(klTop, p[1]);
        assertTrue(klTop > mainBottom, "the KL panel sits below the scores: KL from y " + klTop + ", scores down to y " + mainBottom);

        List<String> texts = texts(svg);
        assertTrue(texts.contains("training step"), "the step axis is labelled: " + texts);
        assertTrue(texts.stream().anyMatch(t -> t.startsWith("proxy")) && texts.stream().anyMatch(t -> t.startsWith("gold"))
                && texts.stream().anyMatch(t -> t.startsWith("KL")), "legend and axis titles name the series: " + texts);
        assertTrue(texts.contains("flagged (step 14)"), texts.toString());
        Element flag = (Element) svg.getElementsByTagName("line").item(indexOfClass(svg, "line", "flag"));
        assertEquals(proxy[6][0], Double.parseDouble(flag.getAttribute("x1")), 1e-9, "the flag marks step 14 on the step axis");
    }

    @Test
    void aRunWithoutKlOrWithTooFewStepsStillGivesAValidChart() throws Exception {
        List<double[]> noKl = new ArrayList<>();
        for (int i = 0; i < 3; i++) noKl.add(new double[] {STEPS[i], PROXY[i], GOLD[i], Double.NaN});
        Document svg = parse(DemoReport.overoptimisationChart(new RefundDemo.Overoptimisation(noKl, List.of())));
        assertEquals(3, polyline(svg, "proxy").length);
        assertEquals(-1, indexOfClass(svg, "polyline", "kl"), "no KL line without KL values");
        assertTrue(texts(svg).contains("KL not logged"), texts(svg).toString());

        Document one = parse(DemoReport.overoptimisationChart(new RefundDemo.Overoptimisation(noKl.subList(0, 1), List.of())));
        assertEquals(0, one.getElementsByTagName("polyline").getLength());
        assertTrue(texts(one).contains("too few logged steps to plot"), texts(one).toString());
    }

    /** Parses the chart as XML: it must be well formed on its own (every text escaped), as inline SVG in the report. */
    static Document parse(String svg) throws Exception {
        return DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
    }

    static int indexOfClass(Document svg, String tag, String cls) {
        NodeList n = svg.getElementsByTagName(tag);
        for (int i = 0; i < n.getLength(); i++) if (cls.equals(((Element) n.item(i)).getAttribute("class"))) return i;
        return -1;
    }

    /** The {x, y} points of the polyline with the given class, in drawing order. */
    static double[][] polyline(Document svg, String cls) {
        int i = indexOfClass(svg, "polyline", cls);
        assertTrue(i >= 0, "no polyline of class '" + cls + "'");
        String[] pairs = ((Element) svg.getElementsByTagName("polyline").item(i)).getAttribute("points").trim().split("\\s+");
        double[][] out = new double[pairs.length][];
        for (int k = 0; k < pairs.length; k++) {
            String[] xy = pairs[k].split(",");
            out[k] = new double[] {Double.parseDouble(xy[0]), Double.parseDouble(xy[1])};
        }
        return out;
    }

    static List<String> texts(Document svg) {
        NodeList n = svg.getElementsByTagName("text");
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n.getLength(); i++) out.add(n.item(i).getTextContent());
        return out;
    }
}
