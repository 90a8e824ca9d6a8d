package io.tether.text;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;

/**
 * The simplest tokenizer for models trained from scratch: ids 0-255 are the UTF-8 bytes of the text, then a few
 * special tokens (by default {@code <|bos|>}=256, {@code <|eos|>}=257, {@code <|pad|>}=258). Special-token strings in
 * the text become their ids, as HF's added tokens do. {@link #save} writes an HF tokenizer.json (byte-level BPE
 * without merges) that HF's own tokenizers, and so {@link HfTokenizer}, encode to exactly the same ids.
 */
public final class ByteTokenizer implements Tokenizer {
    public static final List<String> DEFAULT_SPECIALS = List.of("<|bos|>", "<|eos|>", "<|pad|>");
    private final List<String> specials;

    public ByteTokenizer() {
        this(DEFAULT_SPECIALS);
    }

    /** Specials get ids 256, 257, ...; the first three are bos, eos and pad. */
    public ByteTokenizer(List<String> specials) {
        if (specials.size() < 3) throw new IllegalArgumentException("need at least bos, eos and pad special tokens");
        for (String s : specials) if (s.isEmpty()) throw new IllegalArgumentException("empty special token");
        this.specials = List.copyOf(specials);
    }

    @Override
    public long[] encode(String text, boolean addSpecialTokens) {
        List<Long> ids = new ArrayList<>();
        if (addSpecialTokens) ids.add(256L);
        int i = 0;
        StringBuilder plain = new StringBuilder();
        outer:
        while (i < text.length()) {
            for (int s = 0; s < specials.size(); s++) {
                if (text.startsWith(specials.get(s), i)) {
                    flush(plain, ids);
                    ids.add(256L + s);
                    i += specials.get(s).length();
                    continue outer;
                }
            }
            plain.append(text.charAt(i++));
        }
        flush(plain, ids);
        long[] out = new long[ids.size()];
        for (int k = 0; k < out.length; k++) out[k] = ids.get(k);
        return out;
    }

    private static void flush(StringBuilder plain, List<Long> ids) {
        for (byte b : plain.toString().getBytes(StandardCharsets.UTF_8)) ids.add((long) (b & 0xff));
        plain.setLength(0);
    }

    @Override
    public List<long[]> encodeBatch(List<String> texts, boolean addSpecialTokens) {
        List<long[]> out = new ArrayList<>(texts.size());
        for (String t : texts) out.add(encode(t, addSpecialTokens));
        return out;
    }

