package io.tether.rollout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.engine.ConfigException;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.text.ChatTemplate;
import io.tether.text.ChatTemplateException;
import io.tether.text.TextAssets;
import io.tether.text.Tokenizer;

/**
 * A pairwise judge backed by a local causal LM, read from next-token log-probs rather than from sampled text (as
 * TRL's {@code PairRMJudge} returns probabilities; TRL's LLM judges instead parse generated text, which this avoids).
 *
 * <p>The judging prompt (the {@link #DEFAULT_PROMPT}, or a file with the same three placeholders) is filled in with the
 * user's prompt and the two answers as "A" and "B", wrapped as one user message in the model's chat template when its
 * tokenizer has one (with the generation prompt; else encoded as text with BOS), and run through the frozen model
 * once. P(A better) = p(A) / (p(A) + p(B)) over the next-token distribution, i.e. sigmoid(log p(A) − log p(B)): the
 * mass on other tokens is ignored.
 *
 * <p>Label tokens: for "A" and "B", the first token the tokenizer makes of the rendered prompt's tail followed by the
 * label, where it extends the tail's own tokens (so "\nA" gives the token of "A" after a newline, as generation would
 * produce it). A prompt whose tail would merge with the label (the label would not start a new token) is refused.
 *
 * <p>Position bias: every pair is asked in both orders (first as A, then first as B) and P(first better) is the mean of
 * the two; swapping first and second therefore gives exactly 1 − p. The verdict is FIRST above 0.5 + margin, SECOND
 * below 0.5 − margin, else TIE. {@link #positionBias} is the share of judged pairs whose two orders named different
 * winners on their own.
 *
 * <p>Untrusted text (the user's prompt, both answers) is data: placeholders are substituted in one pass (an answer
 * containing "{answer_b}" stays literal), the message goes to the chat template as a variable (Jinja syntax in it is
 * never evaluated), and special-token strings inside it (e.g. "&lt;|im_end|&gt;") are encoded as ordinary text, so an
 * answer cannot close the user turn or open the assistant's.
 */
public final class LocalModelJudge implements LlmJudge {
    public static final String PROMPT = JudgePrompt.PROMPT, ANSWER_A = JudgePrompt.ANSWER_A, ANSWER_B = JudgePrompt.ANSWER_B;
    public static final String LABEL_A = JudgePrompt.LABEL_A, LABEL_B = JudgePrompt.LABEL_B;
    /** The default judging prompt ({@link JudgePrompt#DEFAULT}, shared with the endpoint judge). */
    public static final String DEFAULT_PROMPT = JudgePrompt.DEFAULT;
    /** Stands in for the judging text when the chat template is rendered, so template and data are encoded apart. */
    private static final String SLOT = "\u2063TETHER_JUDGE_MESSAGE\u2063";

    /** One order's judging input: the rendered text (what the model reads) and its token ids. */
    public record Rendered(String text, long[] ids) {}

    private final CausalLM model;
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final List<String> pieces;       // the judging prompt split around its placeholders: p0 X p1 Y p2 Z p3
    private final List<String> slots;        // X, Y, Z in order
    private final BothOrders orders;
    private final long labelA, labelB;
    private final String[] around;           // the chat template before and after the user message (empty without one)
    private final AutoCloseable owned;

    /**
     * @param prompt  the judging prompt with {@code {prompt}}, {@code {answer_a}} and {@code {answer_b}} once each (null: the default)
     * @param margin  a verdict is TIE when |P(first better) − 0.5| ≤ margin (0: only an exact 0.5 ties)
     */
    public LocalModelJudge(CausalLM model, TextAssets text, String prompt, double margin) {
        this(model, text, prompt, margin, null, "judging prompt");
    }

    private LocalModelJudge(CausalLM model, TextAssets text, String prompt, double margin, AutoCloseable owned, String promptSource) {
        this.orders = new BothOrders(margin);
        this.model = model;
        this.tokenizer = text.tokenizer();
        this.template = text.template();
        this.owned = owned;
        JudgePrompt jp = new JudgePrompt(prompt, promptSource);
        this.pieces = jp.pieces();
        this.slots = jp.slots();
        this.around = around();
        // Label tokens, from a rendering with empty data: the tail (after the last answer) is the same for every pair.
        String tail = pieces.get(pieces.size() - 1);
        long[] tailIds = tailIds(tail);
        this.labelA = labelToken(tailIds, LABEL_A);
        this.labelB = labelToken(tailIds, LABEL_B);
        if (labelA == labelB) throw new ConfigException("judge: labels A and B encode to the same first token " + labelA);
    }

