package io.tether.data;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

/**
 * A prompt or a completion as the source gave it: plain text, or chat messages. Exactly one of {@code text} and
 * {@code messages} is non-null, so a conversational record stays conversational on export.
 */
public record Turns(String text, List<Message> messages) {
    /** One chat message. */
    public record Message(String role, String content) {}

    public Turns {
        if ((text == null) == (messages == null)) throw new IllegalArgumentException("exactly one of text and messages");
        if (messages != null) messages = List.copyOf(messages);
    }

    public static Turns text(String text) {
        return new Turns(text, null);
    }

    public static Turns messages(List<Message> messages) {
        return new Turns(null, messages);
    }

    public boolean isChat() {
        return messages != null;
    }

    /** The words, for lengths, duplicates and overlap: the text, or the message contents joined by newlines. */
    public String flat() {
        if (text != null) return text;
        StringBuilder b = new StringBuilder();
        for (Message m : messages) {
            if (b.length() > 0) b.append('\n');
            b.append(m.content());
        }
        return b.toString();
    }

    public boolean isBlank() {
        return flat().isBlank();
    }

    /** These turns followed by {@code next}: text joined as is, messages concatenated (a text/chat mix joins as text). */
    public Turns then(Turns next) {
        if (isChat() && next.isChat()) {
            List<Message> all = new ArrayList<>(messages);
            all.addAll(next.messages);
            return messages(all);
        }
        return text(flat() + next.flat());
    }

    /** TRL's shape: a string, or a list of {role, content}. */
    public JsonNode toJson() {
        if (text != null) return JsonNodeFactory.instance.textNode(text);
        var a = JsonNodeFactory.instance.arrayNode();
        for (Message m : messages) a.addObject().put("role", m.role()).put("content", m.content());
        return a;
    }
}
