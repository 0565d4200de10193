package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q6_K: {@code [128 bytes low nibbles ql][64 bytes high 2-bit pairs qh][16 int8 scales][f16 d]} per 256 weights, in
 * two halves of 128: weight = d * scale * (q - 32), q = 4 bits from ql plus 2 bits from qh.
 * <p>
 * Like Q4_K it decodes from a four-row layout of its own ({@link #forDecode}), of exactly the file's size: per
 * super-block column the rows' f16 d (8 bytes), then four pairs of 32-weight sub-blocks, each {@code [16 ints of high
 * bits][2 x (8 int8 scales, 16 ints of nibbles)]}. The nibble ints are Q4_K's (byte r of int j: the low four bits of
 * weights j and j + 16 of row r); byte r of high-bit int j holds the top two bits of weight j of the pair's first
 * sub-block in bits 0-1, of weight j + 16 in bits 2-3, and the second sub-block's in bits 4-7, so that one rotation
 * and one and put them above every row's nibble. A sub-block's scales: rows 0-3 for weights 0-15, then for 16-31.
 */
final class Q6_KTensor extends KQuantTensor {
    /** Decode layout: bytes of the rows' d, of a pair's high bits, of a sub-block, of a pair, and of a super-block column. */
    private static final int HEADER = 8, HIGH = 64, SUB_BLOCK = 72, PAIR = HIGH + 2 * SUB_BLOCK, COLUMN = HEADER + 4 * PAIR;

