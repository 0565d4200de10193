package gptfast4j.model;

import gptfast4j.tensor.Tensor;

import java.util.function.UnaryOperator;

/**
 * A Mamba-2 mixer, what Granite 4.0-H's recurrent layers run in place of attention and Falcon-H1's beside it (llama.cpp's
 * {@code build_mamba2_layer}). Its input projection {@code ssm_in}'s rows: {@link #in} makes the convolution's
 * channels, x [innerWidth], B and C [groups * stateSize] each, then dt [heads]; {@link #gate} makes z [innerWidth] (the
 * rows before in's in the file); where it runs in place of attention these are the layer's wq and wk and its output
 * projection the layer's wo ({@code in}, {@code gate} and {@code out} null), beside attention its own. x, B and C go through a causal convolution of {@code taps} per channel, its bias and SiLU. Per head h (of group g = h / (heads / groups)), a
 * matrix S [headWidth, stateSize] carried from token to token (held [stateSize][headWidth]: the head's rows are vector
 * lanes):
 * <pre>
 *   dt = softplus(dt + dtBias),  S = exp(dt · a) · S + (x · dt) ⊗ B      (a decay per head and token)
 *   y = S · C + d · x,  then y · silu(z), RMS-normalized per group of innerWidth / groups, times norm
 * </pre>
 * and the heads' outputs go out through the layer's wo ({@code ssm_out}).
 * <pre>
 *   kernel : [taps, convChannels] (tap j of channel c at j * convChannels + c, oldest first)   convBias : [convChannels] or null
 *   dtBias, a, d : [heads]          norm : [innerWidth], or null (Falcon-H1's without one)
 *   in : [dim, convChannels + heads]    gate : [dim, innerWidth]    out : [innerWidth, dim], or all null
 *   convChannels = innerWidth + 2 * groups * stateSize;  innerWidth = heads * headWidth
 * </pre>
 */
public record Mamba2(float[] kernel, float[] convBias, int taps, float[] dtBias, float[] a, float[] d, float[] norm, int heads, int headWidth, int groups,
                     int stateSize, Tensor in, Tensor gate, Tensor out) implements RecurrentMixer {

    /** Whether it runs beside the layer's attention, with projections of its own, rather than in its place. */
    public boolean besideAttention() {
        return in != null;
    }

    /** x's, z's and the output's width: every head's. */
    public int innerWidth() {
        return heads * headWidth;
    }

    /** x, then B and C of every group. */
    @Override
    public int convChannels() {
        return innerWidth() + 2 * groups * stateSize;
    }

    /** wq's outputs: the convolution's channels, then dt. */
    @Override
    public int inputWidth() {
        return convChannels() + heads;
    }

    @Override
    public int outputWidth() {
        return innerWidth();
    }

    /** A matrix [headWidth, stateSize] per head. */
    @Override
    public int stateFloats() {
        return heads * headWidth * stateSize;
    }

    /** This mixer with {@code f} applied to its own matrices, where it has them (beside attention). */
    @Override
    public Mamba2 with(UnaryOperator<Tensor> f) {
        return in == null ? this : new Mamba2(kernel, convBias, taps, dtBias, a, d, norm, heads, headWidth, groups, stateSize, f.apply(in), f.apply(gate), f.apply(out));
    }

    @Override
    public long bytesPerToken() {
        return (in == null ? 0 : in.byteSize() + gate.byteSize() + out.byteSize())
                + 4L * (kernel.length + (convBias == null ? 0 : convBias.length) + dtBias.length + a.length + d.length + (norm == null ? 0 : norm.length));
    }
}
