package gptfast4j.generate;

import java.util.Arrays;

/**
 * The last prompt a generator ran and the logits after it, while its KV cache still holds that prompt: another
 * generation of the same prompt at the same position (`generate --num-samples`) starts from these logits with no
 * prefill. A generation writes the cache only past its prompt's end, so the prompt stays there until the generator
 * runs another prompt below that end, shifts the cache or prefills it ({@link #forget}).
 */
final class PromptMemory {
    private final int vocab;
    /** Made at the first {@link #keep}: a generator that never runs a prompt (SpeculativeGenerator's EOS test) has none. */
    private float[] logits;
    private int[] prompt = {};
    private int start = -1;

    PromptMemory(int vocab) {
        this.vocab = vocab;
    }

    /** Remembers {@code prompt}, just run at {@code start}, with {@code logits[0 .. vocab)}, the logits after it. */
    void keep(int[] prompt, int start, float[] logits) {
        if (this.logits == null) this.logits = new float[vocab];
        this.prompt = prompt.clone();
        this.start = start;
        System.arraycopy(logits, 0, this.logits, 0, vocab);
    }

    /** When the cache changes below the prompt's end: a shift, a prefill, or a prompt about to run (which may fail part way). */
    void forget() {
        start = -1;
    }

    /** The logits after {@code prompt} at {@code start} if it is the prompt remembered, else null. */
    float[] logitsAfter(int[] prompt, int start) {
        return start == this.start && Arrays.equals(prompt, this.prompt) ? logits : null;
    }
}
