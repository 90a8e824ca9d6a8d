package io.tether.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.AtomicFiles;
import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;
import io.tether.engine.Safetensors;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/**
 * LoRA (Hu et al. 2021): a frozen projection W gains a trainable low-rank update, y = Wx + s·B(A x), with A [r, in]
 * initialised like a linear layer, B [out, r] initialised to zero (so a fresh adapter changes nothing) and
 * s = α/r (or α/√r with rsLoRA). Adapters can be switched off for a forward (the reference of DPO, KTO, PPO and
 * GRPO is the policy without them), merged into W and unmerged, and saved in PEFT's layout so that HF PEFT loads
 * them unchanged.
 */
public final class LoraAdapters implements AutoCloseable {
    /**
     * PEFT's LoraConfig: {@code r}, {@code lora_alpha}, {@code lora_dropout}, {@code target_modules}, {@code use_rslora}.
     * Target modules are PEFT's list form, each a module name or a suffix of one after a dot (q_proj,
     * self_attn.q_proj, model.layers.0.mlp.up_proj), or "all-linear": every projection but the output head.
     */
    public record Config(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora) {
        public Config {
            if (r < 1) throw new ConfigException("key 'lora_r': must be >= 1, got " + r);
            if (!(alpha > 0)) throw new ConfigException("key 'lora_alpha': must be > 0");
            if (!(dropout >= 0 && dropout < 1)) throw new ConfigException("key 'lora_dropout': must be in [0, 1)");
            if (targetModules.isEmpty()) throw new ConfigException("key 'lora_target_modules': name at least one module (or all-linear)");
            targetModules = List.copyOf(targetModules);
        }

        public double scaling() {
            return useRslora ? alpha / Math.sqrt(r) : alpha / r;
        }
    }

    /** One adapted projection: A [r, in], B [out, r]. */
    private record Adapter(Tensor a, Tensor b) {}

    private final Config config;
    private final Map<String, Adapter> adapters = new LinkedHashMap<>();
    /** Projection weights by module path, and whether they are stored [in, out] (GPT-2's Conv1D). */
    private final Map<String, Tensor> baseWeights = new LinkedHashMap<>();
    private final Map<String, Boolean> transposed = new LinkedHashMap<>();
    /** Every module of the model that owns parameters, and their ancestors: what target names must tell apart. */
    private final java.util.Set<String> moduleNames = new java.util.TreeSet<>();
    private boolean enabled = true;
    private boolean merged;

