package gptfast4j.model;

import gptfast4j.tensor.Tensor;

/** The FFN of a block: dense SwiGLU, or a mixture of SwiGLU experts. */
public sealed interface FeedForward permits FeedForward.Dense {

    /** Bytes of weights read for one token (for the bandwidth figure). */
    long bytesPerToken();

    /** SwiGLU: {@code w2 · (silu(w1 · x) ⊙ (w3 · x))}. */
    record Dense(Tensor w1, Tensor w2, Tensor w3) implements FeedForward {
        @Override
        public long bytesPerToken() {
            return w1.byteSize() + w2.byteSize() + w3.byteSize();
        }
    }
}