    Q6_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q6_K, data, cols, rows);
    }

    private Q6_KTensor(Q6_KTensor file, MemorySegment grouped) {
        super(file, grouped, GROUP, COLUMN);
    }

    @Override
    public long decodeCopyBytes() {
        return groupedBytes(COLUMN);
    }

    /** Weight l (0-31) of sub-block s (0-7) of the super-block at {@code at}: its 6-bit quant, unsigned. */
    private int quant(long at, int s, int l) {
        int half = s / 4, g = s % 4;
        int low = (data.get(JAVA_BYTE, at + 64L * half + l + 32 * (g & 1)) >> 4 * (g >> 1)) & 0xF;
        return low | ((data.get(JAVA_BYTE, at + 128 + 32L * half + l) >> 2 * g) & 3) << 4;
    }

    /**
     * A copy in the decode layout, off-heap ({@link OffHeap}), or this tensor; the pages of a mapped original are then
     * released, so that the copy takes their place in memory.
     */
    @Override
    public Tensor forDecode() {
        if (decodeCopyBytes() == 0) return this;
        MemorySegment copy = OffHeap.allocate(decodeCopyBytes());
        int superBlocks = cols / SUPER_BLOCK;
        Parallel.run(Math.toIntExact(rows / GROUP), 4, (start, end) -> {
            byte[] out = new byte[superBlocks * COLUMN];
            for (long g = start; g < end; g++) {
                java.util.Arrays.fill(out, (byte) 0);
                for (int r = 0; r < GROUP; r++) {
                    long at = (g * GROUP + r) * rowBytes;
                    for (int sb = 0, column = 0; sb < superBlocks; sb++, at += type.blockBytes, column += COLUMN) {
                        out[column + 2 * r] = data.get(JAVA_BYTE, at + 208);
                        out[column + 2 * r + 1] = data.get(JAVA_BYTE, at + 209);
                        for (int s = 0; s < 8; s++) {
                            int pair = column + HEADER + s / 2 * PAIR, q = s % 2, sub = pair + HIGH + q * SUB_BLOCK;
                            out[sub + r] = data.get(JAVA_BYTE, at + 192 + 8L * (s / 4) + 2 * (s % 4));
                            out[sub + GROUP + r] = data.get(JAVA_BYTE, at + 192 + 8L * (s / 4) + 2 * (s % 4) + 1);
                            for (int j = 0; j < 16; j++) {
                                int lo = quant(at, s, j), hi = quant(at, s, j + 16);
                                out[sub + 2 * GROUP + 4 * j + r] = (byte) ((lo & 0xF) | (hi & 0xF) << 4);
                                out[pair + 4 * j + r] |= (byte) ((lo >> 4 | (hi >> 4) << 2) << 4 * q);
                            }
                        }
                    }
                }
                MemorySegment.copy(out, 0, copy, JAVA_BYTE, g * out.length, out.length);
            }
        });
        if (data.isMapped()) data.unload();
        return new Q6_KTensor(this, copy);
    }

    /**
     * Per {@code lanes} weights of a half: four groups of weights, 32 apart, group g built from a nibble of
     * {@code ql} (low nibbles of bytes 0-31 for g = 0, of bytes 32-63 for g = 1, high nibbles for g = 2, 3) and bit
     * pair g of {@code qh}. A scale covers 16 weights, so a vector (at most 16 lanes) has one scale per group. The
     * groups are a loop rather than four written-out copies, and the half's eight int8 scales are read as one long:
     * C2 stops inlining once a method's graph passes a size limit (NodeCountInliningCutoff), and the written-out form
     * passed it, so the vector operations were no longer inlined and each boxed its result (3x slower). The int8 scales
     * multiply the quants as ints and d is applied once per super-block, so the float side is one conversion and one
     * FMA per vector; {@code ql} and {@code qh} are loaded once per step for all four groups.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        if (grouped) return groupedDot(row, x, xOffset);
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int half = 0; half < 2; half++) {
                long ql = offset + 64L * half, qh = offset + 128 + 32L * half;
                long scales = data.get(LONG_LE, offset + 192 + 8L * half); // int8 scale k in byte k
                int base = xOffset + i + 128 * half;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector h = bytes(qh + l).lanewise(VectorOperators.LSHL, 4), a = bytes(ql + l), b = bytes(ql + l + 32);
                    for (int g = 0; g < 4; g++) {
                        IntVector q = ((g & 1) == 0 ? a : b).lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(0x30)).sub(32);
                        int scale = (byte) (scales >>> 8 * (l / 16 + 2 * g));
                        sum = floats(q.mul(scale)).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 * g + l), sum);
                    }
                }
            }
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + 208)), acc);
        }
        return VectorMath.sum(acc);
    }

    /**
     * Row r's quants minus 32 in the decode layout: weights j.. ({@code high} false) or j + 16.. of sub-block q (0, 1)
     * of the pair at {@code pair}, whose sub-block starts at {@code sub}.
     */
    private IntVector groupedRow(long pair, long sub, int q, int j, int r, boolean high) {
        int half = high ? 1 : 0;
        IntVector low = ints(sub + 2 * GROUP + 4L * j).lanewise(VectorOperators.LSHR, 8 * r + 4 * half).and(0xF);
        IntVector top = ints(pair + 4L * j).lanewise(VectorOperators.LSHR, 8 * r + 4 * q + 2 * half).and(3).lanewise(VectorOperators.LSHL, 4);
        return low.or(top).sub(32);
    }

    /** One row's dot product in the decode layout (rows outside a whole group of a {@link #dotRows} range). */
    private float groupedDot(long row, float[] x, int xOffset) {
        int lanes = F_SPECIES.length(), r = (int) (row % GROUP);
        long column = (row - r) * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int s = 0; s < 8; s++) {
                long pair = column + HEADER + (long) s / 2 * PAIR, sub = pair + HIGH + (long) (s % 2) * SUB_BLOCK;
                long scales = data.get(LONG_LE, sub) >>> 8 * r; // row r's scale for weights 0-15 in byte 0, for 16-31 in byte 4
                for (int j = 0; j < 16; j += lanes) {
                    sum = floats(groupedRow(pair, sub, s % 2, j, r, false).mul((byte) scales)).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 32 * s + j), sum);
                    sum = floats(groupedRow(pair, sub, s % 2, j, r, true).mul((byte) (scales >>> 32))).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 32 * s + j + 16), sum);
                }
            }
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, column + 2L * r)), acc);
        }
        return VectorMath.sum(acc);
    }

    /**
     * The dot products of the four rows of the group at {@code row} with x, to {@code out[o ..]}: per sub-block and
     * half, the four rows' 6-bit quants joined at once (a shift, a rotation, two ands and an or), then per row as in
     * the file's kernel (int8 scale multiplied in as ints, d once per super-block). The halves are a loop: C2 counts
     * its inlining budget before it unrolls loops (NodeCountInliningCutoff).
     */
    private void groupDot4(long row, float[] x, int xOffset, float[] out, int o) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += COLUMN) {
            FloatVector t0 = FloatVector.zero(F_SPECIES), t1 = t0, t2 = t0, t3 = t0;
            for (int s = 0; s < 8; s++) {
                long pair = offset + HEADER + (long) s / 2 * PAIR, sub = pair + HIGH + (long) (s % 2) * SUB_BLOCK;
                long sc = data.get(LONG_LE, sub); // scales of rows 0-3 for weights 0-15, then for 16-31
                for (int j = 0; j < 16; j += lanes) {
                    IntVector v = ints(sub + 2 * GROUP + 4L * j), f = ints(pair + 4L * j);
                    for (int half = 0; half < 2; half++) {
                        FloatVector xv = FloatVector.fromArray(F_SPECIES, x, xOffset + i + 32 * s + 16 * half + j);
                        IntVector q = v.lanewise(VectorOperators.LSHR, 4 * half).and(0x0F0F0F0F)
                                .or(f.lanewise(VectorOperators.ROL, (4 - 4 * (s % 2) - 2 * half) & 31).and(0x30303030));
                        long scales = sc >>> 32 * half;
                        t0 = floats(q.and(0x3F).sub(32).mul((byte) scales)).fma(xv, t0);
                        t1 = floats(q.lanewise(VectorOperators.LSHR, 8).and(0x3F).sub(32).mul((byte) (scales >>> 8))).fma(xv, t1);
                        t2 = floats(q.lanewise(VectorOperators.LSHR, 16).and(0x3F).sub(32).mul((byte) (scales >>> 16))).fma(xv, t2);
                        t3 = floats(q.lanewise(VectorOperators.LSHR, 24).sub(32).mul((byte) (scales >>> 24))).fma(xv, t3);
                    }
                }
            }
            long d = data.get(LONG_LE, offset); // the four rows' f16 d
            acc0 = t0.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) d)), acc0);
            acc1 = t1.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (d >>> 16))), acc1);
            acc2 = t2.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (d >>> 32))), acc2);
            acc3 = t3.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (d >>> 48))), acc3);
        }
        out[o] = VectorMath.sum(acc0);
        out[o + 1] = VectorMath.sum(acc1);
        out[o + 2] = VectorMath.sum(acc2);
        out[o + 3] = VectorMath.sum(acc3);
    }

    /** Rounds as ggml's dequantize_row_q6_K does: {@code (d * scale) * q}. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            int r = (int) (row % GROUP);
            long column = (row - r) * rowBytes;
            for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
                float d = f16(data, column + 2L * r);
                for (int s = 0; s < 8; s++) {
                    long pair = column + HEADER + (long) s / 2 * PAIR, sub = pair + HIGH + (long) (s % 2) * SUB_BLOCK;
                    long scales = data.get(LONG_LE, sub) >>> 8 * r;
                    FloatVector lo = FloatVector.broadcast(F_SPECIES, d * (byte) scales), hi = FloatVector.broadcast(F_SPECIES, d * (byte) (scales >>> 32));
                    for (int j = 0; j < 16; j += lanes) {
                        floats(groupedRow(pair, sub, s % 2, j, r, false)).mul(lo).intoArray(out, outOffset + i + 32 * s + j);
                        floats(groupedRow(pair, sub, s % 2, j, r, true)).mul(hi).intoArray(out, outOffset + i + 32 * s + j + 16);
                    }
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset + 208);
            for (int half = 0; half < 2; half++) {
                long ql = offset + 64L * half, qh = offset + 128 + 32L * half;
                long scales = data.get(LONG_LE, offset + 192 + 8L * half);
                int o = outOffset + i + 128 * half;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector h = bytes(qh + l);
                    for (int g = 0; g < 4; g++) {
                        IntVector q = bytes(ql + l + 32 * (g & 1)).lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        floats(q).mul(d * (byte) (scales >>> 8 * (l / 16 + 2 * g))).intoArray(out, o + 32 * g + l);
                    }
                }
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        int r = start;
        if (grouped) {
            for (; r < end && (firstRow + r) % GROUP != 0; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
            for (; r + GROUP <= end; r += GROUP) groupDot4(firstRow + r, x, xOffset, out, outOffset + r);
        }
        for (; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
