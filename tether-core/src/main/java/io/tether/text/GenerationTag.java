package io.tether.text;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;

/**
 * {@code {% generation %}...{% endgeneration %}} (transformers' marker for assistant-only loss): renders its body
 * between two private-use characters that {@link ChatTemplate} removes after rendering, recording the span.
 */
final class GenerationTag implements Tag {
    private static final long serialVersionUID = 1L;

    @Override
    public String getName() {
        return "generation";
    }

    @Override
    public String getEndTagName() {
        return "endgeneration";
    }

    @Override
    public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
        StringBuilder body = new StringBuilder().append(ChatTemplate.GENERATION_START);
        for (Node child : tagNode.getChildren()) body.append(child.render(interpreter).getValue());
        return body.append(ChatTemplate.GENERATION_END).toString();
    }
}
