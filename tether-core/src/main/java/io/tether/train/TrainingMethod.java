package io.tether.train;

import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.Tensor;

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

    /** Loss sum and metric sums of one micro-batch. */
    record Output(Tensor lossSum, Map<String, Double> metricSums) {}
}
