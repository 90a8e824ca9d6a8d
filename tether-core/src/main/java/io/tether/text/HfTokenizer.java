package io.tether.text;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.engine.CheckpointException;
import io.tether.engine.ConfigException;

/**
 * Any Hugging Face {@code tokenizer.json}, run by HF's own Rust tokenizers through DJL's binding (which loads no
 * DJL engine, so no second libtorch). The binding ignores tokenizer_config.json, so the special tokens, their ids
 * and {@code model_max_length} are read here, and token&lt;-&gt;id lookups come from the vocabulary in the file.
 */
public final class HfTokenizer implements Tokenizer {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** tokenizer.json files run to tens of MB (Llama-3: 9 MB, Qwen: 11 MB); refuse anything absurd. */
    private static final long MAX_TOKENIZER_BYTES = 256L << 20;

    private final HuggingFaceTokenizer tokenizer;
    private final Path file;
    private final Map<String, Long> tokenToId;
    private final Map<Long, String> idToToken;
    private final SpecialTokens specials;
    private final int modelMaxLength;
    private final boolean addBos, addEos;
    private final boolean cleanUpTokenizationSpaces;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, Path file, Map<String, Long> tokenToId, SpecialTokens specials, int modelMaxLength,
                        boolean addBos, boolean addEos, boolean cleanUpTokenizationSpaces) {
        this.cleanUpTokenizationSpaces = cleanUpTokenizationSpaces;
        this.addBos = addBos;
        this.addEos = addEos;
        this.tokenizer = tokenizer;
        this.file = file;
        this.tokenToId = tokenToId;
        this.idToToken = new HashMap<>();
        tokenToId.forEach((t, id) -> idToToken.put(id, t));
        this.specials = specials;
        this.modelMaxLength = modelMaxLength;
    }

    /** Loads {@code dir/tokenizer.json} with {@code dir/tokenizer_config.json} and {@code special_tokens_map.json} if present. */
    public static HfTokenizer load(Path dir) {
        Path config = dir.resolve("tokenizer_config.json");
        return load(dir.resolve("tokenizer.json"), Files.isRegularFile(config) ? config : null);
    }

    public static HfTokenizer load(Path tokenizerJson, Path tokenizerConfig) {
        // The binding would otherwise try to reach the network for some resources.
        System.setProperty("ai.djl.offline", "true");
        JsonNode root = readJson(tokenizerJson, true);
        Map<String, Long> vocab = vocabulary(tokenizerJson, root);
        JsonNode config = tokenizerConfig == null ? null : readJson(tokenizerConfig, true);
        Path mapFile = tokenizerJson.resolveSibling("special_tokens_map.json");
        JsonNode map = Files.isRegularFile(mapFile) ? readJson(mapFile, false) : null;
        SpecialTokens specials = specialTokens(tokenizerConfig != null ? tokenizerConfig : mapFile, config, map, vocab);
        int maxLength = Integer.MAX_VALUE;
        if (config != null && config.has("model_max_length") && config.get("model_max_length").isNumber()) {
            double v = config.get("model_max_length").asDouble();
            if (v > 0 && v < Integer.MAX_VALUE) maxLength = (int) v;
        }
        Map<String, String> options = new HashMap<>();
        options.put("truncation", "false");
        options.put("padding", "false");
        options.put("addSpecialTokens", "true");
        HuggingFaceTokenizer tk;
        try {
            tk = HuggingFaceTokenizer.newInstance(tokenizerJson, options);
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(tokenizerJson, null, "HF tokenizers cannot load it: " + e.getMessage(), e);
        }
        boolean addBos = config != null && config.path("add_bos_token").asBoolean(false) && specials.bosId() != null;
        boolean addEos = config != null && config.path("add_eos_token").asBoolean(false) && specials.eosId() != null;
        boolean cleanUp = config != null && config.path("clean_up_tokenization_spaces").asBoolean(false);
        return new HfTokenizer(tk, tokenizerJson, vocab, specials, maxLength, addBos, addEos, cleanUp);
    }

    private static JsonNode readJson(Path file, boolean required) {
        try {
            if (Files.size(file) > MAX_TOKENIZER_BYTES) throw new CheckpointException(file, null, "larger than " + (MAX_TOKENIZER_BYTES >> 20) + " MB");
            JsonNode n = JSON.readTree(Files.readString(file));
            if (n == null || !n.isObject()) throw new CheckpointException(file, null, "expected a JSON object");
            return n;
        } catch (NoSuchFileException e) {
            if (!required) return null;
            throw new CheckpointException(file, null, "file not found");
        } catch (IOException e) {
            throw new CheckpointException(file, null, "not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), e);
        }
    }

    /** token -> id from the model's vocabulary (BPE, WordPiece, WordLevel: an object; Unigram: a list) and added tokens. */
    private static Map<String, Long> vocabulary(Path file, JsonNode root) {
        Map<String, Long> vocab = new LinkedHashMap<>();
        JsonNode model = root.get("model");
        JsonNode v = model == null ? null : model.get("vocab");
        if (v == null) throw new CheckpointException(file, null, "key 'model.vocab': missing");
        if (v.isObject()) {
            for (Map.Entry<String, JsonNode> e : v.properties()) {
                if (!e.getValue().canConvertToLong()) throw new CheckpointException(file, null, "key 'model.vocab': id of '" + e.getKey() + "' is not an integer");
                vocab.put(e.getKey(), e.getValue().asLong());
            }
        } else if (v.isArray()) {
            for (int i = 0; i < v.size(); i++) vocab.put(v.get(i).get(0).asText(), (long) i);
        } else {
            throw new CheckpointException(file, null, "key 'model.vocab': expected an object or a list");
        }
        JsonNode added = root.get("added_tokens");
        if (added != null && added.isArray())
            for (JsonNode a : added) vocab.put(a.get("content").asText(), a.get("id").asLong());
        return vocab;
    }

    private static String tokenString(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.has("content")) return n.get("content").asText();
        return null;
    }

    /** Named special tokens from tokenizer_config.json, then special_tokens_map.json; each must be in the vocabulary. */
    private static SpecialTokens specialTokens(Path source, JsonNode config, JsonNode map, Map<String, Long> vocab) {
        Map<String, String> all = new LinkedHashMap<>();
        for (JsonNode n : new JsonNode[] {map, config}) {   // config wins: HF reads it last
            if (n == null) continue;
            for (Map.Entry<String, JsonNode> e : n.properties()) {
                if (!e.getKey().endsWith("_token")) continue;
                String s = tokenString(e.getValue());
                if (s == null) {
                    all.remove(e.getKey());
                    continue;
                }
                if (!vocab.containsKey(s)) throw new CheckpointException(source, null, "key '" + e.getKey() + "': special token '" + s + "' is not in the vocabulary");
                all.put(e.getKey(), s);
            }
        }
        String bos = all.get("bos_token"), eos = all.get("eos_token"), pad = all.get("pad_token"), unk = all.get("unk_token");
        return new SpecialTokens(bos, bos == null ? null : vocab.get(bos), eos, eos == null ? null : vocab.get(eos),
                pad, pad == null ? null : vocab.get(pad), unk, unk == null ? null : vocab.get(unk), Map.copyOf(all));
    }

    public Path file() { return file; }

    @Override
    public long[] encode(String text, boolean addSpecialTokens) {
        return withConfiguredSpecials(tokenizer.encode(text, addSpecialTokens, false).getIds(), addSpecialTokens);
    }

    @Override
    public List<long[]> encodeBatch(List<String> texts, boolean addSpecialTokens) {
        ai.djl.huggingface.tokenizers.Encoding[] enc = tokenizer.batchEncode(texts, addSpecialTokens, false);
        List<long[]> out = new ArrayList<>(enc.length);
        for (ai.djl.huggingface.tokenizers.Encoding e : enc) out.add(withConfiguredSpecials(e.getIds(), addSpecialTokens));
        return out;
    }

    /**
     * tokenizer_config.json's {@code add_bos_token}/{@code add_eos_token}, which transformers applies by rewriting
     * the post-processor (LlamaTokenizerFast.update_post_processor): added here when the file's own post-processor
     * did not already add them.
     */
    private long[] withConfiguredSpecials(long[] ids, boolean addSpecialTokens) {
        if (!addSpecialTokens || (!addBos && !addEos)) return ids;
        boolean bos = addBos && (ids.length == 0 || ids[0] != specials.bosId());
        boolean eos = addEos && (ids.length == 0 || ids[ids.length - 1] != specials.eosId());
        if (!bos && !eos) return ids;
        long[] out = new long[ids.length + (bos ? 1 : 0) + (eos ? 1 : 0)];
        if (bos) out[0] = specials.bosId();
        System.arraycopy(ids, 0, out, bos ? 1 : 0, ids.length);
        if (eos) out[out.length - 1] = specials.eosId();
        return out;
    }

    @Override
    public Tokenizer.Encoding encodeWithOffsets(String text, boolean addSpecialTokens) {
        ai.djl.huggingface.tokenizers.Encoding e = tokenizer.encode(text, addSpecialTokens, false);
        int[][] s = spans(e);
        return new Tokenizer.Encoding(e.getIds(), s[0], s[1]);
    }

    @Override
    public String decode(long[] ids, boolean skipSpecialTokens) {
        for (long id : ids) checkId(id);
        String text = tokenizer.decode(ids, skipSpecialTokens);
        return cleanUpTokenizationSpaces ? cleanUp(text) : text;
    }

    /** transformers' {@code clean_up_tokenization}: drops the space before punctuation and English contractions. */
    static String cleanUp(String s) {
        return s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",").replace(" ' ", "'")
                .replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s").replace(" 've", "'ve").replace(" 're", "'re");
    }

    @Override
    public OptionalLong tokenToId(String token) {
        Long id = tokenToId.get(token);
        return id == null ? OptionalLong.empty() : OptionalLong.of(id);
    }

    @Override
    public String idToToken(long id) {
        checkId(id);
        return idToToken.get(id);
    }

    private void checkId(long id) {
        if (!idToToken.containsKey(id)) throw new ConfigException("token id " + id + " is not in the vocabulary of " + file);
    }

    @Override
    public int vocabSize() {
        long max = -1;
        for (long id : idToToken.keySet()) max = Math.max(max, id);
        return (int) (max + 1);
    }

    @Override
    public SpecialTokens specialTokens() { return specials; }

    @Override
    public int modelMaxLength() { return modelMaxLength; }

    @Override
    public void close() {
        tokenizer.close();
    }

    static int[][] spans(ai.djl.huggingface.tokenizers.Encoding e) {
        CharSpan[] spans = e.getCharTokenSpans();
        int[] starts = new int[spans.length], ends = new int[spans.length];
        for (int i = 0; i < spans.length; i++) {
            starts[i] = spans[i] == null ? -1 : spans[i].getStart();
            ends[i] = spans[i] == null ? -1 : spans[i].getEnd();
        }
        return new int[][] {starts, ends};
    }
}
