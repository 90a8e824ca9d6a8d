package io.tether.text;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

/**
 * A Hugging Face chat template ({@code chat_template} in tokenizer_config.json), rendered with Jinjava the way
 * transformers renders it with jinja2: {@code trim_blocks} and {@code lstrip_blocks}, loop controls,
 * {@code raise_exception}, {@code strftime_now}, the special tokens as variables, Python string and dict methods,
 * {@code tojson} with {@code json.dumps} spacing, Python printing of True/False/None, and the
 * {@code {% generation %}} tag whose output spans mark the tokens of an assistant-only loss.
 *
 * <p>Values are data: message contents, tool definitions and special tokens are printed as written, as jinja2
 * prints them, however much template syntax they hold (Jinjava's nested interpretation, which renders a printed
 * value again when it contains {@code {{} or {@code {%}, is off; nothing is loaded by {@code include}/{@code import};
 * the {@code {% generation %}} marks are unique to each render, so no data can forge or erase them).
 *
 * <p>Sandboxed: only whitelisted methods of strings, lists and maps can be called; output, strings, lists,
 * ranges, the nodes rendered and the range items produced are bounded, so a runaway template stops after a
 * bounded amount of work; a render that still runs too long is stopped on its worker thread.
 */
public final class ChatTemplate {
    /** Output, string and loop bounds; generous for real conversations, fatal for runaway templates. */
    static final long MAX_OUTPUT = 4L << 20;
    static final int RANGE_LIMIT = 100_000;
    /**
     * Work bounds per render: template nodes rendered (a real template spends tens per message, so this allows
     * some 20,000 messages), and items produced by range() (loops over ranges).
     */
    static final long MAX_STEPS = 1_000_000;
    static final long MAX_RANGE_ITEMS = 1_000_000;
    static final long TIMEOUT_MS = 5_000;
    private static final ThreadLocal<RenderState> STATE = new ThreadLocal<>();

    private final String source;
    private final String template;
    private final Map<String, String> specialTokens;
    private final long timeoutMs, maxSteps;

    public ChatTemplate(String template, Map<String, String> specialTokens, String source) {
        this.template = template;
        this.specialTokens = Map.copyOf(specialTokens);
        this.source = source;
        this.timeoutMs = TIMEOUT_MS;
        this.maxSteps = MAX_STEPS;
    }

    private ChatTemplate(ChatTemplate t, long timeoutMs, long maxSteps) {
        this.template = t.template;
        this.specialTokens = t.specialTokens;
        this.source = t.source;
        this.timeoutMs = timeoutMs;
        this.maxSteps = maxSteps;
    }

    /** The same template with another render deadline (the safety net behind the work bounds); for tests. */
    ChatTemplate withTimeout(long ms) {
        return new ChatTemplate(this, ms, maxSteps);
    }

    /** The same template with another bound on template steps; for tests. */
    ChatTemplate withMaxSteps(long steps) {
        return new ChatTemplate(this, timeoutMs, steps);
    }

    /**
     * What one render has used of its bounds, and its generation marks: two strings with a random part, so that
     * no message can contain them (a fixed character could be in the data, and would be cut out of it).
     */
    static final class RenderState {
        final long timeoutMs, deadline, maxSteps;
        final String generationStart, generationEnd;
        long steps, rangeItems;

        RenderState(long timeoutMs, long maxSteps) {
            this.timeoutMs = timeoutMs;
            this.maxSteps = maxSteps;
            deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            String nonce = Long.toHexString(java.util.concurrent.ThreadLocalRandom.current().nextLong() | Long.MIN_VALUE);
            generationStart = "\uE000" + nonce + "\uE000";
            generationEnd = "\uE001" + nonce + "\uE001";
        }

        static RenderState current() {
            RenderState s = STATE.get();
            if (s == null) throw new IllegalStateException("not inside a chat template render");
            return s;
        }
    }

    /** The rendered text and the [start, end) character spans produced inside {@code {% generation %}} blocks. */
    public record Rendered(String text, List<int[]> generationSpans) {}

