package gptfast4j.generate;

import java.util.Arrays;
import java.util.function.IntConsumer;
import java.util.function.IntPredicate;

/**
 * A sequence generated over one state, call after call: plain decoding ({@link Generator}) or speculative decoding
 * ({@link SpeculativeGenerator}), which the front ends take alike.
 */
public interface Generation {
    /**
     * Continues the sequence whose first {@code startPos} positions are in the KV cache with {@code prompt} (at least
     * one token), generating at most {@code maxNewTokens}; {@code onToken} sees each new token as it is chosen and may
     * return false to stop. The same prompt at the same position as this generator's last one, with no shift or
     * prefill since, is still in the cache (a generation writes only past its prompt): it is not run again, and the
     * first token is chosen from the logits kept after it (another sample of the prompt; {@link Generator.Result#promptReused}).
     * This generator must be the only one writing its state's cache.
     */
    Generator.Result generate(int[] prompt, int startPos, int maxNewTokens, Sampler sampler, IntPredicate onToken);

    /**
     * Drops the sequence's positions {@code keep .. keep + discard} of the {@code end} in the cache and moves the rest
     * down ({@link gptfast4j.model.Llama#shift}), so that it goes on at {@code end - discard}.
     */
    void shift(int keep, int discard, int end);

    /**
     * Runs {@code tokens} into the KV cache at positions {@code 0 ..}, choosing nothing (the sampler is not touched):
     * the start of a sequence known before the rest, which a later {@link #generate} from any position up to
     * {@code tokens.length} continues.
     */
    void prefill(int[] tokens);

    /**
     * Takes the KV cache's positions {@code 0 .. tokens.length} as holding {@code tokens}, put there from elsewhere
     * ({@link gptfast4j.model.Llama.State#readCache}, a prompt cache): the start of the sequence, as {@link #prefill}
     * leaves it, without running it.
     */
    void restored(int[] tokens);

    /**
     * {@link #generate} from position {@code startPos} (0, or where the sequence's start is in the cache already) that
     * goes on where the context (of {@code context} positions) fills before {@code maxNewTokens}, as llama.cpp's context
     * shift does: the first {@code keep} positions stay, half of those after them go ({@link #shift}; {@code onShift} is
     * told how many), and generation continues with the tokens the cache lacks. Each part stops one position short of the context's end, where plain and speculative generation both end
     * with one token not yet run (a plain generation would sample one more, from the last position), so both shift at the
     * same positions and greedy output stays the same. The result is the whole generation's: its prompt the first
     * part's, each continuation's run of its leftover token counted as a decode step, the shifts' time in the decode
     * time.
     */
    default Generator.Result generateShifting(int[] prompt, int startPos, int context, int keep, int maxNewTokens, Sampler sampler,
                                              IntPredicate onToken, IntConsumer onShift) {
        if (maxNewTokens == 0) return generate(prompt, startPos, 0, sampler, onToken); // the prompt alone: nothing to shift for
        Generator.Result whole = null;
        int pos = startPos, left = maxNewTokens;
        int[] next = prompt;
        long shiftNanos = 0;
        while (true) {
            int budget = Math.max(1, Math.min(left, context - pos - next.length));
            Generator.Result part = generate(next, pos, budget, sampler, onToken);
            whole = whole == null ? part : whole.then(part, shiftNanos);
            left -= part.tokens().length;
            // fewer tokens than the budget without an EOS: onToken stopped it
            if (part.stoppedAtEos() || left == 0 || part.tokens().length < budget) return whole;
            int end = pos + next.length + part.cachedTokens(), discard = (end - keep) / 2;
            if (discard < 1) return whole; // a context of a few positions past keep: nothing to drop
            long t = System.nanoTime();
            shift(keep, discard, end);
            shiftNanos = System.nanoTime() - t;
            onShift.accept(discard);
            pos = end - discard;
            next = Arrays.copyOfRange(part.tokens(), part.cachedTokens(), part.tokens().length);
        }
    }
}
