package io.tether.cli;

import java.io.IOException;
import java.io.UncheckedIOException;

import picocli.CommandLine;

import io.tether.data.DataFormatException;
import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;
import io.tether.engine.PeerFailureException;
import io.tether.text.ChatTemplateException;
import io.tether.train.NonFiniteException;

/**
 * The exit code of each way a command can end, as picocli's exit-code mapper, and the handler that reports them:
 * input the user can fix (a setting naming its key, a record naming file:line, a checkpoint naming its tensor, a chat
 * template's own error, a file that cannot be read or written) is one line on stderr and {@link #BAD_INPUT}; a run
 * stopped by a non-finite loss is one line and {@link #STOPPED}; a data-parallel rank whose peer died is one line and
 * {@link #PEER_FAILED}; anything else is a bug, and picocli prints its stack
 * trace and exits {@link #SOFTWARE}.
 */
final class ExitCodes implements CommandLine.IExitCodeExceptionMapper, CommandLine.IExecutionExceptionHandler {
    /** A training run stopped before a non-finite loss or gradient could reach the weights. */
    static final int STOPPED = 1;
    /** Input the user can fix: a missing file, a bad setting, a malformed record; picocli's usage errors too. */
    static final int BAD_INPUT = 2;
    /** A data-parallel rank stopped because another rank died or stopped answering ({@code tether launch} names that one). */
    static final int PEER_FAILED = 3;
    /** A bug: sysexits' EX_SOFTWARE, with the stack trace on stderr. */
    static final int SOFTWARE = 70;

    @Override
    public int getExitCode(Throwable t) {
        if (t instanceof NonFiniteException) return STOPPED;
        if (t instanceof PeerFailureException) return PEER_FAILED;
        if (isBadInput(t)) return BAD_INPUT;
        return SOFTWARE;
    }

    /** The exceptions that report input the user can fix; every other exception is a bug. */
    static boolean isBadInput(Throwable t) {
        return t instanceof ConfigException || t instanceof DataFormatException || t instanceof CheckpointException
                || t instanceof ChatTemplateException || t instanceof IOException || t instanceof UncheckedIOException
                || t instanceof CommandLine.ParameterException;
    }

    /** Input errors and stopped runs as one line; a bug is rethrown so picocli prints its trace and maps it to {@link #SOFTWARE}. */
    @Override
    public int handleExecutionException(Exception ex, CommandLine cmd, CommandLine.ParseResult parsed) throws Exception {
        if (ex instanceof NonFiniteException) {
            cmd.getErr().println();
            cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": stopped: " + ex.getMessage());
        } else if (ex instanceof PeerFailureException) {
            cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": stopped: " + ex.getMessage());
        } else if (isBadInput(ex)) {
            cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": error: " + ex.getMessage());
        } else {
            throw ex;
        }
        cmd.getErr().flush();
        return getExitCode(ex);
    }

    /** A command line picocli cannot parse: one line naming the problem (with picocli's suggestions for a mistyped option). */
    static int handleParameterException(CommandLine.ParameterException ex, String[] args) {
        CommandLine cmd = ex.getCommandLine();
        cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": error: " + ex.getMessage() + " (see '" + cmd.getCommandSpec().qualifiedName() + " --help')");
        CommandLine.UnmatchedArgumentException.printSuggestions(ex, cmd.getErr());
        cmd.getErr().flush();
        return BAD_INPUT;
    }
}
