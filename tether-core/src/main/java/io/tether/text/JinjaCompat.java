package io.tether.text;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Source rewrites, inside tags and expressions only, for the places where Jinjava's parser reads real chat
 * templates differently from jinja2. Each rewrite adds parentheses that make jinja2's reading explicit, so the
 * template means the same in both.
 */
final class JinjaCompat {
    private JinjaCompat() {}

    private static final Pattern BLOCK = Pattern.compile("\\{[%{].*?[%}]\\}", Pattern.DOTALL);
    /** jinja2 reads {@code not x is defined} as {@code not (x is defined)}; Jinjava as {@code (not x) is defined}. */
    private static final Pattern NOT_IS = Pattern.compile("\\bnot\\s+([A-Za-z_][\\w.]*(?:\\[[^\\]]*\\])*)\\s+is\\s+(not\\s+)?([A-Za-z_]\\w*)");
    private static final Pattern NAMESPACE = Pattern.compile("\\bnamespace\\(");
    /** Jinjava's subscripts take no step: {@code xs[::-1]} becomes {@code (xs|reverse)}, the same list reversed. */
    private static final Pattern REVERSED = Pattern.compile("([A-Za-z_][\\w.]*)\\[::-1\\]");

    static String rewrite(String template) {
        Matcher m = BLOCK.matcher(template);
        StringBuilder out = new StringBuilder();
        while (m.find()) m.appendReplacement(out, Matcher.quoteReplacement(rewriteBlock(m.group())));
        m.appendTail(out);
        return out.toString();
    }

    private static String rewriteBlock(String block) {
        String b = NOT_IS.matcher(block).replaceAll(r -> Matcher.quoteReplacement("not (" + r.group(1) + " is " + (r.group(2) == null ? "" : r.group(2)) + r.group(3) + ")"));
        b = REVERSED.matcher(b).replaceAll(r -> Matcher.quoteReplacement("(" + r.group(1) + "|reverse)"));
        return parenthesiseNamespaceArguments(b);
    }

    /**
     * jinja2 reads {@code namespace(i=xs|length - 1)} as {@code i=((xs|length) - 1)}; Jinjava binds the keyword
     * tighter than the arithmetic. Each keyword argument's value is wrapped in parentheses.
     */
    private static String parenthesiseNamespaceArguments(String block) {
        Matcher m = NAMESPACE.matcher(block);
        StringBuilder out = new StringBuilder();
        int last = 0;
        while (m.find(last)) {
            int open = m.end();
            int depth = 1, i = open;
            char quote = 0;
            List<Integer> commas = new ArrayList<>();
            for (; i < block.length() && depth > 0; i++) {
                char c = block.charAt(i);
                if (quote != 0) {
                    if (c == quote && block.charAt(i - 1) != '\\') quote = 0;
                } else if (c == '\'' || c == '"') quote = c;
                else if (c == '(' || c == '[' || c == '{') depth++;
                else if (c == ')' || c == ']' || c == '}') depth--;
                else if (c == ',' && depth == 1) commas.add(i);
            }
            if (depth != 0) break;
            int close = i - 1;
            out.append(block, last, open);
            int start = open;
            commas.add(close);
            for (int k = 0; k < commas.size(); k++) {
                String arg = block.substring(start, commas.get(k));
                int eq = keywordEquals(arg);
                out.append(eq < 0 ? arg : arg.substring(0, eq + 1) + "(" + arg.substring(eq + 1).strip() + ")");
                if (k < commas.size() - 1) out.append(',');
                start = commas.get(k) + 1;
            }
            out.append(')');
            last = close + 1;
        }
        out.append(block.substring(last));
        return out.toString();
    }

    /** Index of the '=' of {@code name=value} (not '==' and not inside quotes), or -1. */
    private static int keywordEquals(String arg) {
        Matcher k = Pattern.compile("^\\s*[A-Za-z_]\\w*\\s*=(?!=)").matcher(arg);
        return k.find() ? k.end() - 1 : -1;
    }
}
