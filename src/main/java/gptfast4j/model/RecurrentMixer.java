package gptfast4j.model;

import gptfast4j.tensor.Tensor;

import java.util.function.UnaryOperator;

/**
 * What a recurrent layer runs in place of attention (llama.cpp's recurrent layers): a causal convolution over the
 * layer's projected input, then heads whose matrices are carried from token to token. Both are a sequence's state
 * ({@link Recurrent}), not a cache by position. The layer's wq makes {@link #inputWidth} of a token's normalized input
 * (the convolution's channels first), its wk (where it has one) the gate z, and its wo reads {@link #outputWidth}.
 */
public sealed interface RecurrentMixer permits DeltaNet, Mamba2, Mamba1 {

    /** The convolution's taps per channel (its state keeps the last {@code taps - 1} inputs). */
    int taps();

    /** The convolution's taps, [taps, convChannels]: tap j of channel c at {@code j * convChannels + c}, the oldest first. */
    float[] kernel();

    /** The convolution's bias [convChannels] added before its SiLU, or null for none. */
    float[] convBias();

    /** The channels the convolution runs over: the first of each token's {@link #inputWidth}. */
    int convChannels();

    /** The layer's wq's outputs per token: the convolution's channels and whatever follows them. */
    int inputWidth();

    /** The heads' outputs per token, which the layer's wo reads (and z's width). */
    int outputWidth();

    /** The floats of the heads' matrices a sequence's state holds. */
    int stateFloats();

    /** This mixer with {@code f} applied to its own matrices (not the layer's wq, wk, wo). */
    RecurrentMixer with(UnaryOperator<Tensor> f);

    /** Bytes read per token: its own weights (the layer's wq, wk and wo are counted with the layer's). */
    long bytesPerToken();
}
