package io.tether.engine;

import java.nio.file.Path;

/** A checkpoint file that cannot be trusted: names the file and, where known, the tensor or key. */
public class CheckpointException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient Path file;
    private final String tensor;

    public CheckpointException(Path file, String tensor, String message) {
        super(format(file, tensor, message));
        this.file = file;
        this.tensor = tensor;
    }

    public CheckpointException(Path file, String tensor, String message, Throwable cause) {
        super(format(file, tensor, message), cause);
        this.file = file;
        this.tensor = tensor;
    }

    public Path file() { return file; }

    public String tensor() { return tensor; }

    private static String format(Path file, String tensor, String message) {
        StringBuilder sb = new StringBuilder();
        if (file != null) sb.append(file);
        if (tensor != null) sb.append(sb.length() > 0 ? ": " : "").append("tensor '").append(tensor).append('\'');
        if (sb.length() > 0) sb.append(": ");
        return sb.append(message).toString();
    }
}
