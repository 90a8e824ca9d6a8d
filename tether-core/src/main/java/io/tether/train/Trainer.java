package io.tether.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.AtomicFiles;
import io.tether.engine.Autocast;
import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.ProcessGroup;
import io.tether.engine.ProcessMemory;
import io.tether.engine.Safetensors;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.model.CausalLM;
import io.tether.model.Models;

/**
 * The one training loop. Each optimizer step: take {@code gradient_accumulation_steps} micro-batches, normalise
 * every micro-batch's summed loss by the units of the whole step, backward, synchronise gradients, clip, guard
 * against non-finite values, update with AdamW at the scheduled rate, log, evaluate and checkpoint on schedule.
 * A method (SFT, DPO, ...) supplies only {@link TrainingMethod#forward}.
 *
 * @param <E> one training example
 */
public final class Trainer<E> {
    /** Progress reports; the CLI draws a progress bar from them. Library code never prints. */
    public interface Listener {
        /** Once, before the first step (after a resume has restored its checkpoint): the run's length and base learning rate. */
        default void onStart(int totalSteps, double learningRate) {}

        default void onStep(int step, int totalSteps, Map<String, Object> metrics) {}

        default void onEval(int step, Map<String, Object> metrics) {}

        default void onCheckpoint(int step, Path dir) {}

        default void onSkippedBatch(int step, String reason) {}

        default void onNotice(String message) {}
    }

    private final CausalLM model;
    private final TrainingMethod<E> method;
    private final List<E> train;
    private final List<E> eval;
    private final TrainerConfig config;
    private final RunDirectory run;
    private final GradientSync sync;
    private final Listener listener;
    private final Path tokenizerSource;
    private final Map<String, Tensor> modelParams;
    private final Map<String, Tensor> extraParams;
    private final Map<String, Tensor> params;
    /** Time spent in {@link TrainingMethod#prepare} (online methods: generation and scoring) since the last log line. */
    private double prepareSeconds;

    public Trainer(CausalLM model, TrainingMethod<E> method, List<E> train, List<E> eval, TrainerConfig config,
                   RunDirectory run, GradientSync sync, Listener listener, Path tokenizerSource) {
        if (train.isEmpty()) throw new ConfigException("no training examples");
        ProcessGroup.Env launched = sync.worldSize() == 1 ? ProcessGroup.Env.read(System.getenv()) : null;
        // Launched as one of several ranks but handed a world of one: training alone would write the same run
        // directory as the other ranks. Until every method builds its trainer through the run session, refuse.
        if (launched != null)
            throw new ConfigException("WORLD_SIZE=" + launched.worldSize() + ": this command does not train data-parallel yet; run it as one process");
        this.model = model;
        this.method = method;
        this.train = List.copyOf(train);
        this.eval = List.copyOf(eval);
        this.config = config;
        this.run = run;
        this.sync = sync;
        this.listener = listener == null ? new Listener() {} : listener;
        this.tokenizerSource = tokenizerSource;
        this.modelParams = model.trainableParameters();
        this.extraParams = method.extraParameters();
        Map<String, Tensor> all = new LinkedHashMap<>(modelParams);
        for (Map.Entry<String, Tensor> e : extraParams.entrySet())
            if (all.put(e.getKey(), e.getValue()) != null) throw new IllegalArgumentException("extra parameter " + e.getKey() + " clashes with a model parameter");
        this.params = all;
    }

    /**
     * Optimizer steps of the run: max_steps, else the epochs over this rank's share of the data (a method that
     * reuses each drawn batch takes its epochs x mini-batches steps per batch).
     */
    public int totalSteps() {
        if (config.maxSteps() > 0) return config.maxSteps();
        TrainingMethod.Reuse reuse = method.reuse();
        long perBatch = (long) config.perDeviceTrainBatchSize() * config.gradientAccumulationSteps() * reuse.miniBatches() * sync.worldSize();
        return (int) Math.max(1, Math.ceil(config.numTrainEpochs() * Math.ceil((double) train.size() / perBatch)) * reuse.stepsPerBatch());
    }

