package io.tether.run;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.text.TextAssets;
import io.tether.train.DataSplit;
import io.tether.train.RunDirectory;
import io.tether.train.Sft;
import io.tether.train.Trainer;

/** Runs SFT: the data read and turned into examples, a held-out split, the loop, and the final model. */
public final class SftRun {
    private SftRun() {}

    public static Trainer.Result run(RunSpec spec, SftSettings sft, boolean resume, Trainer.Listener listener) throws IOException {
        return run(new RunConfig<>(spec, sft), resume, listener);
    }

    public static Trainer.Result run(RunConfig<SftSettings> c, boolean resume, Trainer.Listener listener) throws IOException {
        RunSpec spec = c.spec();
        SftSettings sft = c.method();
        try (RunSession s = RunSession.open(c, resume, listener)) {
            // The data first, read and checked as `tether data validate` reads it: a bad record stops the run before any
            // model is loaded or any file written.
            Truncation truncation = s.truncation(false);
            var records = s.read(spec.data(), TokenRecords.Use.COMPLETIONS);
            var evalRecords = spec.evalData() == null ? null : s.read(spec.evalData(), TokenRecords.Use.COMPLETIONS);
            List<Sft.Example> examples = truncated(examples(spec.data(), records.records(), sft, s.text()), truncation);
            List<Sft.Example> evalExamples = evalRecords == null ? null : truncated(examples(spec.evalData(), evalRecords.records(), sft, s.text()), truncation);
            Models.LoadedModel loaded = spec.model() != null ? s.loadPolicy() : null;
            CausalLM model = loaded != null ? loaded.model() : s.createPolicy();
            List<List<Sft.Example>> split = DataSplit.trainAndHeldOut(examples, evalExamples, spec.evalFraction(), spec.trainer().seed());
            List<Sft.Example> train = split.get(0), eval = split.get(1);
            List<Sft.Row> trainRows = sft.packing() ? Sft.pack(train, truncation.maxLength()) : Sft.rows(train, truncation.maxLength());
            List<Sft.Row> evalRows = sft.packing() ? Sft.pack(eval, truncation.maxLength()) : Sft.rows(eval, truncation.maxLength());
            s.provenance().put("train_examples", train.size());
            s.provenance().put("eval_examples", eval.size());
            s.provenance().put("train_rows", trainRows.size());
            s.writeRecords(true);
            Trainer.Result result = s.trainer(model, new Sft(), trainRows, evalRows).train(resume);
            // The finished model, loadable by tether generate / logprobs: the last checkpoint's weights.
            s.saveResult(model, loaded == null ? null : loaded.storedDtypes());
            return result;
        }
    }

    /**
     * Examples as TRL builds them: prompt+completion with the loss on the completion (or on everything without
     * completion-only loss); a {@code messages} conversation rendered whole, with the loss on every token, or with
     * {@code assistant_only_loss} on the tokens inside the template's generation blocks.
     */
    static List<Sft.Example> examples(Path file, List<TokenRecords.TokenRecord> records, SftSettings c, TextAssets text) {
        List<Sft.Example> out = new ArrayList<>();
        for (TokenRecords.TokenRecord r : records) {
            if (text != null && text.template() != null && r.source().has("messages")) {
                out.add(conversation(file, r, c.assistantOnlyLoss(), text));
                continue;
            }
            if (c.assistantOnlyLoss())
                throw new io.tether.data.DataFormatException(file, r.line(), "assistant_only_loss needs 'messages' records and a chat template");
            long[] ids = new long[r.prompt().length + r.completion().length], mask = new long[ids.length];
            System.arraycopy(r.prompt(), 0, ids, 0, r.prompt().length);
            System.arraycopy(r.completion(), 0, ids, r.prompt().length, r.completion().length);
            for (int i = 0; i < ids.length; i++) mask[i] = !c.completionOnlyLoss() || i >= r.prompt().length ? 1 : 0;
            out.add(new Sft.Example(ids, mask));
        }
        return out;
    }

    /** Examples within max_length (their start, or their end), counted by the truncation. */
    static List<Sft.Example> truncated(List<Sft.Example> examples, Truncation t) {
        List<Sft.Example> out = new ArrayList<>(examples.size());
        for (Sft.Example e : examples) {
            long[] ids = t.sequence(e.ids());
            if (ids == e.ids()) {
                out.add(e);
                continue;
            }
            int from = t.mode() == Truncation.Mode.KEEP_END ? e.ids().length - ids.length : 0;
            out.add(new Sft.Example(ids, java.util.Arrays.copyOfRange(e.lossMask(), from, from + ids.length)));
        }
        return out;
    }

    private static Sft.Example conversation(Path file, TokenRecords.TokenRecord r, boolean assistantOnly, TextAssets text) {
        List<java.util.Map<String, Object>> messages = RunDirectory.JSON.convertValue(r.source().get("messages"),
                new com.fasterxml.jackson.core.type.TypeReference<List<java.util.Map<String, Object>>>() {});
        io.tether.text.ChatTemplate.Rendered rendered;
        try {
            rendered = text.template().render(messages, false, java.util.Map.of());
        } catch (io.tether.text.ChatTemplateException e) {
            throw new io.tether.data.DataFormatException(file, r.line(), "chat template: " + e.getMessage());
        }
        long[][] idsMask = io.tether.text.PromptCompletion.assistantMask(text.tokenizer(), rendered);
        if (assistantOnly && rendered.generationSpans().isEmpty())
            throw new io.tether.data.DataFormatException(file, r.line(), "assistant_only_loss: the chat template has no {% generation %} blocks to mark assistant tokens");
        if (!assistantOnly) java.util.Arrays.fill(idsMask[1], 1);
        return new Sft.Example(idsMask[0], idsMask[1]);
    }
}
