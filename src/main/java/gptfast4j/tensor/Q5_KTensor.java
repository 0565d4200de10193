package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q5_K: {@code [f16 d][f16 dmin][12 bytes scales/mins][32 bytes high bits][128 bytes of nibbles]} per 256 weights;
 * as Q4_K with a fifth bit per weight: bit 2j (low nibbles) or 2j+1 (high nibbles) of {@code qh[l]}.
 * <p>
 * Like Q4_K it decodes from a four-row layout of its own ({@link #forDecode}): per super-block column the four rows'
 * f16 d and dmin (16 bytes), then two quads of sub-blocks, each {@code [16 ints of fifth bits][4 x (4 scales, 4 mins,
 * 16 ints of nibbles)]}. The nibble ints are Q4_K's (byte r of int j: weights j and j + 16 of row r); byte r of
 * fifth-bit int j holds, for sub-block q of the quad, the fifth bit of weight j in bit 2q and of weight j + 16 in bit
 * 2q + 1, so that one rotation and one and put a sub-block's four rows' fifth bits at bit 4 of their bytes. 720 bytes
 * per four rows and 256 columns against the file's 704.
 */
final class Q5_KTensor extends KQuantTensor {
    /** Decode layout: bytes of the rows' d and dmin, of a quad's fifth bits, of a sub-block, of a quad and of a super-block column. */
    private static final int HEADER = 16, FIFTHS = 64, SUB_BLOCK = 72, QUAD = FIFTHS + 4 * SUB_BLOCK, COLUMN = HEADER + 2 * QUAD;

    Q5_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q5_K, data, cols, rows);
    }

    private Q5_KTensor(Q5_KTensor file, MemorySegment grouped) {
        super(file, grouped, GROUP, COLUMN);
    }

    @Override
    public long decodeCopyBytes() {
        return groupedBytes(COLUMN);
    }

    /**
     * A copy in the decode layout, off-heap ({@link OffHeap}), or this tensor: per group and super-block column the
     * rows' f16 d and dmin (at 4r), then per quad of sub-blocks the fifth bits (byte r of int j: bit 2q for weight j of
     * sub-block q, 2q + 1 for weight j + 16) and per sub-block the rows' 6-bit scales, mins and 16 ints, byte r of
     * int j holding row r's nibbles of weights j and j + 16 (as a Q4_1 block has them). The pages of a mapped
     * original are then released, so that the copy takes their place in memory.
     */
    @Override
    public Tensor forDecode() {
        if (decodeCopyBytes() == 0) return this;
        MemorySegment copy = OffHeap.allocate(decodeCopyBytes());
        int superBlocks = cols / SUPER_BLOCK;
        Parallel.run(Math.toIntExact(rows / GROUP), 4, (start, end) -> {
            // a group at a time through a heap array, written out with one bulk copy
            byte[] out = new byte[superBlocks * COLUMN];
            MemorySegment o = MemorySegment.ofArray(out);
            for (long g = start; g < end; g++) {
                java.util.Arrays.fill(out, (byte) 0);
                for (int r = 0; r < GROUP; r++) {
                    long at = (g * GROUP + r) * rowBytes;
                    for (int sb = 0, column = 0; sb < superBlocks; sb++, at += type.blockBytes, column += COLUMN) {
                        o.set(INT_LE, column + 4 * r, data.get(INT_LE, at)); // d, dmin
                        long scales = packedScales(at + 4), mins = packedMins(at + 4);
                        for (int s = 0; s < 8; s++) {
                            int quad = column + HEADER + s / 4 * QUAD, q = s % 4, sub = quad + FIFTHS + q * SUB_BLOCK;
                            out[sub + r] = (byte) (scales >>> 8 * s);
                            out[sub + GROUP + r] = (byte) (mins >>> 8 * s);
                            long qs = at + 48 + 32L * (s / 2);
                            int shift = 4 * (s % 2);
                            for (int j = 0; j < 16; j++) {
                                int lo = (data.get(JAVA_BYTE, qs + j) >> shift) & 0xF, hi = (data.get(JAVA_BYTE, qs + j + 16) >> shift) & 0xF;
                                out[sub + 2 * GROUP + 4 * j + r] = (byte) (lo | hi << 4);
                                int lo5 = (data.get(JAVA_BYTE, at + 16 + j) >> s) & 1, hi5 = (data.get(JAVA_BYTE, at + 16 + j + 16) >> s) & 1;
                                out[quad + 4 * j + r] |= (byte) (lo5 << 2 * q | hi5 << 2 * q + 1);
                            }
                        }
                    }
                }
                MemorySegment.copy(out, 0, copy, JAVA_BYTE, g * out.length, out.length);
            }
        });
        if (data.isMapped()) data.unload();
        return new Q5_KTensor(this, copy);
    }

    /** Bits {@code [p, p + 5)} of each lane, as floats. */
    private static FloatVector fiveBits(IntVector v, int p) {
        return (FloatVector) v.lanewise(VectorOperators.LSHR, p).and(0x1F).convert(VectorOperators.I2F, 0);
    }

    /**
     * Row r's quants, weights j.. ({@code high} false) or j + 16.. of sub-block q of the quad at {@code quad} (whose
     * sub-block starts at {@code sub}), unsigned 5-bit, as floats.
     */
    private FloatVector groupedRow(long quad, long sub, int q, int j, int r, boolean high) {
        int half = high ? 1 : 0;
        IntVector nibbles = ints(sub + 2 * GROUP + 4L * j).lanewise(VectorOperators.LSHR, 8 * r + 4 * half).and(0xF);
        IntVector fifth = ints(quad + 4L * j).lanewise(VectorOperators.LSHR, 8 * r + 2 * q + half).and(1).lanewise(VectorOperators.LSHL, 4);
        return (FloatVector) nibbles.or(fifth).convert(VectorOperators.I2F, 0);
    }

    /** One row's dot product in the decode layout (rows outside a whole group of a {@link #dotRows} range). */
    private float groupedDot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length(), r = (int) (row % GROUP);
        long column = (row - r) * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        float minTerm = 0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            float d = f16(data, column + 4L * r), dmin = f16(data, column + 4L * r + 2), m = 0;
            for (int s = 0; s < 8; s++) {
                long quad = column + HEADER + (long) s / 4 * QUAD, sub = quad + FIFTHS + (long) (s % 4) * SUB_BLOCK;
                int b = i / 32 + s;
                FloatVector sum = FloatVector.zero(F_SPECIES);
                for (int j = 0; j < 16; j += lanes) {
                    sum = groupedRow(quad, sub, s % 4, j, r, false).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + 32 * b + j), sum);
                    sum = groupedRow(quad, sub, s % 4, j, r, true).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + 32 * b + j + 16), sum);
                }
                long sm = data.get(LONG_LE, sub) >>> 8 * r; // row r's scale in byte 0, its min in byte 4
                acc = sum.fma(FloatVector.broadcast(F_SPECIES, d * (sm & 0xFF)), acc);
                m += ((sm >>> 32) & 0xFF) * xSums[b];
            }
            minTerm += dmin * m;
        }
        return VectorMath.sum(acc) - minTerm;
    }

    /**
     * The dot products of the four rows of the group at {@code row} with x (block sums {@code xSums}), to
     * {@code out[o ..]}: Q4_K's four-row kernel, each sub-block's nibbles first joined with their fifth bits, all four
     * rows at once (a rotation, an and and an or per half).
     */
    private void groupDot4(long row, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        float min0 = 0, min1 = 0, min2 = 0, min3 = 0;
        for (int i = 0; i < cols; i += SUPER_BLOCK) {
            long h01 = data.get(LONG_LE, offset), h23 = data.get(LONG_LE, offset + 8); // d0 dmin0 d1 dmin1, d2 dmin2 d3 dmin3
            float d0 = Float.float16ToFloat((short) h01), d1 = Float.float16ToFloat((short) (h01 >>> 32));
            float d2 = Float.float16ToFloat((short) h23), d3 = Float.float16ToFloat((short) (h23 >>> 32));
            float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
            offset += HEADER;
            for (int s = 0; s < 8; s++) {
                long quad = offset + (long) s / 4 * QUAD, sub = quad + FIFTHS + (long) (s % 4) * SUB_BLOCK;
                int b = i / 32 + s, rotation = 4 - 2 * (s % 4);
                FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
                for (int j = 0; j < 16; j += lanes) {
                    IntVector v = ints(sub + 2 * GROUP + 4L * j), f = ints(quad + 4L * j);
                    // weights j.., then j + 16..: a loop rather than written out twice, to stay within C2's inlining
                    // budget (NodeCountInliningCutoff is counted before loops are unrolled)
                    for (int half = 0; half < 2; half++) {
                        FloatVector xv = FloatVector.fromArray(F_SPECIES, x, xOffset + 32 * b + 16 * half + j);
                        IntVector q = v.lanewise(VectorOperators.LSHR, 4 * half).and(0x0F0F0F0F)
                                .or(f.lanewise(VectorOperators.ROL, rotation - half).and(0x10101010));
                        s0 = fiveBits(q, 0).fma(xv, s0);
                        s1 = fiveBits(q, 8).fma(xv, s1);
                        s2 = fiveBits(q, 16).fma(xv, s2);
                        s3 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 24).convert(VectorOperators.I2F, 0)).fma(xv, s3);
                    }
                }
                long sm = data.get(LONG_LE, sub); // scales of rows 0-3, then their mins
                acc0 = s0.fma(FloatVector.broadcast(F_SPECIES, d0 * (sm & 0xFF)), acc0);
                acc1 = s1.fma(FloatVector.broadcast(F_SPECIES, d1 * ((sm >>> 8) & 0xFF)), acc1);
                acc2 = s2.fma(FloatVector.broadcast(F_SPECIES, d2 * ((sm >>> 16) & 0xFF)), acc2);
                acc3 = s3.fma(FloatVector.broadcast(F_SPECIES, d3 * ((sm >>> 24) & 0xFF)), acc3);
                float xSum = xSums[b];
                m0 += ((sm >>> 32) & 0xFF) * xSum;
                m1 += ((sm >>> 40) & 0xFF) * xSum;
                m2 += ((sm >>> 48) & 0xFF) * xSum;
                m3 += (sm >>> 56) * xSum;
            }
            offset += 2 * QUAD;
            min0 += Float.float16ToFloat((short) (h01 >>> 16)) * m0;
            min1 += Float.float16ToFloat((short) (h01 >>> 48)) * m1;
            min2 += Float.float16ToFloat((short) (h23 >>> 16)) * m2;
            min3 += Float.float16ToFloat((short) (h23 >>> 48)) * m3;
        }
        out[o] = VectorMath.sum(acc0) - min0;
        out[o + 1] = VectorMath.sum(acc1) - min1;
        out[o + 2] = VectorMath.sum(acc2) - min2;
        out[o + 3] = VectorMath.sum(acc3) - min3;
    }

    /** As Q4_K's dot product, with the fifth bit of each weight added from {@code qh} before the conversion. */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** The dot product given the {@link #blockSums} of x. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        if (grouped) return groupedDot(row, x, xOffset, xSums);
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset);
            long scales = packedScales(offset + 4), qh = offset + 16, qs = offset + 48;
            for (int j = 0; j < 4; j++, scales >>>= 16) {
                FloatVector qxLo = FloatVector.zero(F_SPECIES), qxHi = qxLo;
                int base = xOffset + i + 64 * j;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector q = bytes(qs + 32L * j + l);
                    IntVector h = bytes(qh + l).lanewise(VectorOperators.LSHL, 4); // bit b of qh[l] at bit b + 4
                    IntVector lo = q.and(0xF).or(h.lanewise(VectorOperators.LSHR, 2 * j).and(16));
                    IntVector hi = q.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2 * j + 1).and(16));
                    qxLo = floats(lo).fma(FloatVector.fromArray(F_SPECIES, x, base + l), qxLo);
                    qxHi = floats(hi).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 + l), qxHi);
                }
                acc = qxLo.fma(FloatVector.broadcast(F_SPECIES, d * (scales & 0xFF)), acc);
                acc = qxHi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> 8) & 0xFF)), acc);
            }
        }
        return VectorMath.sum(acc) - minsShare(row, xSums);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (!grouped) {
            dequantizeScaleMin(row, out, outOffset, 16, 48);
            return;
        }
        // rounding as ggml's dequantize_row_q5_K: (d * scale) * q - dmin * min
        int lanes = F_SPECIES.length(), r = (int) (row % GROUP);
        long column = (row - r) * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            float d = f16(data, column + 4L * r), dmin = f16(data, column + 4L * r + 2);
            for (int s = 0; s < 8; s++) {
                long quad = column + HEADER + (long) s / 4 * QUAD, sub = quad + FIFTHS + (long) (s % 4) * SUB_BLOCK;
                long sm = data.get(LONG_LE, sub) >>> 8 * r; // row r's scale in byte 0, its min in byte 4
                FloatVector scale = FloatVector.broadcast(F_SPECIES, d * (sm & 0xFF));
                FloatVector min = FloatVector.broadcast(F_SPECIES, dmin * ((sm >>> 32) & 0xFF));
                int o = outOffset + i + 32 * s;
                for (int j = 0; j < 16; j += lanes) {
                    groupedRow(quad, sub, s % 4, j, r, false).mul(scale).sub(min).intoArray(out, o + j);
                    groupedRow(quad, sub, s % 4, j, r, true).mul(scale).sub(min).intoArray(out, o + j + 16);
                }
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        float[] xSums = blockSums(x, xOffset, cols);
        int r = start;
        if (grouped) {
            for (; r < end && (firstRow + r) % GROUP != 0; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
            for (; r + GROUP <= end; r += GROUP) groupDot4(firstRow + r, x, xOffset, xSums, out, outOffset + r);
        }
        for (; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
    }
}