    /** The outcome: steps taken, the last logged training loss and the last eval loss (NaN if none). */
    public record Result(int steps, double lastLoss, double evalLoss, Path lastCheckpoint) {}

    public Result train(boolean resume) throws IOException {
        int total = totalSteps();
        int warmup = config.warmupSteps() > 0 ? config.warmupSteps() : (int) Math.ceil(config.warmupRatio() * total);
        LrSchedule schedule = new LrSchedule(LrSchedule.Kind.parse(config.lrSchedulerType()), config.learningRate(), warmup, total);
        model.setTrainable(true);
        model.setGradientCheckpointing(config.gradientCheckpointing());
        for (Tensor p : extraParams.values()) p.requires_grad_(true);
        boolean bf16 = config.bf16() && Autocast.bf16Pays();
        if (config.bf16() && !bf16) listener.onNotice("bf16 requested, but bf16 matmuls are not faster than fp32 on this CPU: training in fp32");
        Cursor cursor = new Cursor(0, 0);
        int step = 0;
        Path lastCheckpoint = null;
        try (AdamW optimizer = new AdamW(params, AdamW.defaultDecay(params), config.adam())) {
            if (resume) {
                var latest = run.latestCheckpoint();
                agreeOnCheckpoint(latest.map(RunDirectory::stepOf).orElse(-1));
                if (latest.isPresent()) {
                    TrainerState s = TrainerState.read(latest.get());
                    if (s.seed() != config.seed())
                        throw new ConfigException("key 'seed': the run was started with seed " + s.seed() + ", not " + config.seed());
                    if (s.worldSize() != sync.worldSize())
                        throw new ConfigException("WORLD_SIZE: the run was started with " + s.worldSize() + " process(es), not " + sync.worldSize()
                                + "; resume it with the same number (another world size changes every step's batch)");
                    Map<String, Double> methodState = new LinkedHashMap<>(restoreWeights(latest.get()));
                    methodState.putAll(s.methodState());
                    optimizer.load(latest.get().resolve("optimizer.safetensors"));
                    method.restoreState(methodState);
                    step = s.globalStep();
                    cursor = new Cursor(s.epoch(), s.position());
                    lastCheckpoint = latest.get();
                    if (sync.writesFiles()) run.truncateMetricsAfter(step);
                }
            }
            // Every rank starts from rank 0's weights, as DDP does at construction: loaded or seeded alike they are
            // already equal, and this makes it so whatever the load did.
            if (sync.worldSize() > 1) sync.broadcastFromRankZero(params.values());
            listener.onStart(total, config.learningRate());
            double lastLoss = Double.NaN, evalLoss = Double.NaN;
            double intervalLoss = 0;
            int intervalSteps = 0;
            long intervalUnits = 0;
            long intervalStart = System.nanoTime();
            ArrayDeque<List<List<E>>> planned = new ArrayDeque<>();
            while (step < total) {
                long t0 = System.nanoTime();
                if (planned.isEmpty()) planned.addAll(drawAndPrepare(cursor, step));
                List<List<E>> micro = planned.poll();
                long localUnits = 0;
                for (List<E> mb : micro) if (!mb.isEmpty()) localUnits += method.units(mb);
                // The normaliser is the units of the global batch (every rank's), so the summed gradients equal one
                // process's over the whole batch.
                long units = sync.worldSize() == 1 ? localUnits : (long) sync.sum(new double[] {localUnits})[0];
                if (units == 0) throw new ConfigException("step " + (step + 1) + ": the batch has no loss units (e.g. every completion truncated away)");
                double stepLoss = 0;
                boolean lossNonFinite = false;
                Map<String, Double> metricSums = new LinkedHashMap<>();
                for (List<E> mb : micro) {
                    if (mb.isEmpty()) continue;   // this rank's share of a short last batch
                    try (StepScope scope = new StepScope()) {
                        TrainingMethod.Output out;
                        try (Autocast region = Autocast.bf16(bf16)) {
                            out = method.forward(model, mb);
                        }
                        Tensor loss = out.lossSum().div(Tensors.scalar((double) units));
                        double value = loss.item_double();
                        if (!Double.isFinite(value)) {
                            model.backwardCheckpoints();   // no gradient reached them: this only drops the saved inputs
                            lossNonFinite = true;
                            break;
                        }
                        loss.backward();
                        model.backwardCheckpoints();
                        stepLoss += value;
                        out.metricSums().forEach((k, v) -> metricSums.merge(k, v, Double::sum));
                    }
                }
                if (sync.worldSize() > 1) {
                    // Ranks agree on the step's loss and on skipping it: one rank's non-finite loss skips it everywhere.
                    double[] agreed = sync.sum(new double[] {lossNonFinite ? 1 : 0, lossNonFinite ? 0 : stepLoss});
                    lossNonFinite = agreed[0] > 0;
                    stepLoss = agreed[1];
                }
                double gradNorm = Double.NaN;
                String badTensor = null;
                if (!lossNonFinite) {
                    sync.allReduceGradients(params.values());
                    gradNorm = GradientClipping.clip(params.values(), config.maxGradNorm());
                    if (!Double.isFinite(gradNorm)) badTensor = firstNonFiniteGradient();
                }
                if (lossNonFinite || badTensor != null) {
                    optimizer.zeroGrad();
                    if (config.nanPolicy().equals("stop")) throw new NonFiniteException(step + 1, badTensor, lastCheckpoint);
                    String reason = lossNonFinite ? "non-finite loss" : "non-finite gradient in " + badTensor;
                    listener.onSkippedBatch(step + 1, reason);
                    if (sync.writesFiles()) run.appendMetrics(orderedMap("step", step + 1, "skipped", reason));
                    step++;
                    continue;
                }
                double lr = schedule.at(step);
                optimizer.step(lr);
                optimizer.zeroGrad();
                step++;
                method.afterStep(step, model);
                lastLoss = stepLoss;
                intervalLoss += stepLoss;
                intervalSteps++;
                intervalUnits += units;
                double stepSeconds = (System.nanoTime() - t0) / 1e9;
                if (step % config.loggingSteps() == 0 || step == total) {
                    double seconds = (System.nanoTime() - intervalStart) / 1e9;
                    Map<String, Object> m = orderedMap("step", step, "epoch", cursor.epochProgress(), "loss", intervalLoss / intervalSteps,
                            "lr", lr, "grad_norm", gradNorm, "units_per_second", intervalUnits / seconds,
                            "step_seconds", stepSeconds, "rss_mb", ProcessMemory.residentMb());
                    if (prepareSeconds > 0) {
                        // The share of wall time an online method spends generating rather than training.
                        m.put("rollout_seconds", prepareSeconds);
                        m.put("rollout_share", prepareSeconds / seconds);
                        prepareSeconds = 0;
                    }
                    for (Map.Entry<String, Double> e : globalSums(metricSums).entrySet()) m.put(e.getKey(), e.getValue() / units);
                    if (sync.writesFiles()) run.appendMetrics(m);
                    listener.onStep(step, total, m);
                    intervalLoss = 0;
                    intervalSteps = 0;
                    intervalUnits = 0;
                    intervalStart = System.nanoTime();
                }
                boolean last = step == total;
                if (!eval.isEmpty() && ((config.evalSteps() > 0 && step % config.evalSteps() == 0) || last)) {
                    evalLoss = evaluate();
                    Map<String, Object> m = orderedMap("step", step, "eval_loss", evalLoss, "eval_perplexity", Math.exp(evalLoss));
                    if (sync.writesFiles()) run.appendMetrics(m);
                    listener.onEval(step, m);
                }
                if ((config.saveSteps() > 0 && step % config.saveSteps() == 0) || last) {
                    lastCheckpoint = checkpoint(step, cursor, optimizer, total);
                    listener.onCheckpoint(step, lastCheckpoint);
                }
            }
            return new Result(step, lastLoss, evalLoss, lastCheckpoint);
        }
    }