    /** Draws A for every targeted projection of {@code model} (B = 0); the caller holds torch's seeded generator. */
    private void draw(CausalLM model) {
        for (String name : model.parameters().keySet())
            for (int dot = name.lastIndexOf('.'); dot > 0; dot = name.lastIndexOf('.', dot - 1)) moduleNames.add(name.substring(0, dot));
        for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
            String name = e.getKey();
            if (!name.endsWith(".weight") || e.getValue().dim() != 2) continue;
            String module = name.substring(0, name.length() - ".weight".length());
            if (!targets(module, model.config())) continue;
            boolean conv1d = model.config().family() == ModelConfig.Family.GPT2;
            long in = conv1d ? e.getValue().size(0) : e.getValue().size(1), out = conv1d ? e.getValue().size(1) : e.getValue().size(0);
            // A as PEFT initialises it (kaiming-uniform with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))), B zero.
            Tensor a = torch.rand(new long[] {config.r(), in}, Tensors.options(model.dtype())).mul(Tensors.scalar(2.0)).sub(Tensors.scalar(1.0))
                    .mul(Tensors.scalar(1.0 / Math.sqrt(in)));
            Tensor b = Tensors.zeros(model.dtype(), out, config.r());
            adapters.put(module, new Adapter(a, b));
            baseWeights.put(module, e.getValue());
            transposed.put(module, conv1d);
        }
    }

    private LoraAdapters(Config config) {
        this.config = config;
    }

    /** Fresh adapters on the matching projections of {@code model} (B = 0), attached to it. */
    public static LoraAdapters attach(CausalLM model, Config config, long seed) {
        LoraAdapters l = new LoraAdapters(config);
        Torch.seeded(seed, () -> {
            l.draw(model);
            return null;
        });
        if (l.adapters.isEmpty()) throw new ConfigException("key 'lora_target_modules': " + config.targetModules() + " matches no projection of " + model.config().architecture());
        model.attachLora(l);
        return l;
    }

    /**
     * PEFT's matching of a list (PEFT v0.20 {@code check_target_module_exists}): a module is targeted when it is
     * listed or ends with "." + a listed name; all-linear takes every projection but the output head and embeddings.
     */
    private boolean targets(String module, ModelConfig c) {
        String last = module.substring(module.lastIndexOf('.') + 1);
        if (module.equals("lm_head") || module.endsWith("wte") || module.endsWith("wpe") || module.endsWith("embed_tokens") || last.equals("score")) return false;
        if (allLinear(config.targetModules())) return true;
        for (String t : config.targetModules()) if (module.equals(t) || module.endsWith("." + t)) return true;
        return false;
    }

    /**
     * PEFT's shorthand, case-insensitive. A list holding it is how Tether wrote adapters before it wrote concrete
     * names: PEFT would take it as a module name and match nothing, Tether reads it as the shorthand it meant.
     */
    private static boolean allLinear(List<String> targets) {
        return targets.stream().anyMatch(INCLUDE_LINEAR_LAYERS::equalsIgnoreCase);
    }

    static final String INCLUDE_LINEAR_LAYERS = "all-linear";

    /** PEFT compresses a target list of at least this many names to the suffixes that tell them apart (MIN_TARGET_MODULES_FOR_OPTIMIZATION). */
    static final int MIN_TARGETS_TO_COMPRESS = 20;

    /**
     * {@code target_modules} as PEFT saves it: PEFT expands all-linear into the full names of the modules it
     * adapted and writes a list given by the user as given; a list of 20 or more names becomes the shortest suffixes
     * that still separate the targets from every other module (so all-linear on a real model saves q_proj, k_proj,
     * ...). Sorted, where PEFT writes a set in no fixed order.
     */
    List<String> savedTargetModules() {
        List<String> names = allLinear(config.targetModules()) ? new ArrayList<>(adapters.keySet()) : new ArrayList<>(new java.util.TreeSet<>(config.targetModules()));
        if (names.size() < MIN_TARGETS_TO_COMPRESS) return names.stream().sorted().toList();
        java.util.Set<String> others = new java.util.TreeSet<>(moduleNames);
        others.removeAll(adapters.keySet());
        return minimalSuffixes(names, others);
    }

    /**
     * The fewest dot-separated suffixes that cover every target and none of {@code others} (the behaviour of PEFT
     * v0.20's {@code _find_minimal_target_modules}): targets in the order of their suffixes, shortest first; a target
     * already covered adds nothing, else its shortest suffix that no other module ends with.
     */
    static List<String> minimalSuffixes(List<String> targets, java.util.Set<String> others) {
        java.util.Set<String> otherSuffixes = new java.util.HashSet<>();
        for (String o : others) otherSuffixes.addAll(suffixes(o));
        List<List<String>> bySuffixes = new ArrayList<>();
        for (String t : new java.util.TreeSet<>(targets)) bySuffixes.add(suffixes(t));
        bySuffixes.sort((x, y) -> {
            for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                int c = x.get(i).compareTo(y.get(i));
                if (c != 0) return c;
            }
            return Integer.compare(x.size(), y.size());
        });
        java.util.Set<String> required = new java.util.TreeSet<>();
        for (List<String> sfx : bySuffixes) {
            String target = sfx.get(sfx.size() - 1);
            if (required.stream().anyMatch(r -> target.endsWith("." + r))) continue;
            for (String candidate : sfx)
                if (!otherSuffixes.contains(candidate) && !required.contains(candidate)) {
                    required.add(candidate);
                    break;
                }
        }
        return required.isEmpty() ? targets.stream().sorted().toList() : List.copyOf(required);
    }

    /** "a.b.c" -> [c, b.c, a.b.c]. */
    private static List<String> suffixes(String name) {
        List<String> out = new ArrayList<>();
        for (int dot = name.lastIndexOf('.'); dot >= 0; dot = name.lastIndexOf('.', dot - 1)) {
            out.add(name.substring(dot + 1));
            if (dot == 0) break;
        }
        out.add(name);
        return out;
    }

    public Config config() { return config; }

    /** The trainable tensors under their PEFT names. */
    public Map<String, Tensor> parameters() {
        Map<String, Tensor> p = new LinkedHashMap<>();
        for (Map.Entry<String, Adapter> e : adapters.entrySet()) {
            p.put("base_model.model." + e.getKey() + ".lora_A.weight", e.getValue().a());
            p.put("base_model.model." + e.getKey() + ".lora_B.weight", e.getValue().b());
        }
        return p;
    }

    /** y + s·B(A·dropout(x)) when {@code module} is adapted, enabled and not merged; y otherwise. */
    Tensor apply(String module, Tensor x, Tensor y) {
        if (!enabled || merged) return y;
        Adapter ad = adapters.get(module);
        if (ad == null) return y;
        Tensor in = config.dropout() > 0 && ad.a().requires_grad() ? torch.dropout(x, config.dropout(), true) : x;
        return y.add(torch.linear(torch.linear(in, ad.a()), ad.b()).mul(Tensors.scalar(config.scaling())));
    }

    /** A region with the adapters off; closing it cannot fail, so callers need no checked-exception handling. */
    public interface Disabled extends AutoCloseable {
        @Override
        void close();
    }

    /** Switches adapters off until the returned scope closes (the base model is the reference). */
    public Disabled disabled() {
        boolean before = enabled;
        enabled = false;
        return () -> enabled = before;
    }

    /** W ← W + s·BA in place (transposed for Conv1D weights); forwards then skip the adapters. */
    public void merge() {
        if (merged) return;
        update(1);
        merged = true;
    }

    /** Undoes {@link #merge}. */
    public void unmerge() {
        if (!merged) return;
        update(-1);
        merged = false;
    }

    private void update(int sign) {
        try (StepScope s = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            for (Map.Entry<String, Adapter> e : adapters.entrySet()) {
                Tensor delta = e.getValue().b().matmul(e.getValue().a()).mul(Tensors.scalar(sign * config.scaling()));  // (out, in)
                Tensor w = baseWeights.get(e.getKey());
                w.add_(transposed.get(e.getKey()) ? delta.t() : delta);
            }
        }
    }

    /** Saves adapter_config.json and adapter_model.safetensors in PEFT's layout. */
    public void save(Path dir, String baseModel) throws IOException {
        Files.createDirectories(dir);
        ObjectNode c = Models.jsonMapper().createObjectNode();
        c.put("peft_type", "LORA");
        c.put("task_type", "CAUSAL_LM");
        c.put("base_model_name_or_path", baseModel);
        c.put("r", config.r());
        c.put("lora_alpha", config.alpha());
        c.put("lora_dropout", config.dropout());
        c.put("use_rslora", config.useRslora());
        c.put("bias", "none");
        c.put("fan_in_fan_out", transposed.values().stream().anyMatch(Boolean::booleanValue));
        var targets = c.putArray("target_modules");
        savedTargetModules().forEach(targets::add);
        Safetensors.write(dir.resolve("adapter_model.safetensors"), parameters(), Map.of("format", "pt"));
        AtomicFiles.write(dir.resolve("adapter_config.json"), w -> w.write(Models.jsonMapper().writerWithDefaultPrettyPrinter().writeValueAsString(c) + "\n"));
    }

    /** Loads a PEFT adapter directory onto {@code model} (its A and B replace fresh ones); every tensor must match. */
    public static LoraAdapters load(CausalLM model, Path dir) throws IOException {
        Path cfgFile = dir.resolve("adapter_config.json");
        JsonNode c;
        try {
            c = Models.jsonMapper().readTree(Files.readString(cfgFile));
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CheckpointException(cfgFile, null, "file not found");
        }
        if (!"LORA".equals(c.path("peft_type").asText())) throw new CheckpointException(cfgFile, null, "key 'peft_type': only LORA adapters are supported");
        // PEFT's two forms: a list of module names (or suffixes), or a string, which is the all-linear shorthand or a
        // regular expression that must match a module's full name.
        List<String> targets = new ArrayList<>();
        JsonNode t = c.get("target_modules");
        if (t != null && t.isArray()) t.forEach(x -> targets.add(x.asText()));
        else if (t != null && t.isTextual() && t.asText().equalsIgnoreCase(INCLUDE_LINEAR_LAYERS)) targets.add(INCLUDE_LINEAR_LAYERS);
        else if (t != null && t.isTextual()) targets.addAll(matchingModules(model, cfgFile, t.asText()));
        else throw new CheckpointException(cfgFile, null, "key 'target_modules': expected a list of module names or a string, got " + t);
        Config config = new Config(c.path("r").asInt(8), c.path("lora_alpha").asDouble(8), c.path("lora_dropout").asDouble(0), targets, c.path("use_rslora").asBoolean(false));
        LoraAdapters l = attach(model, config, 0);
        Safetensors.Reader r = Safetensors.open(dir.resolve("adapter_model.safetensors"));
        for (Map.Entry<String, Tensor> e : l.parameters().entrySet()) {
            if (!r.entries().containsKey(e.getKey())) throw new CheckpointException(r.file(), e.getKey(), "missing from the adapter");
            r.readInto(e.getKey(), e.getValue());
        }
        // A tensor no target claims would be dropped without a word, and the merged model would differ from PEFT's.
        for (String name : r.entries().keySet())
            if (!l.parameters().containsKey(name))
                throw new CheckpointException(r.file(), name, "adapter tensor of a module that target_modules " + targets + " does not select on " + model.config().architecture());
        return l;
    }

    /** The projections whose full module name the PEFT regular expression matches in full (PEFT's re.fullmatch). */
    private static List<String> matchingModules(CausalLM model, Path cfgFile, String regex) {
        java.util.regex.Pattern p;
        try {
            p = java.util.regex.Pattern.compile(regex);
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new CheckpointException(cfgFile, null, "key 'target_modules': not a valid regular expression: " + e.getDescription());
        }
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
            if (!e.getKey().endsWith(".weight") || e.getValue().dim() != 2) continue;
            String module = e.getKey().substring(0, e.getKey().length() - ".weight".length());
            if (p.matcher(module).matches()) out.add(module);
        }
        if (out.isEmpty()) throw new CheckpointException(cfgFile, null, "key 'target_modules': '" + regex + "' matches no module of " + model.config().architecture());
        return out;
    }

    @Override
    public void close() {
        for (Adapter a : adapters.values()) {
            a.a().close();
            a.b().close();
        }
    }

}
