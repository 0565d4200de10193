package gptfast4j.generate;

/** Proposes the next tokens of a sequence for the target model to verify. */
public interface Drafter {
    /**
     * Proposes up to {@code k} tokens to follow {@code sequence[0 .. length)}. Writes them to {@code tokens} and, for
     * each, the distribution it was drawn from to {@code probs[i]} (left untouched when the proposal is
     * deterministic). A drafter that samples draws with {@code sampler}, the generation's (its settings, bias and
     * grammar). Returns how many were proposed (0 is allowed).
     */
    int propose(int[] sequence, int length, int k, int[] tokens, float[][] probs, Sampler sampler);

    /**
     * Moves a draft model's weights to their decode layouts ({@link gptfast4j.model.Llama#startDecoding}); else nothing.
     *
     * @return whether weights were copied
     */
    default boolean startDecoding() {
        return false;
    }

    /**
     * The sequence lost its tokens {@code keep .. keep + discard} and the rest moved down ({@link
     * gptfast4j.model.Llama#shift}): a draft model moves its own cache alike; else nothing.
     */
    default void shift(int keep, int discard) {
    }

    /** True when proposals are deterministic (probability 1 for the proposed token), as prompt lookup's are. */
    boolean deterministic();
}
