package io.tether.model;

import java.util.Map;

import org.bytedeco.pytorch.Tensor;

import io.tether.engine.ConfigException;
import io.tether.engine.DType;

/**
 * A decoder-only language model: token ids in, next-token logits out.
 *
 * <p>Inputs follow Hugging Face's conventions: {@code inputIds} is [B, T] int64; {@code positionIds} is [B, T]
 * (null means {@code past .. past+T-1} for every row); {@code attentionMask} is [B, past+T] with 1 for real tokens
 * and 0 for padding (null means no padding), or a ready boolean [B, 1, T, past+T] mask (true = may attend), as for
 * packed documents. With right padding the mask may be omitted: causal attention never lets a real token see the
 * padding after it.
 */
public interface CausalLM extends AutoCloseable {
    ModelConfig config();

    /** Parameters under their checkpoint names, in checkpoint order. A tied head appears once, as the embedding. */
    Map<String, Tensor> parameters();

    /** The compute dtype of the weights. */
    DType dtype();

    /** Final hidden states [B, T, hidden] after the last norm. Appends this step's keys and values to {@code cache}. */
    Tensor hiddenStates(Tensor inputIds, Tensor positionIds, Tensor attentionMask, KvCache cache);

    /** Projects hidden states [B, T, hidden] to logits [B, T, vocab]. */
    Tensor logits(Tensor hidden);

    default Tensor forward(Tensor inputIds, Tensor positionIds, Tensor attentionMask, KvCache cache) {
        return logits(hiddenStates(inputIds, positionIds, attentionMask, cache));
    }

    default Tensor forward(Tensor inputIds) {
        return forward(inputIds, null, null, null);
    }

    /** An empty cache sized for {@code batch} rows of up to {@code capacity} tokens. */
    default KvCache newCache(long batch, int capacity) {
        ModelConfig c = config();
        return new KvCache(c.numHiddenLayers(), batch, c.numKeyValueHeads(), c.headDim(), capacity, dtype());
    }

    /**
     * Activation checkpointing (HF's {@code gradient_checkpointing}): forwards with gradients keep only each block's
     * input, and {@link #backwardCheckpoints} recomputes the blocks during the backward pass.
     */
    default void setGradientCheckpointing(boolean on) {
        if (on) throw new ConfigException("key 'gradient_checkpointing': " + config().architecture() + " has no gradient checkpointing");
    }

    /** Completes the backward pass through checkpointed blocks; call after {@code loss.backward()}. */
    default void backwardCheckpoints() {}

    /** The LoRA adapters attached to this model, or null. */
    default LoraAdapters lora() { return null; }

    /** Attaches adapters (called by {@link LoraAdapters#attach}). */
    default void attachLora(LoraAdapters adapters) {
        throw new ConfigException("key 'use_peft': " + config().architecture() + " takes no LoRA adapters");
    }

    /**
     * What training updates: every parameter, or with LoRA only the adapters (and a classification head, which a
     * reward model must learn).
     */
    default Map<String, Tensor> trainableParameters() {
        if (lora() == null) return parameters();
        Map<String, Tensor> t = new java.util.LinkedHashMap<>(lora().parameters());
        for (Map.Entry<String, Tensor> e : parameters().entrySet())
            if (e.getKey().startsWith("score.") || e.getKey().startsWith("classifier.")) t.put(e.getKey(), e.getValue());
        return t;
    }

    /** Turns gradient tracking on or off for the trainable parameters; with LoRA the base weights stay frozen. */
    default void setTrainable(boolean trainable) {
        for (Tensor p : parameters().values()) p.requires_grad_(false);
        for (Tensor p : trainableParameters().values()) p.requires_grad_(trainable);
    }

    default long parameterCount() {
        long n = 0;
        for (Tensor p : parameters().values()) n += p.numel();
        return n;
    }

    /** Frees the weights (and adapters). */
    @Override
    default void close() {
        for (Tensor p : parameters().values()) p.close();
        if (lora() != null) lora().close();
    }
}
