package io.tether.text;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;

/**
 * {@code {% generation %}...{% endgeneration %}} (transformers' marker for assistant-only loss): renders its body
 * between the render's two marks ({@link ChatTemplate.RenderState}), which {@link ChatTemplate} removes after
 * rendering, recording the span.
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
        ChatTemplate.RenderState state = ChatTemplate.RenderState.current();
        StringBuilder body = new StringBuilder().append(state.generationStart);
        for (Node child : tagNode.getChildren()) body.append(child.render(interpreter).getValue());
        return body.append(state.generationEnd).toString();
    }
}
