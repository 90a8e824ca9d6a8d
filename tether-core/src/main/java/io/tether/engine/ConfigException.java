package io.tether.engine;

/**
 * A setting the user can fix: a configuration key, a command-line option or a choice of model or tokenizer that
 * cannot work, named in the message ({@code key 'beta': must be > 0}). Beside {@link CheckpointException} (names the
 * tensor) and {@code DataFormatException} (names file:line), it marks input errors, which the CLI reports as one line
 * and exit code 2; any other exception is a bug and keeps its stack trace.
 *
 * <p>It extends {@link IllegalArgumentException} so Java callers that validate records and catch the argument error
 * keep working; code that reports a user's mistake throws this type, and argument-contract checks of internal APIs
 * stay plain {@code IllegalArgumentException}.
 */
public class ConfigException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
