package io.tether.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.tether.data.PreferencePair.Label;
import io.tether.engine.ConfigException;
import io.tether.text.ChatTemplate;
import io.tether.text.ChatTemplateException;
import io.tether.text.Tokenizer;

/**
 * Checks records one at a time: empty text, identical completions, ties and unresolved votes, exact, near and
 * contradictory duplicates, and, with a tokenizer, the token budget and whether the prompt's tokens are a prefix of
 * prompt+completion's (if not, the completion's log-probs are taken over the wrong tokens). Memory grows only with the
 * distinct pairs: two open-addressing tables of 16-byte slots, about 64 bytes a pair (64 MiB for a million).
 */
public final class PreferenceValidator {
    private final Problems problems;
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final int maxLength;
    private final LongLongMap exact = new LongLongMap(), near = new LongLongMap();
    private boolean warnedNoTemplate;
    private long records;

    /** {@code tokenizer} may be null (no token checks); {@code maxLength} 0 means no budget. */
    public PreferenceValidator(Problems problems, Tokenizer tokenizer, ChatTemplate template, int maxLength) {
        if (maxLength > 0 && tokenizer == null) throw new ConfigException("--max-length counts tokens: it needs --tokenizer");
        this.problems = problems;
        this.tokenizer = tokenizer;
        this.template = template;
        this.maxLength = maxLength;
    }

    public long records() {
        return records;
    }

    public void accept(PreferenceRecord r) {
        records++;
        if (r instanceof PreferencePair p) pair(p);
        else if (r instanceof UnpairedFeedback u) unpaired(u);
        else if (r instanceof RatedCompletions rc) rated(rc);
        else if (r instanceof Demonstration d) demonstration(d);
        else if (r.prompt().isBlank()) problems.error(r.origin(), "empty-text", "the prompt is empty");
    }

    private void pair(PreferencePair p) {
        var at = p.origin();
        if (p.prompt().isBlank()) problems.warning(at, "empty-text", "the prompt is empty");
        boolean emptyChosen = p.chosen().isBlank(), emptyRejected = p.rejected().isBlank();
        if (emptyChosen || emptyRejected)
            problems.error(at, "empty-text", (emptyChosen && emptyRejected ? "chosen and rejected are" : emptyChosen ? "chosen is" : "rejected is") + " empty");
        else if (p.chosen().equals(p.rejected()))
            problems.error(at, "identical-completions", "chosen and rejected are the same text: the pair teaches nothing");
        if (p.label() == Label.TIE) problems.warning(at, "tie", "the pair is a tie" + agreement(p) + ": it cannot train a preference unless adjudicated");
        if (p.label() == Label.UNRESOLVED) problems.warning(at, "unresolved", "annotators disagree with no majority" + agreement(p) + "; adjudicate it or drop it");
        duplicates(at, PromptKeys.exact(p.prompt()), PromptKeys.exact(p.chosen()), PromptKeys.exact(p.rejected()),
                PromptKeys.normalized(p.prompt()), PromptKeys.normalized(p.chosen()), PromptKeys.normalized(p.rejected()), "pair");
        if (tokenizer != null) {
            tokens(at, p.prompt(), p.chosen(), "chosen");
            tokens(at, p.prompt(), p.rejected(), "rejected");
        }
    }

    private static String agreement(PreferencePair p) {
        return p.votes().isEmpty() ? "" : String.format(" (%d votes, %.0f%% agree)", p.votes().size(), 100 * p.agreement());
    }

    /**
     * One map keyed by prompt and the unordered completions remembers which way the first occurrence pointed: the same
     * way again is a duplicate, the other way a contradiction. The normalized map catches copies differing in case,
     * spacing or punctuation.
     */
    private void duplicates(PreferenceRecord.Origin at, long prompt, long a, long b, long nPrompt, long nA, long nB, String what) {
        long exactKey = PromptKeys.combine(prompt, Math.min(a, b) ^ PromptKeys.mix(Math.max(a, b)));
        long first = exact.putIfAbsent(exactKey, position(at) | (a < b ? 0 : 1));
        if (first != LongLongMap.ADDED) {
            boolean sameWay = (first & 1) == (a < b ? 0 : 1);
            if (sameWay) problems.warning(at, "exact-duplicate", "the same " + what + " as " + where(first));
            else problems.error(at, "contradictory-duplicate", "the same " + what + " as " + where(first) + " with the opposite preference");
            return;
        }
        long nearKey = PromptKeys.combine(nPrompt, Math.min(nA, nB) ^ PromptKeys.mix(Math.max(nA, nB)));
        long firstNear = near.putIfAbsent(nearKey, position(at) | (nA < nB ? 0 : 1));
        if (firstNear != LongLongMap.ADDED) {
            boolean sameWay = (firstNear & 1) == (nA < nB ? 0 : 1);
            problems.warning(at, "near-duplicate", "the same " + what + " as " + where(firstNear) + " up to case, spacing and punctuation"
                    + (sameWay ? "" : ", with the opposite preference"));
        }
    }

