package io.tether.model;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;
import io.tether.engine.DType;
import io.tether.engine.Safetensors;
import io.tether.engine.Tensors;
import io.tether.engine.Torch;

/** Loading, creating and saving causal LMs in Hugging Face layout. */
public final class Models {
    /** HF's default shard size for save_pretrained. */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;
    private static final String INDEX = "model.safetensors.index.json";
    /** Buffers some exporters store that are not parameters (causal-mask constants, cached rotary frequencies). */
    private static final Pattern IGNORED = Pattern.compile("(^|\\.)(attn\\.bias|attn\\.masked_bias|rotary_emb\\.inv_freq)$");
    /** Tokenizer and chat-template files copied along with a model. */
    private static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja");

    private Models() {}

    /**
     * Loads a model directory (config.json + model.safetensors or a sharded index) converting every weight to
     * {@code dtype}, in memory of its own: the model to train (fp32 masters from a bf16 checkpoint with F32).
     * Refuses pickle checkpoints and any tensor whose name or shape the config does not predict.
     */
    public static LoadedModel load(Path dir, DType dtype) {
        if (dtype == null) throw new ConfigException("compute dtype must be fp32, fp64 or bf16, got null");
        return load(dir, dtype, false);
    }

    /**
     * Loads a model that will never be trained (a reference, reward model, judge, or one that only generates) in
     * the dtype its weights are stored in, memory-mapped: a bf16 checkpoint stays bf16, computes in bf16 and costs
     * no copy (pages become resident as forwards touch them, shared with the page cache). An fp16 checkpoint, which
     * Tether does not compute in, loads as fp32 copies. Do not train the result: its weights alias the file's pages
     * (copy-on-write, so the file itself is never changed).
     */
    public static LoadedModel loadFrozen(Path dir) {
        return load(dir, null, true);
    }

    /**
     * As {@link #loadFrozen(Path)} but computing in {@code dtype}: weights stored in it are mapped, the others
     * converted (e.g. an fp32 reference from a bf16 checkpoint, to keep a caller's numbers in fp32).
     */
    public static LoadedModel loadFrozen(Path dir, DType dtype) {
        if (dtype == null) throw new ConfigException("compute dtype must be fp32, fp64 or bf16, got null");
        return load(dir, dtype, true);
    }

