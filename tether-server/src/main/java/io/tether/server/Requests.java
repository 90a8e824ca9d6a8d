package io.tether.server;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.text.ChatTemplate;
import io.tether.text.ChatTemplateException;
import io.tether.text.Tokenizer;

/**
 * Parses and checks an OpenAI request body strictly: unknown fields, wrong types and values out of range are
 * refused with a 400 naming the parameter. Supported, as OpenAI defines them: temperature (0..2, default 1), top_p
 * (default 1), max_tokens / max_completion_tokens, stop (a string or up to 4), seed, n, logprobs (chat: boolean
 * plus top_logprobs 0..20; completions: an integer 0..5), stream with stream_options.include_usage, user (ignored).
 * Known OpenAI parameters Tether does not implement (penalties, logit_bias, tools, response formats other than
 * text, echo, suffix, best_of above n, ...) are accepted only at their neutral value and refused otherwise.
 */
final class Requests {
    private Requests() {}

    static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    static final int MAX_STOP = 4, MAX_STOP_CHARS = 256, MAX_TOP_LOGPROBS_CHAT = 20, MAX_LOGPROBS_COMPLETION = 5, MAX_N = 16;

    /** A checked request: the prompt's token ids and how to sample each of its n choices. */
    record Parsed(boolean chat, long[] prompt, int n, int maxTokens, double temperature, double topP, long seed,
                  List<String> stop, int topLogprobs, boolean stream, boolean includeUsage) {}

    /** What parsing needs to know about the served model. */
    record Context(String modelId, Tokenizer tokenizer, ChatTemplate template, int positions, int maxTokensLimit, int maxBatch) {}

    private static final Set<String> COMMON = Set.of("model", "stream", "stream_options", "temperature", "top_p", "max_tokens",
            "stop", "seed", "n", "logprobs", "user", "frequency_penalty", "presence_penalty", "logit_bias");
    private static final Set<String> CHAT = Set.of("messages", "top_logprobs", "max_completion_tokens", "response_format", "tools",
            "tool_choice", "functions", "function_call", "parallel_tool_calls", "store", "metadata", "service_tier",
            "reasoning_effort", "modalities", "audio", "prediction", "web_search_options");
    private static final Set<String> COMPLETION = Set.of("prompt", "echo", "suffix", "best_of");

    static JsonNode readBody(byte[] body) {
        if (body.length == 0) throw ApiError.invalid(null, "The request body is empty; expected a JSON object.");
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            // The parser's own first line says where; its location suffix (with a source excerpt) is left out.
            throw ApiError.invalid(null, "We could not parse the JSON body of your request: " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw ApiError.invalid(null, "We could not read the body of your request.");
        }
        if (root == null || !root.isObject()) throw ApiError.invalid(null, "The request body must be a JSON object.");
        return root;
    }

    static Parsed chat(JsonNode body, Context ctx) {
        checkFields(body, true);
        checkModel(body, ctx);
        checkUnsupported(body, true);
        JsonNode messages = body.get("messages");
        if (messages == null || messages.isNull()) throw ApiError.invalid("messages", "Missing required parameter: 'messages'.");
        if (!messages.isArray()) throw ApiError.invalid("messages", "Invalid type for 'messages': expected an array.");
        if (messages.isEmpty()) throw ApiError.invalid("messages", "'messages' must contain at least one message.");
        List<Map<String, Object>> list = new ArrayList<>();
        long chars = 0;
        for (int i = 0; i < messages.size(); i++) {
            list.add(message(messages.get(i), "messages[" + i + "]"));
            chars += ((String) list.get(i).get("content")).length();
        }
        // Far more characters than the context has positions cannot fit: refused before rendering and tokenizing.
        if (chars > 64L * ctx.positions()) throw contextExceeded(-1, ctx, true);
        if (ctx.template() == null)
            throw ApiError.invalid("messages", "This model has no chat template (tokenizer_config.json chat_template); use /v1/completions or serve it with --chat-template.");
        String rendered;
        try {
            synchronized (ctx.template()) {   // one render at a time: the template engine is not documented as thread-safe
                rendered = ctx.template().render(list, true);
            }
        } catch (ChatTemplateException e) {
            throw ApiError.invalid("messages", "The chat template refused the messages: " + e.getMessage());
        }
        long[] ids = ctx.tokenizer().encode(rendered, false);   // the template writes BOS itself
        int maxTokens = maxTokens(body, ctx, true);
        boolean logprobs = bool(body, "logprobs", false);
        int top = integer(body, "top_logprobs", -1);
        if (top != -1 && (top < 0 || top > MAX_TOP_LOGPROBS_CHAT))
            throw ApiError.invalid("top_logprobs", "Invalid 'top_logprobs': must be between 0 and " + MAX_TOP_LOGPROBS_CHAT + ", got " + top + ".");
        if (top >= 0 && !logprobs) throw ApiError.invalid("top_logprobs", "'top_logprobs' needs 'logprobs' set to true.");
        return common(body, ctx, true, ids, maxTokens, logprobs ? Math.max(top, 0) : -1);
    }

