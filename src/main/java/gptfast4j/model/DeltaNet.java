package gptfast4j.model;

import gptfast4j.tensor.Tensor;

import java.util.function.UnaryOperator;

/**
 * Qwen3.5's and Qwen3-Next's gated delta net, what three of their four layers run in place of attention (llama.cpp's
 * {@code qwen35} and {@code qwen3next} recurrent layers). The layer's wq ({@code attn_qkv}) makes {@code convChannels} of a token's normalized input, which
 * a causal convolution of {@code taps} per channel and SiLU turn into each key head's query and key (then
 * L2-normalized) and each value head's value; its wk ({@code attn_gate}) makes z. Per value head h (its key head h
 * mod {@code keyHeads}, Qwen3.5's; h / (valueHeads / keyHeads) where {@code interleaved}, Qwen3-Next's), a matrix S
 * [headWidth, headWidth] carried from token to token:
 * <pre>
 *   S = exp(g) · S,  g = softplus(alpha · x + dtBias) · a      (a decay per head and token)
 *   S += k ⊗ (beta · (v - Sᵀk)),  beta = sigmoid(beta · x)        (the delta rule)
 *   o = Sᵀq / sqrt(headWidth),  then rmsnorm(o) · norm · silu(z)   (each head's)
 * </pre>
 * and the heads' outputs go out through the layer's wo ({@code ssm_out}). The convolution's last inputs and the
 * matrices are a sequence's recurrent state ({@link Recurrent}), not a cache by position.
 * <pre>
 *   beta, alpha : [dim, valueHeads]      kernel : [taps, convChannels] (tap j of channel c at j * convChannels + c, oldest tap first)
 *   or betaAlpha : [dim, 2 * valueHeads] (Qwen3-Next's ssm_ba: per key head its value heads' beta rows, then their alpha rows)
 *   dtBias, a : [valueHeads]             norm : [headWidth]
 *   convChannels = (2 * keyHeads + valueHeads) * headWidth: queries, keys, values
 * </pre>
 */
public record DeltaNet(Tensor beta, Tensor alpha, Tensor betaAlpha, float[] kernel, int taps, float[] dtBias, float[] a, float[] norm, int keyHeads, int valueHeads,
                       int headWidth, boolean interleaved) implements RecurrentMixer {

    /** Value head h's key head. */
    public int keyHead(int h) {
        return interleaved ? h / (valueHeads / keyHeads) : h % keyHeads;
    }

    /** The convolution's channels: every key head's query and key, every value head's value. */
    @Override
    public int convChannels() {
        return (2 * keyHeads + valueHeads) * headWidth;
    }

    /** Qwen3.5's convolution has none. */
    @Override
    public float[] convBias() {
        return null;
    }

    /** wq's outputs are the convolution's channels alone. */
    @Override
    public int inputWidth() {
        return convChannels();
    }

    /** The value heads' width together: z's, the output's. */
    @Override
    public int outputWidth() {
        return valueHeads * headWidth;
    }

    /** A matrix [headWidth, headWidth] per value head. */
    @Override
    public int stateFloats() {
        return valueHeads * headWidth * headWidth;
    }

    /** This layer with {@code f} applied to its matrices (beta's and alpha's, or their fused one). */
    @Override
    public DeltaNet with(UnaryOperator<Tensor> f) {
        return betaAlpha != null ? new DeltaNet(null, null, f.apply(betaAlpha), kernel, taps, dtBias, a, norm, keyHeads, valueHeads, headWidth, interleaved)
                : new DeltaNet(f.apply(beta), f.apply(alpha), null, kernel, taps, dtBias, a, norm, keyHeads, valueHeads, headWidth, interleaved);
    }

    @Override
    public long bytesPerToken() {
        return (betaAlpha != null ? betaAlpha.byteSize() : beta.byteSize() + alpha.byteSize()) + 4L * (kernel.length + dtBias.length + a.length + norm.length);
    }
}
