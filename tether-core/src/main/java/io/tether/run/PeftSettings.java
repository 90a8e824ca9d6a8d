package io.tether.run;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;

import io.tether.model.CausalLM;
import io.tether.model.LoraAdapters;
import io.tether.model.Models;

/**
 * The LoRA keys every trainer accepts, named and defaulted as TRL's ModelConfig: {@code use_peft} (false),
 * {@code lora_r} (16), {@code lora_alpha} (32), {@code lora_dropout} (0.05), {@code lora_target_modules}
 * (all-linear), {@code use_rslora} (false).
 */
public final class PeftSettings {
    private PeftSettings() {}

    /** The adapter config, or null without {@code use_peft}. */
    public static LoraAdapters.Config from(ConfigTree c) {
        boolean use = c.bool("use_peft", false);
        int r = c.integer("lora_r", 16);
        double alpha = c.number("lora_alpha", 32), dropout = c.number("lora_dropout", 0.05);
        boolean rs = c.bool("use_rslora", false);
        List<String> targets = new ArrayList<>();
        JsonNode t = c.raw("lora_target_modules");
        if (t != null && t.isArray()) t.forEach(x -> targets.add(x.asText()));
        else targets.add(c.string("lora_target_modules", "all-linear"));
        if (!use) return null;
        return c.validated(() -> new LoraAdapters.Config(r, alpha, dropout, targets, rs));
    }

    /**
     * Saves a finished run's model under {@code model/} (HF layout, the tokenizer copied from {@code tokenizerSource}),
     * so that generate, logprobs and rm score load it directly. With LoRA, {@code model/} holds the merged weights
     * and the adapter goes, in PEFT layout naming {@code baseModel}, under {@code adapter/}.
     */
    public static void saveResult(CausalLM model, Path runRoot, Path baseModel, Path tokenizerSource,
                                  java.util.Map<String, io.tether.engine.DType> storedDtypes) throws java.io.IOException {
        Path out = runRoot.resolve("model");
        if (model.lora() == null) {
            Models.save(model, out, null, storedDtypes, tokenizerSource, Models.DEFAULT_MAX_SHARD_BYTES);
            return;
        }
        model.lora().save(runRoot.resolve("adapter"), baseModel == null ? "" : baseModel.toString());
        model.lora().merge();
        try {
            Models.save(model, out, null, storedDtypes, tokenizerSource, Models.DEFAULT_MAX_SHARD_BYTES);
        } finally {
            model.lora().unmerge();
        }
    }
}
