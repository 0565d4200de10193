package gptfast4j.tensor;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q4_1: blocks of 32 weights, {@code [f16 scale d][f16 minimum m][16 bytes]} (20 bytes), nibbles laid out as in
 * Q4_0; weight = d * nibble + m. The dot product is {@code d * sum(nibble * x) + m * sum(x)} per block. Like Q4_0 it
 * decodes from a layout of its own ({@link #forDecode}, {@link RowGroupTensor}: one row per vector lane, the L rows' d and m
 * as two planes of halves per block).
 */
final class Q4_1Tensor extends RowGroupTensor implements RowLanes.PairKernel, Tensor.PanelProduct {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 20;
    /** Bytes before a block's quants: the f16 scale and minimum. */
    private static final int HEADER = 4;
    /** The ints of a decode-layout block column start after the L scales and the L minimums. */
    private static final int INTS = HEADER * L;

    Q4_1Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private Q4_1Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.Q4_1, data, cols, rows, grouped, HEADER);
    }

    @Override
    void laneInts(byte[] in, int block, byte[] out, int at) {
        nibbleInts(in, block + HEADER, out, at);
    }

    @Override
    Q4_1Tensor inDecodeLayout(MemorySegment data) {
        return new Q4_1Tensor(name, data, cols, rows, true);
    }

    /**
     * The dot products of the L rows of groups a and b with x (scaled per nibble position,
     * {@link RowLanes#nibbleScaled}; block sums {@code xSums}), to {@code out[oA .. oA + L)} and {@code out[oB ..]}:
     * Q4_0's pair kernel ({@link Q4_0Tensor#laneDots}, written out the same way for the same reason), and the
     * minimums' share {@code m * xSum} one vector FMA per block and group.
     */
    @Override
    public void laneDots(long a, long b, float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int oA, int oB) {
        long offsetA = a * L * rowBytes, offsetB = b * L * rowBytes;
        FloatVector accA = FloatVector.zero(F_SPECIES), accB = accA, minsA = accA, minsB = accA;
        for (int c = xOffset, k = 0; c < xOffset + cols; c += BLOCK, k++, offsetA += (long) L * BLOCK_BYTES, offsetB += (long) L * BLOCK_BYTES) {
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            IntVector w0 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS, ByteOrder.LITTLE_ENDIAN),
                    w1 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    w2 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    w3 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
            for (int p = 0; p < 7; p++) { // nibble p of int t: weight 8t + p
                // where registers are sixteen, the ints read again at each position (RowLanes.PairKernel)
                IntVector uv0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS, ByteOrder.LITTLE_ENDIAN) : v0,
                        uv1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : v1,
                        uv2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : v2,
                        uv3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : v3,
                        uw0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS, ByteOrder.LITTLE_ENDIAN) : w0,
                        uw1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : w1,
                        uw2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : w2,
                        uw3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : w3;
                FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c + p]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 8 + p]),
                        x2 = FloatVector.broadcast(F_SPECIES, x[c + 16 + p]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 24 + p]);
                int mask = RowLanes.NIBBLE_MASKS[p];
                s0 = ((FloatVector) uv0.and(mask).convert(VectorOperators.I2F, 0)).fma(x0, s0);
                s1 = ((FloatVector) uv1.and(mask).convert(VectorOperators.I2F, 0)).fma(x1, s1);
                s2 = ((FloatVector) uv2.and(mask).convert(VectorOperators.I2F, 0)).fma(x2, s2);
                s3 = ((FloatVector) uv3.and(mask).convert(VectorOperators.I2F, 0)).fma(x3, s3);
                t0 = ((FloatVector) uw0.and(mask).convert(VectorOperators.I2F, 0)).fma(x0, t0);
                t1 = ((FloatVector) uw1.and(mask).convert(VectorOperators.I2F, 0)).fma(x1, t1);
                t2 = ((FloatVector) uw2.and(mask).convert(VectorOperators.I2F, 0)).fma(x2, t2);
                t3 = ((FloatVector) uw3.and(mask).convert(VectorOperators.I2F, 0)).fma(x3, t3);
            }
            // the top nibble, shifted down
            IntVector tv0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS, ByteOrder.LITTLE_ENDIAN) : v0,
                    tv1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : v1,
                    tv2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : v2,
                    tv3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : v3,
                    tw0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS, ByteOrder.LITTLE_ENDIAN) : w0,
                    tw1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : w1,
                    tw2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : w2,
                    tw3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : w3;
            FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c + 7]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 15]),
                    x2 = FloatVector.broadcast(F_SPECIES, x[c + 23]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 31]);
            s0 = ((FloatVector) tv0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x0, s0);
            s1 = ((FloatVector) tv1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x1, s1);
            s2 = ((FloatVector) tv2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x2, s2);
            s3 = ((FloatVector) tv3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x3, s3);
            t0 = ((FloatVector) tw0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x0, t0);
            t1 = ((FloatVector) tw1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x1, t1);
            t2 = ((FloatVector) tw2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x2, t2);
            t3 = ((FloatVector) tw3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x3, t3);
            // the rows' scales d (planes at the block column's start) and minimums m (2L bytes on), F16Tensor's conversion written out
            IntVector dA = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0),
                    dB = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0),
                    mA = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetA + 2L * L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0),
                    mB = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetB + 2L * L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0);
            accA = s0.add(s1).add(s2.add(s3)).fma(dA.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f), accA);
            accB = t0.add(t1).add(t2.add(t3)).fma(dB.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f), accB);
            FloatVector xSum = FloatVector.broadcast(F_SPECIES, xSums[k]);
            minsA = mA.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f).fma(xSum, minsA);
            minsB = mB.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f).fma(xSum, minsB);
        }
        accA.add(minsA).intoArray(out, oA);
        accB.add(minsB).intoArray(out, oB);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return grouped ? preparedDot(row, x, xOffset) : dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /**
     * {@code sum(d * (nibble · x_block)) + sum(m * xSums[block])}: the minimums' share comes from the per-call sums of x
     * ({@link #blockSums}), so the vector loop only converts nibbles and multiplies; the blocks into two sums in
     * turn, as in Q4_0 (whose {@code dot} says why the block's arithmetic is written in the loop).
     */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        float minTerm = 0;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 4 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 4 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24));
                sum = ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), sum);
                sum = ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2), sum);
            }
            FloatVector next = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc1);
            acc1 = acc0;
            acc0 = next;
            minTerm += f16(data, offset + 2) * xSums[i / BLOCK];
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD) + minTerm;
    }

    /**
     * Per block column, each of its 32 weights for the group's L rows as one vector, {@code q * d + m}
     * ({@link Tensor.PanelRows}); d and m converted from f16 as {@link #laneDots} does.
     */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int b = 0; b < cols / BLOCK; b++) {
            long block = group + (long) b * L * BLOCK_BYTES;
            int at = first + b * BLOCK * L;
            FloatVector d = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, block, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector m = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, block + 2L * L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            for (int t = 0; t < 4; t++) { // int t: weights 8t .. 8t + 7, a nibble each
                IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, block + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                for (int p = 0; p < 8; p++) {
                    ((FloatVector) v.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(out, at + (8 * t + p) * L);
                }
            }
        }
    }

    /** 2^4p for nibble position p < 7, 1 for the top one, shifted down ({@link #panelPairProduct}). */
    private static final float[] POWERS = {1f, 0x1p4f, 0x1p8f, 0x1p12f, 0x1p16f, 0x1p20f, 0x1p24f, 1f};
    /** Each thread's m of a block times {@link #POWERS}, of two groups: p's of group a at {@code p * L}, of b at {@code (8 + p) * L}. */
    private static final ThreadLocal<float[]> SCALED_M = ThreadLocal.withInitial(() -> new float[16 * L]);

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a column at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order (as Q4_0Tensor's). Nibble p < 7 of int t (column 8t + p) is taken in place,
     * q * 2^4p, and {@code q * 2^4p * d + m * 2^4p} in one rounding is the panel's {@code q * d + m} times 2^4p
     * exactly, against x's column scaled by 2^-4p ({@link #columnScales}); the top nibble is shifted down.
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        float[] ms = Tensor.scratch(SCALED_M, 16 * L);
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int block = 0; block < cols / BLOCK; block++, a += (long) L * BLOCK_BYTES, b += (long) L * BLOCK_BYTES) {
            FloatVector dA = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, a, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector mA = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, a + 2L * L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector dB = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, b, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector mB = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, b + 2L * L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            for (int p = 0; p < 8; p++) {
                mA.mul(POWERS[p]).intoArray(ms, p * L);
                mB.mul(POWERS[p]).intoArray(ms, (8 + p) * L);
            }
            for (int t = 0; t < 4; t++) {
                IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, a + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN),
                        vB = IntVector.fromMemorySegment(I_SPECIES, data, b + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                for (int p = 0; p < 8; p++, xk += TileKernels.PAIR_TOKENS) {
                    IntVector qA = p < 7 ? vA.and(RowLanes.NIBBLE_MASKS[p]) : vA.lanewise(VectorOperators.LSHR, 28),
                            qB = p < 7 ? vB.and(RowLanes.NIBBLE_MASKS[p]) : vB.lanewise(VectorOperators.LSHR, 28);
                    FloatVector u = ((FloatVector) qA.convert(VectorOperators.I2F, 0)).fma(dA, FloatVector.fromArray(F_SPECIES, ms, p * L)),
                            w = ((FloatVector) qB.convert(VectorOperators.I2F, 0)).fma(dB, FloatVector.fromArray(F_SPECIES, ms, (8 + p) * L));
                    FloatVector x = FloatVector.broadcast(F_SPECIES, xt[xk]);
                    a0 = u.fma(x, a0); c0 = w.fma(x, c0);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 1]);
                    a1 = u.fma(x, a1); c1 = w.fma(x, c1);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 2]);
                    a2 = u.fma(x, a2); c2 = w.fma(x, c2);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 3]);
                    a3 = u.fma(x, a3); c3 = w.fma(x, c3);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 4]);
                    a4 = u.fma(x, a4); c4 = w.fma(x, c4);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 5]);
                    a5 = u.fma(x, a5); c5 = w.fma(x, c5);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 6]);
                    a6 = u.fma(x, a6); c6 = w.fma(x, c6);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 7]);
                    a7 = u.fma(x, a7); c7 = w.fma(x, c7);
                }
            }
        }
        a0.intoArray(acc, 0); a1.intoArray(acc, L); a2.intoArray(acc, 2 * L); a3.intoArray(acc, 3 * L);
        a4.intoArray(acc, 4 * L); a5.intoArray(acc, 5 * L); a6.intoArray(acc, 6 * L); a7.intoArray(acc, 7 * L);
        c0.intoArray(acc, 8 * L); c1.intoArray(acc, 9 * L); c2.intoArray(acc, 10 * L); c3.intoArray(acc, 11 * L);
        c4.intoArray(acc, 12 * L); c5.intoArray(acc, 13 * L); c6.intoArray(acc, 14 * L); c7.intoArray(acc, 15 * L);
    }

    /** 2^-4p per column k, p = k % 8 < 7, and 1 for the top nibble (as {@link RowLanes#nibbleScaled} scales x). */
    private static final float[] COLUMN_SCALES = RowLanes.positionScales(4);

    @Override
    public float[] columnScales() {
        return COLUMN_SCALES;
    }

    /**
     * As Q4_K's: `bench`, TinyLlama Q4_1, 2 threads, alternating, tiles -> panel product, pp3 32.8/32.1 -> 49.1/43.5
     * tokens/s, pp8 82.7/80.1 -> 126.1/110.6, pp16 117.7/116.1 -> 131.4/123.0, pp32 147.2/143.8 -> 139.3/126.1.
     */
    @Override
    public int panelProductTokens() {
        return 16;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            int[] nibbles = RowLanes.blockInts();
            for (int b = 0; b < cols / BLOCK; b++) {
                long block = laneBlock(row, b) + 2 * (row % L);
                FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, block)), m = FloatVector.broadcast(F_SPECIES, f16(data, block + 2L * L));
                RowLanes.rowNibbles(data, rowInts(row, b), nibbles);
                for (int j = 0; j < BLOCK; j += lanes) {
                    ((FloatVector) IntVector.fromArray(I_SPECIES, nibbles, j).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(out, outOffset + b * BLOCK + j);
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            FloatVector m = FloatVector.broadcast(F_SPECIES, f16(data, offset + 2));
            for (int j = 0; j < BLOCK / 2; j += lanes) { // the Vector API's calls alone (Tensor.B_SPECIES)
                IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 4 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 4 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24));
                ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(out, outOffset + i + j);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m)
                        .intoArray(out, outOffset + i + j + BLOCK / 2);
            }
        }
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        float[] xSums = blockSums(x, xOffset, cols);
        if (grouped) task.use(RowLanes.nibbleScaled(x, xOffset, cols), 0, xSums);
        else task.use(x, xOffset, xSums);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
            return;
        }
        RowLanes.pairedRows(this, x, xOffset, xSums, quants, out, outOffset, firstRow, start, end);
    }
}