    /**
     * Loads a judge from a model directory (weights frozen in their stored dtype, tokenizer.json required) and an
     * optional prompt file; the judge owns and closes the model.
     */
    public static LocalModelJudge open(Path dir, Path promptFile, double margin) {
        if (!Files.isDirectory(dir)) throw new ConfigException(dir + ": no such model directory");
        if (!Files.isRegularFile(dir.resolve("config.json"))) throw new ConfigException(dir + ": not a model directory (no config.json)");
        String prompt = null;
        if (promptFile != null) {
            try {
                prompt = Files.readString(promptFile);
            } catch (IOException e) {
                throw new ConfigException(promptFile + ": cannot read the judging prompt: " + e.getMessage(), e);
            }
            new JudgePrompt(prompt, promptFile.toString());   // a bad prompt file stops before the model loads
        }
        TextAssets text = TextAssets.load(dir).orElseThrow(() -> new ConfigException(dir + ": a model judge needs a tokenizer.json"));
        Models.LoadedModel m;
        try {
            m = Models.loadFrozen(dir);
        } catch (RuntimeException e) {
            text.close();
            throw e;
        }
        if (text.tokenizer().vocabSize() > m.model().config().vocabSize()) {
            m.close();
            text.close();
            throw new ConfigException(dir + ": the tokenizer has " + text.tokenizer().vocabSize() + " tokens, the model " + m.model().config().vocabSize());
        }
        AutoCloseable both = () -> { m.close(); text.close(); };
        try {
            return new LocalModelJudge(m.model(), text, prompt, margin, both, promptFile == null ? "judging prompt" : promptFile.toString());
        } catch (RuntimeException e) {
            m.close();
            text.close();
            throw e;
        }
    }

    /** The chat template around one user message, split at the message: [before, after]. */
    private String[] around() {
        if (template == null) return new String[] {"", ""};
        String r;
        try {
            r = template.render(List.of(Map.of("role", "user", "content", SLOT)), true);
        } catch (ChatTemplateException e) {
            throw new ConfigException("judge: the chat template cannot render a user message: " + e.getMessage(), e);
        }
        int i = r.indexOf(SLOT);
        if (i < 0 || r.indexOf(SLOT, i + 1) >= 0)
            throw new ConfigException("judge: the chat template changes the user message's text; it cannot wrap a judging prompt as data");
        return new String[] {r.substring(0, i), r.substring(i + SLOT.length())};
    }

    private long[] tailIds(String tail) {
        return tokenizer.encode(tail + around[1], false);
    }

    private long labelToken(long[] tailIds, String label) {
        String after = around[1];
        long[] withLabel = tokenizer.encode(pieces.get(pieces.size() - 1) + after + label, false);
        int k = 0;
        while (k < tailIds.length && k < withLabel.length && tailIds[k] == withLabel[k]) k++;
        if (k != tailIds.length || k >= withLabel.length)
            throw new ConfigException("judge: under this tokenizer the label '" + label + "' merges with the end of the judging prompt; "
                    + "end the prompt (or the chat template's generation prompt) with a newline");
        return withLabel[k];
    }

    /** The token ids read as "A" and as "B". */
    public long[] labelIds() {
        return new long[] {labelA, labelB};
    }

    /** The judging input with {@code answerA} shown as A and {@code answerB} as B: its text and token ids. */
    public Rendered render(String userPrompt, String answerA, String answerB) {
        StringBuilder text = new StringBuilder(around[0]);
        List<long[]> parts = new ArrayList<>();
        // Without a chat template the text starts with BOS, as a text prompt; with one, the template writes BOS itself.
        parts.add(tokenizer.encode(around[0] + pieces.get(0), template == null));
        text.append(pieces.get(0));
        for (int i = 0; i < slots.size(); i++) {
            String value = JudgePrompt.value(slots.get(i), userPrompt, answerA, answerB);
            parts.add(literal(value));
            text.append(value);
            String piece = pieces.get(i + 1);
            // The last piece carries the template's tail (end of turn, generation prompt).
            parts.add(tokenizer.encode(i == slots.size() - 1 ? piece + around[1] : piece, false));
            text.append(piece);
        }
        text.append(around[1]);
        int n = 0;
        for (long[] p : parts) n += p.length;
        long[] ids = new long[n];
        int at = 0;
        for (long[] p : parts) { System.arraycopy(p, 0, ids, at, p.length); at += p.length; }
        if (ids.length == 0) throw new ConfigException("judge: the judging prompt encodes to no tokens");
        return new Rendered(text.toString(), ids);
    }

