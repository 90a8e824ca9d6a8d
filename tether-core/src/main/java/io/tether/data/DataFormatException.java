package io.tether.data;

import java.nio.file.Path;

/** A record that cannot be used: names the file, the 1-based line (and column, when known) and what was expected. */
public class DataFormatException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient Path file;
    private final long line;
    private final long column;

    public DataFormatException(Path file, long line, String message) {
        this(file, line, 0, message);
    }

    public DataFormatException(Path file, long line, long column, String message) {
        super(file + (line > 0 ? ":" + line : "") + (line > 0 && column > 0 ? ":" + column : "") + ": " + message);
        this.file = file;
        this.line = line;
        this.column = column;
    }

    public Path file() { return file; }

    public long line() { return line; }

    /** The 1-based column, or 0 when unknown. */
    public long column() { return column; }
}
