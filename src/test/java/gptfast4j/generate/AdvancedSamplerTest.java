package gptfast4j.generate;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * llama.cpp's other samplers against the expectations of llama.cpp's own tests (tests/test-sampling.cpp, de3ff81:
 * its probabilities, made logits by {@code ln}, through one sampler at temperature 1; where its expectations are not
 * renormalized, they are here, as a sampler draws from them so) and, where it has none, against their definitions
 * computed here by hand.
 */
class AdvancedSamplerTest {
    private static final Sampler.Advanced OFF = Sampler.Advanced.NONE;

    private static Sampler.Advanced typical(float p) {
        return new Sampler.Advanced(p, -1, 0, 0.1f, 0, 1, 0, 5, 0.1f, null);
    }

    private static Sampler.Advanced topNSigma(float n) {
        return new Sampler.Advanced(1, n, 0, 0.1f, 0, 1, 0, 5, 0.1f, null);
    }

    private static Sampler.Advanced xtc(float probability, float threshold) {
        return new Sampler.Advanced(1, -1, probability, threshold, 0, 1, 0, 5, 0.1f, null);
    }

    /** The distribution of {@code probs} (as logits) through {@code advanced} at temperature 1, no top-k/top-p/min-p. */
    private static float[] distribution(float[] probs, Sampler.Advanced advanced, int[] sequence) {
        float[] logits = new float[probs.length], out = new float[probs.length];
        for (int i = 0; i < probs.length; i++) logits[i] = (float) Math.log(probs[i]);
        new Sampler(probs.length, 1, 0, 1, 0, Sampler.Penalties.NONE, Sampler.LogitBias.NONE, advanced, 7)
                .distribution(logits, 0, out, sequence, sequence == null ? 0 : sequence.length);
        return out;
    }

    /** {@code kept} (the probabilities llama.cpp's test keeps, in id order, zero for the others) renormalized. */
    private static float[] renormalized(float... kept) {
        double sum = 0;
        for (float v : kept) sum += v;
        float[] out = new float[kept.length];
        for (int i = 0; i < kept.length; i++) out[i] = (float) (kept[i] / sum);
        return out;
    }

    @Test
    void typicalAsLlamaCppsTests() {
        assertArrayEquals(renormalized(0.97f, 0, 0, 0), distribution(new float[]{0.97f, 0.01f, 0.01f, 0.01f}, typical(0.5f), null), 1e-5f);
        assertArrayEquals(renormalized(0, 0.2f, 0.2f, 0.2f), distribution(new float[]{0.4f, 0.2f, 0.2f, 0.2f}, typical(0.5f), null), 1e-5f);
    }

    @Test
    void topNSigmaAsLlamaCppsTests() {
        float[] probs = {0.1f, 0.2f, 0.3f, 0.4f};
        assertArrayEquals(new float[]{0, 0, 0.428571f, 0.571429f}, distribution(probs, topNSigma(1), null), 1e-5f);
        assertArrayEquals(probs, distribution(probs, topNSigma(0), null), 1e-5f);
        assertArrayEquals(probs, distribution(probs, topNSigma(3), null), 1e-5f);
    }

    @Test
    void xtcAsLlamaCppsTests() {
        float[] probs = {0.4f, 0.3f, 0.2f, 0.1f};
        assertArrayEquals(renormalized(0, 0, 0, 0.1f), distribution(probs, xtc(0.99f, 0.09f), null), 1e-5f);
        assertArrayEquals(renormalized(0, 0, 0.2f, 0.1f), distribution(probs, xtc(0.99f, 0.19f), null), 1e-5f);
        assertArrayEquals(renormalized(0, 0.3f, 0.2f, 0.1f), distribution(probs, xtc(0.99f, 0.29f), null), 1e-5f);
        assertArrayEquals(probs, distribution(probs, xtc(0.99f, 0.39f), null), 1e-5f);
        // with probability 0.5, about half the draws exclude the top choices
        float[] logits = new float[4];
        for (int i = 0; i < 4; i++) logits[i] = (float) Math.log(probs[i]);
        Sampler sampler = new Sampler(4, 1, 0, 1, 0, Sampler.Penalties.NONE, Sampler.LogitBias.NONE, xtc(0.5f, 0.09f), 11);
        int last = 0;
        for (int i = 0; i < 2000; i++) if (sampler.sample(logits, 0) == 3) last++;
        // 0.5 of the draws take token 3 alone, the other half take it with probability 0.1: 0.55 expected
        assertEquals(0.55, last / 2000.0, 0.04);
    }

