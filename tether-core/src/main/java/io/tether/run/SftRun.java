package io.tether.run;

import io.tether.train.DataSplit;
import io.tether.train.GradientSync;
import io.tether.train.RunDirectory;
import io.tether.train.Sft;
import io.tether.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;


import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Torch;
import io.tether.model.CausalLM;
import io.tether.model.ModelConfig;
import io.tether.model.Models;
import io.tether.text.TextAssets;

/** Runs SFT from an {@link SftConfig}: model, data, split, run directory, the loop, and the final model. */
public final class SftRun {
    private SftRun() {}

    public static Trainer.Result run(SftConfig c, boolean resume, Trainer.Listener listener) throws IOException {
        Torch.init();
        DType dtype = DType.parse(c.dtype());
        RunDirectory run = RunDirectory.open(c.outputDir(), resume);
        // The data first, read and checked as `tether data validate` reads it: a bad record stops the run before any
        // model is loaded or any file written.
        ModelConfig modelConfig = c.model() != null ? DataSettings.modelConfig(c.model()) : ModelConfig.readFile(c.modelConfig());
        Truncation truncation = c.reading().truncation(modelConfig.maxPositionEmbeddings(), false);
        Path textDir = c.tokenizer() != null ? c.tokenizer() : c.model();
        TextAssets text = textDir == null ? null : TextAssets.load(textDir).orElse(null);
        if (c.tokenizer() != null && text == null) throw new ConfigException("key 'tokenizer': no tokenizer.json in " + c.tokenizer());
        TokenRecords.Read<TokenRecords.TokenRecord> records, evalRecords;
        List<Sft.Example> examples, evalExamples;
        try {
            int vocab = modelConfig.vocabSize();
            // TRL appends EOS to text completions so the model learns to stop.
            TokenRecords.TextEncoder encoder = text == null ? null : new TokenRecords.TextEncoder(text.tokenizer(), text.template(), true);
            records = TokenRecords.read(c.data(), vocab, encoder, TokenRecords.Use.COMPLETIONS, c.reading().invalidRecords(), null);
            evalRecords = c.evalData() == null ? null : TokenRecords.read(c.evalData(), vocab, encoder, TokenRecords.Use.COMPLETIONS, c.reading().invalidRecords(), null);
            examples = truncated(examples(c.data(), records.records(), c, text), truncation);
            evalExamples = evalRecords == null ? null : truncated(examples(c.evalData(), evalRecords.records(), c, text), truncation);
        } catch (RuntimeException e) {
            if (text != null) text.close();
            throw e;
        }
        Models.LoadedModel loaded = null;
        CausalLM model;
        String initialWeights;
        if (c.model() != null) {
            loaded = Models.load(c.model(), dtype);
            model = loaded.model();
            initialWeights = RunDirectory.weightsHash(c.model());
        } else {
            ModelConfig config = ModelConfig.readFile(c.modelConfig());
            model = Models.create(config, dtype, c.trainer().seed());
            initialWeights = "fresh init, seed " + c.trainer().seed() + ", config sha256 " + RunDirectory.sha256(c.modelConfig());
        }
        try {
            List<List<Sft.Example>> split = DataSplit.trainAndHeldOut(examples, evalExamples, c.evalFraction(), c.trainer().seed());
            List<Sft.Example> train = split.get(0), eval = split.get(1);
            List<Sft.Row> trainRows = c.packing() ? Sft.pack(train, truncation.maxLength()) : Sft.rows(train, truncation.maxLength());
            List<Sft.Row> evalRows = c.packing() ? Sft.pack(eval, truncation.maxLength()) : Sft.rows(eval, truncation.maxLength());
            Map<String, Object> provenance = RunDirectory.provenance(c.trainer().seed(), c.data(), c.evalData(), resume);
            Map<Path, TokenRecords.Read<?>> reads = new java.util.LinkedHashMap<>();
            reads.put(c.data(), records);
            if (evalRecords != null) reads.put(c.evalData(), evalRecords);
            DataSettings.report(listener, provenance, c.reading(), truncation, reads);
            run.writeConfig(DataSettings.resolved(c.resolved(), truncation, true));
            provenance.put("initial_weights", initialWeights);
            provenance.put("train_examples", train.size());
            provenance.put("eval_examples", eval.size());
            provenance.put("train_rows", trainRows.size());
            run.writeProvenance(provenance);
            if (c.lora() != null) io.tether.model.LoraAdapters.attach(model, c.lora(), c.trainer().seed());
            Trainer<Sft.Row> trainer = new Trainer<>(model, new Sft(), trainRows, evalRows, c.trainer(), run,
                    GradientSync.SINGLE_PROCESS, listener, textDir);
            Trainer.Result result = trainer.train(resume);
            // The finished model, loadable by tether generate / logprobs: the last checkpoint's weights.
            PeftSettings.saveResult(model, run.root(), c.model(), textDir, loaded == null ? null : loaded.storedDtypes());
            return result;
        } finally {
            model.close();
            if (text != null) text.close();
        }
    }

    /**
     * Examples as TRL builds them: prompt+completion with the loss on the completion (or on everything without
     * completion-only loss); a {@code messages} conversation rendered whole, with the loss on every token, or with
     * {@code assistant_only_loss} on the tokens inside the template's generation blocks.
     */
    static List<Sft.Example> examples(Path file, List<TokenRecords.TokenRecord> records, SftConfig c, TextAssets text) {
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
