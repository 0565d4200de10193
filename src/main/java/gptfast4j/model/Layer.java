package gptfast4j.model;

import gptfast4j.tensor.Tensor;

/**
 * The weights of one transformer block, under Meta's names. Matrices are {@code [in, out]} in GGML order: each of the
 * {@code out} rows holds {@code in} contiguous weights.
 * <pre>
 *   attentionNorm, ffnNorm : [dim]
 *   wq : [dim, dim]     wk, wv : [dim, kvDim]     wo : [dim, dim]
 *   w1 (gate), w3 (up) : [dim, hidden]            w2 (down) : [hidden, dim]
 * </pre>
 */
public record Layer(float[] attentionNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
                    float[] ffnNorm, FeedForward feedForward) {
}
