package io.tether.text;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.objects.collections.PyList;
import com.hubspot.jinjava.objects.collections.PyMap;

/** Python-flavoured values for templates: lists and dicts as Jinjava's Py types, and json.dumps formatting. */
final class PythonValues {
    private PythonValues() {}

    /** Deep copy into PyMap/PyList so templates can index, slice and call dict/list methods. */
    @SuppressWarnings("unchecked")
    static <T> T wrap(T value) {
        if (value instanceof Map<?, ?> m) {
            Map<String, Object> copy = new LinkedHashMap<>();
            for (var e : m.entrySet()) copy.put(String.valueOf(e.getKey()), wrap(e.getValue()));
            return (T) new PyMap(copy);
        }
        if (value instanceof Collection<?> c) {
            List<Object> copy = new ArrayList<>();
            for (Object o : c) copy.add(wrap(o));
            return (T) new PyList(copy);
        }
        return value;
    }

    /** Python's {@code json.dumps(value, ensure_ascii=False, indent=indent)} (separators ", " and ": "). */
    static String jsonDumps(Object value, Integer indent) {
        StringBuilder out = new StringBuilder();
        dump(value, indent, 0, out);
        return out.toString();
    }

    private static void dump(Object v, Integer indent, int depth, StringBuilder out) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            out.append(d == Math.rint(d) && !Double.isInfinite(d) ? String.format(java.util.Locale.ROOT, "%.1f", d) : Double.toString(d));
        } else if (v instanceof Number n) {
            out.append(n);
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                out.append("{}");
                return;
            }
            out.append('{');
            Iterator<? extends Map.Entry<?, ?>> it = m.entrySet().iterator();
            boolean first = true;
            while (it.hasNext()) {
                var e = it.next();
                if (!first) out.append(indent == null ? ", " : ",");
                first = false;
                newline(indent, depth + 1, out);
                string(String.valueOf(e.getKey()), out);
                out.append(": ");
                dump(e.getValue(), indent, depth + 1, out);
            }
            newline(indent, depth, out);
            out.append('}');
        } else if (v instanceof Collection<?> c) {
            if (c.isEmpty()) {
                out.append("[]");
                return;
            }
            out.append('[');
            boolean first = true;
            for (Object o : c) {
                if (!first) out.append(indent == null ? ", " : ",");
                first = false;
                newline(indent, depth + 1, out);
                dump(o, indent, depth + 1, out);
            }
            newline(indent, depth, out);
            out.append(']');
        } else {
            string(v.toString(), out);
        }
    }

    private static void newline(Integer indent, int depth, StringBuilder out) {
        if (indent == null) return;
        out.append('\n').append(" ".repeat(indent * depth));
    }

    private static void string(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        out.append('"');
    }

    /**
     * jinja2's {@code trim}: Python's {@code str.strip([chars])}. Jinjava's strips every control character as well
     * (commons-lang's trim), and none of the no-break spaces.
     */
    static final class TrimFilter implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return PythonMethodResolver.stringMethod(var == null ? "" : var.toString(), "strip", args.length > 0 ? new Object[] {args[0]} : new Object[0]);
        }
    }

    /**
     * jinja2's {@code striptags} (markupsafe's {@code Markup.striptags}): drops comments, then tags, collapses
     * whitespace and unescapes entities. Jinjava's own filter first renders the value as a template.
     */
    static final class StripTagsFilter implements Filter {
        @Override
        public String getName() {
            return "striptags";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            String value = var == null ? "" : var.toString();
            value = cut(value, "<!--", "-->");
            value = cut(value, "<", ">");
            value = String.join(" ", PythonMethodResolver.split(value, null, -1));
            return jinjava.org.jsoup.parser.Parser.unescapeEntities(value, false);
        }

        /**
         * markupsafe's loop, in one pass: remove the leftmost span from {@code open} to the next {@code close}
         * (which may begin inside {@code open}, as in {@code <!-->}), again and again; an unclosed one ends it.
         * A removal can join the characters around it into a new {@code open}, which is why each one is looked
         * for as characters are appended rather than in the original text.
         */
        private static String cut(String value, String open, String close) {
            StringBuilder out = new StringBuilder(value.length());
            int i = 0;
            while (i < value.length()) {
                out.append(value.charAt(i++));
                int start = out.length() - open.length();
                if (start < 0 || out.indexOf(open, start) != start) continue;
                int end = -1;
                for (int k = 1; k < open.length() && end < 0; k++) {
                    String joined = open.substring(k) + value.substring(i, Math.min(value.length(), i + close.length()));
                    if (joined.startsWith(close)) end = i + Math.max(0, close.length() - (open.length() - k));
                }
                if (end < 0) {
                    int j = value.indexOf(close, i);
                    if (j < 0) return out.append(value, i, value.length()).toString();
                    end = j + close.length();
                }
                out.setLength(start);
                i = end;
            }
            return out.toString();
        }
    }

    /** {@code tojson} as transformers defines it: json.dumps(x, ensure_ascii=False), optional indent. */
    static final class ToJsonFilter implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            Integer indent = null;
            if (args.length > 0 && args[0] != null) indent = Integer.parseInt(args[0].replaceAll("^indent=", "").trim());
            return jsonDumps(var, indent);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Integer indent = null;
            Object k = kwargs.get("indent");
            if (k == null && args.length > 0) k = args[0];
            if (k != null) indent = ((Number) (k instanceof Number ? k : Long.parseLong(k.toString()))).intValue();
            return jsonDumps(var, indent);
        }
    }
}
