package gptfast4j.model;

import gptfast4j.tensor.Tensor;

/** The FFN of a block: dense SwiGLU, or a sparse mixture of SwiGLU experts. */
public sealed interface FeedForward permits FeedForward.Dense, FeedForward.MoE {

    /** Bytes of weights read for one token (for the bandwidth figure): for a mixture, only the experts it uses. */
    long bytesPerToken();

    /**
     * SwiGLU: {@code w2 · (silu(w1 · x) ⊙ (w3 · x))}. w1, w3: [dim, hidden]; w2: [hidden, dim]. w1 null: no gate, the
     * activation of {@code w3 · x} alone (Arcee's {@link Config.Activation#RELU_SQUARED}). {@code gateBias} and {@code
     * upBias} [hidden], {@code downBias} [dim]: w1's (JAIS's), w3's and w2's biases (StarCoder2's, Phi-2's), or null.
     * {@code hiddenNorm} [hidden]: BitNet's RMS norm of w2's input ({@code ffn_sub_norm}), or null.
     */
    record Dense(Tensor w1, Tensor w2, Tensor w3, float[] gateBias, float[] upBias, float[] downBias, float[] hiddenNorm) implements FeedForward {
        public Dense(Tensor w1, Tensor w2, Tensor w3) {
            this(w1, w2, w3, null, null, null, null);
        }

        /** This feed-forward with other matrices (a copy's), its biases and norm the same. */
        public Dense with(Tensor w1, Tensor w2, Tensor w3) {
            return new Dense(w1, w2, w3, gateBias, upBias, downBias, hiddenNorm);
        }

        @Override
        public long bytesPerToken() {
            return (w1 == null ? 0 : w1.byteSize()) + w2.byteSize() + w3.byteSize();
        }

        /** hidden: w2's columns, whole in a process's share too (whose w1 and w3 hold some of the rows). */
        public int width() {
            return w2.cols;
        }
    }

    /**
     * A sparse mixture: {@code router} [dim, experts] scores the experts (plus the router's bias where it has one), the
     * top {@code used} run (ties to the lower index) and their outputs are summed with weights as {@code routing}
     * makes them, times {@code scale} (DeepSeek's {@code expert_weights_scale}; 1 for none). {@code w1[e], w2[e],
     * w3[e]} are expert e's gate, down and up matrices ({@code w1} null: experts without a gate, the activation of
     * {@code w3 · x} alone, Nemotron-H's ReLU²); {@code biases} null, or
     * gpt-oss's biases of the router and of each expert's matrices; {@code selectionBias} null, or ERNIE 4.5's
     * [experts] added to the probabilities to choose the experts, not to weigh them (llama.cpp's {@code exp_probs_b});
     * {@code groups} 1, or DeepSeek-V3's groups of experts (consecutive, as many in each), of which the {@code
     * groupsUsed} with the highest sums of their two best scores are the only ones the experts are chosen from
     * (llama.cpp's {@code expert_group_count} and {@code expert_group_used_count}, at most 64 groups);
     * {@code shared} null, or the expert every token runs.
     */
    record MoE(Tensor router, Tensor[] w1, Tensor[] w2, Tensor[] w3, int used, Routing routing, float scale, Biases biases, float[] selectionBias,
               int groups, int groupsUsed, Shared shared) implements FeedForward {
        @Override
        public long bytesPerToken() {
            return router.byteSize() + used * ((w1 == null ? 0 : w1[0].byteSize()) + w2[0].byteSize() + w3[0].byteSize())
                    + (shared == null ? 0 : shared.ffn.bytesPerToken());
        }

        /** The experts' hidden width (whole in a process's share too: {@link Dense#width}). */
        public int width() {
            return w2[0].cols;
        }

        /** This mixture's routing with other matrices and biases (a copy's, a process's share), its shared expert's {@code sharedFfn}. */
        public MoE with(Tensor[] w1, Tensor[] w2, Tensor[] w3, Biases biases, Dense sharedFfn) {
            return new MoE(router, w1, w2, w3, used, routing, scale, biases, selectionBias, groups, groupsUsed, shared == null ? null : new Shared(sharedFfn, shared.gate));
        }

        /**
         * Picks the experts for one token from its router logits (changed in place): writes the chosen expert ids to
         * {@code experts} and their weights to {@code weights}.
         */
        public void route(float[] logits, int offset, int[] experts, float[] weights) {
            int n = w2.length;
            if (biases != null) gptfast4j.tensor.VectorMath.add(logits, offset, biases.router(), 0, n);
            switch (routing) {
                case SOFTMAX, SOFTMAX_RENORMALIZED -> gptfast4j.tensor.VectorMath.softmax(logits, offset, n);
                case SIGMOID, SIGMOID_RENORMALIZED -> { for (int e = 0; e < n; e++) logits[offset + e] = sigmoid(logits[offset + e]); }
                case TOP_K_SOFTMAX, SIGMOID_INPUT -> { }
            }
            float chosen = 0;
            long allowed = groups > 1 ? chosenGroups(logits, offset, n) : -1L;
            int perGroup = n / groups;
            for (int k = 0; k < used; k++) {
                int best = -1;
                float bestScore = 0;
                for (int e = 0; e < n; e++) {
                    if (logits[offset + e] == Float.NEGATIVE_INFINITY || (allowed >>> (e / perGroup) & 1) == 0) continue;
                    float score = score(logits, offset, e);
                    if (best < 0 || score > bestScore) {
                        best = e;
                        bestScore = score;
                    }
                }
                experts[k] = best;
                weights[k] = logits[offset + best];
                chosen += weights[k];
                logits[offset + best] = Float.NEGATIVE_INFINITY; // taken
            }
            switch (routing) {
                // llama.cpp's sum clamped to F16's smallest normal number
                case SOFTMAX_RENORMALIZED, SIGMOID_RENORMALIZED -> { for (int k = 0; k < used; k++) weights[k] /= Math.max(chosen, 6.103515625e-5f); }
                case TOP_K_SOFTMAX -> gptfast4j.tensor.VectorMath.softmax(weights, 0, used);
                case SIGMOID_INPUT -> { for (int k = 0; k < used; k++) weights[k] = sigmoid(weights[k]); }
                case SOFTMAX, SIGMOID -> { }
            }
            if (scale != 1f) for (int k = 0; k < used; k++) weights[k] *= scale;
        }

        /** Expert e's score for the choice: its probability (or logit), plus its selection bias where there is one. */
        private float score(float[] probs, int offset, int e) {
            return selectionBias == null ? probs[offset + e] : probs[offset + e] + selectionBias[e];
        }

        /**
         * The {@link #groupsUsed} groups (a bit each) whose two best experts' scores sum highest, the first group of a
         * tie: DeepSeek-V3's group-limited routing, as llama.cpp's graph runs it.
         */
        private long chosenGroups(float[] probs, int offset, int n) {
            int perGroup = n / groups;
            long chosen = 0;
            for (int k = 0; k < groupsUsed; k++) {
                int best = -1;
                float bestScore = 0;
                for (int g = 0; g < groups; g++) {
                    if ((chosen >>> g & 1) != 0) continue;
                    float first = Float.NEGATIVE_INFINITY, second = Float.NEGATIVE_INFINITY;
                    for (int e = g * perGroup; e < (g + 1) * perGroup; e++) {
                        float score = score(probs, offset, e);
                        if (score > first) {
                            second = first;
                            first = score;
                        } else if (score > second) {
                            second = score;
                        }
                    }
                    if (best < 0 || first + second > bestScore) {
                        best = g;
                        bestScore = first + second;
                    }
                }
                chosen |= 1L << best;
            }
            return chosen;
        }

        private static float sigmoid(float x) {
            return 1f / (1f + (float) Math.exp(-x));
        }
    }

