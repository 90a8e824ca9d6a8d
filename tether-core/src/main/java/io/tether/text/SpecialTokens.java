package io.tether.text;

import java.util.Map;

/**
 * The named special tokens of a tokenizer (from tokenizer_config.json / special_tokens_map.json) with their ids;
 * a token or id is null where the tokenizer has none. {@code all} maps every named special token
 * (bos_token, eos_token, pad_token, unk_token, and any other *_token key) to its string, which chat templates see.
 */
public record SpecialTokens(String bos, Long bosId, String eos, Long eosId, String pad, Long padId,
                            String unk, Long unkId, Map<String, String> all) {}
