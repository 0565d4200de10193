package gptfast4j.generate;

import gptfast4j.model.Llama;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * The prefill/decode loop: runs the prompt as one batch, then samples one token at a time until an EOS id, the
 * token budget or the end of the context. Timings are kept for the statistics.
 */
public final class Generator implements Generation {
    private final Llama model;
    private final Llama.State state;
    private final int[] eos;
    private final PromptMemory memory;
    /**
     * The sequence's tokens by position, for a sampler's penalties: what this generator's calls put in the cache
     * (prompts, output, prefills, shifted as the cache is), -1 where a position's token is not known to it.
     */
    private final int[] sequence;
    private int held;

    public Generator(Llama model, Llama.State state, int[] eos) {
        this.model = model;
        this.state = state;
        this.eos = eos.clone();
        Arrays.sort(this.eos);
        this.memory = new PromptMemory(model.config.vocabSize());
        this.sequence = new int[state.contextLength + 1];
    }

    public boolean isEos(int token) {
        return Arrays.binarySearch(eos, token) >= 0;
    }

    /**
     * What one generation did. {@code tokens} are the generated ids (EOS excluded). {@code layoutNanos}: the move of the
     * weights to their decode layouts ({@link Llama#startDecoding}), once per process before the first decode step
     * (seconds for a 7B model), timed apart and not in {@code decodeNanos}, so that tokens/s is the decode rate; 0
     * when nothing was copied (float weights, or a process that copied them before). {@code cachedTokens}: how many of
     * {@code tokens} a continuation of the sequence may take as in the KV cache: all where an EOS ended the
     * generation, else all but the last, which no decode step ran (a speculative verification may have, and the
     * continuation runs it again); the continuation's prompt starts with the others (and any end-of-turn token).
     * {@code promptReused}: the prompt was the generator's last, still in the cache, and no prefill ran
     * ({@link Generation#generate}); {@code prefillNanos} is then the first token's choice alone.
     */
    public record Result(int[] tokens, int promptTokens, long prefillNanos, int decodedTokens, long decodeNanos, long layoutNanos,
                         boolean stoppedAtEos, int cachedTokens, boolean promptReused) {
        public double decodeTokensPerSecond() {
            return decodedTokens == 0 ? 0 : decodedTokens / (decodeNanos / 1e9);
        }

        /** Prompt tokens per second of prefill; 0 when none ran. */
        public double prefillTokensPerSecond() {
            return promptTokens == 0 || promptReused ? 0 : promptTokens / (prefillNanos / 1e9);
        }

        /**
         * {@code next}, whose prompt went on from this one's (a prompt run in two parts, as {@code --prompt-cache}
         * runs all but its last token first): the prompts' tokens, prefill and layout times added.
         */
        public Result before(Result next) {
            return new Result(next.tokens, promptTokens + next.promptTokens, prefillNanos + next.prefillNanos, next.decodedTokens,
                    next.decodeNanos, layoutNanos + next.layoutNanos, next.stoppedAtEos, next.cachedTokens, next.promptReused);
        }

        /**
         * This generation followed by {@code next}, its continuation after a context shift of {@code shiftNanos}
         * ({@link Generation#generateShifting}), as one: the continuation's prompt (what this one left uncached) runs
         * as decode steps, and with the shift is decode time; {@code cachedTokens} counts as if nothing had been dropped.
         */
        Result then(Result next, long shiftNanos) {
            int[] all = Arrays.copyOf(tokens, tokens.length + next.tokens.length);
            System.arraycopy(next.tokens, 0, all, tokens.length, next.tokens.length);
            return new Result(all, promptTokens, prefillNanos, decodedTokens + next.promptTokens + next.decodedTokens,
                    decodeNanos + shiftNanos + next.prefillNanos + next.decodeNanos, layoutNanos + next.layoutNanos,
                    next.stoppedAtEos, tokens.length + next.cachedTokens, promptReused);
        }
    }

    @Override
    public Result generate(int[] prompt, int startPos, int maxNewTokens, Sampler sampler, IntPredicate onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt must hold at least one token (BOS)");
        if (startPos + prompt.length > state.contextLength) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens does not fit the context length "
                    + (state.contextLength - startPos));
        }
        boolean reused = memory.holds(state, prompt, startPos);
        // a prompt of one token runs as a decode step, which moves the weights first: timed apart from the prefill
        long promptLayoutNanos = !reused && prompt.length == 1 ? timeStartDecoding(model, null) : 0, layoutNanos = 0;
        long t0 = System.nanoTime();
        if (startPos > held) Arrays.fill(sequence, held, startPos, -1);
        System.arraycopy(prompt, 0, sequence, startPos, prompt.length);
        float[] logits = memory.run(model, state, prompt, startPos);
        int pos = startPos + prompt.length;
        int token = maxNewTokens > 0 ? sampler.sample(logits, 0, sequence, pos) : -1; // 0: the prompt into the cache, nothing drawn
        long t1 = System.nanoTime();
        int[] generated = new int[Math.min(maxNewTokens, state.contextLength - pos + 1)]; // the first token, then one per position left
        int count = 0;
        boolean eosSeen = false;
        int decoded = 0;
        while (count < maxNewTokens) {
            if (isEos(token)) {
                eosSeen = true;
                break;
            }
            generated[count++] = token;
            sequence[pos] = token;
            if (!onToken.test(token) || count == maxNewTokens || pos >= state.contextLength) break;
            if (decoded == 0) layoutNanos = timeStartDecoding(model, null);
            logits = model.forward(state, token, pos++);
            decoded++;
            token = sampler.sample(logits, 0, sequence, pos);
        }
        held = startPos + prompt.length + count;
        long t2 = System.nanoTime();
        return new Result(Arrays.copyOf(generated, count), prompt.length, t1 - t0, decoded, t2 - t1 - layoutNanos,
                promptLayoutNanos + layoutNanos, eosSeen, decoded, reused); // each decode step ran one token into the cache
    }

    @Override
    public void shift(int keep, int discard, int end) {
        memory.forget();
        model.shift(state, keep, discard, end);
        System.arraycopy(sequence, keep + discard, sequence, keep, Math.max(0, held - keep - discard));
        held = Math.max(keep, held - discard);
    }

    @Override
    public void prefill(int[] tokens) {
        memory.forget(); // before the cache changes, should the pass fail
        model.forward(state, tokens, 0, tokens.length, 0, null);
        restored(tokens);
    }

    @Override
    public void restored(int[] tokens) {
        memory.forget();
        System.arraycopy(tokens, 0, sequence, 0, tokens.length);
        held = tokens.length;
    }

    /** Nanoseconds {@code model}'s and the drafter's (if any) {@link Llama#startDecoding} took; 0 if nothing was copied. */
    static long timeStartDecoding(Llama model, Drafter drafter) {
        long t = System.nanoTime();
        boolean copied = model.startDecoding();
        if (drafter != null) copied |= drafter.startDecoding();
        return copied ? System.nanoTime() - t : 0;
    }
}