    /**
     * Draws the next batch (gradient_accumulation_steps x mini-batches micro-batches), lets the method prepare it
     * (online methods generate and score here) and plans the optimizer steps over it: one step over the batch as
     * drawn, or, for a method that reuses it, its epochs over a fresh shuffle each, cut into mini-batches. A run
     * resumed between those steps continues with the next batch.
     */
    private List<List<List<E>>> drawAndPrepare(Cursor cursor, int step) {
        TrainingMethod.Reuse reuse = method.reuse();
        int perDevice = config.perDeviceTrainBatchSize();
        List<E> drawn = new ArrayList<>();
        List<Integer> sizes = new ArrayList<>();
        for (int i = 0; i < config.gradientAccumulationSteps() * reuse.miniBatches(); i++) {
            List<E> mb = cursor.next(perDevice);
            drawn.addAll(mb);
            sizes.add(mb.size());
        }
        List<E> prepared;
        long t0 = System.nanoTime();
        try (StepScope scope = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            prepared = method.prepare(model, drawn, step);
        }
        if (prepared != drawn) prepareSeconds += (System.nanoTime() - t0) / 1e9;
        List<List<List<E>>> steps = new ArrayList<>();
        if (reuse.equals(TrainingMethod.Reuse.ONCE) && prepared.size() == drawn.size()) {
            List<List<E>> micro = new ArrayList<>();
            int at = 0;
            for (int n : sizes) { micro.add(prepared.subList(at, at + n)); at += n; }
            steps.add(micro);
            return steps;
        }
        if (prepared.size() < reuse.miniBatches())
            throw new ConfigException("key 'num_mini_batches': " + reuse.miniBatches() + " mini-batches need at least as many examples per batch, got "
                    + prepared.size() + " (per_device_train_batch_size x gradient_accumulation_steps x num_mini_batches prompts are drawn)");
        Random shuffle = new Random(config.seed() * 1_000_003L + 7919L * step);
        for (int e = 0; e < reuse.epochs(); e++) {
            List<E> order = new ArrayList<>(prepared);
            if (reuse.epochs() > 1 || reuse.miniBatches() > 1) Collections.shuffle(order, shuffle);
            for (int m = 0; m < reuse.miniBatches(); m++) {
                List<E> mini = order.subList(m * order.size() / reuse.miniBatches(), (m + 1) * order.size() / reuse.miniBatches());
                List<List<E>> micro = new ArrayList<>();
                for (int i = 0; i < mini.size(); i += perDevice) micro.add(mini.subList(i, Math.min(mini.size(), i + perDevice)));
                steps.add(micro);
            }
        }
        return steps;
    }