    @Test
    void dryAsLlamaCppsTests() {
        float[] quarter = {0.25f, 0.25f, 0.25f, 0.25f}, fifth = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
        assertArrayEquals(quarter, distribution(quarter, dry(1, 1.1f, 2, 4, Dry.Breakers.NONE), new int[]{0, 1}), 1e-5f);
        assertArrayEquals(new float[]{0.296923f, 0.296923f, 0.109232f, 0.296923f},
                distribution(quarter, dry(1, 1.1f, 2, 5, Dry.Breakers.NONE), new int[]{0, 1, 2, 0, 1}), 1e-5f);
        assertArrayEquals(fifth, distribution(fifth, dry(1, 1.1f, 2, 6, Dry.Breakers.ofTokens(5, new int[]{3})), new int[]{0, 1, 3, 4, 0, 1}), 1e-5f);
        assertArrayEquals(new float[]{0.241818f, 0.241818f, 0.032727f, 0.241818f, 0.241818f},
                distribution(fifth, dry(2, 1.1f, 2, 5, Dry.Breakers.NONE), new int[]{0, 1, 2, 0, 1}), 1e-5f);
        assertArrayEquals(fifth, distribution(fifth, dry(1, 1.1f, 4, 7, Dry.Breakers.NONE), new int[]{0, 1, 2, 3, 4, 0, 1}), 1e-5f);
    }

    private static Sampler.Advanced dry(float multiplier, float base, int allowed, int window, Dry.Breakers breakers) {
        return OFF.withDry(new Dry(multiplier, base, allowed, window, breakers));
    }

    /**
     * DRY by its definition on longer texts: for each token, the longest run of the text's last tokens (up to the last
     * breaker) that also ends earlier right before that token, found here by brute force; penalty
     * {@code multiplier * base^(run - allowed)} where the run is at least {@code allowed}.
     */
    @Test
    void dryMatchesItsDefinitionOnRandomTexts() {
        SplittableRandom random = new SplittableRandom(5);
        int vocab = 6;
        Dry.Breakers breakers = Dry.Breakers.ofTokens(vocab, new int[]{5}, new int[]{4, 3});
        for (int round = 0; round < 200; round++) {
            int length = 3 + random.nextInt(60), window = random.nextBoolean() ? -1 : 2 + random.nextInt(40), allowed = 1 + random.nextInt(3);
            int[] text = random.ints(length, 0, random.nextBoolean() ? 3 : vocab).toArray();
            float[] logits = new float[vocab], expected = new float[vocab];
            int n = window < 0 ? length : Math.min(window, length);
            int from = length - n, limit = n;
            // the last breaker: a 5, or a 4 followed by a 3, counted from the end
            for (int i = 0; i < n && limit == n; i++) {
                int at = length - 1 - i;
                if (text[at] == 5) limit = i;
                else if (text[at] == 4 && i >= 1 && text[at + 1] == 3) limit = i - 1;
            }
            int[] longest = new int[vocab];
            if (n > allowed && limit >= allowed) {
                for (int end = from; end < length - 1; end++) { // a run ending at `end`, followed by text[end + 1]
                    int run = 0;
                    while (end - run >= from && run < limit && text[end - run] == text[length - 1 - run]) run++;
                    if (run >= allowed) longest[text[end + 1]] = Math.max(longest[text[end + 1]], run);
                }
            }
            for (int t = 0; t < vocab; t++) if (longest[t] > 0 && t != 5) expected[t] = -(float) (1.5 * Math.pow(1.3, longest[t] - allowed));
            new Dry(1.5f, 1.3f, allowed, window, breakers).apply(logits, text, length, new Dry.Scratch(vocab));
            assertArrayEquals(expected, logits, 1e-5f, Arrays.toString(text) + " window " + window + " allowed " + allowed);
        }
    }

    /** The breakers of a vocabulary's texts: a token holding one alone, a token ending in a breaker's start with its rest's tokens. */
    @Test
    void breakersFromTexts() {
        String[] pieces = {"a", "b:", "\n", "x*", "**", "<", "|", "end", "<|"};
        Dry.Breakers breakers = Dry.breakers(List.of(":", "\n", "<|end"), pieces.length,
                id -> pieces[id].getBytes(java.nio.charset.StandardCharsets.UTF_8),
                text -> text.equals("|end") ? new int[]{6, 7} : text.equals("end") ? new int[]{7} : new int[]{0});
        assertTrue(breakers.alone(1) && breakers.alone(2));
        assertTrue(!breakers.alone(0) && breakers.of(0) == null && breakers.of(3) == null);
        assertArrayEquals(new int[]{6, 7}, breakers.of(5).getFirst()); // "<" then "|end"
        assertArrayEquals(new int[]{7}, breakers.of(8).getFirst()); // "<|" then "end"
        assertTrue(breakers.of(6) == null, "\"|\" is not the start of a breaker");
    }

    /** Dynamic temperature by its definition: the kept tokens' normalized entropy at temperature 1 places it. */
    @Test
    void dynamicTemperatureByHand() {
        float[] probs = {0.1f, 0.2f, 0.3f, 0.4f};
        double entropy = 0;
        for (float p : probs) entropy -= p * Math.log(p);
        double t = 0.5 + (1.5 - 0.5) * Math.pow(entropy / Math.log(4), 2);
        double sum = 0;
        float[] expected = new float[4];
        for (int i = 0; i < 4; i++) sum += Math.pow(probs[i], 1 / t);
        for (int i = 0; i < 4; i++) expected[i] = (float) (Math.pow(probs[i], 1 / t) / sum);
        assertArrayEquals(expected, distribution(probs, new Sampler.Advanced(1, -1, 0, 0.1f, 0.5f, 2, 0, 5, 0.1f, null), null), 1e-6f);
        // llama.cpp's own test: no range, temperature as it is
        assertArrayEquals(probs, distribution(probs, new Sampler.Advanced(1, -1, 0, 0.1f, 0, 1, 0, 5, 0.1f, null), null), 1e-6f);
    }

