package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q4_K: {@code [f16 d][f16 dmin][12 bytes: eight 6-bit scales and mins][128 bytes of nibbles]} per 256 weights.
 * Each 64 weights take 32 bytes: low nibbles are sub-block 2j, high nibbles sub-block 2j+1;
 * weight = d * scale * q - dmin * min.
 * <p>
 * Two layouts of the same weights: the file's, and the decode layout ({@link #forDecode}): rows in groups of as many
 * rows as a float vector has lanes (L, 16 with 512-bit vectors), one row per lane, so that the kernel multiplies L
 * rows at once by one broadcast activation and never sums across lanes. Per group and super-block column:
 * {@code [d of rows 0..L-1: L f32][dmin: L f32]}, then per sub-block {@code [scales: L bytes][mins: L bytes]
 * [4 x L ints]}, int t of lane r holding weights 8t .. 8t + 7 of row r's sub-block, weight 8t + p in bits
 * 4p .. 4p + 3 ({@link RowLanes}' ints). 152 bytes per row and super-block against the file's 144 (d and dmin as
 * floats, as Q5_K and Q6_K keep theirs); a last group that is not full is padded with zero rows. The scales,
 * mins, d and dmin of L rows are each one vector load, so the per-row scalar work of the four-row layout it replaced
 * is gone.
 */
final class Q4_KTensor extends KQuantTensor implements RowLanes.PairKernel, Tensor.PanelProduct {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d and dmin, of a sub-block, of a super-block column; where a sub-block's ints start. */
    private static final int HEAD = 8 * L, SUB = 18 * L, COLUMN = HEAD + 8 * SUB, INTS = 2 * L;

    Q4_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q4_K, data, cols, rows);
    }

    private Q4_KTensor(Q4_KTensor file, MemorySegment grouped) {
        super(file, grouped, L, COLUMN);
    }

    @Override
    public long decodeCopyBytes() {
        return laneLayoutBytes(COLUMN);
    }

    /** A copy in the decode layout ({@link #laneLayoutCopy}). */
    @Override
    public Tensor forDecode(OffHeap memory) {
        if (grouped) return this;
        return new Q4_KTensor(this, laneLayoutCopy(memory, COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, Float.float16ToFloat(row.get(SHORT_LE, at)));
            group.set(FLOAT_LE, column + 4 * L + 4 * r, Float.float16ToFloat(row.get(SHORT_LE, at + 2)));
            long scales = packedScales(row, at + 4), mins = packedMins(row, at + 4);
            for (int s = 0; s < 8; s++) {
                int sub = column + HEAD + s * SUB, shift = 4 * (s % 2);
                group.set(JAVA_BYTE, sub + r, (byte) (scales >>> 8 * s));
                group.set(JAVA_BYTE, sub + L + r, (byte) (mins >>> 8 * s));
                for (int t = 0; t < 4; t++) {
                    group.set(INT_LE, sub + INTS + 4 * L * t + 4 * r, RowLanes.packNibbles(row.get(LONG_LE, at + 16 + 32 * (s / 2) + 8 * t) >>> shift));
                }
            }
        }));
    }

    /** A row's product with x as {@link #matvec} computes it: x rounded ({@link #prepare}), then {@link #dotRows}. */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return preparedDot(row, x, xOffset);
    }

    /**
     * The file layout's row times the rounded activations at {@code q[qOffset ..]} ({@link #prepare}): per 64 weights
     * (two sub-blocks, 32 quant bytes: byte k holds weight k in its low nibble, 32 + k in its high one) the integer
     * sums of each sub-block's products in int lanes, times their scales and summed over the super-block in float
     * lanes (exact: integers below 2^24), then {@code * (d * dx)}; the mins' share {@code dmin * dx * sum(min * sum
     * of values)} summed apart, as {@link #laneDots} computes both.
     */
    private float roundedDot(long row, int[] q, int qOffset, float[] sums) {
        int lanes = I_SPECIES.length(), blocks = cols / 32;
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        float minsShare = 0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float dx = sums[blocks + i / SUPER_BLOCK];
            long scales = packedScales(offset + 4), mins = packedMins(offset + 4);
            FloatVector total = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < 4; j++, scales >>>= 16) {
                long qs = offset + 16 + 32L * j;
                int at = qOffset + i + 64 * j;
                IntVector lo = IntVector.zero(I_SPECIES), hi = lo;
                for (int l = 0; l < 32; l += lanes) { // unsigned bytes, the Vector API's calls written out (Tensor.B_SPECIES)
                    IntVector w = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qs + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, qs + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF);
                    lo = w.and(0xF).mul(IntVector.fromArray(I_SPECIES, q, at + l)).add(lo);
                    hi = w.lanewise(VectorOperators.LSHR, 4).mul(IntVector.fromArray(I_SPECIES, q, at + 32 + l)).add(hi);
                }
                total = ((FloatVector) lo.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, scales & 0xFF), total);
                total = ((FloatVector) hi.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, (scales >>> 8) & 0xFF), total);
            }
            float minTotal = 0;
            for (int j = 0; j < 8; j++, mins >>>= 8) minTotal += (mins & 0xFF) * sums[i / 32 + j];
            acc = FloatVector.broadcast(F_SPECIES, f16(data, offset) * dx).fma(total, acc);
            minsShare += f16(data, offset + 2) * dx * minTotal;
        }
        return acc.reduceLanes(VectorOperators.ADD) - minsShare;
    }

    /**
     * The dot products of the L rows of groups a and b with the rounded activations ({@link #prepare}), to
     * {@code out[oA .. oA + L)} and {@code out[oB .. oB + L)} ({@link RowLanes.PairKernel}: a from the first half of a
     * thread's range, b from its second): per sub-block, Q4_0's int16 products ({@link Q4_0Tensor#laneDots}, the same
     * ints and the same paired activations; Q4_K's nibbles carry no offset), the lane pairs added as ints; each
     * sub-block's sum times its scale, and its min times the sum of its values, added up over the super-block in
     * floats (exact: integers below 2^24), then scaled by {@code d * dx} and {@code dmin * dx} at its end, as llama.cpp
     * scales the integer sums of its Q4_K products with activations rounded as its Q8_K (one scale per 256): the
     * decode steps are its arithmetic. Scaled per sub-block instead, the logits lay 2-4e-6 from llama.cpp's native
     * run and near-half roundings that went the other way were more frequent (docs/kernel-log.md, session 70). The
     * Vector API's calls written out in this one method, as in Q4_0's.
     */
    @Override
    public void laneDots(long a, long b, float[] x, int qOffset, float[] sums, int[] q, float[] out, int oA, int oB) {
        long columnA = a * L * rowBytes, columnB = b * L * rowBytes;
        int blocks = cols / 32;
        FloatVector accA = FloatVector.zero(F_SPECIES), accB = accA, sumA = accA, sumB = accA, minSumA = accA, minSumB = accA;
        for (int c = qOffset, k = 0, s = 0; c < qOffset + cols; c += 32, k++, s = (s + 1) % 8) {
            long offA = columnA + HEAD + (long) s * SUB, offB = columnB + HEAD + (long) s * SUB;
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            IntVector w0 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS, ByteOrder.LITTLE_ENDIAN),
                    w1 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    w2 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    w3 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
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
            FloatVector valuesSum = FloatVector.broadcast(F_SPECIES, sums[k]);
            FloatVector scalesA = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    minsA = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offA + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    scalesB = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    minsB = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offB + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0);
            // integers, exact in floats (below 2^24): each sub-block's sum times its scale, and its min times the sum of its values
            FloatVector totalA = fa.fma(scalesA, sumA), totalB = fb.fma(scalesB, sumB),
                    minTotalA = minsA.fma(valuesSum, minSumA), minTotalB = minsB.fma(valuesSum, minSumB);
            if (s == 7) { // the super-block's end: its sums times d * dx and dmin * dx, as llama.cpp scales its integer sums
                float dx = sums[blocks + k / 8];
                FloatVector dA = FloatVector.fromMemorySegment(F_SPECIES, data, columnA, ByteOrder.LITTLE_ENDIAN),
                        dminA = FloatVector.fromMemorySegment(F_SPECIES, data, columnA + 4L * L, ByteOrder.LITTLE_ENDIAN),
                        dB = FloatVector.fromMemorySegment(F_SPECIES, data, columnB, ByteOrder.LITTLE_ENDIAN),
                        dminB = FloatVector.fromMemorySegment(F_SPECIES, data, columnB + 4L * L, ByteOrder.LITTLE_ENDIAN);
                accA = dA.mul(dx).fma(totalA, dminA.mul(-dx).fma(minTotalA, accA));
                accB = dB.mul(dx).fma(totalB, dminB.mul(-dx).fma(minTotalB, accB));
                sumA = FloatVector.zero(F_SPECIES);
                sumB = sumA;
                minSumA = sumA;
                minSumB = sumA;
                columnA += COLUMN;
                columnB += COLUMN;
            } else {
                sumA = totalA;
                sumB = totalB;
                minSumA = minTotalA;
                minSumB = minTotalB;
            }
        }
        accB.intoArray(out, oB);
        accA.intoArray(out, oA);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (!grouped) {
            dequantizeScaleMin(row, out, outOffset, -1, 16);
            return;
        }
        // rounding as ggml's dequantize_row_q4_K: (d * scale) * q - dmin * min; row r's ints lie 4L bytes apart
        int r = (int) (row % L);
        long offset = (row - r) * rowBytes;
        int[] nibbles = RowLanes.blockInts();
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += COLUMN) {
            float d = data.get(FLOAT_LE, offset + 4L * r), dmin = data.get(FLOAT_LE, offset + 4L * L + 4L * r);
            for (int s = 0; s < 8; s++) {
                long sub = offset + HEAD + (long) s * SUB;
                FloatVector scale = FloatVector.broadcast(F_SPECIES, d * data.get(JAVA_BYTE, sub + r));
                FloatVector min = FloatVector.broadcast(F_SPECIES, dmin * data.get(JAVA_BYTE, sub + L + r));
                RowLanes.rowNibbles(data, sub + INTS + 4L * r, nibbles);
                for (int j = 0; j < 32; j += L) ((FloatVector) IntVector.fromArray(I_SPECIES, nibbles, j).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, outOffset + i + 32 * s + j);
            }
        }
    }

    /**
     * Per super-block column and sub-block, each weight column of the group as one vector, {@code q * (d * scale) - dmin * min}
     * ({@link Tensor.PanelRows}).
     */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int i = 0; i < cols / SUPER_BLOCK; i++) {
            long column = group + (long) i * COLUMN;
            int at = first + i * SUPER_BLOCK * L;
            FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN),
                    dmin = FloatVector.fromMemorySegment(F_SPECIES, data, column + 4L * L, ByteOrder.LITTLE_ENDIAN);
            for (int s = 0; s < 8; s++) {
                long sub = column + HEAD + (long) s * SUB, ints = sub + INTS;
                FloatVector scale = d.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        min = dmin.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, ints, ByteOrder.LITTLE_ENDIAN),
                        v1 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 4L * L, ByteOrder.LITTLE_ENDIAN),
                        v2 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 8L * L, ByteOrder.LITTLE_ENDIAN),
                        v3 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 12L * L, ByteOrder.LITTLE_ENDIAN);
                int w = at + 32 * s * L;
                for (int p = 0; p < 8; p++, w += L) { // nibble p of int t: weight 8t + p
                    ((FloatVector) v0.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w);
                    ((FloatVector) v1.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 8 * L);
                    ((FloatVector) v2.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 16 * L);
                    ((FloatVector) v3.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 24 * L);
                }
            }
        }
    }

    /** 2^4p for nibble position p < 7, 1 for the top one, shifted down ({@link #panelPairProduct}). */
    private static final float[] POWERS = {1f, 0x1p4f, 0x1p8f, 0x1p12f, 0x1p16f, 0x1p20f, 0x1p24f, 1f};
    /** Each thread's mins of a sub-block times {@link #POWERS}, of two groups: p's of group a at {@code p * L}, of b at {@code (8 + p) * L}. */
    private static final ThreadLocal<float[]> SCALED_MINS = ThreadLocal.withInitial(() -> new float[16 * L]);

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a column at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order (as Q4_0Tensor's). Nibble p < 7 of int t (column 8t + p of a sub-block) is taken
     * in place, q * 2^4p, times the scale, less the min times 2^4p: the panel's {@code q * scale - min} times 2^4p
     * exactly, against x's column scaled by 2^-4p ({@link #columnScales}); the top nibble is shifted down.
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        float[] mins = Tensor.scratch(SCALED_MINS, 16 * L);
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int i = 0; i < cols / SUPER_BLOCK; i++, a += COLUMN, b += COLUMN) {
            FloatVector dA = FloatVector.fromMemorySegment(F_SPECIES, data, a, ByteOrder.LITTLE_ENDIAN),
                    dminA = FloatVector.fromMemorySegment(F_SPECIES, data, a + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    dB = FloatVector.fromMemorySegment(F_SPECIES, data, b, ByteOrder.LITTLE_ENDIAN),
                    dminB = FloatVector.fromMemorySegment(F_SPECIES, data, b + 4L * L, ByteOrder.LITTLE_ENDIAN);
            for (int s = 0; s < 8; s++) {
                long subA = a + HEAD + (long) s * SUB, subB = b + HEAD + (long) s * SUB;
                FloatVector scaleA = dA.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        minA = dminA.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subA + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        scaleB = dB.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        minB = dminB.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subB + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                for (int p = 0; p < 8; p++) {
                    minA.mul(POWERS[p]).intoArray(mins, p * L);
                    minB.mul(POWERS[p]).intoArray(mins, (8 + p) * L);
                }
                for (int t = 0; t < 4; t++) {
                    IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, subA + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN),
                            vB = IntVector.fromMemorySegment(I_SPECIES, data, subB + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                    for (int p = 0; p < 8; p++, xk += TileKernels.PAIR_TOKENS) {
                        IntVector qA = p < 7 ? vA.and(RowLanes.NIBBLE_MASKS[p]) : vA.lanewise(VectorOperators.LSHR, 28),
                                qB = p < 7 ? vB.and(RowLanes.NIBBLE_MASKS[p]) : vB.lanewise(VectorOperators.LSHR, 28);
                        FloatVector u = ((FloatVector) qA.convert(VectorOperators.I2F, 0)).mul(scaleA).sub(FloatVector.fromArray(F_SPECIES, mins, p * L)),
                                w = ((FloatVector) qB.convert(VectorOperators.I2F, 0)).mul(scaleB).sub(FloatVector.fromArray(F_SPECIES, mins, (8 + p) * L));
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
        }
        a0.intoArray(acc, 0); a1.intoArray(acc, L); a2.intoArray(acc, 2 * L); a3.intoArray(acc, 3 * L);
        a4.intoArray(acc, 4 * L); a5.intoArray(acc, 5 * L); a6.intoArray(acc, 6 * L); a7.intoArray(acc, 7 * L);
        c0.intoArray(acc, 8 * L); c1.intoArray(acc, 9 * L); c2.intoArray(acc, 10 * L); c3.intoArray(acc, 11 * L);
        c4.intoArray(acc, 12 * L); c5.intoArray(acc, 13 * L); c6.intoArray(acc, 14 * L); c7.intoArray(acc, 15 * L);
    }

    /**
     * Two more operations per column than Q4_0's (the min, and the scale's multiply apart from d's), so the tiles win
     * from about 24 tokens: `bench`, TinyLlama Q4_K, 2 threads, alternating, tiles -> panel product, pp3 29.4/30.9/
     * 27.9/26.6 -> 42.6/37.2/38.2/37.3 tokens/s, pp8 74.8/78.4/72.7/69.2 -> 113.6/94.5/97.3/92.2, pp16
     * 107.5/111.3/104.8/100.7 -> 137.8/113.1/116.1/116.6, pp32 137.1/141.5/131.6/126.9 -> 143.6/118.2/118.7/116.6.
     */
    @Override
    public int panelProductTokens() {
        return 16;
    }

    /** 2^-4p per column k, p = k % 8 < 7, and 1 for the top nibble (as {@link RowLanes#nibbleScaled} scales x). */
    private static final float[] COLUMN_SCALES = RowLanes.positionScales(4);

    @Override
    public float[] columnScales() {
        return COLUMN_SCALES;
    }

    /** Each thread's rounded activations of one token ({@link #prepare}) and their sums and scales, kept between calls. */
    private static final ThreadLocal<int[]> ROUNDED = ThreadLocal.withInitial(() -> new int[0]);
    private static final ThreadLocal<float[]> ROUNDED_SUMS = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * One token's activations ({@code cols} of x from xOffset) rounded as llama.cpp's {@code quantize_row_q8_K} rounds
     * them for its Q4_K products, to this thread's scratch, set in {@code task}: per 256 the scale
     * {@code dx = 1 / (127 / max|x|)} at {@code sums[cols / 32 + i]}, the values {@code rint(x * (127 / max|x|))} at
     * {@code q[256i ..]} (in order, or paired for {@link #laneDots}, {@link RowLanes#roundBlock}), and per sub-block k
     * of 32 the sum of its values at {@code sums[k]}, for the mins' share.
     */
    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        int blocks = cols / 32;
        int[] q = intScratch(ROUNDED, cols);
        float[] sums = scratch(ROUNDED_SUMS, blocks + cols / SUPER_BLOCK);
        for (int i = 0; i < cols; i += SUPER_BLOCK) {
            float max = RowLanes.maxAbs(x, xOffset + i, SUPER_BLOCK), inverse = max == 0 ? 0 : 127 / max, dx = max == 0 ? 0 : 1 / inverse;
            sums[blocks + i / SUPER_BLOCK] = dx;
            for (int k = i / 32; k < (i + SUPER_BLOCK) / 32; k++) sums[k] = RowLanes.roundBlock(x, xOffset + 32 * k, inverse, q, 32 * k, grouped);
        }
        task.useRounded(q, sums);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = roundedDot(firstRow + r, quants, xOffset, xSums);
            return;
        }
        RowLanes.pairedRows(this, x, xOffset, xSums, quants, out, outOffset, firstRow, start, end);
    }
}