    /**
     * Untrusted text as ordinary tokens: where the tokenizer would read a special token's string (one that decoding
     * skips) out of it, that string is encoded in two halves instead, so it stays the same characters but not the token.
     */
    long[] literal(String s) {
        if (s.isEmpty()) return new long[0];
        long[] ids = tokenizer.encode(s, false);
        for (long id : ids) {
            if (!tokenizer.decode(new long[] {id}, true).isEmpty()) continue;
            String special = tokenizer.idToToken(id);
            int i = special == null ? -1 : s.indexOf(special);
            if (i < 0 || special.length() < 2) continue;   // not found in the text as written (or indivisible): keep the tokenizer's reading
            int mid = special.length() / 2;
            if (Character.isHighSurrogate(special.charAt(mid - 1))) mid++;
            return concat(literal(s.substring(0, i)), literal(special.substring(0, mid)), literal(special.substring(mid)),
                    literal(s.substring(i + special.length())));
        }
        return ids;
    }

    private static long[] concat(long[]... parts) {
        int n = 0;
        for (long[] p : parts) n += p.length;
        long[] out = new long[n];
        int at = 0;
        for (long[] p : parts) { System.arraycopy(p, 0, out, at, p.length); at += p.length; }
        return out;
    }

    /** Both orders in one forward pass; returns P(A better) for each order. Row 0: first as A; row 1: first as B. */
    private double[] pABetter(long[] firstAsA, long[] firstAsB) {
        int t = Math.max(firstAsA.length, firstAsB.length);
        long[] batch = new long[2 * t];   // right-padded with token 0: causal attention never lets a real token see it
        System.arraycopy(firstAsA, 0, batch, 0, firstAsA.length);
        System.arraycopy(firstAsB, 0, batch, t, firstAsB.length);
        int[] last = {firstAsA.length - 1, firstAsB.length - 1};
        double[] out = new double[2];
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            Tensor hidden = model.hiddenStates(Tensors.longs(batch, 2, t), null, null, null);
            for (int r = 0; r < 2; r++) {
                double[] logits = Tensors.toDoubles(model.logits(hidden.narrow(0, r, 1).narrow(1, last[r], 1)));
                // sigmoid(log p(A) − log p(B)): the log-softmax normaliser cancels, so the raw logits suffice.
                out[r] = 1 / (1 + Math.exp(logits[(int) labelB] - logits[(int) labelA]));
            }
        }
        return out;
    }

    /** The probabilities and the verdict for one pair, asked in both orders; counted in {@link #positionBias}. */
    public BothOrders.Judgement probabilities(String userPrompt, String first, String second) {
        Rendered ab = render(userPrompt, first, second), ba = render(userPrompt, second, first);
        double[] pA = pABetter(ab.ids(), ba.ids());
        return orders.combine(pA[0], 1 - pA[1]);
    }

    @Override
    public Verdict judge(OnlinePrompt prompt, long[] firstTokens, String first, long[] secondTokens, String second) {
        return probabilities(userPrompt(prompt), first, second).verdict();
    }

    /** What the judge shows as the user's prompt ({@link JudgePrompt#userPrompt}). */
    public static String userPrompt(OnlinePrompt p) {
        return JudgePrompt.userPrompt(p);
    }

    /** Pairs judged so far. */
    public long judged() {
        return orders.judged();
    }

    /** The share of judged pairs whose two orders, each alone, named different winners (NaN before any). */
    public double positionBias() {
        return orders.positionBias();
    }

    public double margin() {
        return orders.margin();
    }

    @Override
    public String describe() {
        return "a local model (both orders)";
    }

    @Override
    public void close() {
        if (owned == null) return;
        try {
            owned.close();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
