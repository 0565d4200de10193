package gptfast4j.model;

/**
 * LFM2's short convolution, what its convolution layers run in place of attention (llama.cpp's {@code shortconv}):
 * {@code shortconv.in_proj} makes three vectors of a token's normalized input, b, c and x (the layer's wq, wk and wv,
 * views of its rows), whose product b·x is convolved along the positions channel by channel, each channel with its
 * own {@code width} taps over this position and the {@code width - 1} before it (zeros before position 0), and the
 * result times c goes out through {@code shortconv.out_proj} (the layer's wo). Every position's b·x is kept in the
 * cache ({@link KvCache#storeConv}) as keys and values are, so that rewinds, shifts and saved caches hold it as they
 * hold them.
 * <pre>
 *   kernel : [dim, width]   channel i's taps at i * width, the oldest position's first
 * </pre>
 */
public record ShortConv(float[] kernel, int width) {
}
