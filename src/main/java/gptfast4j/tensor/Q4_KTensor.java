package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q4_K: {@code [f16 d][f16 dmin][12 bytes: eight 6-bit scales and mins][128 bytes of nibbles]} per 256 weights.
 * Each 64 weights take 32 bytes: low nibbles are sub-block 2j, high nibbles sub-block 2j+1;
 * weight = d * scale * q - dmin * min.
 * <p>
 * Two layouts of the same weights: the file's, and the decode layout ({@link #forDecode}), in the manner of
 * {@link RowGroups}: rows in groups of four, and per super-block column {@code [d, dmin of rows 0-3: 4 x 2 f16]}, then
 * per sub-block {@code [6-bit scales of rows 0-3: 4 bytes][mins of rows 0-3: 4 bytes][16 ints]}, int j holding quant
 * byte j of rows 0-3 as a Q4_1 block has it (weights j and j + 16 of the sub-block in its low and high nibble). 592
 * bytes per super-block column against the file's 576; the scales unpacked, the kernel's work per sub-block is Q4_1's.
 */
final class Q4_KTensor extends KQuantTensor {
    /** Decode layout: bytes of the group's d and dmin, of a sub-block, and of a super-block column. */
    private static final int GROUP_HEADER = 16, GROUP_SUB_BLOCK = 72, COLUMN = GROUP_HEADER + 8 * GROUP_SUB_BLOCK;

