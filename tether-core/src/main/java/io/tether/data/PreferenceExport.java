package io.tether.data;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Records as TRL-style JSON lines that keep their provenance: {@code prompt_id}, {@code source_file},
 * {@code source_line}, {@code source_record} (position in the file), and scores, generators, source, votes and agreement when the record has them.
 */
public final class PreferenceExport {
    private PreferenceExport() {}

    /** {@code {prompt, chosen, rejected, ...}}; text stays text and messages stay messages. */
    public static ObjectNode pair(PreferencePair p) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        if (p.promptId() != null) o.put("prompt_id", p.promptId());
        o.set("prompt", p.prompt().toJson());
        o.set("chosen", p.chosen().toJson());
        o.set("rejected", p.rejected().toJson());
        if (p.label() != PreferencePair.Label.CHOSEN) o.put("label", p.label().json());
        if (p.margin() != null) o.put("margin", p.margin());
        if (p.chosenScore() != null) o.put("chosen_score", p.chosenScore());
        if (p.rejectedScore() != null) o.put("rejected_score", p.rejectedScore());
        if (p.chosenGenerator() != null) o.put("chosen_model", p.chosenGenerator());
        if (p.rejectedGenerator() != null) o.put("rejected_model", p.rejectedGenerator());
        if (!p.votes().isEmpty()) {
            var votes = o.putArray("votes");
            for (var v : p.votes()) votes.addObject().put("annotator", v.annotator()).put("label", v.verdict().json());
            o.put("agreement", p.agreement());
        }
        return provenance(o, p.source(), p.origin());
    }

    /** {@code {prompt, completion, label: bool, ...}}: TRL's unpaired preference format. */
    public static ObjectNode unpaired(UnpairedFeedback u) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        if (u.promptId() != null) o.put("prompt_id", u.promptId());
        o.set("prompt", u.prompt().toJson());
        o.set("completion", u.completion().toJson());
        o.put("label", u.desirable());
        return provenance(o, u.source(), u.origin());
    }

    /** A pair as two unpaired rows: chosen desirable, rejected undesirable. */
    public static UnpairedFeedback[] unpair(PreferencePair p) {
        return new UnpairedFeedback[] {new UnpairedFeedback(p.promptId(), p.prompt(), p.chosen(), true, p.source(), p.origin()),
                new UnpairedFeedback(p.promptId(), p.prompt(), p.rejected(), false, p.source(), p.origin())};
    }

    private static ObjectNode provenance(ObjectNode o, String source, PreferenceRecord.Origin at) {
        if (source != null) o.put("source", source);
        o.put("source_file", at.file().toString());
        o.put("source_line", at.line());
        o.put("source_record", at.index());
        return o;
    }
}
