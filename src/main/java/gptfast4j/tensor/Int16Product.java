package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Prefill of 4-bit weights (Q4_0, Q4_1) in int16 arithmetic: matrix x matrix with the activations rounded to
 * int8 as llama.cpp rounds them for its own products with those weights ({@link Rounding}), and the weights unpacked
 * to their nibbles minus 8 ({@link Weights}). What it computes is then what llama.cpp computes, up to the order of
 * float sums (KernelTest, ReferenceLogitsTest, PerplexityTest):
 * <ul>
 * <li>Q4_0 pairs with Q8_0: per block of 32, scale {@code max|x| / 127} kept as an f16, values
 * {@code rint(x * 127 / max|x|)} (x86 {@code quantize_row_q8_0}); weight = d * (nibble - 8).
 * <li>Q4_1 pairs with Q8_1: Q8_0's values and scale, and per block {@code s = f16(max|x| / 127 * sum(values))} (x86
 * {@code quantize_row_q8_1}); llama.cpp's product is {@code d * dx * sum(nibble * value) + m * s}, taken here as
 * {@code d * dx * sum((nibble - 8) * value) + 8 * d * dx * sum(values) + m * s}: two offset terms, each a float pass
 * of its own ({@link #offsets}) over the block sums of the rounded activations.
 * </ul>
 * Q4_K took this product too from session 26 to 43 (on activations rounded as llama.cpp's Q8_K, per 256); since the
 * decode layouts' float tiles (session 42) its prefill is as fast or faster in F32 there (TinyLlama pp128 +6-10%,
 * Llama-2-7B -8% to +11% by run) and within this machine's noise in the files' layouts, so it takes the float tiles in
 * both (docs/kernel-log.md, session 43 (6)-(7)).
 * Why: prefill is bound by multiply-adds, and the Vector API has no int8 dot product, but a 512-bit int16 multiply
 * and add do 32 products where a float FMA does 16: one core ran 190 G int16 multiply-adds/s against 110 G float
 * FMAs/s. A block's 32 products of a q in [-8, 7] with an activation in [-127, 127] sum to at most 32512, so they
 * accumulate in int16 lanes without overflow; each block's sums are then converted once and scaled into float sums.
 * <p>
 * Layout: tokens in the lanes. Activations are stored per group of {@link #GROUP} tokens as {@code [column][token]}
 * int16 ({@code xq}), with per-block float scales ({@code dx}). The micro-kernel ({@link #rows}) takes 4 weight rows
 * x GROUP tokens through all blocks of a row: per block, the int16 sums in 8 accumulators, then widened and scaled
 * into 16 float accumulators that stay in registers (24 of the 32 vector registers at 512 bits). Until session 25 the
 * kernel was 8 rows per block, its int16 sums stored, reloaded and added into float sums in memory once per block (a
 * quarter of the time); with the sums kept in registers the widening costs a few percent (docs/kernel-log.md).
 */
final class Int16Product {
    /** Int16 lanes as wide as the float lanes (the decode kernel of {@link Q4_0Tensor} reads two per row). */
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, Tensor.F_SPECIES.vectorShape());
    private static final VectorSpecies<Float> F = Tensor.F_SPECIES;
    /** Tokens per group: two int16 vectors (64 on AVX-512). */
    static final int GROUP = 2 * S.length();
    /**
     * Batches this size or larger take this product: one whole group at 512 bits. A fixed number rather than {@link
     * #GROUP}, so that which arithmetic a batch gets does not depend on the machine's vector width, and the same in
     * both layouts, so that it does not depend on whether the process has decoded before. Below it the decode layouts'
     * float tiles ({@code Tensor.panelPairTokens}) are the faster, where this product runs a group part empty:
     * TinyLlama, 2 threads, alternating, 33 -> 64: decode layouts Q4_0 pp40 116.35/107.64 -> 166.10/164.63 tokens/s,
     * pp48 136.57/128.89 -> 173.17/171.50, pp56 156.21/145.12 -> 176.26/172.82; the files' layouts, whose float group
     * product is the slower, lose less (Q4_0 pp40 110.88/95.67 -> 103.09/94.28, pp48 131.17/110.92 -> 120.82/112.68,
     * pp56 147.62/125.88 -> 132.28/127.59). A chat's turns run in the decode layouts.
     */
    static final int MIN_TOKENS = 64;
    private static final int BLOCK = 32;
    /** Weight rows per pass of {@link #rows}. */
    private static final int ROWS = 4;
    private static final float ROUNDER = 0x1.8p23f;
    /**
     * Blocks per piece of {@link #quantize}: a piece of a group (16 KB) stays in L1 while its tokens are written into
     * it.
     */
    private static final int CHUNK_BLOCKS = 4;

    private Int16Product() {
    }

    /** 4-bit weights this product takes, unpacked a tile of rows at a time. */
    sealed interface Weights permits Q4_0Tensor, Q4_1Tensor {
        /** Whether the bytes are in the decode layout (panels) rather than the file's (rows). */
        boolean inLanes();

        /** How llama.cpp rounds the activations for its products with these weights, and so which offsets they have. */
        Rounding rounding();

        /**
         * Rows {@code firstRow .. firstRow + n} of the file's layout, row i at {@code q[i * stride]}: {@code nibble - 8}
         * for each column; block b's scale at {@code scale[i * blocks + b]}, and where the {@link #rounding} has them
         * its offset and minimum at {@code offset[i * blocks + b]}, {@code minimum[i * blocks + b]}: weight = scale *
         * (nibble - 8) + offset, the minimum multiplied by Q8_1's rounded sums apart.
         */
        void smallIntRows(long firstRow, int n, short[] q, int stride, float[] scale, float[] offset, float[] minimum, int blocks);

        /**
         * Rows {@code firstRow .. firstRow + n} of the decode layout ({@code firstRow} a multiple of L), in panels of
         * L rows: row i's {@code nibble - 8} of column k at {@code q[i / L * L * cols + k * L + i % L]}, its block b's
         * scale (offset, minimum) at {@code [i / L * L * blocks + b * L + i % L]}. Rows past the tensor's end in its
         * last group are the layout's padding; their sums are unused. The tile holds a vector more than its panels
         * ({@link #panelNibbles}).
         */
        void smallIntPanels(long firstRow, int n, short[] q, float[] scale, float[] offset, float[] minimum, int blocks);
    }

    /** How the activations are rounded to int8: as llama.cpp does for its products with Q4_0 and Q4_1 weights. */
    enum Rounding {
        /** Per block of 32, scale {@code f16(max|x| / 127)}; the weights have no offsets. */
        Q8_0(false),
        /** As Q8_0, and per block {@code s = f16(max|x| / 127 * sum(values))}, which multiplies the weights' minimum. */
        Q8_1(true);

        /**
         * Whether the weights carry a minimum per block (Q4_1, times Q8_1's {@code s}), and so an offset as well: their
         * unsigned nibbles are taken minus 8, as Q4_0's, and the 8 * d per block comes back times the activations'
         * {@code scale * sum(values)}. Since Q4_K left this product (session 43) no format has the one without the other.
         */
        final boolean offsets;

        Rounding(boolean offsets) {
            this.offsets = offsets;
        }
    }

    /**
     * The activations of one call, rounded to int8, grouped by {@link #GROUP} tokens: values, a scale per block of 32,
     * where there are offsets each block's {@code scale * sum(values)}, and for Q8_1 its {@code s}; else null.
     */
    private record Activations(short[] q, float[] scale, float[] sums, float[] minSums, int groups) {
    }

    /** {@code out[t * outStride + r] = row r · x_t} for all rows and tokens, as {@link Tensor#matmul}. */
    static void matmul(Weights w, float[] x, int nTokens, float[] out, int outStride) {
        // file layout: tile rows padded by 64 bytes, as at a stride that is a multiple of 4 KB the rows would share L1
        // sets; decode layout: panels of L rows, a column's L weights adjacent (Weights#smallIntPanels)
        Tensor tensor = (Tensor) w;
        int cols = tensor.cols, blocks = cols / BLOCK, nRows = Math.toIntExact(tensor.rows), stride = cols + 32, l = RowLanes.L;
        boolean panels = w.inLanes();
        Rounding rounding = w.rounding();
        Activations a = quantize(x, nTokens, cols, rounding);
        int rowsFit = Math.toIntExact(Tensor.TILE_BYTES / (2L * cols)); // int16 weights: twice the rows of a float tile
        int tileHeight = panels ? Math.clamp(rowsFit / l * l, l, 256 / l * l) : Math.clamp(rowsFit / 8 * 8, 8, 256);
        Parallel.runChunks(nRows, Tensor.chunkRows(nRows, tileHeight), (start, end) -> {
            // panels: the store of a tile's last column runs L shorts past its panels (Weights#smallIntPanels)
            short[] tile = Tensor.shortScratch(TILE, panels ? tileHeight * cols + S.length() : tileHeight * stride);
            float[] scale = Tensor.scratch(SCALES, tileHeight * blocks);
            float[] offset = rounding.offsets ? Tensor.scratch(OFFSETS, tileHeight * blocks) : null;
            float[] minimum = rounding.offsets ? Tensor.scratch(MINIMUMS, tileHeight * blocks) : null;
            float[] acc = Tensor.scratch(ACCUMULATORS, ROWS * GROUP);
            int step = panels ? l : 1; // from a row's weight k to k + 1, and its scale of block b to b + 1
            for (int r0 = start; r0 < end; r0 += tileHeight) {
                int tileRows = Math.min(tileHeight, end - r0);
                if (panels) w.smallIntPanels(r0, tileRows, tile, scale, offset, minimum, blocks);
                else w.smallIntRows(r0, tileRows, tile, stride, scale, offset, minimum, blocks);
                for (int g = 0; g < a.groups; g++) {
                    int t0 = g * GROUP, tokens = Math.min(GROUP, nTokens - t0);
                    for (int r = 0; r < tileRows; r += ROWS) {
                        // rows past the tile's end repeat its last row; their sums are not written out
                        int last = tileRows - 1, r1 = Math.min(r + 1, last), r2 = Math.min(r + 2, last), r3 = Math.min(r + 3, last);
                        int s0 = first(r, panels, blocks, blocks), s1 = first(r1, panels, blocks, blocks), s2 = first(r2, panels, blocks, blocks),
                                s3 = first(r3, panels, blocks, blocks);
                        rows(tile, first(r, panels, cols, stride), first(r1, panels, cols, stride), first(r2, panels, cols, stride),
                                first(r3, panels, cols, stride), a.q, g * cols * GROUP, a.scale, g * blocks * GROUP, scale, s0, s1, s2, s3,
                                step, blocks, acc);
                        if (rounding.offsets) {
                            offsets(offset, s0, s1, s2, s3, step, a.sums, g * blocks * GROUP, blocks, acc);
                            offsets(minimum, s0, s1, s2, s3, step, a.minSums, g * blocks * GROUP, blocks, acc);
                        }
                        for (int t = 0, height = Math.min(ROWS, tileRows - r); t < tokens; t++) {
                            int o = (t0 + t) * outStride + r0 + r;
                            for (int i = 0; i < height; i++) out[o + i] = acc[i * GROUP + t];
                        }
                    }
                }
            }
        });
    }

    /**
     * Where tile row i's first element lies in an array of {@code width} elements per row: at row-major rows
     * {@code rowStride} apart, or in panels of L rows, column-major inside a panel.
     */
    private static int first(int i, boolean panels, int width, int rowStride) {
        return panels ? i / RowLanes.L * RowLanes.L * width + i % RowLanes.L : i * rowStride;
    }

    private static final ThreadLocal<short[]> TILE = ThreadLocal.withInitial(() -> new short[0]);
    private static final ThreadLocal<float[]> SCALES = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> OFFSETS = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> MINIMUMS = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> ACCUMULATORS = ThreadLocal.withInitial(() -> new float[0]);

    /** The calling thread's rounded activations and their scales, kept between calls. */
    private static final ThreadLocal<short[]> ROUNDED = ThreadLocal.withInitial(() -> new short[0]);
    private static final ThreadLocal<float[]> ROUNDED_SCALES = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> ROUNDED_SUMS = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> ROUNDED_MIN_SUMS = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * x ({@code nTokens} rows of {@code cols}) rounded to int8 as {@code rounding} says, transposed into groups, in
     * scratch arrays of the calling thread written by all threads. The lanes of the last group past the batch keep
     * whatever they held: lanes never mix, and their sums are dropped.
     */
    private static Activations quantize(float[] x, int nTokens, int cols, Rounding rounding) {
        int groups = (nTokens + GROUP - 1) / GROUP, blocks = cols / BLOCK;
        short[] q = Tensor.shortScratch(ROUNDED, groups * cols * GROUP);
        float[] scale = Tensor.scratch(ROUNDED_SCALES, groups * blocks * GROUP);
        float[] sums = rounding.offsets ? Tensor.scratch(ROUNDED_SUMS, groups * blocks * GROUP) : null;
        float[] minSums = rounding.offsets ? Tensor.scratch(ROUNDED_MIN_SUMS, groups * blocks * GROUP) : null;
        int chunks = (blocks + CHUNK_BLOCKS - 1) / CHUNK_BLOCKS;
        MemorySegment pairsOfQ = MemorySegment.ofArray(q);
        Parallel.run(groups * chunks, 1, (start, end) -> {
            int[] pairs = RowLanes.blockInts();
            for (int piece = start; piece < end; piece++) {
                int g = piece / chunks, b0 = piece % chunks * CHUNK_BLOCKS, b1 = Math.min(blocks, b0 + CHUNK_BLOCKS);
                // tokens two at a time: their values of a column are adjacent in q, one int store for both (with a
                // store per value this method took 5.5-6.2% of a Q4_K pp512 profile of session 27, then 4.4%); a last
                // token alone pairs with itself, as lanes past the batch are dropped
                for (int u = 0, t = g * GROUP; u < GROUP && t < nTokens; u += 2, t += 2) {
                    int t1 = Math.min(t + 1, nTokens - 1);
                    for (int b = b0; b < b1; b++) {
                        float max0 = maxAbs(x, t * cols + b * BLOCK, BLOCK), max1 = maxAbs(x, t1 * cols + b * BLOCK, BLOCK);
                        float inverse0 = inverse(max0), inverse1 = inverse(max1);
                        float d0 = scale(max0), d1 = scale(max1);
                        IntVector sum0 = IntVector.zero(Tensor.I_SPECIES), sum1 = sum0;
                        // round half to even: adding and taking off 1.5 * 2^23 leaves no fraction bits (|x * inverse| <= 127)
                        for (int k = 0; k < BLOCK; k += F.length()) {
                            IntVector r0 = FloatVector.fromArray(F, x, t * cols + b * BLOCK + k).mul(inverse0).add(ROUNDER).sub(ROUNDER)
                                    .convert(VectorOperators.F2I, 0).reinterpretAsInts();
                            IntVector r1 = FloatVector.fromArray(F, x, t1 * cols + b * BLOCK + k).mul(inverse1).add(ROUNDER).sub(ROUNDER)
                                    .convert(VectorOperators.F2I, 0).reinterpretAsInts();
                            sum0 = r0.add(sum0); // running sums as arguments, not receivers (ARCHITECTURE, Invariants)
                            sum1 = r1.add(sum1);
                            r0.and(0xFFFF).or(r1.lanewise(VectorOperators.LSHL, 16)).intoArray(pairs, k); // little-endian: u first
                        }
                        for (int k = 0, at = (g * cols + b * BLOCK) * GROUP + u; k < BLOCK; k++, at += GROUP) {
                            pairsOfQ.set(ValueLayout.JAVA_INT_UNALIGNED, 2L * at, pairs[k]);
                        }
                        int s0 = sum0.reduceLanes(VectorOperators.ADD), s1 = sum1.reduceLanes(VectorOperators.ADD), at = (g * blocks + b) * GROUP + u;
                        scale[at] = d0;
                        scale[at + 1] = d1;
                        if (sums != null) {
                            sums[at] = s0 * d0;
                            sums[at + 1] = s1 * d1;
                        }
                        // Q8_1's s: the unrounded max / 127 times the sum, rounded to an f16
                        if (minSums != null) {
                            minSums[at] = VectorMath.roundToHalf(max0 / 127 * s0);
                            minSums[at + 1] = VectorMath.roundToHalf(max1 / 127 * s1);
                        }
                    }
                }
            }
        });
        return new Activations(q, scale, sums, minSums, groups);
    }

    /** Each thread's rounded activations of one token ({@link #roundOne}) and their block scales and sums, kept between calls. */
    private static final ThreadLocal<int[]> ONE_ROUNDED = ThreadLocal.withInitial(() -> new int[0]);
    private static final ThreadLocal<float[]> ONE_SUMS = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * One token's activations ({@code cols} of x from xOffset) rounded as {@link #quantize} rounds a batch's for Q4_0
     * ({@link Rounding#Q8_0}, the one format whose decode kernels take rounded activations), to this thread's scratch,
     * set in {@code task} ({@code RowTask.useRounded}): per block k of 32, {@code sums[2k]} its scale and
     * {@code sums[2k + 1]} the sum of its values; the
     * values at {@code q[32k + i]}, or with {@code paired} (the decode layouts' kernels, {@link Q4_0Tensor#laneDots})
     * at {@code q[32k + 8t + j]} (j < 4) values 8t + j and 8t + 4 + j as the low and high int16 of one int, made from
     * each vector of values and the same one four lanes on ({@code slice}); the ints at 8t + 4 .. 8t + 7 are not read.
     */
    static void roundOne(float[] x, int xOffset, int cols, boolean paired, Tensor.RowTask task) {
        int blocks = cols / BLOCK, lanes = F.length();
        int[] q = Tensor.intScratch(ONE_ROUNDED, cols);
        float[] sums = Tensor.scratch(ONE_SUMS, 2 * blocks);
        for (int k = 0, at = 0; k < blocks; k++, at += BLOCK) {
            float max = maxAbs(x, xOffset + at, BLOCK), inverse = inverse(max);
            IntVector sum = IntVector.zero(Tensor.I_SPECIES);
            for (int i = 0; i < BLOCK; i += lanes) {
                IntVector values = (IntVector) FloatVector.fromArray(F, x, xOffset + at + i).mul(inverse).add(ROUNDER).sub(ROUNDER).convert(VectorOperators.F2I, 0);
                sum = values.add(sum);
                values.intoArray(q, at + i);
            }
            // in place: each vector of pairs reads its own values and the next vector's, which is still unpaired
            for (int i = 0; paired && i < BLOCK; i += lanes) {
                IntVector values = IntVector.fromArray(Tensor.I_SPECIES, q, at + i),
                        next = i + lanes < BLOCK ? IntVector.fromArray(Tensor.I_SPECIES, q, at + i + lanes) : IntVector.zero(Tensor.I_SPECIES);
                values.and(0xFFFF).or(values.slice(4, next).lanewise(VectorOperators.LSHL, 16)).intoArray(q, at + i);
            }
            sums[2 * k] = scale(max);
            sums[2 * k + 1] = sum.reduceLanes(VectorOperators.ADD);
        }
        task.useRounded(q, sums);
    }

    /** What a block with this max|x| is multiplied by before rounding: 127 / max, 0 for an all-zero block. */
    private static float inverse(float max) {
        return max == 0 ? 0 : 127 / max;
    }

    /** The scale of a rounded block: Q8_0's and Q8_1's max / 127 as an f16. */
    private static float scale(float max) {
        return VectorMath.roundToHalf(max / 127);
    }

    /**
     * max|x| over {@code x[from .. from + n)} ({@code n} a multiple of the float lanes), taken on the bits: non-negative
     * floats order as their bits do, and an int max is one instruction where a float max takes four (Java's rules for
     * NaN and -0).
     */
    private static float maxAbs(float[] x, int from, int n) {
        IntVector m = IntVector.zero(Tensor.I_SPECIES);
        for (int k = 0; k < n; k += F.length()) m = FloatVector.fromArray(F, x, from + k).reinterpretAsInts().and(0x7FFFFFFF).max(m);
        return Float.intBitsToFloat(m.reduceLanes(VectorOperators.MAX));
    }

    /**
     * Four weight rows of {@code w}, their weight k at {@code w[w0 + k * step] .. w[w3 + k * step]}, times one group's
     * activations at {@code xq[xg ..]} over all {@code blocks}, as float sums {@code acc[i * GROUP + token]} for row i.
     * Per block, 4 rows x GROUP tokens of int16 sums in eight accumulators (per column two activation loads and four
     * weight broadcasts serve eight multiplies and adds), then widened and scaled into sixteen float accumulators that
     * stay in registers for the whole row: {@code += sums * scale[row] * dx[token]}, the activations' scales at
     * {@code dx[d0 + b * GROUP ..]}, the rows' at {@code scale[s0 + b * step] .. scale[s3 + b * step]}. The Vector API's
     * calls are written out in this one method, and it stays within C2's inlining budget (NodeCountInliningCutoff): 8
     * rows per pass with their widening in one method passed it and boxed the vectors (docs/kernel-log.md, session 22
     * (4)).
     */
    private static void rows(short[] w, int w0, int w1, int w2, int w3, short[] xq, int xg, float[] dx, int d0,
                             float[] scale, int s0, int s1, int s2, int s3, int step, int blocks, float[] acc) {
        int lanes = S.length(), q = F.length();
        FloatVector f00 = FloatVector.zero(F), f01 = f00, f02 = f00, f03 = f00, f10 = f00, f11 = f00, f12 = f00, f13 = f00,
                f20 = f00, f21 = f00, f22 = f00, f23 = f00, f30 = f00, f31 = f00, f32 = f00, f33 = f00;
        for (int b = 0; b < blocks; b++) {
            ShortVector c00 = ShortVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            for (int k = b * BLOCK, kw = k * step; k < (b + 1) * BLOCK; k++, kw += step) {
                ShortVector x0 = ShortVector.fromArray(S, xq, xg + k * GROUP), x1 = ShortVector.fromArray(S, xq, xg + k * GROUP + lanes);
                ShortVector v = ShortVector.broadcast(S, w[w0 + kw]);
                c00 = x0.mul(v).add(c00); c01 = x1.mul(v).add(c01);
                v = ShortVector.broadcast(S, w[w1 + kw]);
                c10 = x0.mul(v).add(c10); c11 = x1.mul(v).add(c11);
                v = ShortVector.broadcast(S, w[w2 + kw]);
                c20 = x0.mul(v).add(c20); c21 = x1.mul(v).add(c21);
                v = ShortVector.broadcast(S, w[w3 + kw]);
                c30 = x0.mul(v).add(c30); c31 = x1.mul(v).add(c31);
            }
            int d = d0 + b * GROUP;
            FloatVector d0v = FloatVector.fromArray(F, dx, d), d1v = FloatVector.fromArray(F, dx, d + q),
                    d2v = FloatVector.fromArray(F, dx, d + 2 * q), d3v = FloatVector.fromArray(F, dx, d + 3 * q);
            float s = scale[s0 + b * step];
            f00 = ((FloatVector) c00.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d0v, f00);
            f01 = ((FloatVector) c00.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d1v, f01);
            f02 = ((FloatVector) c01.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d2v, f02);
            f03 = ((FloatVector) c01.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d3v, f03);
            s = scale[s1 + b * step];
            f10 = ((FloatVector) c10.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d0v, f10);
            f11 = ((FloatVector) c10.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d1v, f11);
            f12 = ((FloatVector) c11.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d2v, f12);
            f13 = ((FloatVector) c11.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d3v, f13);
            s = scale[s2 + b * step];
            f20 = ((FloatVector) c20.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d0v, f20);
            f21 = ((FloatVector) c20.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d1v, f21);
            f22 = ((FloatVector) c21.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d2v, f22);
            f23 = ((FloatVector) c21.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d3v, f23);
            s = scale[s3 + b * step];
            f30 = ((FloatVector) c30.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d0v, f30);
            f31 = ((FloatVector) c30.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d1v, f31);
            f32 = ((FloatVector) c31.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(s).fma(d2v, f32);
            f33 = ((FloatVector) c31.convertShape(VectorOperators.S2I, Tensor.I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(s).fma(d3v, f33);
        }
        int g = GROUP;
        f00.intoArray(acc, 0); f01.intoArray(acc, q); f02.intoArray(acc, 2 * q); f03.intoArray(acc, 3 * q);
        f10.intoArray(acc, g); f11.intoArray(acc, g + q); f12.intoArray(acc, g + 2 * q); f13.intoArray(acc, g + 3 * q);
        f20.intoArray(acc, 2 * g); f21.intoArray(acc, 2 * g + q); f22.intoArray(acc, 2 * g + 2 * q); f23.intoArray(acc, 2 * g + 3 * q);
        f30.intoArray(acc, 3 * g); f31.intoArray(acc, 3 * g + q); f32.intoArray(acc, 3 * g + 2 * q); f33.intoArray(acc, 3 * g + 3 * q);
    }

    /**
     * An offset term's share of {@link #rows}' sums (Q4_1's two): {@code acc[i * GROUP + token] += offset[row i's block
     * b] * sums[token's block b]} over all blocks, the rows' offsets at {@code offset[s0 + b * step] ..} as their
     * scales are, the activations' block sums at {@code sums[d0 + b * GROUP ..]}. A pass of its own so that Q4_0's
     * kernel carries none of it; a sixteenth of the kernel's vector operations.
     */
    private static void offsets(float[] offset, int s0, int s1, int s2, int s3, int step, float[] sums, int d0, int blocks, float[] acc) {
        int q = F.length(), g = GROUP;
        FloatVector f00 = FloatVector.fromArray(F, acc, 0), f01 = FloatVector.fromArray(F, acc, q), f02 = FloatVector.fromArray(F, acc, 2 * q),
                f03 = FloatVector.fromArray(F, acc, 3 * q), f10 = FloatVector.fromArray(F, acc, g), f11 = FloatVector.fromArray(F, acc, g + q),
                f12 = FloatVector.fromArray(F, acc, g + 2 * q), f13 = FloatVector.fromArray(F, acc, g + 3 * q),
                f20 = FloatVector.fromArray(F, acc, 2 * g), f21 = FloatVector.fromArray(F, acc, 2 * g + q),
                f22 = FloatVector.fromArray(F, acc, 2 * g + 2 * q), f23 = FloatVector.fromArray(F, acc, 2 * g + 3 * q),
                f30 = FloatVector.fromArray(F, acc, 3 * g), f31 = FloatVector.fromArray(F, acc, 3 * g + q),
                f32 = FloatVector.fromArray(F, acc, 3 * g + 2 * q), f33 = FloatVector.fromArray(F, acc, 3 * g + 3 * q);
        for (int b = 0; b < blocks; b++) {
            int d = d0 + b * GROUP;
            FloatVector x0 = FloatVector.fromArray(F, sums, d), x1 = FloatVector.fromArray(F, sums, d + q),
                    x2 = FloatVector.fromArray(F, sums, d + 2 * q), x3 = FloatVector.fromArray(F, sums, d + 3 * q);
            FloatVector o = FloatVector.broadcast(F, offset[s0 + b * step]);
            f00 = x0.fma(o, f00); f01 = x1.fma(o, f01); f02 = x2.fma(o, f02); f03 = x3.fma(o, f03);
            o = FloatVector.broadcast(F, offset[s1 + b * step]);
            f10 = x0.fma(o, f10); f11 = x1.fma(o, f11); f12 = x2.fma(o, f12); f13 = x3.fma(o, f13);
            o = FloatVector.broadcast(F, offset[s2 + b * step]);
            f20 = x0.fma(o, f20); f21 = x1.fma(o, f21); f22 = x2.fma(o, f22); f23 = x3.fma(o, f23);
            o = FloatVector.broadcast(F, offset[s3 + b * step]);
            f30 = x0.fma(o, f30); f31 = x1.fma(o, f31); f32 = x2.fma(o, f32); f33 = x3.fma(o, f33);
        }
        f00.intoArray(acc, 0); f01.intoArray(acc, q); f02.intoArray(acc, 2 * q); f03.intoArray(acc, 3 * q);
        f10.intoArray(acc, g); f11.intoArray(acc, g + q); f12.intoArray(acc, g + 2 * q); f13.intoArray(acc, g + 3 * q);
        f20.intoArray(acc, 2 * g); f21.intoArray(acc, 2 * g + q); f22.intoArray(acc, 2 * g + 2 * q); f23.intoArray(acc, 2 * g + 3 * q);
        f30.intoArray(acc, 3 * g); f31.intoArray(acc, 3 * g + q); f32.intoArray(acc, 3 * g + 2 * q); f33.intoArray(acc, 3 * g + 3 * q);
    }

    /**
     * The file layouts' nibbles: {@code bytes} bytes at {@code from} (a multiple of {@link Tensor#S_SPECIES}' lanes),
     * byte k holding weight k in its low nibble and weight {@code bytes + k} in its high one, as {@code nibble - 8} to
     * {@code q[at ..]}. With 128-bit vectors in a plain loop ({@link #panelNibbles} says why).
     */
    static void fileNibbles(MemorySegment data, long from, int bytes, short[] q, int at) {
        if (Tensor.B_SPECIES == null) {
            for (int k = 0; k < bytes; k++) {
                int v = data.get(ValueLayout.JAVA_BYTE, from + k);
                q[at + k] = (short) ((v & 0xF) - 8);
                q[at + bytes + k] = (short) ((v >> 4 & 0xF) - 8);
            }
            return;
        }
        for (int k = 0; k < bytes; k += Tensor.S_SPECIES.length()) {
            ShortVector v = (ShortVector) ByteVector.fromMemorySegment(Tensor.B_SPECIES, data, from + k, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2S, Tensor.S_SPECIES, 0);
            v.and((short) 0xF).sub((short) 8).intoArray(q, at + k);
            v.lanewise(VectorOperators.ASHR, 4).and((short) 0xF).sub((short) 8).intoArray(q, at + bytes + k);
        }
    }

    /**
     * The decode layouts' nibbles ({@link RowLanes}' ints): a block of L rows, its four planes of L ints at
     * {@code ints}, {@code 4L} bytes apart (int t of lane r: weights 8t .. 8t + 7 of row r, weight 8t + p in bits
     * 4p .. 4p + 3), as {@code nibble - 8}, column k's L values at {@code q[at + k * L ..]}. Each plane becomes eight
     * vectors of L weights, one store each, where unpacking row by row out of the lanes cost a quarter of a
     * Llama-2-7B Q4_0 prefill (docs/kernel-log.md, session 25). The store of a column's L int16 weights is a whole
     * vector (2L lanes, the upper half zero) and so runs L past the column, into the next column's place, written
     * after it: a tile holds a vector more than its panels. With 128-bit vectors, ints become int16 in plain Java
     * loops rather than by the Vector API's I2S conversion: there, after other kernels had run, some JVMs compiled
     * that conversion as its Java fallback, which allocates an array per call (3 MB per 128-token pass of the mini
     * model in the decode layout, PrefillAllocationTest).
     */
    static void panelNibbles(MemorySegment data, long ints, short[] q, int at) {
        int l = RowLanes.L;
        for (int t = 0; t < 4; t++, ints += 4L * l, at += 8 * l) {
            if (Tensor.B_SPECIES == null) {
                for (int r = 0; r < l; r++) {
                    int v = data.get(Tensor.INT_LE, ints + 4L * r);
                    for (int p = 0; p < 8; p++) q[at + p * l + r] = (short) ((v >>> 4 * p & 0xF) - 8);
                }
                continue;
            }
            IntVector v = IntVector.fromMemorySegment(Tensor.I_SPECIES, data, ints, ByteOrder.LITTLE_ENDIAN);
            for (int p = 0; p < 8; p++) {
                ((ShortVector) v.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).sub(8).convertShape(VectorOperators.I2S, Tensor.S_SPECIES, 0)).intoArray(q, at + p * l);
            }
        }
    }
}
