package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q4_0: blocks of 32 weights, {@code [f16 scale d][16 bytes]} (18 bytes). Byte j holds weight j in its low nibble and
 * weight j + 16 in its high nibble; weight = d * (nibble - 8).
 * <p>
 * Two layouts of the same bytes: the file's, each row its blocks in order, and the decode layout ({@link #forDecode},
 * {@link RowGroupTensor}), one row per vector lane, the nibbles' values unchanged: the lane kernels take them
 * unsigned and add {@code -8 * sum(x)} per block ({@link #offsetSums}).
 */
final class Q4_0Tensor extends RowGroupTensor implements RowLanes.PairKernel, Int16Product.Weights {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 18;
    /** Bytes before a block's quants: the f16 scale. */
    private static final int HEADER = 2;
    /** The ints of a decode-layout block column start after the L scales. */
    private static final int INTS = HEADER * L;

    Q4_0Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private Q4_0Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.Q4_0, data, cols, rows, grouped, HEADER);
    }

    @Override
    void laneInts(byte[] in, int block, byte[] out, int at) {
        nibbleInts(in, block + HEADER, out, at);
    }

    @Override
    Q4_0Tensor inDecodeLayout(MemorySegment data) {
        return new Q4_0Tensor(name, data, cols, rows, true);
    }

    /**
     * In the file's layout, per block {@code d * sum((nibble[j] - 8) * x[j])}: the bytes are widened to int lanes
     * before the nibbles are taken apart (x86 has no byte shift, and byte-lane shifts cost more than the widening).
     * The block's arithmetic is written in the loop rather than in a helper returning its vector, which boxes where
     * C2 leaves it out of line (docs/kernel-log.md, session 21).
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        if (grouped) return preparedDot(row, x, xOffset);
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 2 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 2 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24));
                sum = ((FloatVector) q.and(0xF).sub(8).castShape(F_SPECIES, 0)).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), sum);
                sum = ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).sub(8).castShape(F_SPECIES, 0))
                        .fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2), sum);
            }
            FloatVector next = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc1);
            acc1 = acc0; // the two sums in turn: consecutive blocks do not wait on each other
            acc0 = next;
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /**
     * The dot products of the L rows of groups a and b with x, to {@code out[oA .. oA + L)} and {@code out[oB ..]}, x
     * scaled per nibble position ({@link RowLanes#nibbleScaled}) and {@code xSums} from {@link #offsetSums} (-8): per
     * block, lane r sums row r's 32 unsigned nibbles times the broadcast activations in four accumulators per group
     * (one per int of the block, the first starting at the block's offset share) and takes the L rows' scales as one
     * vector. Nibble p < 7 of an int is taken in place by one and ({@link RowLanes#nibbleScaled}), the top one shifted down.
     * The loop over the nibble positions keeps the method within C2's inlining budget (C2 keeps it a loop, which is
     * why the nibble masks are read from an array, {@link RowLanes#NIBBLE_MASKS}); the body has only the Vector
     * API's own calls: past the budget C2 dropped {@code nibbleInPlace} and a helper for the f16 scales here and boxed.
     */
    @Override
    public void laneDots(long a, long b, float[] x, int xOffset, float[] xSums, float[] out, int oA, int oB) {
        long offsetA = a * L * rowBytes, offsetB = b * L * rowBytes;
        FloatVector accA = FloatVector.zero(F_SPECIES), accB = accA;
        for (int c = xOffset, k = 0; c < xOffset + cols; c += BLOCK, k++, offsetA += (long) L * BLOCK_BYTES, offsetB += (long) L * BLOCK_BYTES) {
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            IntVector w0 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS, ByteOrder.LITTLE_ENDIAN),
                    w1 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    w2 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    w3 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.broadcast(F_SPECIES, xSums[k]), s1 = FloatVector.zero(F_SPECIES), s2 = s1, s3 = s1;
            FloatVector t0 = s0, t1 = s1, t2 = s1, t3 = s1;
            for (int p = 0; p < 7; p++) { // nibble p of int t: weight 8t + p
                FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c + p]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 8 + p]),
                        x2 = FloatVector.broadcast(F_SPECIES, x[c + 16 + p]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 24 + p]);
                int mask = RowLanes.NIBBLE_MASKS[p];
                s0 = ((FloatVector) v0.and(mask).convert(VectorOperators.I2F, 0)).fma(x0, s0);
                s1 = ((FloatVector) v1.and(mask).convert(VectorOperators.I2F, 0)).fma(x1, s1);
                s2 = ((FloatVector) v2.and(mask).convert(VectorOperators.I2F, 0)).fma(x2, s2);
                s3 = ((FloatVector) v3.and(mask).convert(VectorOperators.I2F, 0)).fma(x3, s3);
                t0 = ((FloatVector) w0.and(mask).convert(VectorOperators.I2F, 0)).fma(x0, t0);
                t1 = ((FloatVector) w1.and(mask).convert(VectorOperators.I2F, 0)).fma(x1, t1);
                t2 = ((FloatVector) w2.and(mask).convert(VectorOperators.I2F, 0)).fma(x2, t2);
                t3 = ((FloatVector) w3.and(mask).convert(VectorOperators.I2F, 0)).fma(x3, t3);
            }
            FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c + 7]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 15]),
                    x2 = FloatVector.broadcast(F_SPECIES, x[c + 23]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 31]);
            s0 = ((FloatVector) v0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x0, s0);
            s1 = ((FloatVector) v1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x1, s1);
            s2 = ((FloatVector) v2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x2, s2);
            s3 = ((FloatVector) v3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x3, s3);
            t0 = ((FloatVector) w0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x0, t0);
            t1 = ((FloatVector) w1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x1, t1);
            t2 = ((FloatVector) w2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x2, t2);
            t3 = ((FloatVector) w3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x3, t3);
            // the rows' scales, F16Tensor's conversion written out
            IntVector dA = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0),
                    dB = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0);
            accA = s0.add(s1).add(s2.add(s3)).fma(dA.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f), accA);
            accB = t0.add(t1).add(t2.add(t3)).fma(dB.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f), accB);
        }
        accA.intoArray(out, oA);
        accB.intoArray(out, oB);
    }

    /**
     * Per block column, each of its 32 weights for the group's L rows as one vector, {@code (q - 8) * d}
     * ({@link Tensor.PanelRows}); d converted from f16 as {@link #laneDots} does.
     */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int b = 0; b < cols / BLOCK; b++) {
            long block = group + (long) b * L * BLOCK_BYTES;
            int at = first + b * BLOCK * L;
            FloatVector d = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, block, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            for (int t = 0; t < 4; t++) { // int t: weights 8t .. 8t + 7, a nibble each
                IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, block + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                for (int p = 0; p < 8; p++) {
                    ((FloatVector) v.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).sub(8).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, at + (8 * t + p) * L);
                }
            }
        }
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            int[] nibbles = RowLanes.blockInts();
            for (int b = 0; b < cols / BLOCK; b++) {
                FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, laneBlock(row, b) + 2 * (row % L)));
                RowLanes.rowNibbles(data, rowInts(row, b), nibbles);
                for (int j = 0; j < BLOCK; j += lanes) {
                    ((FloatVector) IntVector.fromArray(I_SPECIES, nibbles, j).sub(8).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, outOffset + b * BLOCK + j);
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            for (int j = 0; j < BLOCK / 2; j += lanes) { // the Vector API's calls alone (Tensor.B_SPECIES)
                IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 2 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 2 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24));
                ((FloatVector) q.and(0xF).sub(8).castShape(F_SPECIES, 0)).mul(d).intoArray(out, outOffset + i + j);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).sub(8).castShape(F_SPECIES, 0)).mul(d)
                        .intoArray(out, outOffset + i + j + BLOCK / 2);
            }
        }
    }

    @Override
    public Int16Product.Rounding rounding() {
        return Int16Product.Rounding.Q8_0;
    }

    /** {@link RowGroupTensor#nibbleRows}: no offsets or minimums. */
    @Override
    public void smallIntRows(long firstRow, int n, short[] q, int stride, float[] scale, float[] offset, float[] minimum, int blocks) {
        nibbleRows(firstRow, n, q, stride, scale, offset, minimum, blocks);
    }

    @Override
    public void smallIntPanels(long firstRow, int n, short[] q, float[] scale, float[] offset, float[] minimum, int blocks) {
        nibblePanels(firstRow, n, q, scale, offset, minimum, blocks);
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        if (grouped) task.use(RowLanes.nibbleScaled(x, xOffset, cols), 0, offsetSums(x, xOffset, -8));
        else task.use(x, xOffset);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
            return;
        }
        RowLanes.pairedRows(this, x, xOffset, sums, out, outOffset, firstRow, start, end);
    }
}
