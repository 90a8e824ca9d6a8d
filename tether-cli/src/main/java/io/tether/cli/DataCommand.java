package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

import io.tether.data.Adjudication;
import io.tether.data.Binarize;
import io.tether.data.Leakage;
import io.tether.data.PreferenceExport;
import io.tether.data.PreferencePair;
import io.tether.data.PreferenceReader;
import io.tether.data.PreferenceRecord;
import io.tether.data.PreferenceSplit;
import io.tether.data.PreferenceStats;
import io.tether.data.PreferenceValidator;
import io.tether.data.Problems;
import io.tether.data.RatedCompletions;
import io.tether.data.UnpairedFeedback;
import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;
import io.tether.text.TextAssets;

/** {@code tether data}: preference data checked, described, split and converted before any training sees it. */
@Command(name = "data", mixinStandardHelpOptions = true, description = "Validate, describe, split and convert preference data.",
        subcommands = {DataCommand.Validate.class, DataCommand.Stats.class, DataCommand.Split.class, DataCommand.LeakageCheck.class, DataCommand.Convert.class})
final class DataCommand implements Runnable {
    @ParentCommand TetherCommand root;

    @Override
    public void run() {
        root.spec.commandLine().getSubcommands().get("data").usage(root.spec.commandLine().getOut());
    }

    static final ObjectMapper JSON = new ObjectMapper();

    /** Options every reading subcommand shares. */
    static final class Input {
        @Parameters(index = "0", paramLabel = "FILE", description = "JSONL or JSON array, optionally .gz") Path file;
        @Option(names = "--format", description = "override detection: ${COMPLETION-CANDIDATES}", completionCandidates = FormatNames.class) String format;
        @Option(names = "--adjudication", description = "JSONL of {prompt_id, line or record, label: chosen|rejected|tie|drop} applied to the records") Path adjudication;

        PreferenceReader.Format format() {
            return format == null ? null : PreferenceReader.Format.parse(format);
        }

        /** Reads the file through the adjudication (if any, saying on {@code err} how many records it decided) into {@code sink}. */
        void read(Problems problems, PrintWriter err, java.util.function.Consumer<PreferenceRecord> sink) {
            Adjudication a = adjudication == null ? null : Adjudication.load(adjudication);
            PreferenceReader.read(file, format(), problems, (r, raw) -> {
                PreferenceRecord decided = a == null ? r : a.apply(r);
                if (decided != null) sink.accept(decided);
            });
            if (a != null) {
                err.printf("adjudication %s decided %d records (%d dropped)%n", adjudication, a.applied(), a.dropped());
                err.flush();
            }
        }
    }