    Q4_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q4_K, data, cols, rows);
    }

    private Q4_KTensor(Q4_KTensor file, MemorySegment grouped) {
        super(file, grouped, COLUMN);
    }

    @Override
    public long decodeCopyBytes() {
        return groupedBytes(COLUMN);
    }

    /** A copy in the decode layout ({@link #groupedCopy}), or this tensor. */
    @Override
    public Tensor forDecode() {
        return decodeCopyBytes() == 0 ? this : new Q4_KTensor(this, groupedCopy(COLUMN, s -> GROUP_HEADER + s * GROUP_SUB_BLOCK, 16, null));
    }

    /**
     * Per 64 weights (two sub-blocks, 32 quant bytes: byte k holds weight k in its low nibble, 32 + k in its high one):
     * {@code sum(q · x)} per sub-block in floats, times {@code d * scale} once; the mins' share comes from the sums of
     * x ({@link #blockSums}). One flat loop over a super-block's 128 quant bytes, two vectors per step: a loop per 64
     * weights paid C2's loop set-up each time (3.30 against 3.10 ns per 32 weights in cache). Multiplying the 6-bit
     * scales into the quants as ints instead ({@code vpmulld}, then one FMA per vector) was slower: 3.37 against
     * 3.10-3.25 ns, TinyLlama Q4_K decode 15.0-16.0 against 15.5-17.2 tokens/s. Taking the scales from a per-row float
     * array, filled by the mins' loop, was slower too (3.35 ns).
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** The dot product given the {@link #blockSums} of x. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        if (grouped) return groupedDot(row, x, xOffset, xSums);
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset);
            long scales = packedScales(offset + 4), qs = offset + 16;
            FloatVector lo = FloatVector.zero(F_SPECIES), hi = lo;
            for (int k = 0; k < 128; k += 2 * lanes) {
                IntVector q0 = bytes(qs + k), q1 = bytes(qs + k + lanes);
                int w = xOffset + i + 2 * k - k % 32;
                lo = floats(q0.and(0xF)).fma(FloatVector.fromArray(F_SPECIES, x, w), lo);
                hi = floats(q0.lanewise(VectorOperators.LSHR, 4)).fma(FloatVector.fromArray(F_SPECIES, x, w + 32), hi);
                lo = floats(q1.and(0xF)).fma(FloatVector.fromArray(F_SPECIES, x, w + lanes), lo);
                hi = floats(q1.lanewise(VectorOperators.LSHR, 4)).fma(FloatVector.fromArray(F_SPECIES, x, w + 32 + lanes), hi);
                // the end of a 64-weight group (2 * lanes divides 32 for every float species up to 512 bits)
                if ((k + 2 * lanes) % 32 == 0) {
                    int shift = 16 * (k / 32);
                    acc0 = lo.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> shift) & 0xFF)), acc0);
                    acc1 = hi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> shift + 8) & 0xFF)), acc1);
                    lo = FloatVector.zero(F_SPECIES);
                    hi = lo;
                }
            }
        }
        return VectorMath.sum(acc0.add(acc1)) - minsShare(row, xSums);
    }

    /** Bits {@code [p, p + 4)} of each lane of the decode layout's ints, unsigned, as floats. */
    private static FloatVector nibble(IntVector v, int p) {
        return (FloatVector) v.lanewise(VectorOperators.LSHR, p).and(0xF).convert(VectorOperators.I2F, 0);
    }

    /**
     * The dot products of the four rows of the group at {@code row} with x (block sums {@code xSums}), to
     * {@code out[o ..]}: Q4_1's four-row kernel, with each sub-block's scale {@code d * scale} and the mins' share
     * {@code dmin * sum(min * xSums)} taken from the unpacked scales.
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
            offset += GROUP_HEADER;
            for (int b = i / 32; b < i / 32 + 8; b++, offset += GROUP_SUB_BLOCK) {
                FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
                for (int j = 0; j < 16; j += lanes) {
                    FloatVector xl = FloatVector.fromArray(F_SPECIES, x, xOffset + 32 * b + j), xh = FloatVector.fromArray(F_SPECIES, x, xOffset + 32 * b + j + 16);
                    IntVector v = ints(offset + 8 + 4L * j);
                    s0 = ((FloatVector) v.and(0xF).convert(VectorOperators.I2F, 0)).fma(xl, s0);
                    s1 = nibble(v, 8).fma(xl, s1);
                    s2 = nibble(v, 16).fma(xl, s2);
                    s3 = nibble(v, 24).fma(xl, s3);
                    s0 = nibble(v, 4).fma(xh, s0);
                    s1 = nibble(v, 12).fma(xh, s1);
                    s2 = nibble(v, 20).fma(xh, s2);
                    s3 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(xh, s3);
                }
                long sm = data.get(LONG_LE, offset); // scales of rows 0-3, then their mins
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

    /** One row's dot product in the decode layout (rows outside a whole group of a {@link #dotRows} range). */
    private float groupedDot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length(), r = (int) (row % GROUP);
        long offset = (row - r) * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        float minTerm = 0;
        for (int i = 0; i < cols; i += SUPER_BLOCK) {
            float d = f16(data, offset + 4L * r), dmin = f16(data, offset + 4L * r + 2), m = 0;
            offset += GROUP_HEADER;
            for (int b = i / 32; b < i / 32 + 8; b++, offset += GROUP_SUB_BLOCK) {
                FloatVector sum = FloatVector.zero(F_SPECIES);
                for (int j = 0; j < 16; j += lanes) {
                    IntVector v = ints(offset + 8 + 4L * j);
                    sum = nibble(v, 8 * r).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + 32 * b + j), sum);
                    sum = nibble(v, 8 * r + 4).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + 32 * b + j + 16), sum);
                }
                long sm = data.get(LONG_LE, offset) >>> 8 * r; // row r's scale in byte 0, its min in byte 4
                acc = sum.fma(FloatVector.broadcast(F_SPECIES, d * (sm & 0xFF)), acc);
                m += ((sm >>> 32) & 0xFF) * xSums[b];
            }
            minTerm += dmin * m;
        }
        return VectorMath.sum(acc) - minTerm;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (!grouped) {
            dequantizeScaleMin(row, out, outOffset, -1, 16);
            return;
        }
        // rounding as ggml's dequantize_row_q4_K: (d * scale) * q - dmin * min
        int lanes = F_SPECIES.length(), r = (int) (row % GROUP);
        long offset = (row - r) * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK) {
            float d = f16(data, offset + 4L * r), dmin = f16(data, offset + 4L * r + 2);
            offset += GROUP_HEADER;
            for (int b = i / 32; b < i / 32 + 8; b++, offset += GROUP_SUB_BLOCK) {
                long sm = data.get(LONG_LE, offset) >>> 8 * r; // row r's scale in byte 0, its min in byte 4
                FloatVector scale = FloatVector.broadcast(F_SPECIES, d * (sm & 0xFF));
                FloatVector min = FloatVector.broadcast(F_SPECIES, dmin * ((sm >>> 32) & 0xFF));
                for (int j = 0; j < 16; j += lanes) {
                    IntVector v = ints(offset + 8 + 4L * j);
                    nibble(v, 8 * r).mul(scale).sub(min).intoArray(out, outOffset + 32 * b + j);
                    nibble(v, 8 * r + 4).mul(scale).sub(min).intoArray(out, outOffset + 32 * b + j + 16);
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
