package io.tether.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** A user's mistake is one line and exit 2; anything else is a bug: its stack trace and exit 70. */
class ExitCodesTest {
    @TempDir Path tmp;

    record Run(int code, String out, String err) {}

    private static Run run(CommandLine cli, StringWriter out, StringWriter err, String... args) {
        return new Run(cli.execute(args), out.toString(), err.toString());
    }

    private static Run tether(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        return run(TetherCommand.commandLine(new PrintWriter(out, true), new PrintWriter(err, true)), out, err, args);
    }

    /** The real command line with one more command that fails the way a bug inside a command does. */
    private static Run failingCommand(Supplier<RuntimeException> bug) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cli = new CommandLine(new TetherCommand());
        cli.addSubcommand("broken", new Broken(bug));
        TetherCommand.configure(cli, new PrintWriter(out, true), new PrintWriter(err, true));
        return run(cli, out, err, "broken");
    }

    @CommandLine.Command(name = "broken")
    static final class Broken implements Callable<Integer> {
        private final Supplier<RuntimeException> bug;

        Broken(Supplier<RuntimeException> bug) {
            this.bug = bug;
        }

        @Override
        public Integer call() {
            throw bug.get();
        }
    }

    private static void assertOneLineWithoutTrace(Run r, String expected) {
        assertEquals(ExitCodes.BAD_INPUT, r.code(), r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        assertTrue(r.err().startsWith("tether"), r.err());
        assertTrue(r.err().contains(expected), r.err());
        assertFalse(r.err().contains("\tat ") || r.err().contains("Exception"), "no stack trace: " + r.err());
    }

    @Test
    void aConfigurationMistakeIsOneLineNamingTheKeyAndExitTwo() {
        Path gpt2 = TextCliTest.GPT2;
        Run r = tether("sft", "--model", gpt2.toString(), "--data", tmp.resolve("d.jsonl").toString(), "--output-dir", tmp.resolve("o").toString(),
                "--set", "learning_rate=fast");
        assertOneLineWithoutTrace(r, "key 'learning_rate': expected a number");
        assertOneLineWithoutTrace(tether("dpo", "--config", tmp.resolve("missing.yaml").toString()), "missing.yaml: config file not found");
        assertOneLineWithoutTrace(tether("generate", "--model", gpt2.toString(), "--prompt-ids", "1", "--batch-size", "0"), "--batch-size must be >= 1");
    }

    @Test
    void aRecordLongerThanTheModelsPositionsIsBadInputNotABug() throws java.io.IOException {
        // No reader checks logprobs records against the model's positions; the model's own check names the limit.
        StringBuilder ids = new StringBuilder("1");
        for (int i = 1; i < 1100; i++) ids.append(", ").append(i % 100 + 1);
        Path data = tmp.resolve("long.jsonl");
        java.nio.file.Files.writeString(data, "{\"prompt_ids\": [1], \"completion_ids\": [" + ids + "]}\n");
        assertOneLineWithoutTrace(tether("logprobs", "--model", TextCliTest.GPT2.toString(), "--data", data.toString()), "exceeds n_positions 1024");
    }

    @Test
    void aCommandLinePicocliCannotParseIsOneLineAndExitTwo() {
        assertOneLineWithoutTrace(tether("generate", "--model", "m"), "Missing required argument");
        assertOneLineWithoutTrace(tether("merge", "--model", "m", "--adapter", "a", "--out", "o", "--dtype"), "Missing required parameter for option '--dtype'");
    }

    @Test
    void anInternalErrorKeepsItsStackTraceAndExitsSeventy() {
        Run r = failingCommand(() -> new IllegalStateException("cache index out of step"));
        assertEquals(ExitCodes.SOFTWARE, r.code(), r.err());
        assertTrue(r.err().contains("java.lang.IllegalStateException: cache index out of step"), r.err());
        assertTrue(r.err().contains("\tat io.tether.cli.ExitCodesTest"), "the trace names where it was thrown: " + r.err());
    }

    @Test
    void anIllegalArgumentFromInsideTheCodeIsABugNotBadInput() {
        // Argument-contract checks of internal APIs throw IllegalArgumentException; reaching the CLI, that is a bug.
        Run r = failingCommand(() -> new IllegalArgumentException("3 rewards do not form groups of 2"));
        assertEquals(ExitCodes.SOFTWARE, r.code(), r.err());
        assertTrue(r.err().contains("java.lang.IllegalArgumentException: 3 rewards do not form groups of 2") && r.err().contains("\tat "), r.err());
    }
}
