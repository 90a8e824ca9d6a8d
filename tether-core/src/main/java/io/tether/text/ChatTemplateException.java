package io.tether.text;

/** A chat template that cannot be rendered: a syntax error, an error the template raised, or a sandbox limit. */
public class ChatTemplateException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