    @Override
    public Encoding encodeWithOffsets(String text, boolean addSpecialTokens) {
        long[] ids = encode(text, addSpecialTokens);
        int[] starts = new int[ids.length], ends = new int[ids.length];
        int k = 0, i = 0;
        if (addSpecialTokens) { starts[0] = 0; ends[0] = 0; k = 1; }
        while (k < ids.length) {
            if (ids[k] >= 256) {
                String s = specials.get((int) (ids[k] - 256));
                starts[k] = i;
                ends[k] = i + s.length();
                i += s.length();
                k++;
                continue;
            }
            int cp = text.codePointAt(i), n = Character.charCount(cp);
            int bytes = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8).length;
            for (int b = 0; b < bytes && k < ids.length; b++, k++) {
                starts[k] = i;
                ends[k] = i + n;
            }
            i += n;
        }
        return new Encoding(ids, starts, ends);
    }

    @Override
    public String decode(long[] ids, boolean skipSpecialTokens) {
        StringBuilder out = new StringBuilder();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (long id : ids) {
            if (id < 0 || id >= vocabSize()) throw new ConfigException("token id " + id + " is outside the byte tokenizer's vocabulary [0, " + vocabSize() + ")");
            if (id < 256) {
                bytes.write((int) id);
                continue;
            }
            out.append(utf8(bytes.toByteArray()));
            bytes.reset();
            if (!skipSpecialTokens) out.append(specials.get((int) (id - 256)));
        }
        return out.append(utf8(bytes.toByteArray())).toString();
    }

    /** Invalid UTF-8 becomes U+FFFD, as HF's byte-level decoder does. */
    private static String utf8(byte[] b) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPLACE)
                    .onUnmappableCharacter(CodingErrorAction.REPLACE).decode(java.nio.ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public OptionalLong tokenToId(String token) {
        int s = specials.indexOf(token);
        if (s >= 0) return OptionalLong.of(256 + s);
        int cp = token.codePointCount(0, token.length()) == 1 ? token.codePointAt(0) : -1;
        Integer b = cp < 0 ? null : unicodeToByte().get(cp);
        return b == null ? OptionalLong.empty() : OptionalLong.of(b);
    }

    @Override
    public String idToToken(long id) {
        if (id < 0 || id >= vocabSize()) throw new ConfigException("token id " + id + " is outside the byte tokenizer's vocabulary [0, " + vocabSize() + ")");
        return id < 256 ? new String(Character.toChars(byteToUnicode()[(int) id])) : specials.get((int) (id - 256));
    }

    @Override
    public int vocabSize() { return 256 + specials.size(); }

    @Override
    public SpecialTokens specialTokens() {
        Map<String, String> all = new LinkedHashMap<>();
        all.put("bos_token", specials.get(0));
        all.put("eos_token", specials.get(1));
        all.put("pad_token", specials.get(2));
        return new SpecialTokens(specials.get(0), 256L, specials.get(1), 257L, specials.get(2), 258L, null, null, Map.copyOf(all));
    }

    @Override
    public int modelMaxLength() { return Integer.MAX_VALUE; }

    /**
     * GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to code points from 256 up, so every
     * byte has a visible, non-whitespace character (what byte-level BPE vocabularies store).
     */
    static int[] byteToUnicode() {
        int[] map = new int[256];
        boolean[] printable = new boolean[256];
        for (int b = '!'; b <= '~'; b++) printable[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) printable[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) printable[b] = true;
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = printable[b] ? b : next++;
        return map;
    }

    private static Map<Integer, Integer> unicodeToByte() {
        Map<Integer, Integer> m = new LinkedHashMap<>();
        int[] f = byteToUnicode();
        for (int b = 0; b < 256; b++) m.put(f[b], b);
        return m;
    }

    /** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json that HF tools load unchanged. */
    public void save(Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int s = 0; s < specials.size(); s++) {
            ObjectNode a = added.addObject();
            a.put("id", 256 + s);
            a.put("content", specials.get(s));
            a.put("single_word", false);
            a.put("lstrip", false);
            a.put("rstrip", false);
            a.put("normalized", false);
            a.put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "ByteLevel");
        pre.put("add_prefix_space", false);
        pre.put("trim_offsets", true);
        pre.put("use_regex", false);
        // BOS through the post-processor, as Meta's Llama-3 tokenizer.json does it, so every HF tool adds it.
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", specials.get(0)).put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = post.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", specials.get(0)).put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", specials.get(0)).put("type_id", 1);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode bos = post.putObject("special_tokens").putObject(specials.get(0));
        bos.put("id", specials.get(0));
        bos.putArray("ids").add(256);
        bos.putArray("tokens").add(specials.get(0));
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "ByteLevel");
        dec.put("add_prefix_space", false);
        dec.put("trim_offsets", true);
        dec.put("use_regex", false);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        int[] f = byteToUnicode();
        for (int b = 0; b < 256; b++) vocab.put(new String(Character.toChars(f[b])), b);
        model.putArray("merges");
        ObjectNode config = json.createObjectNode();
        config.put("tokenizer_class", "PreTrainedTokenizerFast");
        config.put("bos_token", specials.get(0));
        config.put("eos_token", specials.get(1));
        config.put("pad_token", specials.get(2));
        config.put("clean_up_tokenization_spaces", false);
        config.put("model_max_length", 1_000_000_000);
        ObjectNode map = json.createObjectNode();
        map.put("bos_token", specials.get(0));
        map.put("eos_token", specials.get(1));
        map.put("pad_token", specials.get(2));
        Files.createDirectories(dir);
        AtomicFiles.write(dir.resolve("tokenizer.json"), w -> w.write(json.writerWithDefaultPrettyPrinter().writeValueAsString(root)));
        AtomicFiles.write(dir.resolve("tokenizer_config.json"), w -> w.write(json.writerWithDefaultPrettyPrinter().writeValueAsString(config)));
        AtomicFiles.write(dir.resolve("special_tokens_map.json"), w -> w.write(json.writerWithDefaultPrettyPrinter().writeValueAsString(map)));
    }
}
