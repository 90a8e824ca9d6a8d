package io.tether.cli;

import java.io.PrintWriter;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

import io.tether.engine.Torch;

/** The {@code tether} command line. Bad input ends with one message on stderr and exit code 2, a bug with its stack trace and exit code 70 ({@link ExitCodes}). */
@Command(name = "tether", mixinStandardHelpOptions = true, versionProvider = TetherCommand.Version.class,
        description = "Align causal language models with preference data on the JVM.",
        subcommands = {LogprobsCommand.class, GenerateCommand.class, SftCommand.class, PreferenceCommands.Dpo.class, PreferenceCommands.Kto.class,
                PreferenceCommands.Orpo.class, PreferenceCommands.Simpo.class, PreferenceCommands.Cpo.class, OnlineCommands.Grpo.class, OnlineCommands.Rloo.class, OnlineCommands.Ppo.class, OnlineCommands.OnlineDpo.class, RmCommand.class, MergeCommand.class, TemplateCommand.class, DataCommand.class, EvalCommand.class, AdviseCommand.class, WorldCommand.class, DemoCommand.class, ServeCommand.class, BenchCommand.class, LaunchCommand.class, CommandLine.HelpCommand.class})
public final class TetherCommand implements Runnable {
    /** Exit code for input the user can fix: a missing file, a bad config, a malformed record. */
    public static final int BAD_INPUT = ExitCodes.BAD_INPUT;

    @Option(names = "--threads", scope = ScopeType.INHERIT, description = "torch intra-op threads (default: 1 on machines of up to 4 cores, else all cores)")
    Integer threads;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    void initEngine() {
        Torch.init(threads != null ? threads : Torch.defaultThreads());
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI with the given streams (tests call this directly). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        return commandLine(out, err).execute(args);
    }

    /** The command line, writing to the given streams, with the exit codes and error reporting of {@link ExitCodes}. */
    static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        return configure(new CommandLine(new TetherCommand()), out, err);
    }

    /** Sets streams and error handling on {@code cli} and every subcommand it has now (picocli copies settings to subcommands when set). */
    static CommandLine configure(CommandLine cli, PrintWriter out, PrintWriter err) {
        cli.setOut(out);
        cli.setErr(err);
        ExitCodes codes = new ExitCodes();
        cli.setExecutionExceptionHandler(codes);
        cli.setExitCodeExceptionMapper(codes);
        cli.setParameterExceptionHandler(ExitCodes::handleParameterException);
        return cli;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = TetherCommand.class.getPackage().getImplementationVersion();
            return new String[] {"tether " + (v == null ? "dev" : v) + " (libtorch via org.bytedeco:pytorch)"};
        }
    }
}
