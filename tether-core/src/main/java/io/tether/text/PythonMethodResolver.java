package io.tether.text;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.hubspot.jinjava.el.ext.JinjavaBeanELResolver;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.MethodNotFoundException;

/**
 * Python's string methods on Java strings ({@code startswith}, {@code strip}, {@code split}, ...) and dict methods
 * on maps, for templates written against jinja2. Strings expose nothing else: no Java method of String is callable
 * from a template.
 */
final class PythonMethodResolver extends JinjavaBeanELResolver {
    private static final Set<String> MAP_METHODS = Set.of("items", "keys", "values", "get");

    PythonMethodResolver() {
        super(true);
    }

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (base instanceof String s) {
            Object r = stringMethod(s, String.valueOf(method), params == null ? new Object[0] : params);
            context.setPropertyResolved(true);
            return r;
        }
        if (base instanceof Map<?, ?> m && MAP_METHODS.contains(String.valueOf(method))) {
            context.setPropertyResolved(true);
            return switch (String.valueOf(method)) {
                case "items" -> {
                    List<Object> items = new ArrayList<>();
                    for (var e : m.entrySet()) items.add(List.of(e.getKey(), e.getValue() == null ? "" : e.getValue()));
                    yield m.entrySet();
                }
                case "keys" -> new ArrayList<>(m.keySet());
                case "values" -> new ArrayList<>(m.values());
                default -> m.containsKey(params[0]) ? m.get(params[0]) : params.length > 1 ? params[1] : null;
            };
        }
        return super.invoke(context, base, method, paramTypes, params);
    }

    static Object stringMethod(String s, String name, Object[] a) {
        return switch (name) {
            case "startswith" -> startsOrEnds(s, a[0], true);
            case "endswith" -> startsOrEnds(s, a[0], false);
            case "strip" -> a.length == 0 || a[0] == null ? stripSpace(stripSpace(s, true), false) : stripChars(stripChars(s, str(a[0]), true), str(a[0]), false);
            case "lstrip" -> a.length == 0 || a[0] == null ? stripSpace(s, true) : stripChars(s, str(a[0]), true);
            case "rstrip" -> a.length == 0 || a[0] == null ? stripSpace(s, false) : stripChars(s, str(a[0]), false);
            case "upper" -> s.toUpperCase(java.util.Locale.ROOT);
            case "lower" -> s.toLowerCase(java.util.Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT) + s.substring(1).toLowerCase(java.util.Locale.ROOT);
            case "replace" -> a.length > 2 ? replaceCount(s, str(a[0]), str(a[1]), ((Number) a[2]).intValue()) : s.replace(str(a[0]), str(a[1]));
            case "split" -> split(s, a.length == 0 ? null : (String) a[0], a.length > 1 ? ((Number) a[1]).intValue() : -1);
            case "rsplit" -> split(s, a.length == 0 ? null : (String) a[0], -1);
            case "find" -> s.indexOf(str(a[0]));
            case "count" -> count(s, str(a[0]));
            case "join" -> join(s, a[0]);
            case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isspace" -> !s.isEmpty() && s.chars().allMatch(Character::isWhitespace);
            case "format" -> s;
            default -> throw new MethodNotFoundException("str has no method '" + name + "' in chat templates");
        };
    }

    private static String str(Object o) {
        return o == null ? "" : o.toString();
    }

    private static boolean startsOrEnds(String s, Object prefix, boolean start) {
        if (prefix instanceof List<?> options) {
            for (Object o : options) if (start ? s.startsWith(str(o)) : s.endsWith(str(o))) return true;
            return false;
        }
        return start ? s.startsWith(str(prefix)) : s.endsWith(str(prefix));
    }

    private static String stripChars(String s, String chars, boolean leading) {
        int b = 0, e = s.length();
        if (leading) while (b < e && chars.indexOf(s.charAt(b)) >= 0) b++;
        else while (e > b && chars.indexOf(s.charAt(e - 1)) >= 0) e--;
        return s.substring(b, e);
    }

    /**
     * Python's whitespace ({@code str.isspace}): Java's {@code isWhitespace} leaves out the no-break spaces and
     * U+0085, which Python's strip() and split() remove, so data holding them would render differently.
     */
    static boolean isPythonSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    private static String stripSpace(String s, boolean leading) {
        int b = 0, e = s.length();
        if (leading) while (b < e && isPythonSpace(s.charAt(b))) b++;
        else while (e > b && isPythonSpace(s.charAt(e - 1))) e--;
        return s.substring(b, e);
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder();
        boolean prevCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            out.append(prevCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            prevCased = Character.isLetter(c);
        }
        return out.toString();
    }

    private static String replaceCount(String s, String from, String to, int count) {
        if (count < 0) return s.replace(from, to);
        StringBuilder out = new StringBuilder();
        int i = 0, done = 0;
        while (done < count) {
            int j = s.indexOf(from, i);
            if (j < 0) break;
            out.append(s, i, j).append(to);
            i = j + from.length();
            done++;
        }
        return out.append(s.substring(i)).toString();
    }

    /** Python's split: no separator splits on runs of whitespace and drops empty ends. */
    static List<String> split(String s, String sep, int max) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            while (i < s.length()) {
                while (i < s.length() && isPythonSpace(s.charAt(i))) i++;
                int j = i;
                while (j < s.length() && !isPythonSpace(s.charAt(j))) j++;
                if (j > i) out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        int i = 0;
        while (max < 0 || out.size() < max) {
            int j = s.indexOf(sep, i);
            if (j < 0) break;
            out.add(s.substring(i, j));
            i = j + sep.length();
        }
        out.add(s.substring(i));
        return out;
    }

    private static int count(String s, String sub) {
        if (sub.isEmpty()) return s.length() + 1;
        int n = 0;
        for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) n++;
        return n;
    }

    private static String join(String sep, Object items) {
        List<String> parts = new ArrayList<>();
        if (items instanceof Iterable<?> it) for (Object o : it) parts.add(str(o));
        return String.join(sep, parts);
    }
}
