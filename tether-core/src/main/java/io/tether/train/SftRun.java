package io.tether.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;


import io.tether.data.TokenRecords;
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
        Path textDir = c.tokenizer() != null ? c.tokenizer() : c.model();
        TextAssets text = textDir == null ? null : TextAssets.load(textDir).orElse(null);
        if (c.tokenizer() != null && text == null) throw new IllegalArgumentException("key 'tokenizer': no tokenizer.json in " + c.tokenizer());
        try {
            int vocab = model.config().vocabSize();
            // TRL appends EOS to text completions so the model learns to stop.
            TokenRecords.TextEncoder encoder = text == null ? null : new TokenRecords.TextEncoder(text.tokenizer(), text.template(), true);
            List<List<Sft.Example>> split = DataSplit.trainAndHeldOut(examples(c.data(), TokenRecords.read(c.data(), vocab, encoder), c, text),
                    c.evalData() == null ? null : examples(c.evalData(), TokenRecords.read(c.evalData(), vocab, encoder), c, text),
                    c.evalFraction(), c.trainer().seed());
            List<Sft.Example> train = split.get(0), eval = split.get(1);
            List<Sft.Row> trainRows = c.packing() ? Sft.pack(train, c.maxLength()) : Sft.rows(train, c.maxLength());
            List<Sft.Row> evalRows = c.packing() ? Sft.pack(eval, c.maxLength()) : Sft.rows(eval, c.maxLength());
            run.writeConfig(c.resolved());
            Map<String, Object> provenance = RunDirectory.provenance(c.trainer().seed(), c.data(), c.evalData(), resume);
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
            if (r.isPreference())
                throw new io.tether.data.DataFormatException(file, r.line(), "SFT needs prompt_ids + completion_ids records, got a preference pair");
            long[] ids = new long[r.prompt().length + r.completion().length], mask = new long[ids.length];
            System.arraycopy(r.prompt(), 0, ids, 0, r.prompt().length);
            System.arraycopy(r.completion(), 0, ids, r.prompt().length, r.completion().length);
            for (int i = 0; i < ids.length; i++) mask[i] = !c.completionOnlyLoss() || i >= r.prompt().length ? 1 : 0;
            out.add(new Sft.Example(ids, mask));
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
