package io.tether.run;

import io.tether.train.LearningRateDefault;
import io.tether.train.RunDirectory;
import io.tether.train.TrainerConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.engine.ConfigException;

/**
 * A YAML config with command-line overrides, read key by key so that every problem names its key: unknown keys
 * (with the closest known one), wrong types, out-of-range values. Overrides are {@code key=value} with the value
 * parsed as YAML ({@code learning_rate=1e-4}, {@code packing=true}).
 */
public final class ConfigTree {
    private final ObjectNode tree;
    private final String source;
    private final Set<String> read = new LinkedHashSet<>();
    private final Map<String, Object> used = new LinkedHashMap<>();   // every key read, with the value in force (defaults included)
    private String learningRateSource;

    private ConfigTree(ObjectNode tree, String source) {
        this.tree = tree;
        this.source = source;
    }

    public static ConfigTree load(Path yaml, List<String> overrides) {
        ObjectNode tree = RunDirectory.YAML.createObjectNode();
        String source = "command line";
        if (yaml != null) {
            source = yaml.toString();
            try {
                JsonNode n = RunDirectory.YAML.readTree(Files.readString(yaml));
                if (n != null && !n.isNull() && !n.isMissingNode()) {
                    if (!n.isObject()) throw new ConfigException(yaml + ": expected a mapping of keys to values");
                    tree = (ObjectNode) n;
                }
            } catch (NoSuchFileException e) {
                throw new ConfigException(yaml + ": config file not found");
            } catch (IOException e) {
                throw new ConfigException(yaml + ": not valid YAML: " + e.getMessage().lines().findFirst().orElse(""));
            }
        }
        for (String o : overrides) {
            int eq = o.indexOf('=');
            if (eq <= 0) throw new ConfigException("override '" + o + "': expected key=value");
            String key = o.substring(0, eq).trim(), value = o.substring(eq + 1);
            try {
                JsonNode v = RunDirectory.YAML.readTree(value.isEmpty() ? "null" : value);
                tree.set(key, v == null || v.isMissingNode() ? RunDirectory.YAML.nullNode() : v);
            } catch (IOException e) {
                throw new ConfigException("override '" + o + "': value is not valid YAML");
            }
        }
        return new ConfigTree(tree, source);
    }

    private ConfigException error(String key, String message) {
        return new ConfigException(source + ": key '" + key + "': " + message);
    }

    private JsonNode get(String key) {
        read.add(key);
        JsonNode n = tree.get(key);
        return n == null || n.isNull() ? null : n;
    }

    private <T> T use(String key, T value) {
        used.put(key, value);
        return value;
    }

    /** The raw value (null when absent), marked as read: for keys that take a list or a string. */
    public JsonNode raw(String key) {
        return use(key, get(key));
    }

    public String string(String key, String dflt) {
        JsonNode n = get(key);
        if (n == null) return use(key, dflt);
        if (!n.isValueNode() || n.isBoolean()) throw error(key, "expected a string, got " + n);
        return use(key, n.asText());
    }

    public Path path(String key) {
        String s = string(key, null);
        return s == null ? null : Path.of(s);
    }

    public int integer(String key, int dflt) {
        JsonNode n = get(key);
        if (n == null) return use(key, dflt);
        if (!n.isIntegralNumber() || !n.canConvertToInt()) throw error(key, "expected an integer, got " + n);
        return use(key, n.asInt());
    }

    public long longValue(String key, long dflt) {
        JsonNode n = get(key);
        if (n == null) return use(key, dflt);
        if (!n.isIntegralNumber() || !n.canConvertToLong()) throw error(key, "expected an integer, got " + n);
        return use(key, n.asLong());
    }

    public double number(String key, double dflt) {
        JsonNode n = get(key);
        if (n == null) return use(key, dflt);
        if (!n.isNumber()) throw error(key, "expected a number, got " + n);
        return use(key, n.asDouble());
    }

