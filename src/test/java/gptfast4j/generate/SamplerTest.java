package gptfast4j.generate;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The filtered distribution against its definition, computed here the plain way: softmax(logits / T) over the tokens
 * whose logit is at least the k-th largest (ties at it kept, as gpt-fast's {@code torch.topk} threshold), then the
 * most likely tokens (the lower id first among equals) until their probability reaches top-p, renormalized, then the
 * tokens at least min-p times as likely as the most likely one (transformers' MinPLogitsWarper), renormalized.
 */
class SamplerTest {

    private static float[] reference(float[] logits, float temperature, int topK, float topP, float minP) {
        int n = logits.length;
        float[] sorted = logits.clone();
        Arrays.sort(sorted);
        float threshold = topK == 0 || topK >= n ? Float.NEGATIVE_INFINITY : sorted[n - topK];
        double max = IntStream.range(0, n).mapToDouble(i -> logits[i]).max().orElseThrow();
        double[] p = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) sum += p[i] = logits[i] >= threshold ? Math.exp((logits[i] - max) / temperature) : 0;
        for (int i = 0; i < n; i++) p[i] /= sum;
        Integer[] order = IntStream.range(0, n).boxed().filter(i -> p[i] > 0)
                .sorted(Comparator.<Integer>comparingDouble(i -> -p[i]).thenComparingInt(i -> i)).toArray(Integer[]::new);
        double cumulative = 0;
        boolean[] kept = new boolean[n];
        for (int i : order) {
            kept[i] = true;
            cumulative += p[i];
            if (cumulative >= topP) break;
        }
        double largest = p[order[0]], keptSum = 0;
        for (int i = 0; i < n; i++) {
            kept[i] &= p[i] >= minP * largest; // the same ratio before and after top-p's renormalization
            if (kept[i]) keptSum += p[i];
        }
        float[] out = new float[n];
        for (int i = 0; i < n; i++) out[i] = kept[i] ? (float) (p[i] / keptSum) : 0;
        return out;
    }

    private static void assertDistribution(float[] logits, float temperature, int topK, float topP, float minP) {
        float[] out = new float[logits.length];
        new Sampler(logits.length, temperature, topK, topP, minP, 1).distribution(logits, 0, out);
        assertArrayEquals(reference(logits, temperature, topK, topP, minP), out, 1e-6f,
                "T " + temperature + " top-k " + topK + " top-p " + topP + " min-p " + minP + " logits " + Arrays.toString(logits));
    }

    @Test
    void smallCasesByHand() {
        float[] out = new float[4];
        new Sampler(4, 1, 2, 1, 1).distribution(new float[]{1, 2, 3, 4}, 0, out);
        assertArrayEquals(new float[]{0, 0, (float) (1 / (1 + Math.E)), (float) (Math.E / (1 + Math.E))}, out, 1e-6f);
        new Sampler(4, 1, 2, 1, 1).distribution(new float[]{5, 5, 5, 1}, 0, out); // ties at the k-th value are kept
        assertArrayEquals(new float[]{1 / 3f, 1 / 3f, 1 / 3f, 0}, out, 1e-6f);
        new Sampler(3, 1, 0, 0.4f, 1).distribution(new float[]{2, 2, 1}, 0, out = new float[3]); // 0.42 >= 0.4: one token, the lower id
        assertArrayEquals(new float[]{1, 0, 0}, out, 1e-6f);
        new Sampler(3, 1, 0, 0.8f, 1).distribution(new float[]{2, 2, 1}, 0, out); // 0.42 + 0.42 >= 0.8: two
        assertArrayEquals(new float[]{0.5f, 0.5f, 0}, out, 1e-6f);
        float[] oneTwoFour = {0, (float) Math.log(2), (float) Math.log(4)}; // probabilities 1/7, 2/7, 4/7
        new Sampler(3, 1, 0, 1, 0.5f, 1).distribution(oneTwoFour, 0, out); // 2/7 >= 0.5 * 4/7: two
        assertArrayEquals(new float[]{0, 1 / 3f, 2 / 3f}, out, 1e-6f);
        new Sampler(3, 1, 0, 1, 0.6f, 1).distribution(oneTwoFour, 0, out);
        assertArrayEquals(new float[]{0, 0, 1}, out, 1e-6f);
        new Sampler(3, 0.5f, 0, 1, 0.2f, 1).distribution(oneTwoFour, 0, out); // at T 0.5: 1/21, 4/21, 16/21; after the temperature, as transformers
        assertArrayEquals(new float[]{0, 0.2f, 0.8f}, out, 1e-6f);
    }

    /**
     * llama.cpp's penalties, the plain way: each distinct token among the window's, its logit divided by the repeat
     * penalty (multiplied where not positive), less count times the frequency penalty and the presence penalty once.
     */
    static float[] penalized(float[] logits, int[] sequence, int length, Sampler.Penalties pen) {
        float[] out = logits.clone();
        int from = pen.lastN() < 0 ? 0 : Math.max(0, length - pen.lastN());
        java.util.Map<Integer, Integer> counts = new java.util.TreeMap<>();
        for (int i = from; i < length; i++) if (sequence[i] >= 0) counts.merge(sequence[i], 1, Integer::sum);
        counts.forEach((t, c) -> {
            float l = logits[t];
            out[t] = (l <= 0 ? l * pen.repeat() : l / pen.repeat()) - c * pen.frequency() - pen.presence();
        });
        return out;
    }

    @Test
    void penaltiesByHand() {
        float[] logits = {2, -1, 0.5f, 3};
        int[] sequence = {0, 1, 0, 3};
        Sampler.Penalties all = new Sampler.Penalties(2, 0.1f, 0.5f, 64);
        // 0: 2 / 2 - 2 * 0.1 - 0.5 = 0.3; 1: -1 * 2 - 0.1 - 0.5 = -2.6; 2 as it was; 3: 3 / 2 - 0.1 - 0.5 = 0.9
        assertArrayEquals(new float[]{0.3f, -2.6f, 0.5f, 0.9f}, penalized(logits, sequence, 4, all), 1e-6f);
        float[] out = new float[4];
        new Sampler(4, 1, 0, 1, 0, all, 1).distribution(logits, 0, out, sequence, 4);
        assertArrayEquals(reference(new float[]{0.3f, -2.6f, 0.5f, 0.9f}, 1, 0, 1, 0), out, 1e-6f);
        assertEquals(3, new Sampler(4, 0, 0, 1, 0, all, 1).sample(logits, 0, sequence, 4), "greedy after the penalties");
        assertEquals(2, new Sampler(4, 0, 0, 1, 0, new Sampler.Penalties(8, 0, 0, 64), 1).sample(logits, 0, sequence, 4), "3 / 8 < 0.5");
        // the last two tokens only: 0 once (2 / 2 - 0.1 - 0.5 = 0.4), 3 once, 1 untouched
        new Sampler(4, 1, 0, 1, 0, new Sampler.Penalties(2, 0.1f, 0.5f, 2), 1).distribution(logits, 0, out, sequence, 4);
        assertArrayEquals(reference(new float[]{0.4f, -1, 0.5f, 0.9f}, 1, 0, 1, 0), out, 1e-6f);
        assertEquals(3, new Sampler(4, 0, 0, 1, 0, new Sampler.Penalties(2, 0, 0, 0), 1).sample(logits, 0, sequence, 4), "a window of 0: none");
        // unknown positions (-1) are skipped; the logits given are not changed
        new Sampler(4, 1, 0, 1, 0, all, 1).distribution(logits, 0, out, new int[]{-1, 3}, 2);
        assertArrayEquals(reference(new float[]{2, -1, 0.5f, 0.9f}, 1, 0, 1, 0), out, 1e-6f);
        assertArrayEquals(new float[]{2, -1, 0.5f, 3}, logits);
    }

    /** A logit bias the plain way: each named token's logit plus its bias (a token named twice gets both). */
    static float[] biased(float[] logits, Sampler.LogitBias bias) {
        float[] out = logits.clone();
        for (int i = 0; i < bias.tokens().length; i++) out[bias.tokens()[i]] += bias.biases()[i];
        return out;
    }

    @Test
    void logitBiasByHand() {
        float[] logits = {2, -1, 0.5f, 3};
        float[] out = new float[4];
        Sampler.LogitBias banThree = new Sampler.LogitBias(new int[]{3}, new float[]{Float.NEGATIVE_INFINITY});
        assertEquals(0, new Sampler(4, 0, 0, 1, 0, Sampler.Penalties.NONE, banThree, 1).sample(logits, 0), "greedy without token 3");
        new Sampler(4, 1, 0, 1, 0, Sampler.Penalties.NONE, banThree, 1).distribution(logits, 0, out);
        assertArrayEquals(reference(new float[]{2, -1, 0.5f, Float.NEGATIVE_INFINITY}, 1, 0, 1, 0), out, 1e-6f);
        assertEquals(0, out[3]);
        // token 1 named twice: -1 + 2 + 2.5 = 3.5, now the largest
        Sampler.LogitBias twice = new Sampler.LogitBias(new int[]{1, 1}, new float[]{2, 2.5f});
        assertEquals(1, new Sampler(4, 0, 0, 1, 0, Sampler.Penalties.NONE, twice, 1).sample(logits, 0));
        new Sampler(4, 0.7f, 2, 1, 0, Sampler.Penalties.NONE, twice, 1).distribution(logits, 0, out);
        assertArrayEquals(reference(new float[]{2, 3.5f, 0.5f, 3}, 0.7f, 2, 1, 0), out, 1e-6f);
        // the bias before the penalties, as llama.cpp's chain: token 0 seen, (2 + 1) / 2 = 1.5 (penalized first, 2 / 2 + 1 = 2)
        Sampler both = new Sampler(4, 1, 0, 1, 0, new Sampler.Penalties(2, 0, 0, 64), new Sampler.LogitBias(new int[]{0}, new float[]{1}), 1);
        both.distribution(logits, 0, out, new int[]{0}, 1);
        assertArrayEquals(reference(new float[]{1.5f, -1, 0.5f, 3}, 1, 0, 1, 0), out, 1e-6f);
        assertArrayEquals(new float[]{2, -1, 0.5f, 3}, logits, "the logits given are not changed");
        // refused: an id past the vocabulary, every token banned, +infinity, NaN
        org.junit.jupiter.api.function.Executable[] refused = {
                () -> new Sampler(4, 0, 0, 1, 0, Sampler.Penalties.NONE, new Sampler.LogitBias(new int[]{4}, new float[]{1}), 1),
                () -> new Sampler(2, 0, 0, 1, 0, Sampler.Penalties.NONE, new Sampler.LogitBias(new int[]{0, 1}, new float[]{Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}), 1),
                () -> new Sampler.LogitBias(new int[]{0}, new float[]{Float.POSITIVE_INFINITY}),
                () -> new Sampler.LogitBias(new int[]{0}, new float[]{Float.NaN}),
                () -> new Sampler.LogitBias(new int[]{-1}, new float[]{1})};
        for (var r : refused) org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, r);
    }

    @Test
    void randomLogitsMatchTheDefinition() {
        SplittableRandom random = new SplittableRandom(7);
        for (int c = 0; c < 200; c++) {
            int n = 1 + random.nextInt(300);
            float[] logits = new float[n];
            for (int i = 0; i < n; i++) logits[i] = random.nextInt(4) == 0 ? random.nextInt(3) : (float) random.nextGaussian() * 3; // some ties
            float temperature = new float[]{0.3f, 0.8f, 1f, 1.7f}[random.nextInt(4)];
            int topK = new int[]{0, 1, 5, 40, 200}[random.nextInt(5)];
            float topP = new float[]{0.05f, 0.5f, 0.9f, 0.95f, 1f}[random.nextInt(5)];
            float minP = new float[]{0, 0, 0.05f, 0.1f, 0.5f}[random.nextInt(5)];
            assertDistribution(logits, temperature, topK, topP, minP);
            // the same after penalties on a random sequence, against the plain way's penalties then its distribution
            int[] sequence = random.ints(random.nextInt(100), -1, n).toArray();
            Sampler.Penalties pen = new Sampler.Penalties(new float[]{1, 1.1f, 1.5f}[random.nextInt(3)], random.nextInt(2) * 0.3f,
                    random.nextInt(2) * 0.7f, new int[]{-1, 0, 8, 64}[random.nextInt(4)]);
            float[] out = new float[n];
            new Sampler(n, temperature, topK, topP, minP, pen, 1).distribution(logits, 0, out, sequence, sequence.length);
            assertArrayEquals(reference(penalized(logits, sequence, sequence.length, pen), temperature, topK, topP, minP), out, 1e-6f,
                    pen + " " + Arrays.toString(sequence));
            // and after a bias of a few tokens (some banned, where the vocabulary has more than those) before the penalties
            int[] tokens = random.ints(random.nextInt(4), 0, n).toArray();
            float[] biases = new float[tokens.length];
            for (int i = 0; i < biases.length; i++) biases[i] = n > 4 && random.nextInt(3) == 0 ? Float.NEGATIVE_INFINITY : (float) random.nextGaussian() * 5;
            Sampler.LogitBias bias = new Sampler.LogitBias(tokens, biases);
            new Sampler(n, temperature, topK, topP, minP, pen, bias, 1).distribution(logits, 0, out, sequence, sequence.length);
            assertArrayEquals(reference(penalized(biased(logits, bias), sequence, sequence.length, pen), temperature, topK, topP, minP), out, 1e-6f,
                    Arrays.toString(tokens) + " " + Arrays.toString(biases) + " " + pen);
        }
    }

    /** Sampling with top-k, top-p, min-p, penalties and a bias allocates nothing (a decode step must not; the top-p sort boxed every id). */
    @Test
    void samplingAllocatesNothing() {
        int n = 32000;
        float[] logits = new float[n];
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < n; i++) logits[i] = (float) random.nextGaussian() * 4;
        Sampler sampler = new Sampler(n, 0.8f, 200, 0.9f, 0.05f, new Sampler.Penalties(1.1f, 0.1f, 0.1f, 64),
                new Sampler.LogitBias(new int[]{5, 17}, new float[]{2, Float.NEGATIVE_INFINITY}), 5);
        assertAllocatesNothing(sampler, logits, random.ints(300, 0, n).toArray(), "");
        assertEquals(0, new Sampler(n, 0, 0, 1, 5).sample(new float[n], 0));
    }

    /** 200 samples of {@code logits} after {@code sequence}, once compiled, allocate under 4 KB (what the measure itself costs). */
    static void assertAllocatesNothing(Sampler sampler, float[] logits, int[] sequence, String what) {
        for (int i = 0; i < 2000; i++) sampler.sample(logits, 0, sequence, sequence.length); // compiled
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        int last = 0;
        for (int i = 0; i < 200; i++) last += sampler.sample(logits, 0, sequence, sequence.length);
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertTrue(last >= 0);
        assertTrue(allocated < 4096, allocated + " bytes allocated by 200 samples" + what);
    }

    /**
     * Logits that are NaN (or, for a draw, infinite) cannot be sampled: every sampler refuses them by name, where a
     * draw used to return the last id and greedy the first, so a corrupt model printed one token over and over.
     */
    @Test
    void logitsThatAreNotFiniteAreRefused() {
        float[] allNaN = new float[8], oneNaN = {1, 2, Float.NaN, 0, 0, 0, 0, 0}, infinite = {1, Float.POSITIVE_INFINITY, 0, 0, 0, 0, 0, 0};
        java.util.Arrays.fill(allNaN, Float.NaN);
        for (float[] logits : new float[][]{allNaN, oneNaN, infinite}) {
            var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class,
                    () -> new Sampler(8, 0.8f, 0, 0.9f, 1).sample(logits, 0));
            assertTrue(e.getMessage().startsWith("the model's logits are not finite"), e.getMessage());
            org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class,
                    () -> new Sampler(8, 0.8f, 0, 1, 1).distribution(logits, 0, new float[8]));
        }
        org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> new Sampler(8, 0, 0, 1, 1).sample(allNaN, 0));
        // greedy takes the largest finite logit past a NaN, and an infinite one as the largest
        assertEquals(1, new Sampler(8, 0, 0, 1, 1).sample(oneNaN, 0));
        assertEquals(1, new Sampler(8, 0, 0, 1, 1).sample(infinite, 0));
    }
}
