package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.tether.train.Trainer;

/**
 * Progress written to a log (stderr not a terminal) is plain lines, one per tenth of the run and one at its end; the
 * self-overwriting bar, carriage returns and all, is for terminals only.
 */
class ProgressBarTest {
    @TempDir Path tmp;
    private static final Path LLAMA = Path.of(System.getProperty("tether.shared", "../shared")).resolve("fixtures/checkpoints/verl-arithmetic-llama");
    private static final Pattern PERCENT = Pattern.compile("\\((\\d+)%\\)");

    static Map<String, Object> metrics(double loss) {
        return Map.of("loss", loss, "lr", 2e-5, "units_per_second", 1000.0);
    }

    /** The percentages of the progress lines, in order. */
    static List<Integer> percents(List<String> lines) {
        List<Integer> out = new ArrayList<>();
        for (String l : lines) {
            Matcher m = PERCENT.matcher(l);
            if (m.find()) out.add(Integer.parseInt(m.group(1)));
        }
        return out;
    }

    /** Every tenth reached gets exactly one line: consecutive lines are at least 10 points apart except where a step jumps a tenth. */
    static void assertOneLinePerTenth(List<Integer> pct, int expectedLines) {
        assertEquals(expectedLines, pct.size(), pct.toString());
        assertEquals(100, pct.get(pct.size() - 1), "the last line is at 100%: " + pct);
        for (int i = 1; i < pct.size(); i++) assertTrue(pct.get(i) / 10 > pct.get(i - 1) / 10, "one line per tenth: " + pct);
    }

    @Test
    void plainProgressIsOneLinePerTenthWithNoCarriageReturns() {
        for (int[] run : new int[][] {{100, 1}, {47, 3}, {7, 1}, {1000, 10}}) {
            int total = run[0], every = run[1];
            StringWriter log = new StringWriter();
            ProgressBar bar = new ProgressBar(new PrintWriter(log, true), ProgressBar.Style.PLAIN);
            int logged = 0;
            for (int step = every; step < total + every; step += every) {
                int s = Math.min(step, total);
                bar.onStep(s, total, metrics(1.0 / s));
                if (s >= total / 2 && s - every < total / 2) bar.onEval(s, Map.of("eval_loss", 0.5, "eval_perplexity", 1.65));
                logged++;
            }
            String text = log.toString();
            assertFalse(text.contains("\r"), "no carriage returns in a log: " + text);
            List<String> lines = text.lines().toList();
            // Fewer logged steps than tenths (7 steps): every logged step is a line.
            assertOneLinePerTenth(percents(lines), Math.min(logged, 11));
            assertTrue(lines.get(lines.size() - 1).startsWith("step " + total + "/" + total + " (100%) loss "), lines.get(lines.size() - 1));
            assertEquals(1, lines.stream().filter(l -> l.startsWith("  eval at step")).count(), text);
            assertFalse(lines.stream().anyMatch(String::isBlank), "no blank lines: " + text);
        }
    }

    @Test
    void theBarOverwritesItsLineOnATerminal() {
        StringWriter tty = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(tty, true), ProgressBar.Style.BAR);
        for (int step = 1; step <= 20; step++) bar.onStep(step, 20, metrics(0.5));
        assertEquals(20, tty.toString().chars().filter(c -> c == '\r').count());
        assertFalse(tty.toString().contains("\n"), "one line, overwritten in place");
    }

    @Test
    void theStyleFollowsTheTerminalUnlessTetherProgressSaysOtherwise() {
        assertEquals(ProgressBar.Style.BAR, ProgressBar.Style.resolve(null, true));
        assertEquals(ProgressBar.Style.PLAIN, ProgressBar.Style.resolve(null, false));
        assertEquals(ProgressBar.Style.PLAIN, ProgressBar.Style.resolve("auto", false));
        assertEquals(ProgressBar.Style.PLAIN, ProgressBar.Style.resolve("plain", true));
        assertEquals(ProgressBar.Style.BAR, ProgressBar.Style.resolve("Bar", false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ProgressBar.Style.resolve("fancy", true));
        assertEquals("TETHER_PROGRESS=fancy: expected bar, plain or auto", e.getMessage());
    }

    @Test
    void theDemoBoardWritesPlainLinesPerStageInALog() {
        StringWriter log = new StringWriter();
        DemoCommand.StageBoard board = new DemoCommand.StageBoard(new PrintWriter(log, true), ProgressBar.Style.PLAIN);
        Trainer.Listener sft = board.stage("sft", "supervised fine-tuning"), rm = board.stage("rm", "reward model");
        for (int step = 5; step <= 200; step += 5) {
            sft.onStep(step, 200, metrics(1.0));
            if (step <= 60) rm.onStep(step, 60, metrics(0.7));
            if (step == 100) sft.onNotice("loss near ln 2");
        }
        String text = log.toString();
        assertFalse(text.contains("\r"), "no carriage returns in a log: " + text);
        List<String> lines = text.lines().toList();
        for (String stage : new String[] {"sft", "rm"}) {
            List<String> own = lines.stream().filter(l -> l.startsWith(stage + ": step ")).toList();
            // Steps 5..195 of 200 give tenths 0..9, steps 5..55 of 60 tenths 0..9: ten lines each, then the done line.
            assertEquals(10, own.size(), stage + ": " + own);
            List<Integer> pct = percents(own);
            for (int i = 1; i < pct.size(); i++) assertTrue(pct.get(i) / 10 > pct.get(i - 1) / 10, stage + ": " + pct);
            assertEquals(1, lines.stream().filter(l -> l.startsWith(stage + ": done, ")).count(), text);
        }
        assertTrue(lines.get(lines.size() - 1).startsWith("sft: done, 200 steps in "), text);
        assertTrue(lines.contains("sft: note: loss near ln 2"), text);
    }

    @Test
    void aTrainingCommandLogsPlainLinesWhenStderrIsNotATerminal() throws IOException {
        // The test's stderr is a StringWriter and the test JVM has no console: the CLI must choose plain lines itself.
        assumeNoOverride();
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 16; i++) lines.add("{\"prompt_ids\": [" + i % 16 + ",3], \"completion_ids\": [" + (i + 1) % 16 + "," + (i + 2) % 16 + "]}");
        Path data = tmp.resolve("sft.jsonl");
        Files.write(data, lines);
        Path config = tmp.resolve("sft.yaml");
        Files.writeString(config, "max_steps: 20\nlogging_steps: 1\nper_device_train_batch_size: 4\nsave_steps: 100\n");
        String[] r = TextCliTest.run("sft", "--config", config.toString(), "--model", LLAMA.toString(), "--data", data.toString(), "--output-dir",
                tmp.resolve("run").toString());
        assertEquals("0", r[0], r[2]);
        assertFalse(r[2].contains("\r"), "no carriage returns: " + r[2]);
        List<String> err = r[2].lines().toList();
        // Steps 1..20 logged: step 1 opens (5%), then steps 2, 4, ..., 20 each complete a tenth.
        assertOneLinePerTenth(percents(err), 11);
        assertTrue(err.stream().anyMatch(l -> l.startsWith("step 20/20 (100%) loss ")), r[2]);
        assertTrue(err.get(err.size() - 1).startsWith("done: 20 steps"), r[2]);
        assertFalse(err.stream().anyMatch(String::isBlank), "no blank lines: " + r[2]);
    }

    private static void assumeNoOverride() {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getenv(ProgressBar.Style.ENV) == null, "TETHER_PROGRESS is set for this JVM");
        org.junit.jupiter.api.Assumptions.assumeTrue(System.console() == null, "the test JVM has a console");
    }
}
