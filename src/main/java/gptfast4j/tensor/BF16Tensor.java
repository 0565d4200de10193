package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * bfloat16: the top 16 bits of a float, so widening is a 16-bit shift. Decodes from a decode layout as F16 does
 * ({@link HalfFloatTensor}), where an int's low half widens by a shift and its high half by a mask.
 */
final class BF16Tensor extends HalfFloatTensor {

    BF16Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private BF16Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.BF16, data, cols, rows, grouped);
    }

    @Override
    BF16Tensor inDecodeLayout(MemorySegment data) {
        return new BF16Tensor(name, data, cols, rows, true);
    }

    @Override
    float widen(short half) {
        return Float.intBitsToFloat(half << 16);
    }

    static float bf16(MemorySegment data, long offset) {
        return Float.intBitsToFloat(data.get(SHORT_LE, offset) << 16);
    }

    /**
     * Widened with the Vector API's calls written out, as in {@link F16Tensor}: a helper of ours left out of line boxes.
     * Four sums, as F16's: TinyLlama BF16 tg64, 2 threads, five alternating pairs, 20.0-25.7 tokens/s against
     * 12.4-21.7 with two.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        if (grouped) return preparedDot(row, x, xOffset);
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        int bound = cols - cols % (2 * lanes);
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        int i = 0;
        for (; i + 4 * lanes <= bound; i += 4 * lanes) {
            acc0 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
            acc2 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + 2 * lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 2 * lanes), acc2);
            acc3 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + 3 * lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 3 * lanes), acc3);
        }
        acc0 = acc0.add(acc2);
        acc1 = acc1.add(acc3);
        for (; i < bound; i += 2 * lanes) {
            acc0 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += bf16(data, base + (long) i * 2) * x[xOffset + i];
        }
        return sum;
    }

    /**
     * The dot products of the L rows of groups a and b with x, to {@code out[oA .. oA + L)} and {@code out[oB ..]}:
     * per int plane, each lane's low half shifted up and its high half masked (two columns of L weights), times
     * one broadcast column of x each, four sums per group (two planes a step), as {@link F16Tensor#laneDots}.
     */
    @Override
    public void laneDots(long a, long b, float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int oA, int oB) {
        long offsetA = a * L * rowBytes, offsetB = b * L * rowBytes;
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int c = xOffset; c < xOffset + cols; c += 4, offsetA += 8L * L, offsetB += 8L * L) {
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, offsetA, ByteOrder.LITTLE_ENDIAN),
                    u = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + 4L * L, ByteOrder.LITTLE_ENDIAN);
            IntVector w = IntVector.fromMemorySegment(I_SPECIES, data, offsetB, ByteOrder.LITTLE_ENDIAN),
                    z = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + 4L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 1]),
                    x2 = FloatVector.broadcast(F_SPECIES, x[c + 2]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 3]);
            a0 = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a0);
            a1 = v.and(0xFFFF_0000).reinterpretAsFloats().fma(x1, a1);
            a2 = u.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x2, a2);
            a3 = u.and(0xFFFF_0000).reinterpretAsFloats().fma(x3, a3);
            b0 = w.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, b0);
            b1 = w.and(0xFFFF_0000).reinterpretAsFloats().fma(x1, b1);
            b2 = z.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x2, b2);
            b3 = z.and(0xFFFF_0000).reinterpretAsFloats().fma(x3, b3);
        }
        a0.add(a1).add(a2.add(a3)).intoArray(out, oA);
        b0.add(b1).add(b2.add(b3)).intoArray(out, oB);
    }

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a plane at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order, with no tile written and read back: per int plane, the low halves shifted
     * up and the high halves masked, as {@link #laneDots} widens them.
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int p = 0; p < cols / 2; p++, a += 4L * L, b += 4L * L, xk += 2 * TileKernels.PAIR_TOKENS) {
            IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, a, ByteOrder.LITTLE_ENDIAN),
                    vB = IntVector.fromMemorySegment(I_SPECIES, data, b, ByteOrder.LITTLE_ENDIAN);
            FloatVector u = vA.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), w = vB.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
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
            u = vA.and(0xFFFF_0000).reinterpretAsFloats();
            w = vB.and(0xFFFF_0000).reinterpretAsFloats();
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 8]);
            a0 = u.fma(x, a0); c0 = w.fma(x, c0);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 9]);
            a1 = u.fma(x, a1); c1 = w.fma(x, c1);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 10]);
            a2 = u.fma(x, a2); c2 = w.fma(x, c2);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 11]);
            a3 = u.fma(x, a3); c3 = w.fma(x, c3);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 12]);
            a4 = u.fma(x, a4); c4 = w.fma(x, c4);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 13]);
            a5 = u.fma(x, a5); c5 = w.fma(x, c5);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 14]);
            a6 = u.fma(x, a6); c6 = w.fma(x, c6);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 15]);
            a7 = u.fma(x, a7); c7 = w.fma(x, c7);
        }
        a0.intoArray(acc, 0); a1.intoArray(acc, L); a2.intoArray(acc, 2 * L); a3.intoArray(acc, 3 * L);
        a4.intoArray(acc, 4 * L); a5.intoArray(acc, 5 * L); a6.intoArray(acc, 6 * L); a7.intoArray(acc, 7 * L);
        c0.intoArray(acc, 8 * L); c1.intoArray(acc, 9 * L); c2.intoArray(acc, 10 * L); c3.intoArray(acc, 11 * L);
        c4.intoArray(acc, 12 * L); c5.intoArray(acc, 13 * L); c6.intoArray(acc, 14 * L); c7.intoArray(acc, 15 * L);
    }

    /** 1 for every column: {@link #panelPairProduct} takes x as it is (a period of one, then L more). */
    private static final float[] COLUMN_SCALES = filled(1 + L, 1f);

    @Override
    public float[] columnScales() {
        return COLUMN_SCALES;
    }

    /** Per int plane of the group, its two columns of L weights as two vectors. */
    @Override
    public void panelGroup(long group, float[] out, int at) {
        for (int p = 0; p < cols / 2; p++) {
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, group + 4L * L * p, ByteOrder.LITTLE_ENDIAN);
            v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(out, at + 2 * p * L);
            v.and(0xFFFF_0000).reinterpretAsFloats().intoArray(out, at + (2 * p + 1) * L);
        }
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (grouped) {
            laneRow(row, out, outOffset);
            return;
        }
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        int i = 0;
        // the Vector API's calls alone, as F16Tensor.dequantizeRow's (a helper left out of line boxes)
        for (int bound = cols - cols % lanes; i < bound; i += lanes) {
            ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(out, outOffset + i);
        }
        for (; i < cols; i++) out[outOffset + i] = bf16(data, base + (long) i * 2);
    }

    /**
     * Rows in order in the file's layout; in the decode layout two groups a pass ({@link RowLanes#pairedRows}):
     * TinyLlama BF16, 2 threads, old and new jars alternating, tg64 24.5/23.6/23.5 -> 28.5/28.2/23.1 tokens/s (read
     * bandwidth 53-61 GB/s), and with pp128 before it pp128 155/145/143 -> 170/167/166.
     */
    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (grouped) {
            RowLanes.pairedRows(this, x, xOffset, sums, quants, out, outOffset, firstRow, start, end);
            return;
        }
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