    static final class FormatNames implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return java.util.Arrays.stream(PreferenceReader.Format.values()).map(f -> f.cliName).iterator();
        }
    }

    /** For commands that use the records: stop at the first unreadable one, or with --skip-invalid count and skip them. */
    static final class Skipping {
        @Option(names = "--skip-invalid", description = "skip records that cannot be read (they are counted on stderr) instead of stopping") boolean skipInvalid;

        Problems problems() {
            return skipInvalid ? new Problems(Long.MAX_VALUE) : Problems.failFast("; --skip-invalid skips such records and counts them");
        }

        void report(PrintWriter err, Problems problems) {
            if (problems.errors() == 0) return;
            err.println("skipped " + problems.errors() + " unreadable records " + problems.counts() + "; first: " + problems.details().get(0));
            err.flush();
        }
    }

    static TextAssets tokenizer(Path dir) {
        if (dir == null) return null;
        return TextAssets.load(dir).orElseThrow(() -> new ConfigException(dir + ": no tokenizer.json"));
    }

    @Command(name = "validate", mixinStandardHelpOptions = true,
            description = {"Check every record; each problem prints as FILE:LINE[:COL]: severity [code] message.",
                    "Checks fields, labels, empty or identical completions, ties, unresolved votes, exact/near/contradictory duplicates,",
                    "and with --tokenizer the token budget and prompt-prefix consistency. Exit 1 on any error (on any problem with --strict)."})
    static final class Validate implements Callable<Integer> {
        @ParentCommand DataCommand data;
        @picocli.CommandLine.Mixin Input in;
        @Option(names = "--tokenizer", description = "directory with tokenizer.json (and a chat template for chat records)") Path tokenizer;
        @Option(names = "--max-length", defaultValue = "0", description = "token budget for prompt+completion (needs --tokenizer)") int maxLength;
        @Option(names = "--strict", description = "warnings fail too") boolean strict;
        @Option(names = "--report", description = "write the problems as JSON") Path report;
        @Option(names = "--max-errors", defaultValue = "100", description = "stop reading after this many errors (default: ${DEFAULT-VALUE})") long maxErrors;

        @Override
        public Integer call() throws IOException {
            if (maxErrors < 1) throw new ConfigException("--max-errors must be at least 1");
            PrintWriter out = data.root.spec.commandLine().getOut();
            Problems problems = new Problems(maxErrors);
            boolean stopped = false;
            long records;
            try (TextAssets text = tokenizer(tokenizer)) {
                PreferenceValidator v = new PreferenceValidator(problems, text == null ? null : text.tokenizer(), text == null ? null : text.template(), maxLength);
                try {
                    in.read(problems, data.root.spec.commandLine().getErr(), v::accept);
                } catch (Problems.TooManyErrors e) {
                    stopped = true;
                }
                records = v.records();
            }
            // A file with nothing in it validates nothing: say so and fail, as a trainer would refuse it.
            if (records == 0 && problems.errors() == 0) problems.error(in.file, 0, 0, "no-records", "the file holds no records");
            for (Problems.Problem p : problems.details()) out.println(p);
            String summary = String.format("%s: %d records, %d errors, %d warnings%s%s", in.file, records, problems.errors(), problems.warnings(),
                    problems.counts().isEmpty() ? "" : " " + problems.counts(), stopped ? "; stopped after " + maxErrors + " errors" : "");
            out.println(summary);
            if (problems.total() > problems.details().size()) out.println("(details of the first " + problems.details().size() + " problems shown; counts cover all)");
            out.flush();
            if (report != null) {
                ObjectNode o = JSON.createObjectNode();
                o.put("file", in.file.toString()).put("records", records).put("errors", problems.errors()).put("warnings", problems.warnings()).put("stopped_early", stopped);
                ObjectNode counts = o.putObject("counts");
                problems.counts().forEach(counts::put);
                var list = o.putArray("problems");
                for (Problems.Problem p : problems.details()) {
                    ObjectNode e = list.addObject().put("file", p.file().toString()).put("line", p.line());
                    if (p.column() > 0) e.put("column", p.column());
                    if (p.record() > 0) e.put("record", p.record());
                    e.put("code", p.code()).put("severity", p.severity().name().toLowerCase(java.util.Locale.ROOT)).put("message", p.message());
                }
                AtomicFiles.write(report, w -> w.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n"));
            }
            return problems.errors() > 0 || stopped || (strict && problems.warnings() > 0) ? 1 : 0;
        }
    }

    @Command(name = "stats", mixinStandardHelpOptions = true,
            description = {"Describe the data: JSON on stdout, plain warnings on stderr.",
                    "Counts by kind, label, source, generator and annotator; chosen/rejected lengths and length bias;",
                    "desirable:undesirable balance for KTO; annotator agreement (Cohen's kappa, Krippendorff's alpha)."})
    static final class Stats implements Callable<Integer> {
        @ParentCommand DataCommand data;
        @picocli.CommandLine.Mixin Input in;
        @Option(names = "--tokenizer", description = "count lengths in tokens of this tokenizer (default: characters)") Path tokenizer;
        @Option(names = "--out", description = "also write the report as JSON") Path outFile;
        @picocli.CommandLine.Mixin Skipping skipping;

        @Override
        public Integer call() throws IOException {
            List<String> warnings = new ArrayList<>();
            ObjectNode report;
            // Statistics describe what is there: unreadable records are counted (and the first named), never a stop.
            Problems problems = new Problems(Long.MAX_VALUE);
            try (TextAssets text = tokenizer(tokenizer)) {
                PreferenceStats stats = new PreferenceStats(text == null ? null : text.tokenizer());
                in.read(problems, data.root.spec.commandLine().getErr(), stats::accept);
                report = stats.report(warnings);
            }
            report.put("skipped_unreadable", problems.errors());
            if (problems.errors() > 0) report.putPOJO("skipped_by_code", problems.errorCounts());
            report.putArray("warnings").addAll(warnings.stream().map(w -> JSON.getNodeFactory().textNode(w)).toList());
            String json = JSON.writerWithDefaultPrettyPrinter().writeValueAsString(report) + "\n";
            PrintWriter out = data.root.spec.commandLine().getOut(), err = data.root.spec.commandLine().getErr();
            out.print(json);
            out.flush();
            skipping.report(err, problems);
            for (String w : warnings) err.println("warning: " + w);
            err.flush();
            if (outFile != null) AtomicFiles.write(outFile, w -> w.write(json));
            return 0;
        }
    }

    @Command(name = "split", mixinStandardHelpOptions = true,
            description = {"Deterministic train/eval split grouped by prompt_id (or normalized prompt), so no prompt is on both sides.",
                    "Writes OUT_DIR/train.jsonl and OUT_DIR/eval.jsonl with the records as they were."})
    static final class Split implements Callable<Integer> {
        @ParentCommand DataCommand data;
        @Parameters(index = "0", paramLabel = "FILE") Path file;
        @Option(names = "--format") String format;
        @Option(names = "--out-dir", required = true) Path outDir;
        @Option(names = "--eval-fraction", required = true, description = "share of prompt groups for eval, in (0, 1)") double evalFraction;
        @Option(names = "--seed", defaultValue = "0") long seed;
        @Option(names = "--stratify", description = "'source': take the eval fraction within each source") String stratify;
        @picocli.CommandLine.Mixin Skipping skipping;

        @Override
        public Integer call() throws IOException {
            if (stratify != null && !stratify.equals("source")) throw new ConfigException("--stratify takes 'source', got '" + stratify + "'");
            Problems problems = skipping.problems();
            PreferenceSplit.Result r = PreferenceSplit.split(file, format == null ? null : PreferenceReader.Format.parse(format), outDir, evalFraction, seed,
                    stratify != null, problems);
            skipping.report(data.root.spec.commandLine().getErr(), problems);
            PrintWriter out = data.root.spec.commandLine().getOut();
            out.printf("train: %d records in %d prompt groups -> %s%n", r.trainRecords(), r.trainGroups(), outDir.resolve("train.jsonl"));
            out.printf("eval:  %d records in %d prompt groups -> %s%n", r.evalRecords(), r.evalGroups(), outDir.resolve("eval.jsonl"));
            if (stratify != null) r.groupsByStratum().forEach((s, n) -> out.printf("  source %s: %d train / %d eval groups%n", s, n[0], n[1]));
            out.flush();
            return 0;
        }
    }

    @Command(name = "leakage", mixinStandardHelpOptions = true,
            description = "Prompts of B that also occur in A, exactly or after normalizing case, spacing and punctuation. Exit 1 when any do.")
    static final class LeakageCheck implements Callable<Integer> {
        @ParentCommand DataCommand data;
        @Parameters(index = "0", paramLabel = "A", description = "e.g. the training set") Path a;
        @Parameters(index = "1", paramLabel = "B", description = "e.g. the eval set") Path b;
        @Option(names = "--examples", defaultValue = "10", description = "overlaps to list (default: ${DEFAULT-VALUE})") int examples;

        @Override
        public Integer call() {
            Leakage.Result r = Leakage.check(a, b, examples);
            PrintWriter out = data.root.spec.commandLine().getOut();
            for (Leakage.Overlap o : r.examples())
                out.printf("%s:%d: prompt %s %s:%d%n", b, o.lineInB(), o.exact() ? "equals" : "matches after normalizing", a, o.lineInA());
            out.printf("%d of %d records of %s have a prompt from %s (%d records): %d exact, %d after normalizing%n",
                    r.exact() + r.normalizedOnly(), r.recordsB(), b, a, r.recordsA(), r.exact(), r.normalizedOnly());
            out.flush();
            return r.leaks() ? 1 : 0;
        }
    }

    @Command(name = "convert", mixinStandardHelpOptions = true,
            description = {"Convert to TRL-style pairs (--to trl) or KTO rows (--to kto).",
                    "--to trl: TRL-style JSONL with provenance (prompt_id, source_file, source_line, source_record, scores, votes);",
                    "rated completions are paired up (--binarize), unpaired rows stay unpaired.",
                    "--to kto: pairs unpaired into desirable (chosen) and undesirable (rejected) rows.",
                    "Ties and unresolved pairs are skipped and counted, never guessed."})
    static final class Convert implements Callable<Integer> {
        @ParentCommand DataCommand data;
        @picocli.CommandLine.Mixin Input in;
        @Option(names = "--to", required = true, description = "trl or kto") String to;
        @Option(names = "--out", required = true) Path outFile;
        @Option(names = "--binarize", defaultValue = "best-worst", description = "best-worst or best-random (default: ${DEFAULT-VALUE})") String binarize;
        @Option(names = "--seed", defaultValue = "0", description = "for best-random") long seed;
        @picocli.CommandLine.Mixin Skipping skipping;

        @Override
        public Integer call() throws IOException {
            if (!to.equals("trl") && !to.equals("kto")) throw new ConfigException("--to takes trl or kto, got '" + to + "'");
            Binarize.Strategy strategy = Binarize.Strategy.parse(binarize);
            long[] n = new long[4];   // written, skipped ties/unresolved, rated prompts tied, prompts without completions
            Problems problems = skipping.problems();
            AtomicFiles.write(outFile, w -> in.read(problems, data.root.spec.commandLine().getErr(), r -> {
                if (r instanceof RatedCompletions rc) {
                    PreferencePair p = Binarize.pair(rc, strategy, seed);
                    if (p == null) n[2]++;
                    else n[0] += writePair(w, p, n);
                } else if (r instanceof PreferencePair p) {
                    n[0] += writePair(w, p, n);
                } else if (r instanceof UnpairedFeedback u) {
                    line(w, PreferenceExport.unpaired(u));
                    n[0]++;
                } else {
                    n[3]++;
                }
            }));
            PrintWriter err = data.root.spec.commandLine().getErr();
            skipping.report(err, problems);
            err.printf("wrote %d records to %s; skipped %d tie/unresolved pairs, %d rated prompts whose scores all tie, %d prompts without completions%n",
                    n[0], outFile, n[1], n[2], n[3]);
            err.flush();
            return 0;
        }

        private long writePair(Writer w, PreferencePair p, long[] n) {
            if (p.label() != PreferencePair.Label.CHOSEN) {
                n[1]++;
                return 0;
            }
            if (to.equals("trl")) {
                line(w, PreferenceExport.pair(p));
                return 1;
            }
            for (UnpairedFeedback u : PreferenceExport.unpair(p)) line(w, PreferenceExport.unpaired(u));
            return 2;
        }

        private static void line(Writer w, ObjectNode o) {
            try {
                w.write(o.toString());
                w.write('\n');
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
