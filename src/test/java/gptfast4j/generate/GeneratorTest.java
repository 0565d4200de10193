package gptfast4j.generate;

import gptfast4j.Shared;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The generation loop: its timings (the one-time move to the decode layouts timed apart), a prompt run once for several samples, the context shift. */
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

    /**
     * Greedy decoding with llama.cpp's penalties, against a loop written here: each step's logits penalized the plain
     * way ({@link SamplerTest}'s) over the last 16 tokens of the sequence (the prompt's among them), then the argmax. The penalties change
     * the text, and a second call continuing the sequence counts the first call's tokens.
     */
    @Test
    void penaltiesSeeTheWholeSequenceSoFar() {
        Checkpoint c = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        Llama m = c.model();
        Sampler.Penalties pen = new Sampler.Penalties(1.5f, 0.3f, 0.2f, 16);
        int[] prompt = c.promptTokens("Once upon a time, there was a little girl");
        Generator g = new Generator(m, m.newState(128, 16), new int[]{-1});
        int[] first = g.generate(prompt, 0, 30, new Sampler(512, 0, 0, 1, 0, pen, 0), t -> true).tokens();
        int at = prompt.length + first.length - 1; // the last token is not in the cache: the next call starts with it
        int[] next = {first[first.length - 1], 403, 407};
        int[] second = g.generate(next, at, 20, new Sampler(512, 0, 0, 1, 0, pen, 0), t -> true).tokens();

        int[] sequence = new int[128];
        System.arraycopy(prompt, 0, sequence, 0, prompt.length);
        Llama.State s = m.newState(128, 16);
        float[] logits = m.forward(s, prompt, 0, prompt.length, 0, null);
        int length = prompt.length;
        int[] expected = new int[30];
        for (int i = 0; i < 30; i++) {
            expected[i] = argmax(SamplerTest.penalized(java.util.Arrays.copyOf(logits, 512), sequence, length, pen));
            sequence[length] = expected[i];
            if (i < 29) logits = m.forward(s, expected[i], length);
            length++;
        }
        assertArrayEquals(expected, first);
        int[] unpenalized = new Generator(m, m.newState(128, 16), new int[]{-1}).generate(prompt, 0, 30, new Sampler(512, 0, 0, 1, 0), t -> true).tokens();
        assertFalse(java.util.Arrays.equals(expected, unpenalized), "the penalties change the text");
        length = at;
        System.arraycopy(next, 0, sequence, length, next.length);
        logits = m.forward(s, next, 0, next.length, length, null);
        length += next.length;
        for (int i = 0; i < 20; i++) {
            int token = argmax(SamplerTest.penalized(java.util.Arrays.copyOf(logits, 512), sequence, length, pen));
            assertEquals(token, second[i], "the second call's token " + i);
            sequence[length] = token;
            if (i < 19) logits = m.forward(s, token, length);
            length++;
        }
    }

    /**
     * DRY on the real model, greedy, its multiplier too large to be paid, allowed length 2, no breakers: no three tokens
     * of the text (the prompt's among them) are ever repeated, where the text without it repeats many (stories260K loops).
     */
    @Test
    void dryKeepsTheTextFromRepeatingItself() {
        Checkpoint c = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        Llama m = c.model();
        int[] prompt = c.promptTokens("Once upon a time, there was a little girl");
        Sampler.Advanced dry = Sampler.Advanced.NONE.withDry(new Dry(1000, 1.75f, 2, -1, Dry.Breakers.NONE));
        int[] plain = new Generator(m, m.newState(256, 16), new int[]{-1}).generate(prompt, 0, 150, new Sampler(512, 0, 0, 1, 0), t -> true).tokens();
        int[] dried = new Generator(m, m.newState(256, 16), new int[]{-1}).generate(prompt, 0, 150,
                new Sampler(512, 0, 0, 1, 0, Sampler.Penalties.NONE, Sampler.LogitBias.NONE, dry, 0), t -> true).tokens();
        assertTrue(repeatedTriples(prompt, plain) > 10, "stories260K repeats itself greedily");
        assertEquals(150, dried.length);
        assertEquals(0, repeatedTriples(prompt, dried));
    }

    /** How many three-token runs of the prompt followed by the text occur earlier in it too. */
    private static int repeatedTriples(int[] prompt, int[] text) {
        int[] all = java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt), java.util.Arrays.stream(text)).toArray();
        java.util.Set<java.util.List<Integer>> seen = new java.util.HashSet<>();
        int repeated = 0;
        for (int i = 0; i + 3 <= all.length; i++) if (!seen.add(java.util.List.of(all[i], all[i + 1], all[i + 2]))) repeated++;
        return repeated;
    }

    /**
     * Greedy decoding with a logit bias (the comma and " to" banned, " a" raised) and penalties, against a loop written
     * here: each step's logits biased, then penalized ({@link SamplerTest}'s plain ways), then the argmax.
     */
    @Test
    void aLogitBiasComesBeforeThePenalties() {
        Checkpoint c = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        Llama m = c.model();
        Sampler.Penalties pen = new Sampler.Penalties(1.3f, 0, 0, 16);
        Sampler.LogitBias bias = new Sampler.LogitBias(new int[]{432, 267, 261}, new float[]{Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY, 1.5f});
        int[] prompt = c.promptTokens("Once upon a time");
        int[] tokens = new Generator(m, m.newState(128, 16), new int[]{-1}).generate(prompt, 0, 40, new Sampler(512, 0, 0, 1, 0, pen, bias, 0), t -> true).tokens();

        int[] sequence = java.util.Arrays.copyOf(prompt, 128);
        Llama.State s = m.newState(128, 16);
        float[] logits = m.forward(s, prompt, 0, prompt.length, 0, null);
        for (int i = 0, length = prompt.length; i < 40; i++, length++) {
            int expected = argmax(SamplerTest.penalized(SamplerTest.biased(java.util.Arrays.copyOf(logits, 512), bias), sequence, length, pen));
            assertEquals(expected, tokens[i], "token " + i);
            assertTrue(expected != 432 && expected != 267, "a banned token");
            sequence[length] = expected;
            logits = m.forward(s, expected, length);
        }
        int[] unbiased = new Generator(m, m.newState(128, 16), new int[]{-1}).generate(prompt, 0, 40, new Sampler(512, 0, 0, 1, 0, pen, 0), t -> true).tokens();
        assertTrue(java.util.Arrays.stream(unbiased).anyMatch(t -> t == 432) && java.util.Arrays.stream(unbiased).anyMatch(t -> t == 267), "the banned tokens were there");
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    @Test
    void floatWeightsHaveNothingToCopy() {
        Checkpoint c = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        assertEquals(0, c.model().weights().decodeCopyBytes());
        Generator.Result r = generate(c, 4);
        assertEquals(3, r.decodedTokens());
        assertEquals(0, r.layoutNanos());
    }

    /**
     * {@link Generation#generateShifting} on stories260K, a context of 20 positions keeping 3: the first part generates
     * up to one position short of the context (16 tokens after the 4-token prompt, the same as without a shift), then
     * each shift drops half of what follows the kept positions ((19 - 3) / 2 = 8) and the next part starts with the
     * token the cache lacks, until the budget of 40 is spent.
     */
    @Test
    void generationGoesOnPastTheContextByShiftingIt() {
        Checkpoint c = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        Llama m = c.model();
        Generator plain = new Generator(m, m.newState(20, 16), new int[]{-1});
        java.util.List<String> calls = new java.util.ArrayList<>();
        Generation recorded = new Generation() {
            @Override
            public Generator.Result generate(int[] prompt, int startPos, int maxNewTokens, Sampler sampler, java.util.function.IntPredicate onToken) {
                calls.add("generate " + prompt.length + " at " + startPos + " for " + maxNewTokens);
                return plain.generate(prompt, startPos, maxNewTokens, sampler, onToken);
            }

            @Override
            public void shift(int keep, int discard, int end) {
                calls.add("shift " + keep + " " + discard + " " + end);
                plain.shift(keep, discard, end);
            }

            @Override
            public void prefill(int[] tokens) {
                plain.prefill(tokens);
            }

            @Override
            public void restored(int[] tokens) {
                plain.restored(tokens);
            }
        };
        java.util.List<Integer> seen = new java.util.ArrayList<>(), dropped = new java.util.ArrayList<>();
        Generator.Result r = recorded.generateShifting(PROMPT, 0, 20, 3, 40, new Sampler(512, 0, 0, 1, 0), seen::add, dropped::add);
        assertEquals(java.util.List.of("generate 4 at 0 for 16", "shift 3 8 19", "generate 1 at 11 for 8", "shift 3 8 19",
                "generate 1 at 11 for 8", "shift 3 8 19", "generate 1 at 11 for 8"), calls); // 16 + 3 x 8 tokens
        assertEquals(java.util.List.of(8, 8, 8), dropped);
        assertEquals(40, r.tokens().length);
        assertEquals(seen, java.util.Arrays.stream(r.tokens()).boxed().toList(), "every token shown as it came");
        assertEquals(39, r.decodedTokens(), "all but the first from decode steps");
        assertEquals(PROMPT.length, r.promptTokens());
        int[] unshifted = generate(c, 16).tokens();
        assertEquals(java.util.Arrays.toString(unshifted), java.util.Arrays.toString(java.util.Arrays.copyOf(r.tokens(), 16)));
    }

    /**
     * {@code --num-samples}: a second generation of the same prompt at the same position runs no prefill and continues
     * from the logits kept after the prompt, drawing what a generator that runs the prompt again draws (stories260K,
     * F32, whose prompt has one arithmetic in every layout; temperature 0.8, the same seed). A prefill or a shift in
     * between, another prompt, or the same prompt at another position runs the prompt.
     */
    @Test
    void anotherSampleOfTheSamePromptStartsFromItsCache() {
        Llama m = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null).model();
        Generator reusing = new Generator(m, m.newState(64, 16), new int[]{-1}), running = new Generator(m, m.newState(64, 16), new int[]{-1});
        Sampler s1 = new Sampler(512, 0.8f, 0, 1, 7), s2 = new Sampler(512, 0.8f, 0, 1, 7);
        assertArrayEquals(reusing.generate(PROMPT, 0, 30, s1, t -> true).tokens(), running.generate(PROMPT, 0, 30, s2, t -> true).tokens());
        Generator.Result again = reusing.generate(PROMPT, 0, 30, s1, t -> true);
        assertTrue(again.promptReused());
        assertEquals(PROMPT.length, again.promptTokens());
        running.prefill(new int[]{1});
        Generator.Result ran = running.generate(PROMPT, 0, 30, s2, t -> true);
        assertFalse(ran.promptReused());
        assertArrayEquals(ran.tokens(), again.tokens(), "the second sample's draws");
        assertTrue(reusing.generate(PROMPT, 0, 3, s1, t -> true).promptReused(), "a third");

        assertFalse(reusing.generate(new int[]{1, 403}, 0, 3, s1, t -> true).promptReused(), "another prompt");
        assertFalse(reusing.generate(PROMPT, 0, 3, s1, t -> true).promptReused(), "the first again, after another");
        assertFalse(reusing.generate(PROMPT, 1, 3, s1, t -> true).promptReused(), "at another position");
        reusing.generate(PROMPT, 0, 30, s1, t -> true);
        reusing.shift(1, 4, 30);
        assertFalse(reusing.generate(PROMPT, 0, 3, s1, t -> true).promptReused(), "after a shift");
    }
}