    /**
     * The shared expert of a mixture (Qwen2-MoE's, ERNIE 4.5's, Granite's, Llama 4's): a dense SwiGLU every token runs,
     * its output added to the chosen experts', times {@code sigmoid(gate · x)} where {@code gate} [dim, 1] is not null
     * (Qwen2-MoE's: a product, as llama.cpp runs it, whose input an importance matrix records).
     */
    record Shared(Dense ffn, Tensor gate) {
    }

    /** How a mixture weighs the experts it chose (llama.cpp's gating functions and {@code norm_w}). */
    enum Routing {
        /** A softmax over all experts, the chosen ones' probabilities renormalized to one (Mixtral, Qwen3-MoE, Granite). */
        SOFTMAX_RENORMALIZED,
        /** A softmax over all experts, the chosen ones' probabilities as they are (OLMoE, Qwen2-MoE, DeepSeek-MoE). */
        SOFTMAX,
        /** Each expert's sigmoid, the chosen ones' as they are (dots.llm1's without {@code expert_weights_norm}). */
        SIGMOID,
        /** Each expert's sigmoid, the chosen ones' renormalized to one (dots.llm1's, DeepSeek V3's). */
        SIGMOID_RENORMALIZED,
        /** The experts of the highest logits chosen, a softmax over their logits (gpt-oss: llama.cpp's SOFTMAX_WEIGHT). */
        TOP_K_SOFTMAX,
        /**
         * The experts of the highest logits chosen, each one's input times the sigmoid of its logit and its output added
         * as it is (Llama 4: llama.cpp's SIGMOID with its weights before the FFN).
         */
        SIGMOID_INPUT
    }

    /**
     * gpt-oss's biases: the router's [experts], and per expert its gate's and up's [hidden] (added before the
     * activation) and its down's [dim] (added to its output).
     */
    record Biases(float[] router, float[][] w1, float[][] w2, float[][] w3) {
    }
}
