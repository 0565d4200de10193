package gptfast4j.model;

import gptfast4j.tensor.Tensor;

/**
 * The weights of one transformer block, under Meta's names. Matrices are {@code [in, out]} in GGML order: each of the
 * {@code out} rows holds {@code in} contiguous weights.
 * <pre>
 *   attentionNorm, ffnNorm : [dim]
 *   wq : [dim, dim]     wk, wv : [dim, kvDim]     wo : [dim, dim]
 *   w1 (gate), w3 (up) : [dim, hidden]            w2 (down) : [hidden, dim]
 *   qNorm, kNorm : [headDim], or null
 *   qBias : [qDim]      kBias, vBias : [kvDim], or null
 *   postAttentionNorm, postFfnNorm : [dim], or null
 *   outputBias : [dim], or null       sinks : [heads], or null
 * </pre>
 * {@code qNorm} and {@code kNorm}: Qwen3's RMS norms of each head's query and key before RoPE (one weight vector for
 * all heads); {@code qBias}, {@code kBias}, {@code vBias}: Qwen2's biases of the query, key and value projections;
 * {@code postAttentionNorm}, {@code postFfnNorm}: Gemma's and OLMo2's RMS norms of the attention's and the FFN's
 * outputs before their residuals. Null in Llama-family models, which have none of these; OLMo2 has no {@code
 * attentionNorm} and {@code ffnNorm} (null), its qNorm and kNorm all heads' wide ([qDim], [kvDim]). gpt-oss's
 * {@code outputBias} is wo's bias, and its {@code sinks} each head's learned logit that joins the softmax of its scores
 * (taking a share of the weights, given to no position). {@code latent}: DeepSeek-V2's multi-head latent attention,
 * whose wk is its latent's projection and which has no wv (null); null in the others. {@code xielu}: Apertus's xIELU
 * parameters, {@code [alphaN, alphaP, beta, eps]} as {@link gptfast4j.tensor.VectorMath#xielu} takes them; null in the others.
 * {@code shortConv}: an LFM2 convolution layer's kernel, where its wq, wk and wv are the three parts of {@code
 * shortconv.in_proj} (each [dim, dim]) and its wo {@code shortconv.out_proj} ({@link ShortConv}); null in attention layers.
 * {@code recurrent}: a recurrent layer's own weights ({@link RecurrentMixer}): a Qwen3.5 gated delta net's, where its wq
 * is {@code attn_qkv}, its wk {@code attn_gate}, its wv null and its wo {@code ssm_out} ({@link DeltaNet}), or a Mamba
 * mixer's; or Falcon-H1's Mamba-2 mixer beside the layer's attention ({@link Mamba2#besideAttention}); null in attention
 * and convolution layers. {@code queryGates}: Qwen3.5's
 * attention, whose wq is [dim, 2 * qDim], each head's query followed by its gate, whose sigmoid multiplies the head's
 * output before wo. {@code attentionNormBias}, {@code ffnNormBias}: the biases of a LayerNorm's norms (StarCoder2's,
 * Phi-2's), added after their weights; null in the others. {@code attendedNorm} [qDim]: BitNet's RMS norm of the
 * heads' outputs before wo ({@code attn_sub_norm}); null in the others.
 */
public record Layer(float[] attentionNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
                    float[] ffnNorm, FeedForward feedForward, float[] qNorm, float[] kNorm,
                    float[] qBias, float[] kBias, float[] vBias, float[] postAttentionNorm, float[] postFfnNorm,
                    float[] outputBias, float[] sinks, LatentAttention latent, float[] xielu, ShortConv shortConv, RecurrentMixer recurrent,
                    boolean queryGates, float[] attentionNormBias, float[] ffnNormBias, float[] attendedNorm) {

    /** A layer without {@code attendedNorm}: every family's but BitNet's. */
    public Layer(float[] attentionNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
                 float[] ffnNorm, FeedForward feedForward, float[] qNorm, float[] kNorm,
                 float[] qBias, float[] kBias, float[] vBias, float[] postAttentionNorm, float[] postFfnNorm,
                 float[] outputBias, float[] sinks, LatentAttention latent, float[] xielu, ShortConv shortConv, RecurrentMixer recurrent,
                 boolean queryGates, float[] attentionNormBias, float[] ffnNormBias) {
        this(attentionNorm, wq, wk, wv, wo, ffnNorm, feedForward, qNorm, kNorm, qBias, kBias, vBias, postAttentionNorm, postFfnNorm,
                outputBias, sinks, latent, xielu, shortConv, recurrent, queryGates, attentionNormBias, ffnNormBias, null);
    }

    /**
     * Whether it attends (its positions' keys and values cached): not a convolution's, a recurrent mixer's in place of
     * attention, a feed-forward's block, or a deci model's wo alone (no wq: Nemotron-51B's "linear attention").
     */
    public boolean attends() {
        return wo != null && wq != null && shortConv == null && (recurrent == null || recurrent instanceof Mamba2 m && m.besideAttention());
    }

    /** This layer with other matrices (a copy's), its vectors the same. */
    Layer with(Tensor wq, Tensor wk, Tensor wv, Tensor wo, FeedForward feedForward, LatentAttention latent, RecurrentMixer recurrent) {
        return new Layer(attentionNorm, wq, wk, wv, wo, ffnNorm, feedForward, qNorm, kNorm, qBias, kBias, vBias, postAttentionNorm, postFfnNorm,
                outputBias, sinks, latent, xielu, shortConv, recurrent, queryGates, attentionNormBias, ffnNormBias, attendedNorm);
    }
}