    /**
     * Mirostat 2.0: the tokens whose surprise (-log2 p) is at most mu (at first twice the target tau) are drawn from,
     * renormalized, and mu moves by eta times the drawn token's surprise less tau.
     */
    @Test
    void mirostatTwoByHand() {
        float[] probs = {0.05f, 0.15f, 0.3f, 0.5f}, logits = new float[4];
        for (int i = 0; i < 4; i++) logits[i] = (float) Math.log(probs[i]);
        Sampler sampler = new Sampler(4, 1, 40, 0.9f, 0, Sampler.Penalties.NONE, Sampler.LogitBias.NONE,
                new Sampler.Advanced(1, -1, 0, 0.1f, 0, 1, 2, 1, 0.5f, null), 3);
        float[] out = new float[4];
        sampler.distribution(logits, 0, out); // mu = 2: p >= 1/4 (top-p 0.9 and top-k left out)
        assertArrayEquals(renormalized(0, 0, 0.3f, 0.5f), out, 1e-6f);
        int token = sampler.sample(logits, 0);
        double mu = 2 - 0.5 * (-Math.log(probs[token] / 0.8) / Math.log(2) - 1);
        sampler.distribution(logits, 0, out);
        float[] kept = new float[4];
        for (int i = 0; i < 4; i++) kept[i] = -Math.log(probs[i]) / Math.log(2) <= mu ? probs[i] : 0;
        assertArrayEquals(renormalized(kept), out, 1e-6f, "mu " + mu);
    }

    /**
     * Mirostat 1.0 by its definition: s from the 100 most likely tokens' log-ratios (here a Zipf distribution of
     * exponent 1.2, whose s is 1.2), k = (eps * 2^mu / (1 - N^-eps))^(1/s), the k most likely kept.
     */
    @Test
    void mirostatOneByHand() {
        int n = 1000;
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) logits[i] = (float) (-1.2 * Math.log(i + 1));
        float tau = 5;
        Sampler sampler = new Sampler(n, 1, 0, 1, 0, Sampler.Penalties.NONE, Sampler.LogitBias.NONE,
                new Sampler.Advanced(1, -1, 0, 0.1f, 0, 1, 1, tau, 0.1f, null), 3);
        float[] out = new float[n];
        sampler.distribution(logits, 0, out);
        double s = 1.2, eps = s - 1, k = Math.pow(eps * Math.pow(2, 2 * tau) / (1 - Math.pow(n, -eps)), 1 / s);
        int kept = 0;
        for (float p : out) if (p > 0) kept++;
        assertEquals((int) k, kept);
        for (int i = 0; i < kept; i++) assertTrue(out[i] > 0, "the most likely kept");
    }

    @Test
    void settingsOutOfRangeAreRefusedByName() {
        assertThrows(IllegalArgumentException.class, () -> typical(0));
        var e = assertThrows(IllegalArgumentException.class, () -> new Sampler.Advanced(1, -1, 0, 0.1f, 0, 1, 3, 5, 0.1f, null));
        assertTrue(e.getMessage().startsWith("--mirostat "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Dry(1, 0.5f, 2, -1, Dry.Breakers.NONE));
        assertTrue(e.getMessage().startsWith("--dry-base"), e.getMessage());
        assertTrue(OFF.withDry(new Dry(0, 1.75f, 2, -1, Dry.Breakers.NONE)).dry() == null, "a DRY multiplier of 0 is none");
    }

    /** Sampling with all of them on allocates nothing per token (DRY's scratch is kept). */
    @Test
    void samplingAllocatesNothing() {
        int n = 4096; // Mirostat reads every token
        float[] logits = new float[n];
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < n; i++) logits[i] = (float) random.nextGaussian() * 4;
        int[] sequence = random.ints(300, 0, 50).toArray();
        for (Sampler.Advanced advanced : new Sampler.Advanced[]{
                new Sampler.Advanced(0.9f, 2, 0.5f, 0.1f, 0.3f, 1, 0, 5, 0.1f, new Dry(0.8f, 1.75f, 2, -1, Dry.Breakers.ofTokens(n, new int[]{7}))),
                new Sampler.Advanced(1, -1, 0, 0.1f, 0, 1, 1, 5, 0.1f, null), new Sampler.Advanced(1, -1, 0, 0.1f, 0, 1, 2, 5, 0.1f, null)}) {
            Sampler sampler = new Sampler(n, 0.8f, 40, 0.95f, 0.05f, Sampler.Penalties.NONE, Sampler.LogitBias.NONE, advanced, 5);
            SamplerTest.assertAllocatesNothing(sampler, logits, sequence, ", " + advanced);
        }
    }
}
