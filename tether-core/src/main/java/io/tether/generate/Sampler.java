package io.tether.generate;

import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.DType;
import io.tether.engine.Tensors;

/**
 * Picks the next token of every row from last-position logits [B, V]: greedy argmax, or temperature, top-k and
 * top-p filtering (in HF's order) followed by a draw from a seeded generator.
 */
public final class Sampler implements AutoCloseable {
    private final SamplingConfig config;
    private final Generator generator;

    public Sampler(SamplingConfig config) {
        this.config = config;
        this.generator = torch.make_generator_cpu(config.seed());
    }

    /** Next token ids [B] (int64). */
    public Tensor next(Tensor logits) {
        if (config.greedy()) return logits.argmax(new LongOptional(-1), false);
        Tensor scores = logits.to(DType.F32.scalarType).div(Tensors.scalar(config.temperature()));
        if (config.topK() > 0 && config.topK() < scores.size(-1)) {
            // Keep the k best: everything below the k-th largest logit is removed.
            T_TensorTensor_T top = torch.topk(scores, config.topK(), -1, true, true);
            Tensor kth = top.get0().narrow(-1, config.topK() - 1, 1);
            scores = scores.masked_fill(scores.lt(kth), Tensors.scalar(Double.NEGATIVE_INFINITY));
        }
        if (config.topP() < 1.0) {
            // HF's nucleus filter: sort ascending, drop the low tail whose total mass is <= 1 - top_p, keep >= 1 token.
            T_TensorTensor_T sorted = torch.sort(scores, -1, false);
            Tensor cumulative = torch.softmax(sorted.get0(), -1).cumsum(-1);
            Tensor removeSorted = cumulative.le(Tensors.scalar(1 - config.topP()));
            removeSorted.narrow(-1, scores.size(-1) - 1, 1).fill_(Tensors.scalar(0L));
            Tensor remove = torch.zeros_like(removeSorted).scatter(-1, sorted.get1(), removeSorted);
            scores = scores.masked_fill(remove, Tensors.scalar(Double.NEGATIVE_INFINITY));
        }
        Tensor probs = torch.softmax(scores, -1);
        return torch.multinomial(probs, 1, false, new GeneratorOptional(generator)).squeeze(-1);
    }

    @Override
    public void close() {
        generator.close();
    }
}