    /** Mean loss per unit over the held-out examples, without gradients; ranks take every world-th batch and add up. */
    public double evaluate() {
        double lossSum = 0;
        long units = 0;
        int stride = config.perDeviceTrainBatchSize() * sync.worldSize();
        for (int i = sync.rank() * config.perDeviceTrainBatchSize(); i < eval.size(); i += stride) {
            List<E> batch = eval.subList(i, Math.min(eval.size(), i + config.perDeviceTrainBatchSize()));
            try (StepScope scope = new StepScope(); NoGradGuard g = new NoGradGuard()) {
                lossSum += method.forward(model, batch).lossSum().item_double();
                units += method.units(batch);
            }
        }
        if (sync.worldSize() > 1) {
            double[] total = sync.sum(new double[] {lossSum, units});
            lossSum = total[0];
            units = (long) total[1];
        }
        return units == 0 ? Double.NaN : lossSum / units;
    }

    /**
     * The step's metric sums over every rank (the logged metrics are the global batch's). Ranks must report the
     * same metric names; a difference is a method's bug, not something to average over.
     */
    private Map<String, Double> globalSums(Map<String, Double> local) {
        if (sync.worldSize() == 1) return local;
        List<String> names = new ArrayList<>(new java.util.TreeSet<>(local.keySet()));
        double[][] shapes = sync.allGather(new double[] {names.size(), String.join("\n", names).hashCode()});
        for (double[] other : shapes)
            if (other[0] != shapes[0][0] || other[1] != shapes[0][1]) throw new IllegalStateException("ranks logged different metric names: " + names + " on rank " + sync.rank());
        double[] values = new double[names.size()];
        for (int i = 0; i < values.length; i++) values[i] = local.get(names.get(i));
        double[] summed = sync.sum(values);
        Map<String, Double> out = new LinkedHashMap<>();
        for (String k : local.keySet()) out.put(k, summed[names.indexOf(k)]);
        return out;
    }

