package gptfast4j.model;

import gptfast4j.tensor.Tensor;

/**
 * Multi-head latent attention (MLA: DeepSeek-V2's and V3's, Kimi's), as llama.cpp runs it with the up-projections
 * absorbed: each position caches one latent of {@code rank} for all heads (wk's first rows, normalized by {@code
 * kvNorm}) beside one rotated key of {@code rope} elements (wk's last rows) that all heads share; a head's
 * non-rotated query part is taken into the latent space by its rows of {@code kB}, its attention's weighted sum of
 * latents back out by its rows of {@code vB}. So the attention is multi-query: one kv head {@link Config#headDim} =
 * {@code rope + rank} wide. Shapes, GGML order {@code [in, out]}:
 * <pre>
 *   qA : [dim, qRank], or null (queries straight from wq: DeepSeek-V2-Lite's)     qANorm : [qRank], or null
 *   Layer.wq : [qRank or dim, heads * (nope + rope)]      (each head's non-rotated part first)
 *   Layer.wk : attn_kv_a_mqa [dim, rank + rope]           kvNorm : [rank]
 *   kB : attn_k_b [nope, rank * heads]                    vB : attn_v_b [rank, valueWidth * heads]
 *   Layer.wo : [heads * valueWidth, dim]                  Layer.wv : null
 * </pre>
 * Files converted before llama.cpp split the up-projection ({@link #fused}) have both in {@code attn_kv_b} [rank, heads *
 * (nope + valueWidth)], each head's key rows then its value rows: {@code kB} and {@code vB} are then that one tensor,
 * whose key rows are taken transposed.
 */
public record LatentAttention(Tensor qA, float[] qANorm, float[] kvNorm, Tensor kB, Tensor vB, int nope, int rope, int valueWidth) {

    /** This attention with other matrices (a copy's). */
    LatentAttention with(Tensor qA, Tensor kB, Tensor vB) {
        return new LatentAttention(qA, qANorm, kvNorm, kB, vB, nope, rope, valueWidth);
    }

    /** Whether the up-projection is one attn_kv_b (kB and vB the same tensor). */
    public boolean fused() {
        return kB == vB;
    }

    /** The latent's width: its norm's. */
    public int rank() {
        return kvNorm.length;
    }

    /** The width of one head's query as wq writes it: its non-rotated part, then its rotated one. */
    int queryWidth() {
        return nope + rope;
    }

    /** Head h's first row of kB: its {@code rank} rows (split), or its {@code nope} key rows (fused). */
    long keyRows(int h) {
        return fused() ? (long) h * (nope + valueWidth) : (long) h * rank();
    }

    /** Head h's first row of vB: its {@code valueWidth} rows. */
    long valueRows(int h) {
        return fused() ? (long) h * (nope + valueWidth) + nope : (long) h * valueWidth;
    }

    /** Bytes a decode step reads: the matrices besides the layer's own. */
    long bytesPerToken() {
        return (qA == null ? 0 : qA.byteSize()) + kB.byteSize() + (fused() ? 0 : vB.byteSize());
    }
}