    static Parsed completion(JsonNode body, Context ctx) {
        checkFields(body, false);
        checkModel(body, ctx);
        checkUnsupported(body, false);
        JsonNode p = body.get("prompt");
        long[] ids;
        if (p == null || p.isNull()) throw ApiError.invalid("prompt", "Missing required parameter: 'prompt'.");
        if (p.isTextual()) {
            ids = encodeText(p.asText(), ctx);
        } else if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            ids = encodeText(p.get(0).asText(), ctx);
        } else if (p.isArray() && !p.isEmpty() && p.get(0).isIntegralNumber()) {
            ids = new long[p.size()];
            for (int i = 0; i < ids.length; i++) {
                JsonNode t = p.get(i);
                if (!t.isIntegralNumber() || !t.canConvertToLong() || t.asLong() < 0 || t.asLong() >= ctx.tokenizer().vocabSize())
                    throw ApiError.invalid("prompt", "Invalid 'prompt[" + i + "]': expected a token id in [0, " + ctx.tokenizer().vocabSize() + ").");
                ids[i] = t.asLong();
            }
        } else if (p.isArray() && p.size() > 1) {
            throw ApiError.invalid("prompt", "Only one prompt per request is supported (a string, or an array of token ids).");
        } else {
            throw ApiError.invalid("prompt", "Invalid type for 'prompt': expected a string or an array of token ids.");
        }
        if (ids.length == 0) throw ApiError.invalid("prompt", "The prompt is empty.");
        int maxTokens = maxTokens(body, ctx, false);
        JsonNode lp = body.get("logprobs");
        int top = -1;
        if (lp != null && !lp.isNull()) {
            if (!lp.isIntegralNumber()) throw ApiError.invalid("logprobs", "Invalid type for 'logprobs': expected an integer.");
            top = lp.asInt();
            if (top < 0 || top > MAX_LOGPROBS_COMPLETION)
                throw ApiError.invalid("logprobs", "Invalid 'logprobs': must be between 0 and " + MAX_LOGPROBS_COMPLETION + ", got " + lp.asText() + ".");
        }
        return common(body, ctx, false, ids, maxTokens, top);
    }

    private static long[] encodeText(String text, Context ctx) {
        // A prompt longer than the context in characters cannot fit in tokens either (a token is >= 1 char):
        // refused before the tokenizer spends time on it.
        if (text.length() > 64L * ctx.positions()) throw contextExceeded(-1, ctx, false);
        return ctx.tokenizer().encode(text, true);
    }

    private static Parsed common(JsonNode body, Context ctx, boolean chat, long[] ids, int maxTokens, int topLogprobs) {
        if (ids.length >= ctx.positions()) throw contextExceeded(ids.length, ctx, chat);
        double temperature = number(body, "temperature", 1.0);
        if (temperature < 0 || temperature > 2) throw ApiError.invalid("temperature", "Invalid 'temperature': must be between 0 and 2, got " + temperature + ".");
        double topP = number(body, "top_p", 1.0);
        if (!(topP > 0 && topP <= 1)) throw ApiError.invalid("top_p", "Invalid 'top_p': must be in (0, 1], got " + topP + ".");
        int n = integer(body, "n", 1);
        if (n < 1 || n > Math.min(MAX_N, ctx.maxBatch()))
            throw ApiError.invalid("n", "Invalid 'n': must be between 1 and " + Math.min(MAX_N, ctx.maxBatch()) + ", got " + n + ".");
        JsonNode s = body.get("seed");
        long seed;
        if (s == null || s.isNull()) seed = ThreadLocalRandom.current().nextLong();
        else if (s.isIntegralNumber() && s.canConvertToLong()) seed = s.asLong();
        else throw ApiError.invalid("seed", "Invalid type for 'seed': expected an integer.");
        List<String> stop = stop(body.get("stop"));
        boolean stream = bool(body, "stream", false);
        boolean includeUsage = false;
        JsonNode so = body.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!stream) throw ApiError.invalid("stream_options", "'stream_options' is only allowed when 'stream' is true.");
            if (!so.isObject()) throw ApiError.invalid("stream_options", "Invalid type for 'stream_options': expected an object.");
            for (Iterator<String> it = so.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (!f.equals("include_usage")) throw ApiError.invalid("stream_options." + f, "Unrecognized request argument supplied: stream_options." + f);
            }
            includeUsage = bool(so, "include_usage", false, "stream_options.include_usage");
        }
        int budget = Math.min(maxTokens, ctx.positions() - ids.length);
        return new Parsed(chat, ids, n, budget, temperature, topP, seed, stop, topLogprobs, stream, includeUsage);
    }

    static ApiError contextExceeded(int tokens, Context ctx, boolean chat) {
        String what = tokens < 0 ? "The prompt is far longer" : "The prompt has " + tokens + " tokens, which is more";
        return ApiError.invalid(chat ? "messages" : "prompt",
                what + " than this model's context of " + ctx.positions() + " tokens allows (with at least one generated token).",
                "context_length_exceeded");
    }

    private static Map<String, Object> message(JsonNode m, String where) {
        if (!m.isObject()) throw ApiError.invalid(where, "Invalid type for '" + where + "': expected an object.");
        for (Iterator<String> it = m.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!f.equals("role") && !f.equals("content"))
                throw ApiError.invalid(where + "." + f, "Unrecognized or unsupported message field: '" + where + "." + f + "'.");
        }
        JsonNode role = m.get("role");
        if (role == null || !role.isTextual()) throw ApiError.invalid(where + ".role", "Missing or invalid '" + where + ".role': expected a string.");
        String r = role.asText();
        if (r.equals("developer")) r = "system";   // OpenAI's newer name for system instructions
        if (!Set.of("system", "user", "assistant").contains(r))
            throw ApiError.invalid(where + ".role", "Invalid '" + where + ".role': '" + role.asText() + "' (supported: system, developer, user, assistant).");
        JsonNode c = m.get("content");
        String content;
        if (c == null || c.isNull()) {
            throw ApiError.invalid(where + ".content", "Missing required parameter: '" + where + ".content'.");
        } else if (c.isTextual()) {
            content = c.asText();
        } else if (c.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < c.size(); i++) {
                JsonNode part = c.get(i);
                String pw = where + ".content[" + i + "]";
                if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual() || part.size() != 2)
                    throw ApiError.invalid(pw, "Invalid '" + pw + "': only {\"type\": \"text\", \"text\": ...} parts are supported.");
                sb.append(part.get("text").asText());
            }
            content = sb.toString();
        } else {
            throw ApiError.invalid(where + ".content", "Invalid type for '" + where + ".content': expected a string or an array of text parts.");
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("role", r);
        out.put("content", content);
        return out;
    }

    private static void checkFields(JsonNode body, boolean chat) {
        for (Iterator<String> it = body.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (COMMON.contains(f) || (chat ? CHAT : COMPLETION).contains(f)) continue;
            throw ApiError.invalid(f, "Unrecognized request argument supplied: " + f);
        }
    }

    private static void checkModel(JsonNode body, Context ctx) {
        JsonNode m = body.get("model");
        if (m == null || m.isNull()) throw ApiError.invalid("model", "Missing required parameter: 'model'.");
        if (!m.isTextual()) throw ApiError.invalid("model", "Invalid type for 'model': expected a string.");
        if (!m.asText().equals(ctx.modelId()))
            throw new ApiError(404, "The model '" + m.asText() + "' does not exist; this server serves '" + ctx.modelId() + "'.",
                    "invalid_request_error", "model", "model_not_found");
    }

    /** Known OpenAI parameters Tether does not implement: only their neutral values pass. */
    private static void checkUnsupported(JsonNode body, boolean chat) {
        for (String f : List.of("frequency_penalty", "presence_penalty")) {
            JsonNode v = body.get(f);
            if (v != null && !v.isNull() && !(v.isNumber() && v.asDouble() == 0))
                throw unsupported(f);
        }
        JsonNode bias = body.get("logit_bias");
        if (bias != null && !bias.isNull() && !(bias.isObject() && bias.isEmpty())) throw unsupported("logit_bias");
        JsonNode user = body.get("user");
        if (user != null && !user.isNull() && !user.isTextual()) throw ApiError.invalid("user", "Invalid type for 'user': expected a string.");
        if (chat) {
            JsonNode rf = body.get("response_format");
            if (rf != null && !rf.isNull() && !(rf.isObject() && rf.size() == 1 && "text".equals(rf.path("type").asText())))
                throw unsupported("response_format");
            JsonNode store = body.get("store");
            if (store != null && !store.isNull() && !(store.isBoolean() && !store.asBoolean())) throw unsupported("store");
            for (String f : List.of("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls", "metadata",
                    "service_tier", "reasoning_effort", "modalities", "audio", "prediction", "web_search_options")) {
                JsonNode v = body.get(f);
                if (v != null && !v.isNull()) throw unsupported(f);
            }
        } else {
            JsonNode echo = body.get("echo");
            if (echo != null && !echo.isNull() && !(echo.isBoolean() && !echo.asBoolean())) throw unsupported("echo");
            JsonNode suffix = body.get("suffix");
            if (suffix != null && !suffix.isNull()) throw unsupported("suffix");
            JsonNode bestOf = body.get("best_of");
            if (bestOf != null && !bestOf.isNull()) {
                if (!bestOf.isIntegralNumber()) throw ApiError.invalid("best_of", "Invalid type for 'best_of': expected an integer.");
                if (bestOf.asInt() != integer(body, "n", 1)) throw unsupported("best_of");
            }
        }
    }

    private static ApiError unsupported(String f) {
        return ApiError.invalid(f, "'" + f + "' is not supported by this server (only its default value is accepted).", "unsupported_parameter");
    }

    private static int maxTokens(JsonNode body, Context ctx, boolean chat) {
        String name = chat && body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        if (chat && body.has("max_completion_tokens") && body.has("max_tokens") && !body.get("max_tokens").isNull())
            throw ApiError.invalid("max_tokens", "Give 'max_tokens' or 'max_completion_tokens', not both.");
        // OpenAI's defaults: 16 for completions; for chat, as much as fits (here: the server's limit).
        int v = integer(body, name, chat ? ctx.maxTokensLimit() : Math.min(16, ctx.maxTokensLimit()));
        if (v < 1) throw ApiError.invalid(name, "Invalid '" + name + "': must be >= 1, got " + v + ".");
        if (v > ctx.maxTokensLimit())
            throw ApiError.invalid(name, "Invalid '" + name + "': " + v + " is more than this server allows (" + ctx.maxTokensLimit() + ").");
        return v;
    }

    private static List<String> stop(JsonNode s) {
        List<String> out = new ArrayList<>();
        if (s == null || s.isNull()) return out;
        if (s.isTextual()) out.add(s.asText());
        else if (s.isArray()) {
            if (s.size() > MAX_STOP) throw ApiError.invalid("stop", "Invalid 'stop': at most " + MAX_STOP + " sequences, got " + s.size() + ".");
            for (JsonNode x : s) {
                if (!x.isTextual()) throw ApiError.invalid("stop", "Invalid type for 'stop': expected a string or an array of strings.");
                out.add(x.asText());
            }
        } else throw ApiError.invalid("stop", "Invalid type for 'stop': expected a string or an array of strings.");
        for (String x : out) {
            if (x.isEmpty()) throw ApiError.invalid("stop", "Invalid 'stop': sequences must not be empty.");
            if (x.length() > MAX_STOP_CHARS) throw ApiError.invalid("stop", "Invalid 'stop': sequences are limited to " + MAX_STOP_CHARS + " characters.");
        }
        return out;
    }

    private static boolean bool(JsonNode body, String name, boolean dflt) {
        return bool(body, name, dflt, name);
    }

    private static boolean bool(JsonNode body, String name, boolean dflt, String param) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw ApiError.invalid(param, "Invalid type for '" + param + "': expected a boolean, got " + kind(v) + ".");
        return v.asBoolean();
    }

    private static int integer(JsonNode body, String name, int dflt) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isIntegralNumber()) throw ApiError.invalid(name, "Invalid type for '" + name + "': expected an integer, got " + kind(v) + ".");
        if (!v.canConvertToInt()) throw ApiError.invalid(name, "Invalid '" + name + "': " + v.asText() + " is out of range.");
        return v.asInt();
    }

    private static double number(JsonNode body, String name, double dflt) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber()) throw ApiError.invalid(name, "Invalid type for '" + name + "': expected a number, got " + kind(v) + ".");
        return v.asDouble();
    }

    private static String kind(JsonNode v) {
        if (v.isTextual()) return "a string";
        if (v.isBoolean()) return "a boolean";
        if (v.isArray()) return "an array";
        if (v.isObject()) return "an object";
        if (v.isNumber()) return "a number";
        return v.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
    }
}
