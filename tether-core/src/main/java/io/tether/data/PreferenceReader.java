package io.tether.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.PreferencePair.Label;
import io.tether.data.PreferencePair.Verdict;
import io.tether.data.PreferencePair.Vote;
import io.tether.data.PreferenceRecord.Origin;
import io.tether.engine.ConfigException;

/**
 * Reads preference data in the common formats into {@link PreferenceRecord}s, streaming (bounded memory for JSONL
 * and JSON arrays alike). The format is detected from the first record unless given. A record that cannot be read
 * is reported to {@link Problems} with its line and a code, and reading continues.
 */
public final class PreferenceReader {
    private PreferenceReader() {}

    /** The formats, by the name {@code --format} takes. */
    public enum Format {
        /** TRL: {@code prompt}/{@code chosen}/{@code rejected} as text or messages; without {@code prompt}, the shared prefix is the prompt. Also carries {@code prompt_id}, {@code label}, {@code votes}. */
        TRL("trl"),
        /** Anthropic HH-RLHF: {@code chosen}/{@code rejected} transcripts of "\n\nHuman:" and "\n\nAssistant:" turns. */
        HH("hh"),
        /** LLaMA-Factory ShareGPT pairs: {@code conversations} [{from, value}] with {@code chosen} and {@code rejected} messages. */
        SHAREGPT("sharegpt"),
        /** LLaMA-Factory v1: {@code chosen_messages}/{@code rejected_messages}, content as text or typed parts. */
        MESSAGE_PAIRS("message-pairs"),
        /** KTO: {@code messages} (the last is the completion) or {@code prompt}/{@code completion}, with a boolean {@code label}. */
        KTO("kto"),
        /** StackExchange paired: {@code question}, {@code response_j} (preferred), {@code response_k}. */
        STACK_EXCHANGE("stack-exchange"),
        /** UltraFeedback-style: {@code prompt} (or {@code instruction}) and {@code completions} [{response, score, model}]. */
        RATED("rated"),
        /** Prompts alone: {@code prompt}, {@code question}, {@code messages} or {@code conversations}. */
        PROMPTS("prompts"),
        /** Demonstrations (SFT): TRL's {@code text}, {@code prompt}/{@code completion} (text or messages) or {@code messages} (the last is the completion). */
        COMPLETIONS("completions");

        public final String cliName;

        Format(String cliName) {
            this.cliName = cliName;
        }

        public static Format parse(String name) {
            for (Format f : values()) if (f.cliName.equals(name)) return f;
            throw new ConfigException("unknown format '" + name + "'; expected one of " + names());
        }

        public static String names() {
            return String.join(", ", java.util.Arrays.stream(values()).map(f -> f.cliName).toList());
        }
    }

    /** Receives every readable record with the JSON object it came from (split copies that object as is). */
    @FunctionalInterface
    public interface Sink {
        void accept(PreferenceRecord record, ObjectNode raw);
    }

    /** A record that cannot be read: a problem code and message for the problem list. */
    static final class BadRecord extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final String code;
        /** The top-level field at fault (its value's column is reported), or null. */
        final String field;

        BadRecord(String code, String message) {
            this(code, null, message);
        }

