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
 * {@link RowGroupTensor}), one row per vector lane, the nibbles' values unchanged.
 * <p>
 * Its products with one token, and with the few tokens of a small batch ({@link Tensor#LANE_TOKENS}), take llama.cpp's
 * arithmetic: the activations rounded to int8 per block of 32 as x86 llama.cpp rounds them for its Q4_0 products
 * ({@link #prepare}), each block's integer sum scaled by {@code d * dx}. In int16 lanes the decode kernel does 32
 * multiply-adds per two instructions where the float kernel it replaced did 16 per three (TinyLlama Q4_0 decode, 2
 * threads: 46.3 against 52.3 tokens/s; docs/kernel-log.md, session 32). A prompt's batches of {@link Tensor#TILE_TOKENS}
 * tokens or more run in F32 on the dequantized weights, as every format's do ({@link Tensor#matmul}).
 */
final class Q4_0Tensor extends RowGroupTensor implements RowLanes.PairKernel, Tensor.PanelProduct {
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

    /** A row's product with x as {@link #matvec} computes it: x rounded ({@link #prepare}), then {@link #dotRows}. */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return preparedDot(row, x, xOffset);
    }

    /**
     * Row {@code row} of the file's layout times the rounded activations at {@code q[qOffset ..]} with their block
     * scales at {@code sums[2k]}: per block the products of the signed nibbles with the values in int lanes, then
     * {@code += sum * (d * dx)} in float lanes.
     */
    private float fileDot(long row, int[] q, int qOffset, float[] sums) {
        int lanes = I_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0, k = 0; i < cols; i += BLOCK, k++, offset += BLOCK_BYTES) {
            IntVector sum = IntVector.zero(I_SPECIES);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector w = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 2 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 2 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24));
                sum = w.and(0xF).sub(8).mul(IntVector.fromArray(I_SPECIES, q, qOffset + i + j)).add(sum);
                sum = w.lanewise(VectorOperators.ASHR, 4).and(0xF).sub(8).mul(IntVector.fromArray(I_SPECIES, q, qOffset + i + j + BLOCK / 2)).add(sum);
            }
            acc = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset) * sums[2 * k]), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /**
     * The dot products of the L rows of groups a and b with the rounded activations, to {@code out[oA .. oA + L)} and
     * {@code out[oB ..]}: {@code q[qOffset + 32k + 8t + j]} (j < 4) holds block k's values 8t + j and 8t + 4 + j as
     * the low and high int16 of an int, {@code sums[2k]} its scale dx and {@code sums[2k + 1]} the sum of its values
     * ({@link #prepare}). Int t of a row (weights 8t .. 8t + 7, a nibble each) read as two int16 lanes holds
     * weights 8t .. 8t + 3 in the low one and 8t + 4 .. 8t + 7 in the high one, so one broadcast pair multiplies nibble
     * j of both: per block, 16 int16 multiply-adds per lane of the unsigned nibbles (at most 16 * 15 * 127 = 30480, no
     * overflow), then the lane pairs added as ints, the offset added, and {@code * (d * dx)} into float sums. Nibble 0
     * is taken by one and, 3 by one int16 shift, 1 and 2 by an int shift and an and of both halves ({@link RowLanes#NIBBLE_PAIRS}):
     * C2 shifts int lanes by an immediate but int16 lanes by a count it moves into a vector register first (two more
     * instructions per shift); with 1 and 2 shifted as ints, JMH matvec (decode layout, one thread, alternating) ran
     * 3.85-3.96 against 4.03-4.64 us in L2 and 446-490 against 500-537 us in L3. Each nibble's products run from int
     * 3 down to int 0 (exact in any order): C2 then issues a block column's four loads in ascending address order,
     * where with int 0 first it issued int 3's first and the column's lines were touched from its end back, and 37% of
     * a one-thread Llama-2-7B decode profile sat on that first load; ascending, the samples spread over the four
     * loads (TinyLlama tg64, 2 threads, ten alternating pairs: means 60.0 -> 62.0 tokens/s, within this machine's
     * noise; docs/kernel-log.md, session 52). The Vector API's calls are written out in this
     * one method, as a helper returning a vector would box where C2 leaves it out of line (docs/kernel-log.md,
     * session 21).
     */
    @Override
    public void laneDots(long a, long b, float[] x, int qOffset, float[] sums, int[] q, float[] out, int oA, int oB) {
        long offsetA = a * L * rowBytes, offsetB = b * L * rowBytes;
        FloatVector accA = FloatVector.zero(F_SPECIES), accB = accA;
        for (int c = qOffset, k = 0; c < qOffset + cols; c += BLOCK, k++, offsetA += (long) L * BLOCK_BYTES, offsetB += (long) L * BLOCK_BYTES) {
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            IntVector w0 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS, ByteOrder.LITTLE_ENDIAN),
                    w1 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    w2 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    w3 = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            ShortVector sa = ShortVector.zero(RowLanes.PAIRS), sb = sa;
            { // nibble 0 of each int16
                ShortVector x0 = IntVector.broadcast(I_SPECIES, q[c + 0]).reinterpretAsShorts(), x1 = IntVector.broadcast(I_SPECIES, q[c + 8]).reinterpretAsShorts(),
                        x2 = IntVector.broadcast(I_SPECIES, q[c + 16]).reinterpretAsShorts(), x3 = IntVector.broadcast(I_SPECIES, q[c + 24]).reinterpretAsShorts();
                sa = v3.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x3).add(sa);
                sb = w3.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x3).add(sb);
                sa = v2.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x2).add(sa);
                sb = w2.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x2).add(sb);
                sa = v1.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x1).add(sa);
                sb = w1.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x1).add(sb);
                sa = v0.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x0).add(sa);
                sb = w0.and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x0).add(sb);
            }
            { // nibble 1 of each int16
                ShortVector x0 = IntVector.broadcast(I_SPECIES, q[c + 1]).reinterpretAsShorts(), x1 = IntVector.broadcast(I_SPECIES, q[c + 9]).reinterpretAsShorts(),
                        x2 = IntVector.broadcast(I_SPECIES, q[c + 17]).reinterpretAsShorts(), x3 = IntVector.broadcast(I_SPECIES, q[c + 25]).reinterpretAsShorts();
                sa = v3.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x3).add(sa);
                sb = w3.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x3).add(sb);
                sa = v2.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x2).add(sa);
                sb = w2.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x2).add(sb);
                sa = v1.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x1).add(sa);
                sb = w1.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x1).add(sb);
                sa = v0.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x0).add(sa);
                sb = w0.lanewise(VectorOperators.LSHR, 4).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x0).add(sb);
            }
            { // nibble 2 of each int16
                ShortVector x0 = IntVector.broadcast(I_SPECIES, q[c + 2]).reinterpretAsShorts(), x1 = IntVector.broadcast(I_SPECIES, q[c + 10]).reinterpretAsShorts(),
                        x2 = IntVector.broadcast(I_SPECIES, q[c + 18]).reinterpretAsShorts(), x3 = IntVector.broadcast(I_SPECIES, q[c + 26]).reinterpretAsShorts();
                sa = v3.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x3).add(sa);
                sb = w3.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x3).add(sb);
                sa = v2.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x2).add(sa);
                sb = w2.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x2).add(sb);
                sa = v1.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x1).add(sa);
                sb = w1.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x1).add(sb);
                sa = v0.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x0).add(sa);
                sb = w0.lanewise(VectorOperators.LSHR, 8).and(RowLanes.NIBBLE_PAIRS).reinterpretAsShorts().mul(x0).add(sb);
            }
            { // nibble 3 of each int16
                ShortVector x0 = IntVector.broadcast(I_SPECIES, q[c + 3]).reinterpretAsShorts(), x1 = IntVector.broadcast(I_SPECIES, q[c + 11]).reinterpretAsShorts(),
                        x2 = IntVector.broadcast(I_SPECIES, q[c + 19]).reinterpretAsShorts(), x3 = IntVector.broadcast(I_SPECIES, q[c + 27]).reinterpretAsShorts();
                sa = v3.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x3).add(sa);
                sb = w3.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x3).add(sb);
                sa = v2.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x2).add(sa);
                sb = w2.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x2).add(sb);
                sa = v1.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x1).add(sa);
                sb = w1.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x1).add(sb);
                sa = v0.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x0).add(sa);
                sb = w0.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12).mul(x0).add(sb);
            }
            IntVector ia = sa.reinterpretAsInts(), ib = sb.reinterpretAsInts();
            FloatVector fa = (FloatVector) ia.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(ia.lanewise(VectorOperators.ASHR, 16)).convert(VectorOperators.I2F, 0),
                    fb = (FloatVector) ib.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(ib.lanewise(VectorOperators.ASHR, 16)).convert(VectorOperators.I2F, 0);
            float offset = -8 * sums[2 * k + 1]; // the nibbles are q + 8
            // the rows' scales, F16Tensor's conversion written out (d * 2^-112), times dx * 2^112: the exact product is
            // d * dx, rounded once, as llama.cpp rounds it (d * 2^-112 is exact, dx * 2^112 below 2^128 is too)
            float dxScaled = sums[2 * k] * 0x1p112f;
            IntVector dA = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0),
                    dB = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offsetB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0);
            accA = fa.add(offset).fma(dA.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(dxScaled), accA);
            accB = fb.add(offset).fma(dB.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(dxScaled), accB);
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

    /** Per int of a block, nibble p's bits ({@link #panelPairProduct}). */
    private static final int[] NIBBLE_MASKS = RowLanes.NIBBLE_MASKS;
    /** Per nibble position p, 8 in its place: what a nibble there minus 8 leaves, read as an int, is (q - 8) * 2^4p. */
    private static final int[] NIBBLE_EIGHTS = java.util.stream.IntStream.range(0, 8).map(p -> 8 << 4 * p).toArray();

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a column at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order, with no tile written and read back. Nibble p of int t is column 8t + p; it is
     * taken in place, {@code (v & 0xF << 4p) - (8 << 4p)} (the top nibble's wraps round to the same), which is (q - 8)
     * * 2^4p, times d: the panel's weight times 2^4p exactly, whose product with x * 2^-4p ({@link #columnScales}) is
     * the panel's product with x. Per column and group four operations, where shifting the int down took five, and
     * an int shifted down once a column and carried round the loop boxed (docs/kernel-log.md, session 37).
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
            for (int t = 0; t < 4; t++) {
                IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, a + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN),
                        vB = IntVector.fromMemorySegment(I_SPECIES, data, b + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                for (int p = 0; p < 8; p++, xk += TileKernels.PAIR_TOKENS) {
                    int mask = NIBBLE_MASKS[p], eight = NIBBLE_EIGHTS[p];
                    FloatVector u = ((FloatVector) vA.and(mask).sub(eight).convert(VectorOperators.I2F, 0)).mul(dA),
                            w = ((FloatVector) vB.and(mask).sub(eight).convert(VectorOperators.I2F, 0)).mul(dB);
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

    /** 2^-4p per column k, p = k % 8, then L more (period 8, {@link RowLanes#scaled}): {@link #panelPairProduct}'s. */
    private static final float[] COLUMN_SCALES = columnScales(8 + L);

    private static float[] columnScales(int n) {
        float[] scales = new float[n];
        for (int k = 0; k < n; k++) scales[k] = Math.scalb(1f, -4 * (k % 8));
        return scales;
    }

    @Override
    public float[] columnScales() {
        return COLUMN_SCALES;
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

    /** Each thread's rounded activations of one token ({@link #prepare}) and their block scales and sums, kept between calls. */
    private static final ThreadLocal<int[]> ROUNDED = ThreadLocal.withInitial(() -> new int[0]);
    private static final ThreadLocal<float[]> ROUNDED_SUMS = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * One token's activations ({@code cols} of x from xOffset) rounded as x86 llama.cpp's {@code quantize_row_q8_0}
     * rounds them for its Q4_0 products, to this thread's scratch, set in {@code task} ({@code RowTask.useRounded}):
     * per block k of 32 the scale {@code dx = f16(max|x| / 127)} at {@code sums[2k]}, the sum of its values
     * {@code rint(x * 127 / max|x|)} at {@code sums[2k + 1]}; the values at {@code q[32k ..]}, in order, or in the
     * decode layout paired for {@link #laneDots} ({@link RowLanes#roundBlock}).
     */
    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        int blocks = cols / BLOCK;
        int[] q = intScratch(ROUNDED, cols);
        float[] sums = scratch(ROUNDED_SUMS, 2 * blocks);
        for (int k = 0, at = 0; k < blocks; k++, at += BLOCK) {
            float max = RowLanes.maxAbs(x, xOffset + at, BLOCK);
            sums[2 * k + 1] = RowLanes.roundBlock(x, xOffset + at, max == 0 ? 0 : 127 / max, q, at, grouped);
            sums[2 * k] = VectorMath.roundToHalf(max / 127);
        }
        task.useRounded(q, sums);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = fileDot(firstRow + r, quants, xOffset, sums);
            return;
        }
        RowLanes.pairedRows(this, x, xOffset, sums, quants, out, outOffset, firstRow, start, end);
    }
}
