package io.tether.text;

import java.util.List;
import java.util.OptionalLong;

/**
 * Text to token ids and back, exactly as Hugging Face's tokenizers would. Implementations: {@link HfTokenizer}
 * (any tokenizer.json) and {@link ByteTokenizer} (bytes plus a few specials, for models trained from scratch).
 */
public interface Tokenizer extends AutoCloseable {
    /** Token ids of {@code text}; {@code addSpecialTokens} applies the post-processor (e.g. a leading BOS). */
    long[] encode(String text, boolean addSpecialTokens);

    /** Encodes many texts at once (implementations may parallelise). */
    List<long[]> encodeBatch(List<String> texts, boolean addSpecialTokens);

    /** Ids and the [start, end) character offsets of each token in {@code text}. */
    Encoding encodeWithOffsets(String text, boolean addSpecialTokens);

    String decode(long[] ids, boolean skipSpecialTokens);

    OptionalLong tokenToId(String token);

    /** The token string for an id; throws for ids outside the vocabulary. */
    String idToToken(long id);

    /** Number of ids, added tokens included. */
    int vocabSize();

    SpecialTokens specialTokens();

    /** {@code model_max_length} from tokenizer_config.json (Integer.MAX_VALUE when absent or "infinite"). */
    int modelMaxLength();

    @Override
    default void close() {}

    /** Token ids with character offsets into the encoded text. */
    record Encoding(long[] ids, int[] starts, int[] ends) {}
}
