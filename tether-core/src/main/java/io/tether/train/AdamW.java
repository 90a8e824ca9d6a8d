package io.tether.train;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;
import io.tether.engine.Safetensors;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization"), step for step as
 * {@code torch.optim.AdamW} computes it:
 * <pre>
 *   p  <- p * (1 - lr * weight_decay)                  decoupled decay, before the moment update
 *   m  <- beta1 * m + (1 - beta1) * g
 *   v  <- beta2 * v + (1 - beta2) * g^2
 *   p  <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * </pre>
 * Written here rather than bound from libtorch so that its state is plain tensors saved as safetensors (resuming
 * never unpickles anything) and so that the formula is visible; a test checks it against libtorch's own AdamW.
 */
public final class AdamW implements AutoCloseable {
    /**
     * @param lr          TRL/HF {@code learning_rate}; the schedule scales it per step
     * @param beta1       {@code adam_beta1}
     * @param beta2       {@code adam_beta2}
     * @param eps         {@code adam_epsilon}
     * @param weightDecay {@code weight_decay}, applied to the decaying group only
     */
    public record Config(double lr, double beta1, double beta2, double eps, double weightDecay) {
        public Config {
            if (!(lr >= 0)) throw new ConfigException("learning_rate must be >= 0, got " + lr);
            if (!(beta1 >= 0 && beta1 < 1)) throw new ConfigException("adam_beta1 must be in [0, 1), got " + beta1);
            if (!(beta2 >= 0 && beta2 < 1)) throw new ConfigException("adam_beta2 must be in [0, 1), got " + beta2);
            if (!(eps > 0)) throw new ConfigException("adam_epsilon must be > 0, got " + eps);
            if (!(weightDecay >= 0)) throw new ConfigException("weight_decay must be >= 0, got " + weightDecay);
        }

        /** HF TrainingArguments' defaults. */
        public static Config defaults(double lr) {
            return new Config(lr, 0.9, 0.999, 1e-8, 0.0);
        }
    }

    private final Config config;
    private final Map<String, Tensor> params;
    private final Map<String, Boolean> decays;
    private final Map<String, Tensor> expAvg = new LinkedHashMap<>();
    private final Map<String, Tensor> expAvgSq = new LinkedHashMap<>();
    private long step;

    /**
     * @param params named trainable parameters
     * @param decays which of them get weight decay (see {@link #defaultDecay})
     */
    public AdamW(Map<String, Tensor> params, Map<String, Boolean> decays, Config config) {
        this.config = config;
        this.params = new LinkedHashMap<>(params);
        this.decays = new LinkedHashMap<>(decays);
        for (Map.Entry<String, Tensor> e : this.params.entrySet()) {
            if (!decays.containsKey(e.getKey())) throw new IllegalArgumentException("no weight-decay group for " + e.getKey());
            expAvg.put(e.getKey(), Tensors.zeros(Tensors.dtype(e.getValue()), Tensors.shape(e.getValue())));
            expAvgSq.put(e.getKey(), Tensors.zeros(Tensors.dtype(e.getValue()), Tensors.shape(e.getValue())));
        }
    }

    /**
     * HF's grouping: no decay for biases, norm weights and embeddings (and the tied or untied head that shares
     * the embedding's role); decay for the weight matrices of projections.
     */
    public static Map<String, Boolean> defaultDecay(Map<String, Tensor> params) {
        Map<String, Boolean> d = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            String n = e.getKey();
            boolean noDecay = n.endsWith(".bias") || n.contains("norm") || n.contains("ln_") || n.contains("embed")
                    || n.endsWith("wte.weight") || n.endsWith("wpe.weight") || e.getValue().dim() < 2;
            d.put(n, !noDecay);
        }
        return d;
    }

    public long stepCount() { return step; }

    public Config config() { return config; }

    /** One update with learning rate {@code lr} from the gradients currently in {@code p.grad()}. */
    public void step(double lr) {
        step++;
        double bc1 = 1 - Math.pow(config.beta1(), step);
        double bc2 = 1 - Math.pow(config.beta2(), step);
        try (StepScope scope = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                Tensor p = e.getValue();
                Tensor grad = p.grad();
                if (!grad.defined()) continue;
                if (decays.get(e.getKey()) && config.weightDecay() > 0) p.mul_(Tensors.scalar(1 - lr * config.weightDecay()));
                Tensor m = expAvg.get(e.getKey()), v = expAvgSq.get(e.getKey());
                m.mul_(Tensors.scalar(config.beta1())).add_(grad, Tensors.scalar(1 - config.beta1()));
                v.mul_(Tensors.scalar(config.beta2())).addcmul_(grad, grad, Tensors.scalar(1 - config.beta2()));
                Tensor denom = v.sqrt().div(Tensors.scalar(Math.sqrt(bc2))).add(Tensors.scalar(config.eps()));
                p.addcdiv_(m, denom, Tensors.scalar(-lr / bc1));
            }
        }
    }

    /** Clears gradients (sets them to zero in place, keeping their storage). */
    public void zeroGrad() {
        try (StepScope scope = new StepScope()) {
            for (Tensor p : params.values()) {
                Tensor g = p.grad();
                if (g.defined()) g.zero_();
            }
        }
    }

    /** Saves moments and the step count as safetensors (atomically). */
    public void save(Path file) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String n : params.keySet()) {
            out.put("exp_avg." + n, expAvg.get(n));
            out.put("exp_avg_sq." + n, expAvgSq.get(n));
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("step", Long.toString(step));
        meta.put("optimizer", "adamw");
        Safetensors.write(file, out, meta);
    }

    /** Restores moments and step count saved by {@link #save}; every parameter must be present with its shape. */
    public void load(Path file) {
        Safetensors.Reader r = Safetensors.open(file);
        String s = r.metadata().get("step");
        if (s == null) throw new CheckpointException(file, null, "missing metadata 'step'");
        List<String> missing = new ArrayList<>();
        for (String n : params.keySet()) {
            for (String kind : new String[] {"exp_avg.", "exp_avg_sq."}) {
                if (!r.entries().containsKey(kind + n)) {
                    missing.add(kind + n);
                    continue;
                }
                r.readInto(kind + n, (kind.equals("exp_avg.") ? expAvg : expAvgSq).get(n));
            }
        }
        if (!missing.isEmpty()) throw new CheckpointException(file, missing.get(0), "optimizer state missing (" + missing.size() + " tensors)");
        step = Long.parseLong(s);
    }

    @Override
    public void close() {
        expAvg.values().forEach(Tensor::close);
        expAvgSq.values().forEach(Tensor::close);
    }
}
