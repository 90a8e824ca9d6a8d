package io.tether.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Problems found in a data file, each with file:line(:column) and a stable code. Counts are kept for every problem;
 * details for the first {@link #DETAILS_KEPT}, so a million-pair file with a common problem stays in bounded memory.
 * Errors (records that cannot be used) beyond {@code maxErrors} stop the reading with {@link TooManyErrors}.
 */
public final class Problems {
    /** Details kept per run; the counts by code cover everything. */
    public static final int DETAILS_KEPT = 1000;

    public enum Severity { ERROR, WARNING }

    /**
     * One finding. {@code line} and {@code column} are 1-based, 0 when not applicable or unknown; {@code record} is the
     * record's 1-based position in the file (0 when unknown), which tells apart the elements of a one-line JSON array;
     * it is printed only where it differs from the line.
     */
    public record Problem(Path file, long line, long column, long record, String code, Severity severity, String message) {
        @Override
        public String toString() {
            String where = file + (line > 0 ? ":" + line : "") + (line > 0 && column > 0 ? ":" + column : "") + (record > 0 && record != line ? " (record " + record + ")" : "");
            return where + ": " + severity.name().toLowerCase(java.util.Locale.ROOT) + " [" + code + "] " + message;
        }
    }

    /** Thrown when more than {@code maxErrors} errors were found: reading stops there. */
    public static final class TooManyErrors extends RuntimeException {
        private static final long serialVersionUID = 1L;

        TooManyErrors(long max) {
            super("stopped after " + max + " errors");
        }
    }

    private final long maxErrors;
    private final List<Problem> details = new ArrayList<>();
    private final Map<String, Long> counts = new TreeMap<>(), errorCounts = new TreeMap<>();
    private long errors, warnings;
    private String howToGoOn = "";

    /** {@code maxErrors} = 0 makes the first error a {@link DataFormatException} (for commands that need clean input). */
    public Problems(long maxErrors) {
        this.maxErrors = maxErrors;
    }

    /** Problems for commands that read data to use it: the first error ends the command, warnings are kept. */
    public static Problems failFast() {
        return new Problems(0);
    }

    /** As {@link #failFast()}, the stop's message ending with {@code howToGoOn} (e.g. the option that skips such records). */
    public static Problems failFast(String howToGoOn) {
        Problems p = new Problems(0);
        p.howToGoOn = howToGoOn;
        return p;
    }

    public void error(Path file, long line, long column, String code, String message) {
        error(file, line, column, 0, code, message);
    }

    public void error(PreferenceRecord.Origin at, String code, String message) {
        error(at.file(), at.line(), 0, at.index(), code, message);
    }

    /** An error in a record at a known column (where the offending field's value starts). */
    public void error(PreferenceRecord.Origin at, long column, String code, String message) {
        error(at.file(), at.line(), column, at.index(), code, message);
    }

    private void error(Path file, long line, long column, long record, String code, String message) {
        if (maxErrors == 0) throw new DataFormatException(file, line, column, message + " [" + code + "]" + (record > 0 && record != line ? " (record " + record + ")" : "") + howToGoOn);
        add(new Problem(file, line, column, record, code, Severity.ERROR, message));
        errorCounts.merge(code, 1L, Long::sum);
        if (++errors > maxErrors) throw new TooManyErrors(maxErrors);
    }

    public void warning(PreferenceRecord.Origin at, String code, String message) {
        add(new Problem(at.file(), at.line(), 0, at.index(), code, Severity.WARNING, message));
        warnings++;
    }

    /** A problem of the whole file rather than of one record. */
    public void warning(Path file, String code, String message) {
        add(new Problem(file, 0, 0, 0, code, Severity.WARNING, message));
        warnings++;
    }

    private void add(Problem p) {
        counts.merge(p.code(), 1L, Long::sum);
        if (details.size() < DETAILS_KEPT) details.add(p);
    }

    public long errors() { return errors; }

    public long warnings() { return warnings; }

    public long total() { return errors + warnings; }

    /** How many problems of each code, sorted by code. */
    public Map<String, Long> counts() { return counts; }

    /** How many errors of each code (warnings left out), sorted by code. */
    public Map<String, Long> errorCounts() { return errorCounts; }

    /** The first {@link #DETAILS_KEPT} problems in the order found. */
    public List<Problem> details() { return details; }
}
