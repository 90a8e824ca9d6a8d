package io.tether.engine;

/**
 * Another rank of a data-parallel run died, lost its connection or stopped answering within the timeout: this rank
 * cannot continue. Not a user's input error and not a bug in this process; the CLI reports it as one line.
 */
public class PeerFailureException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public PeerFailureException(String message) {
        super(message);
    }

    public PeerFailureException(String message, Throwable cause) {
        super(message, cause);
    }
}
