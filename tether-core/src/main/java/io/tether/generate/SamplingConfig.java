package io.tether.generate;

import java.util.List;

import io.tether.engine.ConfigException;

/**
 * How to pick tokens. Defaults match HF's {@code GenerationConfig} where it has the same knob.
 *
 * @param maxNewTokens  {@code max_new_tokens}
 * @param temperature   {@code temperature}; 0 means greedy ({@code do_sample=False})
 * @param topK          {@code top_k}; 0 disables (HF's default is 50 when sampling; we default to off)
 * @param topP          {@code top_p}; 1.0 disables
 * @param seed          seed of the sampling generator: the same seed gives the same samples
 * @param stopTokenIds  {@code eos_token_id}: finishing tokens (kept in the output)
 * @param stopStrings   {@code stop_strings}: finish once the decoded completion contains one (needs a decoder)
 * @param useCache      reuse past keys and values (the default); false recomputes the whole sequence every step
 */
public record SamplingConfig(int maxNewTokens, double temperature, int topK, double topP, long seed,
                             List<Long> stopTokenIds, List<String> stopStrings, boolean useCache) {
    public SamplingConfig {
        if (maxNewTokens < 1) throw new ConfigException("max new tokens must be >= 1, got " + maxNewTokens);
        if (!(temperature >= 0) || Double.isInfinite(temperature)) throw new ConfigException("temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new ConfigException("top-k must be >= 0 (0 disables), got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new ConfigException("top-p must be in (0, 1], got " + topP);
        stopTokenIds = List.copyOf(stopTokenIds);
        stopStrings = List.copyOf(stopStrings);
        for (String s : stopStrings) if (s.isEmpty()) throw new ConfigException("stop strings must not be empty");
    }

    public static SamplingConfig greedy(int maxNewTokens) {
        return new SamplingConfig(maxNewTokens, 0, 0, 1.0, 0, List.of(), List.of(), true);
    }

    public boolean greedy() { return temperature == 0; }

    public SamplingConfig withCache(boolean useCache) {
        return new SamplingConfig(maxNewTokens, temperature, topK, topP, seed, stopTokenIds, stopStrings, useCache);
    }

    public SamplingConfig withSeed(long seed) {
        return new SamplingConfig(maxNewTokens, temperature, topK, topP, seed, stopTokenIds, stopStrings, useCache);
    }

    public SamplingConfig withStopTokens(List<Long> ids) {
        return new SamplingConfig(maxNewTokens, temperature, topK, topP, seed, ids, stopStrings, useCache);
    }
}
