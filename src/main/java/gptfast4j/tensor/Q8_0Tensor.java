package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * Q8_0: blocks of 32 weights, {@code [f16 scale d][32 x int8 q]} (34 bytes), weight = d * q. Like Q4_0 it decodes
 * from a layout of its own ({@link #forDecode}, {@link RowGroupTensor}: one row per vector lane), whose int t of a
 * lane is bytes 4t .. 4t + 3 of the row's block, each xor 0x80 (the unsigned {@code q + 128}).
 */
final class Q8_0Tensor extends RowGroupTensor implements RowLanes.PairKernel, Tensor.PanelProduct {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 34;
    /** Bytes before a block's quants: the f16 scale. */
    private static final int HEADER = 2;
    /** The ints of a decode-layout block column start after the L scales. */
    private static final int INTS = HEADER * L;

    Q8_0Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private Q8_0Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.Q8_0, data, cols, rows, grouped, HEADER);
    }

    @Override
    Q8_0Tensor inDecodeLayout(MemorySegment data) {
        return new Q8_0Tensor(name, data, cols, rows, true);
    }

    /** The bytes xor 0x80: each reads as the unsigned {@code q + 128}, which {@link #laneDots} takes in place. */
    @Override
    void laneInts(byte[] in, int block, byte[] out, int at) {
        for (int t = 0; t < 8; t++) INT_VIEW.set(out, at + 4 * L * t, (int) INT_VIEW.get(in, block + HEADER + 4 * t) ^ 0x8080_8080);
    }

    /** Per j of x, {@code 2^-8p} for the byte at bit 8p (p = j % 4 < 3) and 1 for the top byte, for {@link RowLanes#scaled}. */
    private static final float[] BYTE_SCALES = RowLanes.positionScales(8);

    /**
     * In the file's layout, per block {@code d * sum(q[j] * x[j])}, the blocks into two sums in turn; the block's
     * arithmetic written in the loop, as in Q4_0.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        if (grouped) return preparedDot(row, x, xOffset);
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK; j += lanes) {
                FloatVector q = (FloatVector) (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 2 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 2 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).convert(VectorOperators.I2F, 0);
                sum = q.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), sum);
            }
            FloatVector next = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc1);
            acc1 = acc0;
            acc0 = next;
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /**
     * The dot products of the L rows of groups a and b with x, to {@code out[oA .. oA + L)} and {@code out[oB ..]}, x
     * scaled per byte position ({@link #BYTE_SCALES}) and {@code xSums} from {@link #offsetSums} (-128): per block,
     * lane r sums row r's 32 quants plus 128 times the broadcast activations in four accumulators per group (one per
     * byte of an int, the first starting at the block's offset share) and takes the L rows' scales as one vector. Byte
     * p of an int is taken where it lies: masked, it reads as {@code (q + 128) * 2^8p} (exact in a float) against
     * activations scaled by {@code 2^-8p}; the top byte is shifted down instead (bit 31 would read as a sign). Only the
     * Vector API's own calls, no helper of ours: C2 may drop a helper past its inlining budget and box the vectors
     * (Llama-3.2-1B decode at 2-3 tokens/s in some JVMs).
     */
    @Override
    public void laneDots(long a, long b, float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int oA, int oB) {
        long offsetA = a * L * rowBytes, offsetB = b * L * rowBytes;
        FloatVector accA = FloatVector.zero(F_SPECIES), accB = accA;
        for (int c = xOffset, k = 0; c < xOffset + cols; c += BLOCK, k++, offsetA += (long) L * BLOCK_BYTES, offsetB += (long) L * BLOCK_BYTES) {
            FloatVector s0 = FloatVector.broadcast(F_SPECIES, xSums[k]), s1 = FloatVector.zero(F_SPECIES), s2 = s1, s3 = s1;
            FloatVector t0 = s0, t1 = s1, t2 = s1, t3 = s1;
            for (int t = 0; t < BLOCK / 4; t++) { // int t: weights 4t .. 4t + 3
                IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                IntVector w = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                int j = c + 4 * t;
                FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[j]), x1 = FloatVector.broadcast(F_SPECIES, x[j + 1]),
                        x2 = FloatVector.broadcast(F_SPECIES, x[j + 2]), x3 = FloatVector.broadcast(F_SPECIES, x[j + 3]);
                s0 = ((FloatVector) v.and(0xFF).convert(VectorOperators.I2F, 0)).fma(x0, s0);
                s1 = ((FloatVector) v.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(x1, s1);
                s2 = ((FloatVector) v.and(0xFF_0000).convert(VectorOperators.I2F, 0)).fma(x2, s2);
                s3 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 24).convert(VectorOperators.I2F, 0)).fma(x3, s3);
                t0 = ((FloatVector) w.and(0xFF).convert(VectorOperators.I2F, 0)).fma(x0, t0);
                t1 = ((FloatVector) w.and(0xFF00).convert(VectorOperators.I2F, 0)).fma(x1, t1);
                t2 = ((FloatVector) w.and(0xFF_0000).convert(VectorOperators.I2F, 0)).fma(x2, t2);
                t3 = ((FloatVector) w.lanewise(VectorOperators.LSHR, 24).convert(VectorOperators.I2F, 0)).fma(x3, t3);
            }
            // the rows' scales, F16Tensor's conversion written out (a helper for it, past the budget, was dropped here and boxed)
            IntVector dA = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0),
                    dB = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0);
            accA = s0.add(s1).add(s2.add(s3)).fma(dA.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f), accA);
            accB = t0.add(t1).add(t2.add(t3)).fma(dB.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f), accB);
        }
        accA.intoArray(out, oA);
        accB.intoArray(out, oB);
    }

    /** Per lane of a row's weights j .. j + L - 1 (j % 4 = 0): the left shift that puts its byte at the top of its int. */
    private static final IntVector BYTE_SHIFTS = IntVector.fromArray(I_SPECIES, IntStream.range(0, L).map(l -> 24 - 8 * (l % 4)).toArray(), 0);

    /**
     * The 32 weights of one row of a decode-layout block whose ints are at {@code ints} and {@code 4L} bytes apart, to
     * {@code out[0 .. 32)}: per vector, each int written to its four lanes, its bytes' xor 0x80 undone, each lane's
     * byte shifted to the top and back down. To an array, not returned as a vector, as {@link RowLanes#rowNibbles}.
     */
    private void rowWeights(long ints, int[] out) {
        for (int j = 0; j < BLOCK; j += L) {
            // each lane's int spread through out first: a vector blended round a loop boxes where C2 has no type
            // profile to inline its calls by (a latent attention's fused attn_kv_b reads its rows so in every step)
            for (int lane = 0; lane < L; lane++) out[j + lane] = data.get(INT_LE, ints + 4L * L * (j / 4 + lane / 4));
            IntVector.fromArray(I_SPECIES, out, j).lanewise(VectorOperators.XOR, 0x8080_8080).lanewise(VectorOperators.LSHL, BYTE_SHIFTS)
                    .lanewise(VectorOperators.ASHR, 24).intoArray(out, j);
        }
    }

    /**
     * Per block column, each of its 32 weights for the group's L rows as one vector, {@code q * d}, the bytes held as
     * {@code q + 128} ({@link Tensor.PanelRows}); d converted from f16 as {@link #laneDots} does.
     */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int b = 0; b < cols / BLOCK; b++) {
            long block = group + (long) b * L * BLOCK_BYTES;
            int at = first + b * BLOCK * L;
            FloatVector d = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, block, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            for (int t = 0; t < BLOCK / 4; t++) { // int t: weights 4t .. 4t + 3, one byte each
                IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, block + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                for (int p = 0; p < 4; p++) {
                    ((FloatVector) v.lanewise(VectorOperators.LSHR, 8 * p).and(0xFF).sub(128).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, at + (4 * t + p) * L);
                }
            }
        }
    }

    /** Per int of a block, byte p's bits, and 128 in its place ({@link #panelPairProduct}). */
    private static final int[] BYTE_MASKS = {0xFF, 0xFF00, 0xFF_0000, 0xFF00_0000}, BYTE_OFFSETS = {0x80, 0x8000, 0x80_0000, 0x8000_0000};

    /**
     * Q4_0's {@code panelPairProduct} on bytes: byte p of int t (the unsigned q + 128) is column 4t + p, taken in
     * place, {@code (v & 0xFF << 8p) - (128 << 8p)} = q * 2^8p (the top byte's wraps round to the same), times d,
     * against x's column scaled by 2^-8p ({@link #columnScales}): the panels' sums bit for bit.
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int block = 0; block < cols / BLOCK; block++, a += (long) L * BLOCK_BYTES, b += (long) L * BLOCK_BYTES) {
            FloatVector dA = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, a, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            FloatVector dB = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, b, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
            for (int t = 0; t < 8; t++) {
                IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, a + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN),
                        vB = IntVector.fromMemorySegment(I_SPECIES, data, b + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                for (int p = 0; p < 4; p++, xk += TileKernels.PAIR_TOKENS) {
                    int mask = BYTE_MASKS[p], offset = BYTE_OFFSETS[p];
                    FloatVector u = ((FloatVector) vA.and(mask).sub(offset).convert(VectorOperators.I2F, 0)).mul(dA),
                            w = ((FloatVector) vB.and(mask).sub(offset).convert(VectorOperators.I2F, 0)).mul(dB);
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

    /** 2^-8p per column k, p = k % 4, then L more (period 4, {@link RowLanes#scaled}): {@link #panelPairProduct}'s. */
    private static final float[] COLUMN_SCALES = new float[4 + L];

    static {
        for (int k = 0; k < COLUMN_SCALES.length; k++) COLUMN_SCALES[k] = Math.scalb(1f, -8 * (k % 4));
    }

    @Override
    public float[] columnScales() {
        return COLUMN_SCALES;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            int[] weights = RowLanes.blockInts();
            for (int b = 0; b < cols / BLOCK; b++) {
                FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, laneBlock(row, b) + 2 * (row % L)));
                rowWeights(rowInts(row, b), weights);
                for (int j = 0; j < BLOCK; j += lanes) {
                    ((FloatVector) IntVector.fromArray(I_SPECIES, weights, j).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, outOffset + b * BLOCK + j);
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            for (int j = 0; j < BLOCK; j += lanes) { // the Vector API's calls alone (Tensor.B_SPECIES)
                FloatVector q = B_SPECIES != null ? (FloatVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 2 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)
                        : (FloatVector) IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 2 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24).convert(VectorOperators.I2F, 0);
                q.mul(d).intoArray(out, outOffset + i + j);
            }
        }
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        if (grouped) task.use(RowLanes.scaled(x, xOffset, cols, BYTE_SCALES), 0, offsetSums(x, xOffset, -128));
        else task.use(x, xOffset);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
            return;
        }
        RowLanes.pairedRows(this, x, xOffset, sums, quants, out, outOffset, firstRow, start, end);
    }
}
