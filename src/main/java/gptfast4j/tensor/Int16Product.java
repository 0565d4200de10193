package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q4_0 prefill in int16 arithmetic: matrix x matrix with the activations rounded to int8 per block of 32, as
 * llama.cpp's x86 {@code quantize_row_q8_0} rounds them for its Q4_0 products (scale {@code max|x| / 127} kept as an
 * f16, values {@code rint(x * 127 / max|x|)}), and the weights as their nibbles minus 8
 * ({@link Q4_0Tensor#smallIntRows}). What it computes is then what llama.cpp computes for Q4_0 (PerplexityTest).
 * <p>
 * Why: prefill is bound by multiply-adds, and the Vector API has no int8 dot product, but a 512-bit int16 multiply
 * and add do 32 products where a float FMA does 16: one core ran 190 G int16 multiply-adds/s against 110 G float
 * FMAs/s. A block's 32 products of a q in [-8, 7] with an activation in [-127, 127] sum to at most 32512, so they
 * accumulate in int16 lanes without overflow; each block's sums are then converted once and scaled into float sums.
 * <p>
 * Layout: tokens in the lanes. Activations are stored per group of {@link #GROUP} tokens as {@code [column][token]}
 * int16 ({@code xq}), with per-block float scales ({@code dx}). The micro-kernel ({@link #block}) holds 8 rows x
 * GROUP tokens in 16 int16 accumulators for one block of 32 columns; {@link #flush} widens them into float sums, a
 * quarter of the time (106 GMAC/s per core in the engine against 86-88 for the float path), loading the int16 sums
 * half a vector at a time sign-extended to int lanes ({@code vpmovsxwd} from memory: one instruction, no shifts).
 */
final class Int16Product {
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, Tensor.F_SPECIES.vectorShape());
    private static final VectorSpecies<Float> F = Tensor.F_SPECIES;
    /** Tokens per group: two int16 vectors (64 on AVX-512). */
    static final int GROUP = 2 * S.length();
    /**
     * Batches this size or larger take this product. A fixed number rather than {@link #GROUP}, so that which
     * arithmetic a batch gets does not depend on the machine's vector width.
     */
    static final int MIN_TOKENS = 64;
    private static final int BLOCK = 32;
    private static final float ROUNDER = 0x1.8p23f;
    /** Blocks per piece of {@link #quantize}: a piece of a group (16 KB) stays in L1 while its tokens are written into it. */
    private static final int CHUNK_BLOCKS = 4;

    private Int16Product() {
    }

    /** The activations of one call, rounded to int8 per block of 32, grouped by {@link #GROUP} tokens. */
    private record Activations(short[] q, float[] scale, int groups) {
    }

    /** {@code out[t * outStride + r] = row r · x_t} for all rows and tokens, as {@link Tensor#matmul}. */
    static void matmul(Q4_0Tensor w, float[] x, int nTokens, float[] out, int outStride) {
        // tile rows padded by 64 bytes: at a stride that is a multiple of 4 KB the eight weight rows would share L1 sets
        int cols = w.cols, blocks = cols / BLOCK, nRows = Math.toIntExact(w.rows), stride = cols + 32;
        Activations a = quantize(x, nTokens, cols);
        int tileHeight = Math.clamp(Tensor.TILE_BYTES / (2L * cols) / 8 * 8, 8, 256); // int16 weights: twice the rows of a float tile
        Parallel.runChunks(nRows, Tensor.chunkRows(nRows, tileHeight), (start, end) -> {
            short[] tile = Tensor.shortScratch(TILE, tileHeight * stride);
            float[] scale = Tensor.scratch(SCALES, tileHeight * blocks);
            short[] sums = Tensor.shortScratch(SUMS, 8 * GROUP);
            float[] acc = Tensor.scratch(ACCUMULATORS, 8 * GROUP);
            for (int r0 = start; r0 < end; r0 += tileHeight) {
                int tileRows = Math.min(tileHeight, end - r0);
                w.smallIntRows(r0, tileRows, tile, stride, scale, blocks);
                for (int g = 0; g < a.groups; g++) {
                    int t0 = g * GROUP, tokens = Math.min(GROUP, nTokens - t0);
                    for (int r = 0; r < tileRows; r += 8) {
                        // rows past the tile's end repeat its last row; their sums are not written out
                        int last = tileRows - 1, height = Math.min(8, tileRows - r);
                        java.util.Arrays.fill(acc, 0);
                        for (int b = 0; b < blocks; b++) {
                            block(tile, r * stride, Math.min(r + 1, last) * stride, Math.min(r + 2, last) * stride, Math.min(r + 3, last) * stride,
                                    Math.min(r + 4, last) * stride, Math.min(r + 5, last) * stride, Math.min(r + 6, last) * stride,
                                    Math.min(r + 7, last) * stride, a.q, g * cols * GROUP, b * BLOCK, sums);
                            flush(sums, a.scale, (g * blocks + b) * GROUP, scale, r, last, blocks, b, acc);
                        }
                        for (int t = 0; t < tokens; t++) {
                            int o = (t0 + t) * outStride + r0 + r;
                            for (int i = 0; i < height; i++) out[o + i] = acc[i * GROUP + t];
                        }
                    }
                }
            }
        });
    }

    private static final ThreadLocal<short[]> TILE = ThreadLocal.withInitial(() -> new short[0]);
    private static final ThreadLocal<float[]> SCALES = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<short[]> SUMS = ThreadLocal.withInitial(() -> new short[0]);
    private static final ThreadLocal<float[]> ACCUMULATORS = ThreadLocal.withInitial(() -> new float[0]);

    /** The calling thread's rounded activations and their scales, kept between calls. */
    private static final ThreadLocal<short[]> ROUNDED = ThreadLocal.withInitial(() -> new short[0]);
    private static final ThreadLocal<float[]> ROUNDED_SCALES = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * x ({@code nTokens} rows of {@code cols}) rounded to int8 per block of 32, transposed into groups, in scratch
     * arrays of the calling thread written by all threads. The lanes of the last group past the batch keep whatever
     * they held: lanes never mix, and their sums are dropped.
     */
    private static Activations quantize(float[] x, int nTokens, int cols) {
        int groups = (nTokens + GROUP - 1) / GROUP, blocks = cols / BLOCK;
        short[] q = Tensor.shortScratch(ROUNDED, groups * cols * GROUP);
        float[] scale = Tensor.scratch(ROUNDED_SCALES, groups * blocks * GROUP);
        int chunks = (blocks + CHUNK_BLOCKS - 1) / CHUNK_BLOCKS;
        Parallel.run(groups * chunks, 1, (start, end) -> {
            int[] rounded = RowLanes.blockInts();
            for (int piece = start; piece < end; piece++) {
                int g = piece / chunks, b0 = piece % chunks * CHUNK_BLOCKS, b1 = Math.min(blocks, b0 + CHUNK_BLOCKS);
                for (int u = 0, t = g * GROUP; u < GROUP && t < nTokens; u++, t++) {
                    for (int b = b0; b < b1; b++) {
                        int from = t * cols + b * BLOCK;
                        FloatVector m = FloatVector.zero(F);
                        for (int k = 0; k < BLOCK; k += F.length()) m = m.max(FloatVector.fromArray(F, x, from + k).abs());
                        float max = m.reduceLanes(VectorOperators.MAX), inverse = max == 0 ? 0 : 127 / max;
                        // round half to even: adding and taking off 1.5 * 2^23 leaves no fraction bits (|x * inverse| <= 127)
                        for (int k = 0; k < BLOCK; k += F.length()) {
                            FloatVector.fromArray(F, x, from + k).mul(inverse).add(ROUNDER).sub(ROUNDER)
                                    .convert(VectorOperators.F2I, 0).reinterpretAsInts().intoArray(rounded, k);
                        }
                        for (int k = 0; k < BLOCK; k++) q[(g * cols + b * BLOCK + k) * GROUP + u] = (short) rounded[k];
                        scale[(g * blocks + b) * GROUP + u] = Float.float16ToFloat(Float.floatToFloat16(max / 127));
                    }
                }
            }
        });
        return new Activations(q, scale, groups);
    }

    /**
     * One block of 32 columns from {@code k0}: weight rows at {@code w0 .. w7} of {@code w} times the group's
     * activations at {@code xq[xg ..]}, as int16 sums {@code sums[i * GROUP + token]} for row i. Eight rows by two
     * vectors of tokens in sixteen accumulators: per column, two activation loads and eight weight broadcasts serve
     * sixteen multiplies and adds. Too large to be inlined into its caller, which is the point: in one method with
     * the widening ({@link #flush}), C2 passed its inlining size limit and boxed the vectors
     * (NodeCountInliningCutoff, ARCHITECTURE).
     */
    private static void block(short[] w, int w0, int w1, int w2, int w3, int w4, int w5, int w6, int w7, short[] xq, int xg, int k0, short[] sums) {
        int lanes = S.length();
        ShortVector c00 = ShortVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
                c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        for (int k = k0; k < k0 + BLOCK; k++) {
            ShortVector x0 = ShortVector.fromArray(S, xq, xg + k * GROUP), x1 = ShortVector.fromArray(S, xq, xg + k * GROUP + lanes);
            ShortVector b = ShortVector.broadcast(S, w[w0 + k]);
            c00 = x0.mul(b).add(c00); c01 = x1.mul(b).add(c01);
            b = ShortVector.broadcast(S, w[w1 + k]);
            c10 = x0.mul(b).add(c10); c11 = x1.mul(b).add(c11);
            b = ShortVector.broadcast(S, w[w2 + k]);
            c20 = x0.mul(b).add(c20); c21 = x1.mul(b).add(c21);
            b = ShortVector.broadcast(S, w[w3 + k]);
            c30 = x0.mul(b).add(c30); c31 = x1.mul(b).add(c31);
            b = ShortVector.broadcast(S, w[w4 + k]);
            c40 = x0.mul(b).add(c40); c41 = x1.mul(b).add(c41);
            b = ShortVector.broadcast(S, w[w5 + k]);
            c50 = x0.mul(b).add(c50); c51 = x1.mul(b).add(c51);
            b = ShortVector.broadcast(S, w[w6 + k]);
            c60 = x0.mul(b).add(c60); c61 = x1.mul(b).add(c61);
            b = ShortVector.broadcast(S, w[w7 + k]);
            c70 = x0.mul(b).add(c70); c71 = x1.mul(b).add(c71);
        }
        int g = GROUP;
        c00.intoArray(sums, 0); c01.intoArray(sums, lanes);
        c10.intoArray(sums, g); c11.intoArray(sums, g + lanes);
        c20.intoArray(sums, 2 * g); c21.intoArray(sums, 2 * g + lanes);
        c30.intoArray(sums, 3 * g); c31.intoArray(sums, 3 * g + lanes);
        c40.intoArray(sums, 4 * g); c41.intoArray(sums, 4 * g + lanes);
        c50.intoArray(sums, 5 * g); c51.intoArray(sums, 5 * g + lanes);
        c60.intoArray(sums, 6 * g); c61.intoArray(sums, 6 * g + lanes);
        c70.intoArray(sums, 7 * g); c71.intoArray(sums, 7 * g + lanes);
    }

    /**
     * Block b's int16 sums of rows {@code r .. r + 7} (past {@code last}: its sums, unused) into the float sums:
     * {@code acc[i][token] += sums * scale[row] * dx[token]}, with the activations' scales at {@code dx[d0 ..]}. The
     * int16 sums are loaded half a vector at a time, sign-extended as they are loaded, with the Vector API's calls
     * written out here: as a helper of ours returning the widened vector, C2 left it out of line in some JVMs and boxed
     * its vectors (13 MB allocated per 128-token pass of the mini Q4_0 model, PrefillAllocationTest).
     */
    private static void flush(short[] sums, float[] dx, int d0, float[] scale, int r, int last, int blocks, int b, float[] acc) {
        int quarter = F.length();
        for (int i = 0; i < 8; i++) {
            float s = scale[Math.min(r + i, last) * blocks + b];
            for (int t = 0; t < GROUP; t += quarter) {
                int o = i * GROUP + t;
                ((FloatVector) ShortVector.fromArray(Tensor.S_SPECIES, sums, o).convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0))
                        .mul(s).fma(FloatVector.fromArray(F, dx, d0 + t), FloatVector.fromArray(F, acc, o)).intoArray(acc, o);
            }
        }
    }
}