        BadRecord(String code, String field, String message) {
            super(message, null, false, false);
            this.code = code;
            this.field = field;
        }
    }

    /** Detects the format from the first record's keys. */
    public static Format detect(Path file) {
        ObjectNode[] first = new ObjectNode[1];
        Problems unreadable = new Problems(Long.MAX_VALUE);
        try {
            RawRecords.forEach(file, unreadable, (line, column, index, text, o) -> {
                first[0] = o;
                throw new FoundFirst();
            });
        } catch (FoundFirst done) {
            // the first record is all detection needs
        }
        if (first[0] == null) {
            // Say why: a file of only malformed lines should name the first one, not look empty.
            if (!unreadable.details().isEmpty()) throw new DataFormatException(file, 0, "no readable record to detect the format from; first problem: "
                    + unreadable.details().get(0));
            throw new DataFormatException(file, 0, "no records to detect the format from");
        }
        Format f = detect(first[0]);
        if (f == null) {
            List<String> keys = new ArrayList<>();
            first[0].fieldNames().forEachRemaining(keys::add);
            throw new DataFormatException(file, 0, "cannot tell the format from the keys " + keys + "; pass --format (" + Format.names() + ")");
        }
        return f;
    }

    private static final class FoundFirst extends RuntimeException {
        private static final long serialVersionUID = 1L;

        FoundFirst() {
            super(null, null, false, false);
        }
    }

    static Format detect(ObjectNode o) {
        if (o.has("chosen_messages")) return Format.MESSAGE_PAIRS;
        if (o.has("conversations") && o.has("chosen")) return Format.SHAREGPT;
        if (o.has("response_j")) return Format.STACK_EXCHANGE;
        if (o.path("completions").isArray()) return Format.RATED;
        if (o.has("chosen") && o.has("rejected")) {
            boolean transcript = !o.has("prompt") && o.get("chosen").isTextual() && o.get("chosen").asText().contains("\n\nHuman:");
            return transcript ? Format.HH : Format.TRL;
        }
        if (o.path("label").isBoolean()) return Format.KTO;
        if (o.has("completion") || o.path("text").isTextual()) return Format.COMPLETIONS;
        if (o.has("prompt") || o.has("question") || o.has("messages") || o.has("conversations")) return Format.PROMPTS;
        return null;
    }

    /** Reads {@code file} ({@code format} null: detected); returns how many records reached {@code sink}. */
    public static long read(Path file, Format format, Problems problems, Sink sink) {
        Format f = format != null ? format : detect(file);
        long[] count = {0};
        RawRecords.forEach(file, problems, (line, column, index, text, o) -> {
            Origin at = new Origin(file, line, index);
            PreferenceRecord r;
            try {
                r = parse(f, o, at);
            } catch (BadRecord bad) {
                long col = bad.field != null && text != null ? columnOf(text, bad.field) : 0;
                problems.error(at, col > 0 ? col : column, bad.code, bad.getMessage());
                return;
            }
            count[0]++;
            sink.accept(r, o);
        });
        return count[0];
    }

    /** The 1-based column where top-level {@code field}'s value starts in a JSONL line, or 0. */
    static long columnOf(String text, String field) {
        try (var p = RawRecords.JSON.getFactory().createParser(text)) {
            int depth = 0;
            for (var t = p.nextToken(); t != null; t = p.nextToken()) {
                if (t.isStructStart()) depth++;
                else if (t.isStructEnd()) depth--;
                else if (depth == 1 && t == com.fasterxml.jackson.core.JsonToken.FIELD_NAME && p.currentName().equals(field)) {
                    p.nextToken();
                    return p.currentTokenLocation().getColumnNr();
                }
            }
        } catch (java.io.IOException e) {
            return 0;   // the line parsed once already; a second failure only loses the column
        }
        return 0;
    }

    static PreferenceRecord parse(Format f, ObjectNode o, Origin at) {
        return switch (f) {
            case TRL -> trl(o, at);
            case HH -> hh(o, at);
            case SHAREGPT -> shareGpt(o, at);
            case MESSAGE_PAIRS -> messagePairs(o, at);
            case KTO -> kto(o, at);
            case STACK_EXCHANGE -> pair(o, at, promptId(o, "qid"), Turns.text(text(o, "question")), Turns.text(text(o, "response_j")), Turns.text(text(o, "response_k")));
            case RATED -> rated(o, at);
            case PROMPTS -> prompts(o, at);
            case COMPLETIONS -> demonstration(o, at);
        };
    }

    // ---- TRL and the fields every pair format may carry ----

    private static PreferencePair trl(ObjectNode o, Origin at) {
        require(o, "chosen");
        require(o, "rejected");
        if (o.has("prompt")) return pair(o, at, promptId(o, "id"), turns(o, "prompt"), turns(o, "chosen"), turns(o, "rejected"));
        Turns chosen = turns(o, "chosen"), rejected = turns(o, "rejected");
        if (chosen.isChat() != rejected.isChat()) throw new BadRecord("wrong-type", "chosen", "\'chosen\' and 'rejected' must both be text or both be messages");
        Turns[] split = chosen.isChat() ? splitMessages(chosen.messages(), rejected.messages()) : splitText(chosen.text(), rejected.text());
        return pair(o, at, promptId(o, "id"), split[0], split[1], split[2]);
    }

    /**
     * A pair from its parts plus the optional fields: {@code label} ("chosen", "rejected" = swap, "tie"),
     * {@code votes} [{annotator, label}], {@code annotator}, {@code margin}, scores, generators and {@code source}.
     */
    static PreferencePair pair(ObjectNode o, Origin at, String promptId, Turns prompt, Turns chosen, Turns rejected) {
        List<Vote> votes = votes(o);
        Double chosenScore = number(o, "chosen_score", "score_chosen", "chosen_rating");
        Double rejectedScore = number(o, "rejected_score", "score_rejected", "rejected_rating");
        Double margin = number(o, "margin");
        if (margin == null && chosenScore != null && rejectedScore != null) margin = chosenScore - rejectedScore;
        PreferencePair p = new PreferencePair(promptId, prompt, chosen, rejected, Label.CHOSEN, margin, chosenScore, rejectedScore, votes, null,
                string(o, "chosen_model", "chosen_generator"), string(o, "rejected_model", "rejected_generator"), string(o, "source"), at);
        JsonNode label = o.get("label");
        if (label != null && !label.isNull()) {
            if (!label.isTextual()) throw new BadRecord("bad-label", "label", "\'label\' must be \"chosen\", \"rejected\" or \"tie\", found " + label);
            switch (label.asText().toLowerCase(Locale.ROOT)) {
                case "chosen" -> { }
                case "rejected" -> p = p.swapped();
                case "tie" -> p = p.withLabel(Label.TIE);
                default -> throw new BadRecord("bad-label", "label", "\'label\' must be \"chosen\", \"rejected\" or \"tie\", found \"" + label.asText() + "\"");
            }
            return withAgreement(p, label.asText().equalsIgnoreCase("tie") ? Verdict.TIE : Verdict.CHOSEN);
        }
        if (votes.isEmpty()) return p;
        return resolve(p);
    }

    /** Votes decide the label by strict majority; a tied vote is UNRESOLVED and stays flagged. */
    static PreferencePair resolve(PreferencePair p) {
        int[] n = new int[Verdict.values().length];
        for (Vote v : p.votes()) n[v.verdict().ordinal()]++;
        int best = 0;
        for (int i = 1; i < n.length; i++) if (n[i] > n[best]) best = i;
        for (int i = 0; i < n.length; i++) if (i != best && n[i] == n[best]) return agreement(p.withLabel(Label.UNRESOLVED), (double) n[best] / p.votes().size());
        Verdict winner = Verdict.values()[best];
        PreferencePair oriented = winner == Verdict.REJECTED ? p.swapped() : p;
        return withAgreement(oriented.withLabel(winner == Verdict.TIE ? Label.TIE : Label.CHOSEN), winner == Verdict.TIE ? Verdict.TIE : Verdict.CHOSEN);
    }

    private static PreferencePair withAgreement(PreferencePair p, Verdict decided) {
        if (p.votes().isEmpty()) return p;
        long agree = p.votes().stream().filter(v -> v.verdict() == decided).count();
        return agreement(p, (double) agree / p.votes().size());
    }

    private static PreferencePair agreement(PreferencePair p, double share) {
        return new PreferencePair(p.promptId(), p.prompt(), p.chosen(), p.rejected(), p.label(), p.margin(), p.chosenScore(), p.rejectedScore(),
                p.votes(), share, p.chosenGenerator(), p.rejectedGenerator(), p.source(), p.origin());
    }

    private static List<Vote> votes(ObjectNode o) {
        List<Vote> out = new ArrayList<>();
        JsonNode votes = o.has("votes") ? o.get("votes") : o.get("annotations");
        if (votes != null) {
            if (!votes.isArray()) throw new BadRecord("wrong-type", "votes", "\'votes\' must be a list of {annotator, label}");
            for (JsonNode v : votes) {
                String who = v.path("annotator").asText(null);
                JsonNode label = v.get("label");
                if (who == null || label == null || !label.isTextual())
                    throw new BadRecord("wrong-type", "votes", "each vote needs a text 'annotator' and a 'label' (chosen, rejected or tie), found " + v);
                out.add(new Vote(who, switch (label.asText().toLowerCase(Locale.ROOT)) {
                    case "chosen" -> Verdict.CHOSEN;
                    case "rejected" -> Verdict.REJECTED;
                    case "tie" -> Verdict.TIE;
                    default -> throw new BadRecord("bad-label", "votes", "vote label must be chosen, rejected or tie, found \"" + label.asText() + "\"");
                }));
            }
        } else if (o.path("annotator").isTextual()) {
            String label = o.path("label").asText("chosen").toLowerCase(Locale.ROOT);
            out.add(new Vote(o.get("annotator").asText(), label.equals("tie") ? Verdict.TIE : label.equals("rejected") ? Verdict.REJECTED : Verdict.CHOSEN));
        }
        return out;
    }

    // ---- transcripts and message lists ----

    private static final Pattern HH_TURN = Pattern.compile("\n\n(Human|Assistant):");

    private static PreferencePair hh(ObjectNode o, Origin at) {
        List<Turns.Message> chosen = transcript(text(o, "chosen"), "chosen"), rejected = transcript(text(o, "rejected"), "rejected");
        List<Turns.Message> prompt = chosen.subList(0, chosen.size() - 1);
        if (!prompt.equals(rejected.subList(0, rejected.size() - 1)))
            throw new BadRecord("prompt-mismatch", "chosen", "\'chosen\' and 'rejected' differ before their last Assistant turn, so they do not share one prompt");
        return pair(o, at, promptId(o, "id"), Turns.messages(prompt), Turns.messages(List.of(last(chosen))), Turns.messages(List.of(last(rejected))));
    }

    /** "\n\nHuman: ... \n\nAssistant: ..." as messages; it must end with an assistant turn (the completion). */
    static List<Turns.Message> transcript(String text, String field) {
        Matcher m = HH_TURN.matcher(text);
        List<Turns.Message> out = new ArrayList<>();
        String role = null;
        int start = 0;
        while (m.find()) {
            if (role != null) out.add(new Turns.Message(role, strip(text.substring(start, m.start()))));
            else if (!text.substring(0, m.start()).isBlank()) throw new BadRecord("wrong-type", field, "\'" + field + "\' has text before its first Human/Assistant turn");
            role = m.group(1).equals("Human") ? "user" : "assistant";
            start = m.end();
        }
        if (role == null) throw new BadRecord("wrong-type", field, "\'" + field + "\' is not a \\n\\nHuman:/\\n\\nAssistant: transcript");
        out.add(new Turns.Message(role, strip(text.substring(start))));
        if (!role.equals("assistant")) throw new BadRecord("wrong-type", field, "\'" + field + "\' does not end with an Assistant turn");
        return out;
    }

    private static String strip(String turn) {
        return turn.startsWith(" ") ? turn.substring(1) : turn;
    }

    private static Turns.Message last(List<Turns.Message> ms) {
        return ms.get(ms.size() - 1);
    }

    private static PreferencePair shareGpt(ObjectNode o, Origin at) {
        List<Turns.Message> prompt = shareGptMessages(o.get("conversations"), "conversations");
        Turns chosen = Turns.messages(shareGptMessages(o.get("chosen"), "chosen"));
        Turns rejected = Turns.messages(shareGptMessages(o.get("rejected"), "rejected"));
        return pair(o, at, promptId(o, "id"), Turns.messages(prompt), chosen, rejected);
    }

    private static final Map<String, String> SHAREGPT_ROLES = Map.of("human", "user", "gpt", "assistant", "system", "system",
            "observation", "tool", "function_call", "function_call", "user", "user", "assistant", "assistant");

    /** ShareGPT's {from, value}: a list of them, or (for chosen/rejected) a single one. */
    private static List<Turns.Message> shareGptMessages(JsonNode n, String field) {
        if (n == null || n.isNull()) throw new BadRecord("missing-field", "missing field '" + field + "'");
        List<Turns.Message> out = new ArrayList<>();
        for (JsonNode m : n.isArray() ? n : List.of(n)) {
            if (!m.path("from").isTextual() || !m.path("value").isTextual())
                throw new BadRecord("wrong-type", field, "\'" + field + "\' messages must be {\"from\": text, \"value\": text}, found " + abbreviate(m));
            String role = SHAREGPT_ROLES.get(m.get("from").asText());
            if (role == null) throw new BadRecord("wrong-type", field, "\'" + field + "\': unknown ShareGPT role '" + m.get("from").asText() + "'");
            out.add(new Turns.Message(role, m.get("value").asText()));
        }
        return out;
    }

    private static PreferencePair messagePairs(ObjectNode o, Origin at) {
        List<Turns.Message> chosen = messages(o.get("chosen_messages"), "chosen_messages"), rejected = messages(o.get("rejected_messages"), "rejected_messages");
        Turns[] split = splitMessages(chosen, rejected);
        return pair(o, at, promptId(o, "id"), split[0], split[1], split[2]);
    }

    /** Implicit prompt for conversations: the leading messages both share; the rest are the completions. */
    static Turns[] splitMessages(List<Turns.Message> chosen, List<Turns.Message> rejected) {
        int k = 0;
        while (k < chosen.size() - 1 && k < rejected.size() - 1 && chosen.get(k).equals(rejected.get(k))) k++;
        return new Turns[] {Turns.messages(chosen.subList(0, k)), Turns.messages(chosen.subList(k, chosen.size())), Turns.messages(rejected.subList(k, rejected.size()))};
    }

    /** Implicit prompt for text, as TRL's extract_prompt: the common prefix, backed off a trailing space so it stays with the completion. */
    static Turns[] splitText(String chosen, String rejected) {
        int k = 0, n = Math.min(chosen.length(), rejected.length());
        while (k < n && chosen.charAt(k) == rejected.charAt(k)) k++;
        if (k < n && k > 0 && chosen.charAt(k - 1) == ' ') k--;
        return new Turns[] {Turns.text(chosen.substring(0, k)), Turns.text(chosen.substring(k)), Turns.text(rejected.substring(k))};
    }

    // ---- unpaired, rated, prompts ----

    private static UnpairedFeedback kto(ObjectNode o, Origin at) {
        JsonNode label = o.get("label");
        if (label == null) throw new BadRecord("missing-field", "missing field 'label'");
        if (!label.isBoolean()) throw new BadRecord("bad-label", "label", "\'label\' must be true (desirable) or false (undesirable), found " + label);
        Turns prompt, completion;
        if (o.has("messages")) {
            List<Turns.Message> ms = messages(o.get("messages"), "messages");
            if (ms.size() < 2) throw new BadRecord("missing-field", "messages", "\'messages\' needs a prompt and a completion (at least two messages)");
            prompt = Turns.messages(ms.subList(0, ms.size() - 1));
            completion = Turns.messages(ms.subList(ms.size() - 1, ms.size()));
        } else {
            prompt = turns(o, "prompt");
            completion = turns(o, "completion");
        }
        return new UnpairedFeedback(promptId(o, "id"), prompt, completion, label.asBoolean(), string(o, "source"), at);
    }

    private static RatedCompletions rated(ObjectNode o, Origin at) {
        Turns prompt = o.has("prompt") ? turns(o, "prompt") : Turns.text(text(o, "instruction"));
        JsonNode cs = o.get("completions");
        if (cs == null || !cs.isArray()) throw new BadRecord("wrong-type", "completions", "\'completions\' must be a list of {response, score}");
        List<RatedCompletions.Rated> out = new ArrayList<>();
        for (JsonNode c : cs) {
            if (!(c instanceof ObjectNode co)) throw new BadRecord("wrong-type", "completions", "each completion must be an object, found " + abbreviate(c));
            Turns response = co.has("response") ? turns(co, "response") : co.has("completion") ? turns(co, "completion") : Turns.text(text(co, "text"));
            Double score = number(co, "score", "overall_score", "rating");
            if (score == null) throw new BadRecord("missing-field", "completions", "a completion has no numeric 'score' (or 'overall_score', 'rating')");
            out.add(new RatedCompletions.Rated(response, score, string(co, "model", "generator")));
        }
        return new RatedCompletions(promptId(o, "id"), prompt, out, string(o, "source"), at);
    }

    /** A demonstration: {@code messages} (the last message is the completion), {@code text} (no prompt) or {@code prompt}/{@code completion}. */
    private static Demonstration demonstration(ObjectNode o, Origin at) {
        if (o.has("messages")) {
            List<Turns.Message> ms = messages(o.get("messages"), "messages");
            if (ms.size() < 2) throw new BadRecord("missing-field", "messages", "\'messages\' needs a prompt and a completion (at least two messages)");
            return new Demonstration(promptId(o, "id"), Turns.messages(ms.subList(0, ms.size() - 1)), Turns.messages(ms.subList(ms.size() - 1, ms.size())), at);
        }
        if (!o.has("prompt") && o.has("text")) return new Demonstration(promptId(o, "id"), Turns.text(""), Turns.text(text(o, "text")), at);
        Turns prompt = turns(o, "prompt"), completion = turns(o, "completion");
        if (prompt.isChat() != completion.isChat()) throw new BadRecord("wrong-type", "completion", "\'prompt\' and 'completion' must both be text or both be messages");
        return new Demonstration(promptId(o, "id"), prompt, completion, at);
    }

    private static PromptOnly prompts(ObjectNode o, Origin at) {
        Turns prompt;
        if (o.has("prompt")) prompt = turns(o, "prompt");
        else if (o.has("question")) prompt = Turns.text(text(o, "question"));
        else if (o.has("messages")) prompt = Turns.messages(messages(o.get("messages"), "messages"));
        else if (o.has("conversations")) prompt = Turns.messages(shareGptMessages(o.get("conversations"), "conversations"));
        else throw new BadRecord("missing-field", "expected 'prompt', 'question', 'messages' or 'conversations'");
        return new PromptOnly(promptId(o, "id"), prompt, at);
    }

    // ---- fields ----

    private static void require(ObjectNode o, String field) {
        if (!o.has(field) || o.get(field).isNull()) throw new BadRecord("missing-field", "missing field '" + field + "'");
    }

    static String text(ObjectNode o, String field) {
        require(o, field);
        JsonNode n = o.get(field);
        if (!n.isTextual()) throw new BadRecord("wrong-type", field, "\'" + field + "\' must be text, found " + n.getNodeType().name().toLowerCase(Locale.ROOT));
        return n.asText();
    }

    /** Text, or a list of {role, content} messages. */
    static Turns turns(ObjectNode o, String field) {
        require(o, field);
        JsonNode n = o.get(field);
        if (n.isTextual()) return Turns.text(n.asText());
        if (n.isArray()) return Turns.messages(messages(n, field));
        throw new BadRecord("wrong-type", field, "\'" + field + "\' must be text or a list of {role, content} messages, found " + n.getNodeType().name().toLowerCase(Locale.ROOT));
    }

    /** {role, content} messages; content is text or typed parts [{type: "text", text|value}] (joined). */
    static List<Turns.Message> messages(JsonNode n, String field) {
        if (n == null || !n.isArray()) throw new BadRecord("wrong-type", field, "\'" + field + "\' must be a list of {role, content} messages");
        List<Turns.Message> out = new ArrayList<>(n.size());
        for (JsonNode m : n) {
            JsonNode role = m.get("role"), content = m.get("content");
            if (role == null || !role.isTextual() || content == null)
                throw new BadRecord("wrong-type", field, "\'" + field + "\' messages must be {\"role\": text, \"content\": ...}, found " + abbreviate(m));
            out.add(new Turns.Message(role.asText(), content(content, field)));
        }
        return out;
    }

    private static String content(JsonNode content, String field) {
        if (content.isTextual()) return content.asText();
        if (content.isArray()) {
            StringBuilder b = new StringBuilder();
            for (Iterator<JsonNode> it = content.elements(); it.hasNext(); ) {
                JsonNode part = it.next();
                if (!part.path("type").asText("text").equals("text"))
                    throw new BadRecord("wrong-type", field, "\'" + field + "\': only text content parts are supported, found type '" + part.path("type").asText() + "'");
                JsonNode t = part.has("text") ? part.get("text") : part.get("value");
                if (t == null || !t.isTextual()) throw new BadRecord("wrong-type", field, "\'" + field + "\': a text part needs 'text' (or 'value'), found " + abbreviate(part));
                b.append(t.asText());
            }
            return b.toString();
        }
        throw new BadRecord("wrong-type", field, "\'" + field + "\' message content must be text or a list of parts, found " + content.getNodeType().name().toLowerCase(Locale.ROOT));
    }

    private static String promptId(ObjectNode o, String alternative) {
        JsonNode id = o.has("prompt_id") ? o.get("prompt_id") : o.get(alternative);
        return id == null || id.isNull() || id.isContainerNode() ? null : id.asText();
    }

    private static String string(ObjectNode o, String... fields) {
        for (String f : fields) if (o.path(f).isValueNode() && !o.get(f).isNull()) return o.get(f).asText();
        return null;
    }

    private static Double number(ObjectNode o, String... fields) {
        for (String f : fields) {
            JsonNode n = o.get(f);
            if (n == null || n.isNull()) continue;
            if (!n.isNumber()) throw new BadRecord("wrong-type", f, "\'" + f + "\' must be a number, found " + abbreviate(n));
            return n.asDouble();
        }
        return null;
    }

    private static String abbreviate(JsonNode n) {
        String s = n.toString();
        return s.length() > 80 ? s.substring(0, 77) + "..." : s;
    }
}