    public boolean bool(String key, boolean dflt) {
        JsonNode n = get(key);
        if (n == null) return use(key, dflt);
        if (!n.isBoolean()) throw error(key, "expected true or false, got " + n);
        return use(key, n.asBoolean());
    }

    /**
     * The resolved config for a run's config.yaml: every key a reader asked for, in the order asked, with the value
     * in force, defaults included. A key read twice (a list, else a string) keeps its last reading.
     */
    public Map<String, Object> resolved() {
        return new LinkedHashMap<>(used);
    }

    /** Wraps a record's own validation (which names the key) with the config's source. */
    public <T> T validated(java.util.function.Supplier<T> build) {
        try {
            return build.get();
        } catch (ConfigException e) {
            throw new ConfigException(source + ": " + e.getMessage(), e);
        }
    }

    /** Fails on any key that no reader asked for, suggesting the closest known key. */
    public void rejectUnknownKeys() {
        List<String> unknown = new ArrayList<>();
        for (Iterator<String> it = tree.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!read.contains(k)) unknown.add(k);
        }
        if (unknown.isEmpty()) return;
        String k = unknown.get(0);
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String known : read) {
            int d = distance(k, known);
            if (d < bestDistance) {
                bestDistance = d;
                best = known;
            }
        }
        String hint = best != null && bestDistance <= Math.max(2, k.length() / 3) ? " (did you mean '" + best + "'?)" : "";
        throw error(k, "unknown key" + hint);
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1], cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++)
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            int[] t = prev; prev = cur; cur = t;
        }
        return prev[b.length()];
    }

    /** True when the file or an override gives {@code key} a value (false when its default is in force). */
    public boolean given(String key) {
        JsonNode n = tree.get(key);
        return n != null && !n.isNull();
    }

    /**
     * Reads the loop's keys (HF TrainingArguments names), defaults from {@link TrainerConfig#defaults} except
     * {@code learning_rate}, whose default is the method's ({@code learningRate}).
     */
    public TrainerConfig trainerConfig(LearningRateDefault learningRate) {
        TrainerConfig d = TrainerConfig.defaults();
        learningRateSource = given("learning_rate") ? "set" : learningRate.citation();
        int maxSteps = integer("max_steps", d.maxSteps());
        double epochs = number("num_train_epochs", d.numTrainEpochs());
        int batch = integer("per_device_train_batch_size", d.perDeviceTrainBatchSize());
        int accumulation = integer("gradient_accumulation_steps", d.gradientAccumulationSteps());
        double lr = number("learning_rate", learningRate.value());
        String scheduler = string("lr_scheduler_type", d.lrSchedulerType());
        int warmup = integer("warmup_steps", d.warmupSteps());
        double warmupRatio = number("warmup_ratio", d.warmupRatio());
        double wd = number("weight_decay", d.weightDecay());
        double b1 = number("adam_beta1", d.adamBeta1()), b2 = number("adam_beta2", d.adamBeta2()), eps = number("adam_epsilon", d.adamEpsilon());
        double clip = number("max_grad_norm", d.maxGradNorm());
        long seed = longValue("seed", d.seed());
        int logging = integer("logging_steps", d.loggingSteps()), evalSteps = integer("eval_steps", d.evalSteps());
        int save = integer("save_steps", d.saveSteps()), limit = integer("save_total_limit", d.saveTotalLimit());
        String nan = string("nan_policy", d.nanPolicy());
        boolean bf16 = bool("bf16", d.bf16()), checkpointing = bool("gradient_checkpointing", d.gradientCheckpointing());
        return validated(() -> new TrainerConfig(maxSteps, epochs, batch, accumulation, lr, scheduler, warmup, warmupRatio, wd, b1, b2, eps,
                clip, seed, logging, evalSteps, save, limit, nan, bf16, checkpointing));
    }

    /** Where the learning rate in force came from: "set", or the method's default with its citation (null before {@link #trainerConfig}). */
    public String learningRateSource() {
        return learningRateSource;
    }

}
