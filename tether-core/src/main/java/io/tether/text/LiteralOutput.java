package io.tether.text;

import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.expression.ExpressionStrategy;
import com.hubspot.jinjava.lib.filter.EscapeFilter;
import com.hubspot.jinjava.mode.ExecutionMode;
import com.hubspot.jinjava.objects.SafeString;
import com.hubspot.jinjava.tree.output.RenderedOutputNode;
import com.hubspot.jinjava.tree.parse.ExpressionToken;

/**
 * How {@code {{ expression }}} prints: a string exactly as it is, as jinja2 prints it; anything else (numbers,
 * booleans, None, lists, dicts) in Python's notation through Jinjava's pyish printer. Jinjava's own strategy sends
 * strings through that printer too, a JSON writer whose escapes it only partly undoes, so a control character in a
 * message (U+0001, a backspace) came out as the six characters {@code \u0001}; and with nested interpretation on
 * it renders a printed value again as a template.
 */
final class LiteralOutput implements ExpressionStrategy {
    private static final long serialVersionUID = 1L;

    /** Installs the strategy in every render's context (the one hook Jinjava offers for it). */
    static final ExecutionMode MODE = new ExecutionMode() {
        @Override
        public void prepareContext(Context context) {
            context.setExpressionStrategy(new LiteralOutput());
        }
    };

    @Override
    public RenderedOutputNode interpretOutput(ExpressionToken master, JinjavaInterpreter interpreter) {
        Object value = interpreter.resolveELExpression(master.getExpr(), master.getLineNumber());
        String text = value instanceof CharSequence || value instanceof SafeString ? value.toString() : interpreter.getAsString(value);
        if (interpreter.getContext().isAutoEscape() && !(value instanceof SafeString)) text = EscapeFilter.escapeHtmlEntities(text);
        return new RenderedOutputNode(text);
    }
}
