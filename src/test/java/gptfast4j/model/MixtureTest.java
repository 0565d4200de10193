package gptfast4j.model;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Mixtral routing against a direct computation, and what a mixture reads per token. */
class MixtureTest {
    private static final Checkpoint MIXTRAL = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf"), null);

    /** Softmax in double, then the top k by a full sort (stable, so equal probabilities keep the lower index first). */
    private static int[] slowTopK(float[] logits, int k, double[] weightsOut) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[logits.length];
        double sum = 0;
        for (int e = 0; e < p.length; e++) sum += p[e] = Math.exp(logits[e] - max);
        Integer[] order = new Integer[p.length];
        for (int e = 0; e < p.length; e++) order[e] = e;
        java.util.Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
        int[] top = new int[k];
        double chosen = 0;
        for (int i = 0; i < k; i++) chosen += p[order[i]] / sum;
        for (int i = 0; i < k; i++) {
            top[i] = order[i];
            weightsOut[i] = p[order[i]] / sum / chosen;
        }
        return top;
    }

    @Test
    void routerPicksTheSameExpertsAsADirectComputation() {
        FeedForward.MoE moe = (FeedForward.MoE) MIXTRAL.model().weights().layers()[0].feedForward();
        assertEquals(4, moe.w1().length);
        assertEquals(2, moe.used());
        int dim = MIXTRAL.model().config.dim();
        Random random = new Random(5);
        float[] x = new float[dim], logits = new float[4];
        for (int trial = 0; trial < 500; trial++) {
            for (int i = 0; i < dim; i++) x[i] = (float) random.nextGaussian();
            moe.router().matvec(x, logits);
            double[] expectedWeights = new double[2];
            int[] expected = slowTopK(logits, 2, expectedWeights);
            int[] experts = new int[2];
            float[] weights = new float[2];
            moe.route(logits.clone(), 0, experts, weights);
            assertArrayEquals(expected, experts, "trial " + trial);
            assertEquals(expectedWeights[0], weights[0], 1e-6);
            assertEquals(expectedWeights[1], weights[1], 1e-6);
        }
    }

    @Test
    void tiesGoToTheLowerExpertIndexAsInLlamaCpp() {
        FeedForward.MoE moe = (FeedForward.MoE) MIXTRAL.model().weights().layers()[0].feedForward();
        int[] experts = new int[2];
        float[] weights = new float[2];
        moe.route(new float[]{0.5f, 2f, 2f, 2f}, 0, experts, weights);
        assertArrayEquals(new int[]{1, 2}, experts);
        assertEquals(0.5f, weights[0], 1e-7);
        moe.route(new float[]{1f, 1f, 1f, 1f}, 0, experts, weights);
        assertArrayEquals(new int[]{0, 1}, experts);
    }

    @Test
    void onlyTheChosenExpertsCountAsRead() {
        Weights w = MIXTRAL.model().weights();
        FeedForward.MoE moe = (FeedForward.MoE) w.layers()[0].feedForward();
        long oneExpert = moe.w1()[0].byteSize() + moe.w2()[0].byteSize() + moe.w3()[0].byteSize();
        assertEquals(moe.router().byteSize() + 2 * oneExpert, moe.bytesPerToken());
        long allExperts = 0;
        for (int e = 0; e < 4; e++) allExperts += moe.w1()[e].byteSize() + moe.w2()[e].byteSize() + moe.w3()[e].byteSize();
        assertTrue(moe.bytesPerToken() < allExperts);
    }
}
