package gptfast4j.generate;

import gptfast4j.Shared;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The generation loop's timings: the one-time move to the decode layouts is timed apart from decode. */
class GeneratorTest {
    private static final int[] PROMPT = {1, 403, 407, 261};

    private static Generator.Result generate(Checkpoint c, int n) {
        Llama m = c.model();
        // an EOS id no greedy step produces, so that every run decodes its whole budget
        return new Generator(m, m.newState(PROMPT.length + n, 16), new int[]{-1}).generate(PROMPT, 0, n, new Sampler(512, 0, 0, 1, 0), t -> true);
    }

    @Test
    void theDecodeLayoutsAreTimedApartAndOnlyWhenDecodeBegins() {
        Checkpoint c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf"), null);
        long copy = c.model().weights().decodeCopyBytes();
        assertTrue(copy > 0, "Q4_0 layers to copy");

        Generator.Result prefillOnly = generate(c, 1); // the one token comes from the prompt's logits
        assertEquals(0, prefillOnly.decodedTokens());
        assertEquals(0, prefillOnly.layoutNanos());
        assertEquals(copy, c.model().weights().decodeCopyBytes(), "no copy without a decode step");

        Generator.Result first = generate(c, 4);
        assertEquals(3, first.decodedTokens());
        assertTrue(first.layoutNanos() > 0);
        assertTrue(first.decodeNanos() > 0);
        assertEquals(0, c.model().weights().decodeCopyBytes(), "copied before the first decode step");

        Generator.Result again = generate(c, 4);
        assertEquals(0, again.layoutNanos(), "copied once");
    }

    /** A prompt of one token (BOS alone) runs as a decode step: its move to the decode layouts is timed apart too. */
    @Test
    void aOneTokenPromptTimesTheDecodeLayoutsApartFromThePrefill() {
        Checkpoint c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf"), null);
        Llama m = c.model();
        Generator.Result r = new Generator(m, m.newState(8, 16), new int[]{-1}).generate(new int[]{1}, 0, 3, new Sampler(512, 0, 0, 1, 0), t -> true);
        assertEquals(0, m.weights().decodeCopyBytes(), "copied");
        assertTrue(r.layoutNanos() > 0, "the copy timed");
        assertEquals(2, r.decodedTokens());
    }

    @Test
    void floatWeightsHaveNothingToCopy() {
        Checkpoint c = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        assertEquals(0, c.model().weights().decodeCopyBytes());
        Generator.Result r = generate(c, 4);
        assertEquals(3, r.decodedTokens());
        assertEquals(0, r.layoutNanos());
    }
}
