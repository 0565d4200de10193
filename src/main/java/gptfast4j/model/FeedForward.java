package gptfast4j.model;

import gptfast4j.tensor.Tensor;

/** The FFN of a block: dense SwiGLU, or a sparse mixture of SwiGLU experts. */
public sealed interface FeedForward permits FeedForward.Dense, FeedForward.MoE {

    /** Bytes of weights read for one token (for the bandwidth figure): for a mixture, only the experts it uses. */
    long bytesPerToken();

    /** SwiGLU: {@code w2 · (silu(w1 · x) ⊙ (w3 · x))}. w1, w3: [dim, hidden]; w2: [hidden, dim]. */
    record Dense(Tensor w1, Tensor w2, Tensor w3) implements FeedForward {
        @Override
        public long bytesPerToken() {
            return w1.byteSize() + w2.byteSize() + w3.byteSize();
        }
    }

    /**
     * Mixtral's sparse mixture: {@code router} [dim, experts] scores the experts, softmax over all of them, the top
     * {@code used} run (ties to the lower index), and their outputs are summed with the chosen probabilities
     * renormalized to one ({@code normalized}; OLMoE's as they are). {@code w1[e], w2[e], w3[e]} are expert e's
     * SwiGLU matrices.
     */
    record MoE(Tensor router, Tensor[] w1, Tensor[] w2, Tensor[] w3, int used, boolean normalized) implements FeedForward {
        @Override
        public long bytesPerToken() {
            return router.byteSize() + used * (w1[0].byteSize() + w2[0].byteSize() + w3[0].byteSize());
        }

        /**
         * Picks the experts for one token from its router logits (turned into probabilities in place): writes the
         * chosen expert ids to {@code experts} and their weights (renormalized, where the mixture is) to {@code weights}.
         */
        public void route(float[] logits, int offset, int[] experts, float[] weights) {
            int n = w1.length;
            gptfast4j.tensor.VectorMath.softmax(logits, offset, n);
            float chosen = 0;
            for (int k = 0; k < used; k++) {
                int best = -1;
                for (int e = 0; e < n; e++) if (logits[offset + e] >= 0 && (best < 0 || logits[offset + e] > logits[offset + best])) best = e;
                experts[k] = best;
                weights[k] = logits[offset + best];
                chosen += weights[k];
                logits[offset + best] = -1; // taken
            }
            if (normalized) for (int k = 0; k < used; k++) weights[k] /= chosen;
        }
    }
}