    /** Every rank resumes from the same checkpoint: they read one directory, but a stale view on a shared disk would differ. */
    private void agreeOnCheckpoint(int latestStep) {
        if (sync.worldSize() == 1) return;
        double[][] all = sync.allGather(new double[] {latestStep});
        for (int r = 0; r < all.length; r++)
            if (all[r][0] != latestStep)
                throw new ConfigException("key 'output_dir': rank " + r + " sees the latest checkpoint at step " + (int) all[r][0] + ", rank " + sync.rank()
                        + " at step " + latestStep + "; every rank must see the same output_dir");
    }

    private String firstNonFiniteGradient() {
        try (StepScope scope = new StepScope()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                Tensor g = e.getValue().grad();
                if (g.defined() && !g.isfinite().all().item().toBool()) return e.getKey();
            }
        }
        return "(gradient norm overflowed)";
    }

    /**
     * Writes {@code checkpoints/step-N} through a temporary directory renamed only when complete, so a crash while
     * writing leaves the previous checkpoint as the latest; then deletes the oldest beyond save_total_limit.
     */
    private Path checkpoint(int step, Cursor cursor, AdamW optimizer, int total) throws IOException {
        Path dir = run.checkpoints().resolve("step-" + step);
        if (sync.writesFiles()) writeCheckpoint(dir, step, cursor, optimizer, total);
        // Rank 0 alone writes (every rank holds the same weights and optimizer state); the others wait for it.
        sync.barrier();
        return dir;
    }

    private void writeCheckpoint(Path dir, int step, Cursor cursor, AdamW optimizer, int total) throws IOException {
        Path tmp = run.checkpoints().resolve(".step-" + step + ".tmp");
        Files.createDirectories(run.checkpoints());
        if (model.lora() != null) {
            // With LoRA the checkpoint is the adapter (PEFT layout); the frozen base is where it came from.
            model.lora().save(tmp, tokenizerSource == null ? "" : tokenizerSource.toString());
            writeTrainableHeads(tmp);
        } else {
            Models.save(model, tmp, null, null, tokenizerSource, Models.DEFAULT_MAX_SHARD_BYTES);
        }
        if (!extraParams.isEmpty()) Safetensors.write(tmp.resolve("extra_parameters.safetensors"), extraParams, Map.of("format", "pt"));
        optimizer.save(tmp.resolve("optimizer.safetensors"));
        new TrainerState(step, cursor.epoch, cursor.position, config.seed(), total, method.state(), sync.worldSize()).write(tmp);
        if (Files.exists(dir)) deleteRecursively(dir);
        AtomicFiles.move(tmp, dir);
        List<Path> all = run.checkpointDirs();
        for (int i = 0; i < all.size() - config.saveTotalLimit(); i++) deleteRecursively(all.get(i));
    }

    /** Heads trained beside LoRA adapters (a reward model's score) travel in the checkpoint too. */
    private void writeTrainableHeads(Path dir) {
        Map<String, Tensor> heads = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : modelParams.entrySet()) if (!e.getKey().startsWith("base_model.model.")) heads.put(e.getKey(), e.getValue());
        if (!heads.isEmpty()) Safetensors.write(dir.resolve("trainable_heads.safetensors"), heads, Map.of("format", "pt"));
    }

    /**
     * Copies the checkpoint's parameters into this run's. Returns method state found among the extra parameters:
     * checkpoints written before methods had {@link TrainingMethod#state} kept such state (PPO's adaptive KL
     * coefficient) as a one-element extra parameter under the name the state now has.
     */
    private Map<String, Double> restoreWeights(Path checkpoint) {
        Map<String, Double> legacyState = Map.of();
        if (!extraParams.isEmpty()) legacyState = restoreTensors(checkpoint.resolve("extra_parameters.safetensors"), method.state().keySet());
        if (model.lora() != null) {
            restoreTensors(checkpoint.resolve("adapter_model.safetensors"));
            if (Files.exists(checkpoint.resolve("trainable_heads.safetensors"))) restoreTensors(checkpoint.resolve("trainable_heads.safetensors"));
            return legacyState;
        }
        try (Models.LoadedModel saved = Models.load(checkpoint, model.dtype()); NoGradGuard g = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : modelParams.entrySet()) {
                Tensor src = saved.model().parameters().get(e.getKey());
                if (src == null) throw new CheckpointException(checkpoint, e.getKey(), "the checkpoint lacks this parameter");
                e.getValue().copy_(src);
            }
        }
        return legacyState;
    }

    private void restoreTensors(Path file) {
        restoreTensors(file, Set.of());
    }

    /** Reads every tensor of {@code file} into its parameter; one-element tensors named in {@code stateNames} are returned as state instead. */
    private Map<String, Double> restoreTensors(Path file, Set<String> stateNames) {
        Safetensors.Reader r = Safetensors.open(file);
        Map<String, Double> state = new LinkedHashMap<>();
        for (String name : r.entries().keySet()) {
            Tensor target = params.get(name);
            if (target == null && stateNames.contains(name) && r.entry(name).numel() == 1) {
                try (StepScope scope = new StepScope()) {
                    state.put(name, r.read(name, DType.F64).item_double());
                }
                continue;
            }
            if (target == null) throw new CheckpointException(file, name, "not trainable in this run");
            r.readInto(name, target);
        }
        return state;
    }

    static void deleteRecursively(Path p) throws IOException {
        if (Files.isDirectory(p)) {
            try (var s = Files.list(p)) {
                for (Path c : s.toList()) deleteRecursively(c);
            }
        }
        Files.deleteIfExists(p);
    }

    /**
     * The data cursor: epoch e visits a permutation that depends only on (seed, e), so a resumed run sees exactly
     * the examples an uninterrupted one would. With several ranks each draw takes world x batch examples of that
     * order and rank r keeps the r-th batch of them, as Accelerate shards a batch sampler (batch k of the order goes
     * to rank k mod world; its {@code even_batches} padding of a short last batch is not copied: a rank's share may be
     * short or empty). The shares are disjoint, their union is what one process would draw, each rank's micro-batch
     * is one a process with the same per-device batch would form, and the position (the same on every rank) is
     * what a checkpoint records.
     */
    private final class Cursor {
        int epoch;
        int position;
        private List<Integer> order;

        Cursor(int epoch, int position) {
            this.epoch = epoch;
            this.position = position;
        }

        List<E> next(int batchSize) {
            if (order == null) order = permutation(epoch);
            if (position >= order.size()) {
                epoch++;
                position = 0;
                order = permutation(epoch);
            }
            List<E> out = new ArrayList<>(batchSize);
            int world = sync.worldSize(), mine = sync.rank() * batchSize;
            for (int i = 0; i < batchSize * world && position < order.size(); i++, position++)
                if (i >= mine && i < mine + batchSize) out.add(train.get(order.get(position)));
            return out;
        }

        double epochProgress() {
            return epoch + (order == null ? 0 : (double) position / Math.max(1, order.size()));
        }

        private List<Integer> permutation(int e) {
            List<Integer> all = new ArrayList<>(train.size());
            for (int i = 0; i < train.size(); i++) all.add(i);
            Collections.shuffle(all, new Random(config.seed() * 1_000_003L + e));
            return all;
        }
    }

    public static Map<String, Object> orderedMap(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }
}