    /**
     * Reads {@code chat_template} from a tokenizer_config.json (a string, or HF's named list, where "default" is
     * used unless {@code name} asks for another) with its special tokens.
     */
    public static ChatTemplate fromTokenizerConfig(Path file, String name) {
        JsonNode config;
        try {
            config = new ObjectMapper().readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new ChatTemplateException(file + ": file not found");
        } catch (IOException e) {
            throw new ChatTemplateException(file + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        JsonNode t = config == null ? null : config.get("chat_template");
        String template = null;
        if (t != null && t.isTextual()) {
            template = t.asText();
        } else if (t != null && t.isArray()) {
            String wanted = name == null ? "default" : name;
            for (JsonNode n : t) if (wanted.equals(n.path("name").asText())) template = n.path("template").asText();
            if (template == null) throw new ChatTemplateException(file + ": key 'chat_template': no template named '" + wanted + "'");
        }
        if (template == null) {
            Path jinja = file.resolveSibling("chat_template.jinja");
            if (Files.isRegularFile(jinja)) {
                try {
                    template = Files.readString(jinja);
                } catch (IOException e) {
                    throw new ChatTemplateException(jinja + ": cannot read: " + e.getMessage());
                }
            } else {
                throw new ChatTemplateException(file + ": key 'chat_template': missing (this tokenizer has no chat template)");
            }
        }
        Map<String, String> specials = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : config.properties()) {
            if (!e.getKey().endsWith("_token")) continue;
            JsonNode v = e.getValue();
            if (v.isTextual()) specials.put(e.getKey(), v.asText());
            else if (v.isObject() && v.has("content")) specials.put(e.getKey(), v.get("content").asText());
        }
        return new ChatTemplate(template, specials, file.toString());
    }

    public String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of()).text();
    }

    /**
     * Renders {@code messages} (each a map with at least role and content). {@code extra} holds further template
     * variables: {@code tools}, {@code documents}, {@code enable_thinking}, ...
     */
    public Rendered render(List<Map<String, Object>> messages, boolean addGenerationPrompt, Map<String, Object> extra) {
        Map<String, Object> bindings = new LinkedHashMap<>();
        bindings.putAll(specialTokens);
        bindings.putAll(PythonValues.wrap(extra));
        bindings.put("messages", PythonValues.wrap(messages));
        bindings.put("add_generation_prompt", addGenerationPrompt);
        ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread th = new Thread(r, "chat-template");
            th.setDaemon(true);
            return th;
        });
        try {
            String compatible = JinjaCompat.rewrite(template);
            RenderState state = new RenderState(timeoutMs, maxSteps);
            Future<RenderResult> f = worker.submit(() -> {
                STATE.set(state);
                return jinjava().renderForResult(compatible, bindings);
            });
            RenderResult result;
            try {
                result = f.get(timeoutMs, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                f.cancel(true);
                throw new ChatTemplateException(source + ": rendering took longer than " + timeoutMs + " ms and was stopped");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ChatTemplateException(source + ": interrupted");
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof ChatTemplateException cte) throw cte;
                if (c instanceof OutOfMemoryError) throw new ChatTemplateException(source + ": the template allocated without bound and was stopped");
                throw new ChatTemplateException(source + ": " + c.getMessage(), c);
            }
            // Every error counts, warnings included: Jinjava reports a clipped range() or an unknown filter as a
            // warning and renders on, where jinja2 would have raised.
            for (TemplateError err : result.getErrors()) {
                Throwable raised = err.getException();
                while (raised != null && !(raised instanceof RaisedException) && !(raised instanceof SandboxLimit)) raised = raised.getCause();
                if (raised instanceof SandboxLimit) throw new ChatTemplateException(source + ": " + raised.getMessage());
                if (raised != null) throw new ChatTemplateException(raised.getMessage());
                throw new ChatTemplateException(source + (err.getLineno() > 0 ? ":" + err.getLineno() : "") + ": " + err.getMessage());
            }
            return extractGenerationSpans(result.getOutput(), state.generationStart, state.generationEnd);
        } finally {
            worker.shutdownNow();
        }
    }

    static Rendered extractGenerationSpans(String raw, String startMark, String endMark) {
        StringBuilder out = new StringBuilder(raw.length());
        List<int[]> spans = new ArrayList<>();
        int start = -1;
        for (int i = 0; i < raw.length(); ) {
            if (raw.startsWith(startMark, i)) {
                start = out.length();
                i += startMark.length();
            } else if (raw.startsWith(endMark, i)) {
                if (start >= 0 && out.length() > start) spans.add(new int[] {start, out.length()});
                start = -1;
                i += endMark.length();
            } else out.append(raw.charAt(i++));
        }
        return new Rendered(out.toString(), spans);
    }

    // withNodePreProcessor is deprecated in Jinjava 2.8 without a replacement; it is the one hook that runs before
    // every node, which the render deadline needs.
    @SuppressWarnings("deprecation")
    private static Jinjava jinjava() {
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withMaxOutputSize(MAX_OUTPUT)
                .withMaxStringLength(MAX_OUTPUT)
                .withMaxListSize(RANGE_LIMIT)
                .withMaxMapSize(RANGE_LIMIT)
                .withRangeLimit(RANGE_LIMIT)
                .withMaxRenderDepth(20)
                .withMaxMacroRecursionDepth(20)
                .withEnableRecursiveMacroCalls(true)
                .withFailOnUnknownTokens(false)
                // Jinjava renders a printed value again when it contains '{{' or '{%'; jinja2 prints it as it is.
                // Off, so message contents (and every other value) are data, never template code.
                .withNestedInterpretationEnabled(false)
                // Strings print as they are (Jinjava's printer escapes control characters).
                .withExecutionMode(LiteralOutput.MODE)
                // Jinjava's own 'render' filter parses a value as a template (jinja2 has no such filter).
                .withDisabled(Map.of(com.hubspot.jinjava.interpret.Context.Library.FILTER, java.util.Set.of("render")))
                .withElResolver(resolver())
                // Runs before every node renders: counts the work, and a render past its bound or deadline stops
                // here instead of looping on in a thread nobody waits for.
                .withNodePreProcessor((node, interpreter) -> {
                    RenderState state = RenderState.current();
                    if (++state.steps > state.maxSteps) throw new SandboxLimit("rendering exceeded the sandbox limit of " + state.maxSteps + " template steps");
                    if (Thread.currentThread().isInterrupted() || System.nanoTime() > state.deadline)
                        throw new SandboxLimit("rendering took longer than " + state.timeoutMs + " ms and was stopped");
                })
                .withLegacyOverrides(LegacyOverrides.newBuilder().withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true).withWhitespaceRequiredWithinTokens(false)
                        .withKeepNullableLoopValues(true).withUsePyishObjectMapper(true).withUseTrimmingForNotesAndExpressions(true).build())
                .build();
        Jinjava j = new Jinjava(config);
        // transformers' environment has no loader: include/import/extends find nothing (Jinjava's default reads the
        // class path, and a name could come from the data).
        j.setResourceLocator((name, encoding, interpreter) -> {
            throw new com.hubspot.jinjava.loader.ResourceNotFoundException("no loader for this environment specified (template '" + name + "')");
        });
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "range", ChatTemplate.class, "range", Object.class, Object[].class));
        j.getGlobalContext().registerFilter(new PythonValues.ToJsonFilter());
        j.getGlobalContext().registerFilter(new PythonValues.StripTagsFilter());
        j.getGlobalContext().registerFilter(new PythonValues.TrimFilter());
        j.getGlobalContext().registerTag(new GenerationTag());
        return j;
    }

    /** Jinjava's default read-only resolver chain, with Python's methods in place of the plain bean resolver. */
    private static jinjava.javax.el.ELResolver resolver() {
        jinjava.javax.el.CompositeELResolver r = new jinjava.javax.el.CompositeELResolver();
        r.add(new jinjava.javax.el.ArrayELResolver(true));
        r.add(new com.hubspot.jinjava.el.ext.JinjavaListELResolver(true));
        r.add(new com.hubspot.jinjava.el.TypeConvertingMapELResolver(true));
        r.add(new PythonMethodResolver());
        return r;
    }

    /** The error a template raises on purpose; its message is reported as jinja2 reports it. */
    static final class RaisedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RaisedException(String message) {
            super("TemplateError: " + message);
        }
    }

    /** A sandbox bound the template ran into. */
    static final class SandboxLimit extends RuntimeException {
        private static final long serialVersionUID = 1L;

        SandboxLimit(String message) {
            super(message);
        }
    }

    /**
     * Python's range(stop) / range(start, stop[, step]); jinja2's sandbox raises for ranges over its limit, where
     * Jinjava's own range() silently clips them.
     */
    public static List<Long> range(Object first, Object... rest) {
        long start = 0, stop, step = 1;
        if (rest == null || rest.length == 0) {
            stop = ((Number) first).longValue();
        } else {
            start = ((Number) first).longValue();
            stop = ((Number) rest[0]).longValue();
            if (rest.length > 1) step = ((Number) rest[1]).longValue();
        }
        if (step == 0) throw new RaisedException("range() arg 3 must not be zero");
        long n = step > 0 ? Math.max(0, (stop - start + step - 1) / step) : Math.max(0, (start - stop - step - 1) / -step);
        if (n > RANGE_LIMIT) throw new SandboxLimit("range of " + n + " items exceeds the sandbox limit of " + RANGE_LIMIT);
        RenderState state = RenderState.current();
        state.rangeItems += n;
        if (state.rangeItems > MAX_RANGE_ITEMS) throw new SandboxLimit("ranges of " + state.rangeItems + " items in all exceed the sandbox limit of " + MAX_RANGE_ITEMS + " per render");
        List<Long> out = new ArrayList<>((int) n);
        for (long i = 0, v = start; i < n; i++, v += step) out.add(v);
        return out;
    }

    public static Object raiseException(String message) {
        throw new RaisedException(message);
    }

    /** Python's strftime subset that chat templates use (dates in system prompts). */
    public static String strftimeNow(String format) {
        ZonedDateTime now = ZonedDateTime.now();
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char f = format.charAt(++i);
            out.append(switch (f) {
                case 'd' -> String.format("%02d", now.getDayOfMonth());
                case 'm' -> String.format("%02d", now.getMonthValue());
                case 'Y' -> Integer.toString(now.getYear());
                case 'y' -> String.format("%02d", now.getYear() % 100);
                case 'B' -> now.format(DateTimeFormatter.ofPattern("MMMM", Locale.ENGLISH));
                case 'b' -> now.format(DateTimeFormatter.ofPattern("MMM", Locale.ENGLISH));
                case 'A' -> now.format(DateTimeFormatter.ofPattern("EEEE", Locale.ENGLISH));
                case 'a' -> now.format(DateTimeFormatter.ofPattern("EEE", Locale.ENGLISH));
                case 'H' -> String.format("%02d", now.getHour());
                case 'M' -> String.format("%02d", now.getMinute());
                case 'S' -> String.format("%02d", now.getSecond());
                case '%' -> "%";
                default -> "%" + f;
            });
        }
        return out.toString();
    }
}
