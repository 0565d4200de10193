package gptfast4j.generate;

import gptfast4j.model.Llama;

import java.util.Arrays;

/**
 * The last prompt a generator ran and the logits after it, while its KV cache still holds that prompt: another
 * generation of the same prompt at the same position (`generate --num-samples`) starts from these logits with no
 * prefill. A generation writes the cache only past its prompt's end, so the prompt stays there until the generator
 * runs another prompt below that end, shifts the cache or prefills it ({@link #forget}).
 */
final class PromptMemory {
    private final int vocab;
    /** Made at the first prompt run: a generator that never runs a prompt (SpeculativeGenerator's EOS test) has none. */
    private float[] logits;
    private int[] prompt = {};
    private int start = -1;

    PromptMemory(int vocab) {
        this.vocab = vocab;
    }

    /**
     * The logits after {@code prompt} at {@code start}: those remembered ({@link #holds}), or the prompt run into the
     * cache from {@code start} and remembered with them.
     */
    float[] run(Llama model, Llama.State state, int[] prompt, int start) {
        if (holds(state, prompt, start)) return logits;
        forget(); // the run writes the cache below the old prompt's end, and may fail part way
        float[] after = model.forward(state, prompt, 0, prompt.length, start, null);
        if (logits == null) logits = new float[vocab];
        this.prompt = prompt.clone();
        this.start = start;
        System.arraycopy(after, 0, logits, 0, vocab);
        return after;
    }

    /** When the cache changes below the prompt's end: a shift, a prefill, or another prompt run. */
    void forget() {
        start = -1;
    }

    /**
     * Whether {@code prompt} at {@code start} is the prompt remembered, so that {@link #run} runs nothing: where the
     * state can go on from its end (a model's recurrent layers keep their state for a few positions only).
     */
    boolean holds(Llama.State state, int[] prompt, int start) {
        int end = start + prompt.length;
        return start == this.start && Arrays.equals(prompt, this.prompt) && state.resumableAt(end) == end;
    }
}
