package io.tether.train;

import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;

/**
 * What a training method (SFT, reward modelling, DPO, ...) supplies to the one loop: a loss over a micro-batch.
 *
 * <p>The loss is a sum over the method's units (tokens for SFT, pairs for DPO) so that the loop can normalise by
 * the units of the whole accumulated batch: k micro-batches then give exactly the gradient of one batch k times
 * the size.
 *
 * @param <E> one example
 */
public interface TrainingMethod<E> {
    /** Units the examples contribute to the loss normaliser: one per example unless the method counts finer (SFT: tokens). */
    default long units(List<E> examples) {
        return examples.size();
    }

    /** The summed, differentiable loss over the examples' units, and summed metrics (divided by units when logged). */
    Output forward(CausalLM model, List<E> examples);

    /** Called after each optimizer step (e.g. TR-DPO's reference sync); nothing by default. */
    default void afterStep(int step, CausalLM model) {}

    /**
     * How often one drawn batch is trained on. Offline methods: once, in one optimizer step. PPO: {@code epochs}
     * ({@code num_ppo_epochs}) passes over the rollout, each split into {@code miniBatches} optimizer steps; GRPO's
     * {@code num_iterations} is epochs with one mini-batch.
     */
    default Reuse reuse() { return Reuse.ONCE; }

    /**
     * Online methods generate here: called once per drawn batch, without gradients, before the steps that train on
     * it; returns the examples those steps see (the prompts with their rollouts attached). What it returns must
     * hold no native tensors: each step runs in its own scope. {@code step} is the optimizer steps taken before this
     * batch: seeding the rollout from it makes a resumed run sample what an uninterrupted one would.
     */
    default List<E> prepare(CausalLM model, List<E> drawn, int step) { return drawn; }

    /**
     * State beside the parameters that a resumed run needs to continue exactly (legacy bco_pair's running mean, PPO's adaptive KL coefficient),
     * as named numbers; the loop saves it in {@code trainer_state.json} at each checkpoint. Nothing by default.
     */
    default Map<String, Double> state() { return Map.of(); }

    /** Restores what {@link #state} returned at the checkpoint a run resumes from (empty for a checkpoint without it). */
    default void restoreState(Map<String, Double> state) {}

    /**
     * Parameters the loop trains beside the model's own (PPO's separate critic), under names unique to them; they
     * are clipped, updated and checkpointed with the model's.
     */
    default Map<String, Tensor> extraParameters() { return Map.of(); }

    /** Passes over a drawn batch and optimizer steps per pass. */
    record Reuse(int epochs, int miniBatches) {
        public static final Reuse ONCE = new Reuse(1, 1);

        public Reuse {
            if (epochs < 1) throw new ConfigException("epochs over a rollout must be >= 1, got " + epochs);
            if (miniBatches < 1) throw new ConfigException("mini-batches per rollout must be >= 1, got " + miniBatches);
        }

        public int stepsPerBatch() { return epochs * miniBatches; }
    }

    /** Loss sum and metric sums of one micro-batch. */
    record Output(Tensor lossSum, Map<String, Double> metricSums) {}
}