    /** {@code dtype} null means the weights' stored dtype; {@code frozen} keeps weights as views of the mapped files. */
    private static LoadedModel load(Path dir, DType dtype, boolean frozen) {
        Torch.init();
        if (!Files.isDirectory(dir)) throw new CheckpointException(dir, null, "model directory not found");
        if (dtype != null && (!dtype.isFloatingPoint() || dtype == DType.F16))
            throw new ConfigException("compute dtype must be fp32, fp64 or bf16, got " + dtype);
        ModelConfig config = ModelConfig.read(dir);
        List<Safetensors.Reader> files = openWeights(dir);
        Map<String, Safetensors.Reader> owner = new LinkedHashMap<>();
        for (Safetensors.Reader r : files) {
            for (String name : r.entries().keySet()) {
                Safetensors.Reader prev = owner.put(name, r);
                if (prev != null) throw new CheckpointException(r.file(), name, "also stored in " + prev.file().getFileName());
            }
        }
        String prefix = "";
        if (config.family() == ModelConfig.Family.GPT2) prefix = owner.keySet().stream().anyMatch(n -> n.startsWith("transformer.")) ? "transformer." : "";
        Map<String, long[]> expected = parameterShapes(config, prefix);
        Path where = files.size() == 1 ? files.get(0).file() : dir.resolve(INDEX);
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            Safetensors.Reader r = owner.get(e.getKey());
            if (r == null) throw new CheckpointException(where, e.getKey(), "missing; " + config.architecture() + " with this config.json needs it");
            long[] shape = r.entry(e.getKey()).shape();
            if (!java.util.Arrays.equals(shape, e.getValue()))
                throw new CheckpointException(r.file(), e.getKey(), "shape " + java.util.Arrays.toString(shape) + " does not match config.json, which implies "
                        + java.util.Arrays.toString(e.getValue()));
            if (!r.entry(e.getKey()).dtype().isFloatingPoint())
                throw new CheckpointException(r.file(), e.getKey(), "dtype " + r.entry(e.getKey()).dtype() + " is not a floating-point type");
        }
        Map<String, DType> storedDtypes = new LinkedHashMap<>();
        for (String name : owner.keySet()) {
            if (expected.containsKey(name)) continue;
            boolean tiedHead = name.equals("lm_head.weight") && config.tieWordEmbeddings();
            if (!tiedHead && !IGNORED.matcher(name).find())
                throw new CheckpointException(owner.get(name).file(), name, "unexpected tensor: " + config.architecture() + " with this config.json has no such parameter");
        }
        for (String name : expected.keySet()) storedDtypes.put(name, owner.get(name).entry(name).dtype());
        if (dtype == null) dtype = storedComputeDtype(expected, storedDtypes);
        // A frozen model maps each shard once and keeps views of it. Otherwise each weight is converted or copied
        // straight out of a mapping of its own, unmapped at once: no intermediate copy in the stored dtype, and
        // the file pages it touched leave this process's RSS, so a bf16 -> fp32 load peaks near the fp32 model.
        Map<Safetensors.Reader, Safetensors.Mapping> mappings = new LinkedHashMap<>();
        Map<String, Tensor> params = new LinkedHashMap<>();
        try {
            for (String name : expected.keySet()) {
                Safetensors.Mapping m = frozen ? mappings.computeIfAbsent(owner.get(name), Safetensors.Reader::map) : owner.get(name).map();
                Tensor view = m.view(name);
                if (Tensors.dtype(view) == dtype && frozen) {
                    params.put(name, view);
                    continue;
                }
                try (org.bytedeco.pytorch.NoGradGuard g = new org.bytedeco.pytorch.NoGradGuard()) {
                    params.put(name, Tensors.dtype(view) == dtype ? view.clone() : view.to(dtype.scalarType));
                }
                view.close();
                if (!frozen) m.close();
            }
        } catch (RuntimeException e) {
            params.values().forEach(Tensor::close);
            throw e;
        } finally {
            mappings.values().forEach(Safetensors.Mapping::close);
        }
        return new LoadedModel(build(config, dtype, params, prefix), dir, storedDtypes);
    }

    /**
     * The dtype a frozen model computes in: the one most of its elements are stored in, when Tether computes in
     * it (bf16, fp32, fp64); fp16 becomes fp32.
     */
    private static DType storedComputeDtype(Map<String, long[]> shapes, Map<String, DType> stored) {
        Map<DType, Long> elements = new java.util.EnumMap<>(DType.class);
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            long n = 1;
            for (long d : e.getValue()) n *= d;
            elements.merge(stored.get(e.getKey()), n, Long::sum);
        }
        DType most = elements.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(DType.F32);
        return most == DType.F16 ? DType.F32 : most;
    }

    /** A model plus where it came from: its directory and each weight's stored dtype (for an exact re-save). */
    public record LoadedModel(CausalLM model, Path source, Map<String, DType> storedDtypes) implements AutoCloseable {
        @Override public void close() { model.close(); }

        /** The ids generation ends at unless told otherwise, as HF decides: generation_config.json's eos_token_id, else config.json's. */
        public List<Long> defaultStopIds() {
            Path file = source.resolve("generation_config.json");
            if (!Files.isRegularFile(file)) return model.config().eosTokenIds();
            JsonNode eos;
            try {
                JsonNode root = ModelConfig.JSON.readTree(Files.readString(file));
                eos = root == null ? null : root.get("eos_token_id");
            } catch (IOException e) {
                throw new CheckpointException(file, null, "not valid JSON: " + e.getMessage(), e);
            }
            if (eos != null && eos.isIntegralNumber()) return List.of(eos.asLong());
            if (eos != null && eos.isArray()) {
                List<Long> ids = new ArrayList<>();
                eos.forEach(e -> ids.add(e.asLong()));
                return ids;
            }
            return model.config().eosTokenIds();
        }
    }

    /**
     * A freshly initialised model, as HF initialises one: weights ~ N(0, initializer_range), biases zero,
     * norm weights one (Gemma's zero). The same seed gives the same weights.
     */
    public static CausalLM create(ModelConfig config, DType dtype, long seed) {
        Torch.init();
        Map<String, long[]> shapes = parameterShapes(config, config.family() == ModelConfig.Family.GPT2 ? "transformer." : "");
        Map<String, Tensor> params = Torch.seeded(seed, () -> {
            Map<String, Tensor> drawn = new LinkedHashMap<>();
            for (Map.Entry<String, long[]> e : shapes.entrySet()) drawn.put(e.getKey(), initial(config, e.getKey(), e.getValue(), dtype));
            return drawn;
        });
        return build(config, dtype, params, config.family() == ModelConfig.Family.GPT2 ? "transformer." : "");
    }

    /** One freshly initialised weight, as {@link #create} draws it. */
    private static Tensor initial(ModelConfig config, String n, long[] shape, DType dtype) {
        if (n.endsWith(".bias")) return Tensors.zeros(dtype, shape);
        // Gemma's norms scale by (1 + weight), so HF initialises their weights to zero.
        if (n.contains("norm") && config.gemma() != null) return Tensors.zeros(dtype, shape);
        if (n.contains("norm") || n.contains("ln_")) return Tensors.ones(dtype, shape);
        // In place: an out-of-place product would leave the draw alive until the JVM collects its handle (rarely: the
        // heap stays tiny), a second copy of every weight in the process's peak RSS.
        return torch.randn(shape, Tensors.options(dtype)).mul_(Tensors.scalar(config.initializerRange()));
    }

    /**
     * Writes the checkpoint {@code create(config, dtype, seed)} would save, byte for byte, without holding the
     * model: weights are drawn in the same order and each shard is written and freed once complete, so a
     * real-size random checkpoint (benchmarks) needs about one shard of memory. Replaces {@code dir}.
     */
    public static void createCheckpoint(ModelConfig config, Path dir, DType dtype, long seed, long maxShardBytes) {
        Torch.init();
        Map<String, long[]> shapes = parameterShapes(config, config.family() == ModelConfig.Family.GPT2 ? "transformer." : "");
        Map<String, Long> sizes = new LinkedHashMap<>();
        shapes.forEach((k, v) -> {
            long n = dtype.bytes;
            for (long d : v) n *= d;
            sizes.put(k, n);
        });
        Path parent = dir.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(parent);
            tmp = Files.createTempDirectory(parent, "." + dir.getFileName() + ".tmp-");
            Path out = tmp;
            ObjectNode json = config.json().deepCopy();
            json.put("torch_dtype", dtype.torchName());
            writeJson(tmp.resolve("config.json"), json);
            writeJson(tmp.resolve("generation_config.json"), generationConfig(config));
            Torch.seeded(seed, () -> {
                try {
                    writeWeights(out, sizes, n -> initial(config, n, shapes.get(n), dtype), true, maxShardBytes);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                return null;
            });
            replaceDirectory(tmp, dir);
            tmp = null;
        } catch (IOException | java.io.UncheckedIOException e) {
            throw new CheckpointException(dir, null, "cannot write: " + e.getMessage(), e);
        } finally {
            if (tmp != null) deleteRecursively(tmp);
        }
    }

    /**
     * A reward model on {@code lm}'s backbone: the same weights (copied) without the LM head, plus a fresh
     * {@code score.weight} [1, hidden] ~ N(0, initializer_range), as HF initialises a sequence-classification head.
     */
    public static CausalLM withRewardHead(CausalLM lm, long seed) {
        return withHead(lm, lm.config().asRewardModel(), seed);
    }

    /** A process reward model on {@code lm}'s backbone: a fresh 2-label token-classification head (bias zero). */
    public static CausalLM withProcessRewardHead(CausalLM lm, long seed) {
        return withHead(lm, lm.config().asProcessRewardModel(), seed);
    }

    private static CausalLM withHead(CausalLM lm, ModelConfig config, long seed) {
        String prefix = config.family() == ModelConfig.Family.GPT2
                ? (lm.parameters().keySet().stream().anyMatch(n -> n.startsWith("transformer.")) ? "transformer." : "") : "";
        Map<String, long[]> shapes = parameterShapes(config, prefix);
        Map<String, Tensor> params = Torch.seeded(seed, () -> {
            Map<String, Tensor> drawn = new LinkedHashMap<>();
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                Tensor src = lm.parameters().get(e.getKey());
                if (src != null) drawn.put(e.getKey(), src.detach().clone());
                else if (e.getKey().equals(config.headName() + ".weight")) drawn.put(e.getKey(), torch.randn(e.getValue(), Tensors.options(lm.dtype())).mul(Tensors.scalar(config.initializerRange())));
                else if (e.getKey().equals(config.headName() + ".bias")) drawn.put(e.getKey(), Tensors.zeros(lm.dtype(), e.getValue()));
                else throw new IllegalStateException("backbone lacks " + e.getKey());
            }
            return drawn;
        });
        return build(config, lm.dtype(), params, prefix);
    }

    static Map<String, long[]> parameterShapes(ModelConfig config, String prefix) {
        return switch (config.family()) {
            case LLAMA -> LlamaModel.parameterShapes(config);
            case GPT2 -> Gpt2Model.parameterShapes(config, prefix);
        };
    }

    private static CausalLM build(ModelConfig config, DType dtype, Map<String, Tensor> params, String prefix) {
        return switch (config.family()) {
            case LLAMA -> new LlamaModel(config, dtype, params);
            case GPT2 -> new Gpt2Model(config, dtype, params, prefix);
        };
    }

    private static List<Safetensors.Reader> openWeights(Path dir) {
        Path single = dir.resolve("model.safetensors");
        Path index = dir.resolve(INDEX);
        if (Files.isRegularFile(single)) return List.of(Safetensors.open(single));
        if (Files.isRegularFile(index)) {
            JsonNode root;
            try {
                root = ModelConfig.JSON.readTree(Files.readString(index));
            } catch (IOException e) {
                throw new CheckpointException(index, null, "not valid JSON: " + e.getMessage(), e);
            }
            JsonNode map = root == null ? null : root.get("weight_map");
            if (map == null || !map.isObject()) throw new CheckpointException(index, null, "key 'weight_map': missing or not an object");
            Map<String, Safetensors.Reader> shards = new TreeMap<>();
            Map<String, String> claimed = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : map.properties()) {
                String shard = e.getValue().asText();
                if (shard.contains("/") || shard.contains("\\") || shard.startsWith("."))
                    throw new CheckpointException(index, e.getKey(), "shard name '" + shard + "' must be a plain file name in the model directory");
                claimed.put(e.getKey(), shard);
                if (!shards.containsKey(shard)) shards.put(shard, Safetensors.open(dir.resolve(shard)));
            }
            for (Map.Entry<String, String> e : claimed.entrySet()) {
                if (!shards.get(e.getValue()).entries().containsKey(e.getKey()))
                    throw new CheckpointException(dir.resolve(e.getValue()), e.getKey(), "listed in " + INDEX + " but not in this shard");
            }
            for (Safetensors.Reader r : shards.values()) {
                for (String name : r.entries().keySet())
                    if (!r.file().getFileName().toString().equals(claimed.get(name)))
                        throw new CheckpointException(r.file(), name, "stored here but " + INDEX + " does not list it for this shard");
            }
            return new ArrayList<>(shards.values());
        }
        if (Files.exists(dir.resolve("pytorch_model.bin")) || Files.exists(dir.resolve("pytorch_model.bin.index.json")))
            throw new CheckpointException(dir.resolve("pytorch_model.bin"), null,
                    "pickle checkpoints are refused (unpickling runs arbitrary code); convert the model to safetensors first");
        throw new CheckpointException(dir, null, "no model.safetensors or " + INDEX + " found");
    }

    /**
     * Saves in HF layout: config.json (torch_dtype updated), generation_config.json, the weights as safetensors
     * (sharded with an index past {@code maxShardBytes}), and the tokenizer files of {@code tokenizerSource}.
     * Everything is written into a temporary sibling directory that replaces {@code dir} only when complete.
     *
     * @param dtype        storage dtype for every weight, or null to keep each weight's {@code storedDtypes} entry
     *                     (the model's compute dtype where absent)
     */
    public static void save(CausalLM model, Path dir, DType dtype, Map<String, DType> storedDtypes,
                            Path tokenizerSource, long maxShardBytes) {
        Path parent = dir.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(parent);
            tmp = Files.createTempDirectory(parent, "." + dir.getFileName() + ".tmp-");
            Map<String, Tensor> out = new LinkedHashMap<>();
            DType configDtype = dtype != null ? dtype : model.dtype();
            for (Map.Entry<String, Tensor> e : model.parameters().entrySet()) {
                DType target = dtype != null ? dtype : storedDtypes != null && storedDtypes.containsKey(e.getKey()) ? storedDtypes.get(e.getKey()) : model.dtype();
                if (dtype == null && storedDtypes != null && storedDtypes.containsKey(e.getKey())) configDtype = target;
                Tensor t = e.getValue().detach();
                out.put(e.getKey(), Tensors.dtype(t) == target ? t : t.to(target.scalarType));
            }
            ObjectNode config = model.config().json().deepCopy();
            config.put("torch_dtype", configDtype.torchName());
            writeJson(tmp.resolve("config.json"), config);
            Path sourceGeneration = tokenizerSource == null ? null : tokenizerSource.resolve("generation_config.json");
            if (sourceGeneration != null && Files.isRegularFile(sourceGeneration)) Files.copy(sourceGeneration, tmp.resolve("generation_config.json"));
            else writeJson(tmp.resolve("generation_config.json"), generationConfig(model.config()));
            writeWeights(tmp, out, maxShardBytes);
            if (tokenizerSource != null) {
                for (String f : TOKENIZER_FILES) {
                    Path src = tokenizerSource.resolve(f);
                    if (Files.isRegularFile(src)) Files.copy(src, tmp.resolve(f));
                }
            }
            replaceDirectory(tmp, dir);
            tmp = null;
        } catch (IOException e) {
            throw new CheckpointException(dir, null, "cannot save: " + e.getMessage(), e);
        } finally {
            if (tmp != null) deleteRecursively(tmp);
        }
    }

    /**
     * Saves a loaded model back as it came: same dtypes (a bf16 checkpoint stays bf16 whether it was loaded frozen
     * or as fp32 masters), generation config and tokenizer files, sharded at HF's default 5 GB.
     */
    public static void save(LoadedModel loaded, Path dir, DType dtype) {
        save(loaded, dir, dtype, DEFAULT_MAX_SHARD_BYTES);
    }

    /** As {@link #save(LoadedModel, Path, DType)} with shards of at most {@code maxShardBytes} (HF's max_shard_size). */
    public static void save(LoadedModel loaded, Path dir, DType dtype, long maxShardBytes) {
        save(loaded.model(), dir, dtype, loaded.storedDtypes(), loaded.source(), maxShardBytes);
    }

    private static ObjectNode generationConfig(ModelConfig c) {
        ObjectNode g = ModelConfig.JSON.createObjectNode();
        if (c.bosTokenId() != null) g.put("bos_token_id", c.bosTokenId());
        if (c.eosTokenIds().size() == 1) g.put("eos_token_id", c.eosTokenIds().get(0));
        else if (!c.eosTokenIds().isEmpty()) c.eosTokenIds().forEach(g.putArray("eos_token_id")::add);
        if (c.padTokenId() != null) g.put("pad_token_id", c.padTokenId());
        return g;
    }

    private static void writeWeights(Path dir, Map<String, Tensor> tensors, long maxShardBytes) throws IOException {
        Map<String, Long> sizes = new LinkedHashMap<>();
        tensors.forEach((k, v) -> sizes.put(k, v.nbytes()));
        writeWeights(dir, sizes, tensors::get, false, maxShardBytes);
    }

    /**
     * Writes tensors named in {@code sizes} (state-dict order, bytes each) as one file or HF shards plus index,
     * asking {@code tensorOf} for each in that order and writing each shard as soon as it is complete, so with
     * {@code closeWritten} only about a shard is in memory at a time.
     */
    private static void writeWeights(Path dir, Map<String, Long> sizes, java.util.function.Function<String, Tensor> tensorOf,
                                     boolean closeWritten, long maxShardBytes) throws IOException {
        Map<String, String> meta = Map.of("format", "pt");
        long total = 0;
        for (long n : sizes.values()) total += n;
        List<List<String>> shards = new ArrayList<>();
        if (total <= maxShardBytes) {
            shards.add(new ArrayList<>(sizes.keySet()));
        } else {
            // HF's sharding (huggingface_hub 0.2x split_state_dict_into_shards_factory, which save_pretrained uses):
            // fill shards in state-dict order and start a new one when the next tensor would overflow; a tensor
            // larger than the limit gets a shard of its own at once, ahead of the shard still being filled.
            List<String> current = new ArrayList<>();
            long size = 0;
            for (Map.Entry<String, Long> e : sizes.entrySet()) {
                long n = e.getValue();
                if (n > maxShardBytes) {
                    shards.add(List.of(e.getKey()));
                    continue;
                }
                if (size + n > maxShardBytes) {
                    shards.add(current);
                    current = new ArrayList<>();
                    size = 0;
                }
                current.add(e.getKey());
                size += n;
            }
            if (!current.isEmpty()) shards.add(current);
        }
        boolean single = shards.size() == 1 && total <= maxShardBytes;
        Map<String, Integer> shardOf = new LinkedHashMap<>();
        int[] missing = new int[shards.size()];
        for (int i = 0; i < shards.size(); i++) {
            for (String k : shards.get(i)) shardOf.put(k, i);
            missing[i] = shards.get(i).size();
        }
        Map<String, String> sorted = new TreeMap<>();
        Map<String, Tensor> ready = new LinkedHashMap<>();
        for (String k : sizes.keySet()) {
            ready.put(k, tensorOf.apply(k));
            int i = shardOf.get(k);
            if (--missing[i] > 0) continue;
            String name = single ? "model.safetensors" : String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            Map<String, Tensor> shard = new LinkedHashMap<>();
            for (String n : shards.get(i)) shard.put(n, ready.get(n));
            Safetensors.write(dir.resolve(name), shard, meta);
            for (String n : shards.get(i)) {
                sorted.put(n, name);
                Tensor t = ready.remove(n);
                if (closeWritten) t.close();
            }
        }
        if (single) return;
        ObjectNode index = ModelConfig.JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode weightMap = index.putObject("weight_map");
        sorted.forEach(weightMap::put);
        // As save_pretrained writes it: json.dumps(index, indent=2, sort_keys=True) + "\n".
        var printer = new com.fasterxml.jackson.core.util.DefaultPrettyPrinter()
                .withSeparators(com.fasterxml.jackson.core.util.Separators.createDefaultInstance()
                        .withObjectFieldValueSpacing(com.fasterxml.jackson.core.util.Separators.Spacing.AFTER))
                .withObjectIndenter(new com.fasterxml.jackson.core.util.DefaultIndenter("  ", "\n"));
        Files.writeString(dir.resolve(INDEX), ModelConfig.JSON.writer(printer).writeValueAsString(index) + "\n");
    }

    static void writeJson(Path file, JsonNode node) throws IOException {
        Files.writeString(file, ModelConfig.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node) + "\n");
    }

    /** Moves a finished directory into place; an existing one is moved aside first and deleted after. */
    private static void replaceDirectory(Path finished, Path dir) throws IOException {
        Path old = null;
        if (Files.exists(dir)) {
            old = dir.resolveSibling("." + dir.getFileName() + ".old-" + System.nanoTime());
            Files.move(dir, old);
        }
        Files.move(finished, dir);
        if (old != null) deleteRecursively(old);
    }

    static void deleteRecursively(Path p) {
        try {
            if (Files.isDirectory(p) && !Files.isSymbolicLink(p)) {
                try (DirectoryStream<Path> s = Files.newDirectoryStream(p)) {
                    for (Path c : s) deleteRecursively(c);
                }
            }
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // Best effort: a leftover temporary directory is harmless and named as such.
        }
    }

    /** The JSON mapper the model layer reads and writes configs with. */
    public static com.fasterxml.jackson.databind.ObjectMapper jsonMapper() {
        return ModelConfig.JSON;
    }
}
