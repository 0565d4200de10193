package gptfast4j.model;

import gptfast4j.tensor.Tensor;

import java.util.function.UnaryOperator;

/**
 * A Mamba (Mamba-1) mixer, what Falcon-Mamba's and state-spaces' Mamba models run in each block and Jamba's in place
 * of attention in most layers (llama.cpp's {@code build_mamba_layer}). The layer's wq and wk are views of {@code ssm_in}'s rows: wq makes x [innerWidth], wk z
 * [innerWidth]. x goes through a causal convolution of {@code taps} per channel, its bias and SiLU; then its own
 * projections give each token dt's low-rank input, B and C:
 * <pre>
 *   [dtIn (dtRank), B (stateSize), C (stateSize)] = xProj · x     (each RMS-normalized times dtNorm, bNorm, cNorm where
 *                                                                 it has them: Jamba's; Falcon-Mamba's weights are ones)
 *   dt = softplus(dtProj · dtIn + dtBias)                          [innerWidth]: a step per channel
 * </pre>
 * Per channel c a row S[c] of {@code stateSize} carried from token to token (held [stateSize][innerWidth]: channels are
 * vector lanes), each state decaying at its own rate:
 * <pre>
 *   S[c] = exp(dt[c] · a[c]) · S[c] + (x[c] · dt[c]) · B,   y[c] = S[c] · C + d[c] · x[c],   then y · silu(z)
 * </pre>
 * and the channels' outputs go out through the layer's wo ({@code ssm_out}).
 * <pre>
 *   xProj : [innerWidth, dtRank + 2 * stateSize]     dtProj : [dtRank, innerWidth]
 *   kernel : [taps, innerWidth] (tap j of channel c at j * innerWidth + c, oldest first)    convBias, dtBias, d : [innerWidth]
 *   a : [stateSize, innerWidth] (state k of channel c at k * innerWidth + c: the file's [innerWidth][stateSize] transposed)
 *   dtNorm : [dtRank], bNorm, cNorm : [stateSize], or all null (no norms)
 * </pre>
 */
public record Mamba1(Tensor xProj, Tensor dtProj, float[] kernel, float[] convBias, int taps, float[] dtBias, float[] a, float[] d,
                     int innerWidth, int dtRank, int stateSize, float[] dtNorm, float[] bNorm, float[] cNorm) implements RecurrentMixer {

    /** Whether dt's input, B and C are RMS-normalized (Falcon-Mamba's and Jamba's). */
    public boolean normed() {
        return dtNorm != null;
    }

    /** The convolution runs over x alone. */
    @Override
    public int convChannels() {
        return innerWidth;
    }

    /** wq's outputs: x. */
    @Override
    public int inputWidth() {
        return innerWidth;
    }

    @Override
    public int outputWidth() {
        return innerWidth;
    }

    /** xProj's outputs per token: dt's input, B, C. */
    public int projectedWidth() {
        return dtRank + 2 * stateSize;
    }

    /** A row of {@code stateSize} per channel. */
    @Override
    public int stateFloats() {
        return innerWidth * stateSize;
    }

    /** This mixer with {@code f} applied to its matrices (xProj and dtProj). */
    @Override
    public Mamba1 with(UnaryOperator<Tensor> f) {
        return new Mamba1(f.apply(xProj), f.apply(dtProj), kernel, convBias, taps, dtBias, a, d, innerWidth, dtRank, stateSize, dtNorm, bNorm, cNorm);
    }

    @Override
    public long bytesPerToken() {
        return xProj.byteSize() + dtProj.byteSize() + 4L * (kernel.length + convBias.length + dtBias.length + a.length + d.length
                + (dtNorm == null ? 0 : dtNorm.length + bNorm.length + cNorm.length));
    }
}