    /** Line (high 32 bits) and record index (next 31) of a first occurrence; the lowest bit is left for its orientation. */
    private static long position(PreferenceRecord.Origin at) {
        return Math.min(at.line(), Integer.MAX_VALUE) << 32 | Math.min(at.index(), Integer.MAX_VALUE) << 1;
    }

    private static String where(long position) {
        long line = position >>> 32, record = (position & 0xFFFFFFFFL) >>> 1;
        return "line " + line + (record != line ? " (record " + record + ")" : "");
    }

    private void unpaired(UnpairedFeedback u) {
        var at = u.origin();
        if (u.prompt().isBlank()) problems.warning(at, "empty-text", "the prompt is empty");
        if (u.completion().isBlank()) problems.error(at, "empty-text", "the completion is empty");
        // For unpaired feedback the "orientation" is the label: the same prompt and completion judged both ways contradicts.
        long prompt = PromptKeys.exact(u.prompt()), completion = PromptKeys.exact(u.completion());
        long key = PromptKeys.combine(prompt, completion);
        long first = exact.putIfAbsent(key, position(at) | (u.desirable() ? 1 : 0));
        if (first != LongLongMap.ADDED) {
            if ((first & 1) == (u.desirable() ? 1 : 0)) problems.warning(at, "exact-duplicate", "the same prompt and completion as " + where(first));
            else problems.error(at, "contradictory-duplicate", "the same prompt and completion as " + where(first) + " with the opposite label");
        }
        if (tokenizer != null) tokens(at, u.prompt(), u.completion(), "completion");
    }

    private void demonstration(Demonstration d) {
        if (d.completion().isBlank()) problems.error(d.origin(), "empty-text", "the completion is empty");
        else if (tokenizer != null) tokens(d.origin(), d.prompt(), d.completion(), "completion");
    }

    private void rated(RatedCompletions rc) {
        var at = rc.origin();
        if (rc.prompt().isBlank()) problems.warning(at, "empty-text", "the prompt is empty");
        if (rc.completions().size() < 2) {
            problems.error(at, "too-few-completions", rc.completions().size() + " completion(s): a pair needs two");
            return;
        }
        for (int i = 0; i < rc.completions().size(); i++)
            if (rc.completions().get(i).completion().isBlank()) problems.error(at, "empty-text", "completion " + i + " is empty");
        double min = rc.completions().stream().mapToDouble(RatedCompletions.Rated::score).min().orElseThrow();
        double max = rc.completions().stream().mapToDouble(RatedCompletions.Rated::score).max().orElseThrow();
        if (min == max) problems.warning(at, "tie", "every completion has the score " + max + ": binarizing drops this prompt");
    }

    /** The prompt's tokens must start prompt+completion's, and the whole must fit the budget. */
    private void tokens(PreferenceRecord.Origin at, Turns prompt, Turns completion, String which) {
        long[] p, full;
        if (prompt.isChat() && completion.isChat()) {
            if (template == null) {
                if (!warnedNoTemplate) problems.warning(at.file(), "no-chat-template", "chat records but the tokenizer has no chat template: their tokens are not checked");
                warnedNoTemplate = true;
                return;
            }
            try {
                p = tokenizer.encode(template.render(maps(prompt), true), false);
                full = tokenizer.encode(template.render(maps(prompt.then(completion)), false), false);
            } catch (ChatTemplateException e) {
                problems.error(at, "chat-template", "the chat template fails on this record: " + e.getMessage());
                return;
            }
        } else {
            p = tokenizer.encode(prompt.flat(), true);
            full = tokenizer.encode(prompt.flat() + completion.flat(), true);
        }
        int k = 0;
        while (k < p.length && k < full.length && p[k] == full[k]) k++;
        if (k < p.length)
            problems.warning(at, "prefix-mismatch", "the prompt's tokens are not a prefix of prompt+" + which + "'s: they differ at token " + k
                    + " (prompt " + token(p, k) + ", prompt+" + which + " " + token(full, k) + "), so " + which + "'s log-probs would start on the wrong tokens");
        if (maxLength > 0 && full.length > maxLength) {
            String cut = p.length >= maxLength ? "the prompt alone is " + p.length + " tokens: nothing of " + which + " would remain"
                    : (full.length - maxLength) + " of " + which + "'s " + (full.length - p.length) + " tokens would be cut from its end";
            problems.warning(at, "over-length", "prompt+" + which + " is " + full.length + " tokens > max length " + maxLength + ": " + cut);
        }
    }

    private String token(long[] ids, int k) {
        return k < ids.length ? "'" + tokenizer.idToToken(ids[k]) + "'" : "ends";
    }

    private static List<Map<String, Object>> maps(Turns t) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (var m : t.messages()) out.add(Map.of("role", m.role(), "content", m.content()));
        return out;
    }
}
