package gptfast4j.generate;

import java.util.function.IntPredicate;

/**
 * A sequence generated over one state, call after call: plain decoding ({@link Generator}) or speculative decoding
 * ({@link SpeculativeGenerator}), which the front ends take alike.
 */
public interface Generation {
    /**
     * Continues the sequence whose first {@code startPos} positions are in the KV cache with {@code prompt} (at least
     * one token), generating at most {@code maxNewTokens}; {@code onToken} sees each new token as it is chosen and may
     * return false to stop.
     */
    Generator.Result generate(int[] prompt, int startPos, int maxNewTokens, Sampler sampler, IntPredicate onToken);

    /**
     * Drops the sequence's positions {@code keep .. keep + discard} of the {@code end} in the cache and moves the rest
     * down ({@link gptfast4j.model.Llama#shift}), so that it goes on at {@code end - discard}.
     */
    void shift(int keep, int discard, int end);
}
