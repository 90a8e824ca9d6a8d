package io.tether.data;

import java.nio.file.Path;

/** A record that cannot be used: names the file, the 1-based line and what was expected. */
public class DataFormatException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient Path file;
    private final long line;

    public DataFormatException(Path file, long line, String message) {
        super(file + (line > 0 ? ":" + line : "") + ": " + message);
        this.file = file;
        this.line = line;
    }

    public Path file() { return file; }

    public long line() { return line; }
}
