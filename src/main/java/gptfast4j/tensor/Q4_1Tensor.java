package gptfast4j.tensor;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q4_1: blocks of 32 weights, {@code [f16 scale d][f16 minimum m][16 bytes]} (20 bytes), nibbles laid out as in
 * Q4_0; weight = d * nibble + m. The dot product is {@code d * sum(nibble * x) + m * sum(x)} per block. Like Q4_0 it
 * decodes from a layout of its own ({@link #forDecode}, {@link RowGroups}: rows in groups of four).
 */
final class Q4_1Tensor extends RowGroupTensor {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 20;
    /** Bytes before a block's quants: the f16 scale and minimum. */
    private static final int HEADER = 4;
    private static final int GROUP = RowGroups.ROWS;
    private static final int GROUP_BLOCK_BYTES = GROUP * BLOCK_BYTES;

    Q4_1Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private Q4_1Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.Q4_1, data, cols, rows, grouped, HEADER, 0);
    }

    @Override
    Q4_1Tensor inDecodeLayout(MemorySegment data) {
        return new Q4_1Tensor(name, data, cols, rows, true);
    }

    /** Bits {@code [p, p + 4)} of each lane of the decode layout's ints, unsigned, as floats (small enough for C2 to inline anywhere). */
    private static FloatVector nibble(IntVector v, int p) {
        return (FloatVector) v.lanewise(VectorOperators.LSHR, p).and(0xF).convert(VectorOperators.I2F, 0);
    }

    /** The dot products of the four rows of the group at {@code row} with x (block sums {@code xSums}), to {@code out[o ..]}. */
    private void groupDot4(long row, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        float min0 = 0, min1 = 0, min2 = 0, min3 = 0;
        for (int i = 0; i < cols; i += BLOCK, offset += GROUP_BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                FloatVector xl = FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), xh = FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2);
                IntVector v = RowGroups.quants(data, offset, HEADER, j);
                s0 = ((FloatVector) v.and(0xF).convert(VectorOperators.I2F, 0)).fma(xl, s0);
                s1 = nibble(v, 8).fma(xl, s1);
                s2 = nibble(v, 16).fma(xl, s2);
                s3 = nibble(v, 24).fma(xl, s3);
                s0 = nibble(v, 4).fma(xh, s0);
                s1 = nibble(v, 12).fma(xh, s1);
                s2 = nibble(v, 20).fma(xh, s2);
                s3 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(xh, s3);
            }
            long h01 = data.get(LONG_LE, offset), h23 = data.get(LONG_LE, offset + 8); // d0 m0 d1 m1, d2 m2 d3 m3
            float xSum = xSums[i / BLOCK];
            acc0 = s0.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) h01)), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (h01 >>> 32))), acc1);
            acc2 = s2.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) h23)), acc2);
            acc3 = s3.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (h23 >>> 32))), acc3);
            min0 += Float.float16ToFloat((short) (h01 >>> 16)) * xSum;
            min1 += Float.float16ToFloat((short) (h01 >>> 48)) * xSum;
            min2 += Float.float16ToFloat((short) (h23 >>> 16)) * xSum;
            min3 += Float.float16ToFloat((short) (h23 >>> 48)) * xSum;
        }
        out[o] = VectorMath.sum(acc0) + min0;
        out[o + 1] = VectorMath.sum(acc1) + min1;
        out[o + 2] = VectorMath.sum(acc2) + min2;
        out[o + 3] = VectorMath.sum(acc3) + min3;
    }

    /** One row's dot product in the decode layout (rows outside a whole group of a {@link #dotRows} range). */
    private float groupedDot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length(), r = (int) (row % GROUP);
        long offset = (row - r) * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        float minTerm = 0;
        for (int i = 0; i < cols; i += BLOCK, offset += GROUP_BLOCK_BYTES) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector v = RowGroups.quants(data, offset, HEADER, j);
                sum = nibble(v, 8 * r).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), sum);
                sum = nibble(v, 8 * r + 4).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2), sum);
            }
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, RowGroups.half(data, offset, HEADER, r, 0)), acc);
            minTerm += RowGroups.half(data, offset, HEADER, r, 2) * xSums[i / BLOCK];
        }
        return VectorMath.sum(acc) + minTerm;
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** {@code sum(nibble[j] * x[j])} over one block, as lanes. */
    private FloatVector block(long offset, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        FloatVector sum = FloatVector.zero(F_SPECIES);
        for (int j = 0; j < BLOCK / 2; j += lanes) {
            IntVector q = signedBytes(data, offset + 4 + j);
            sum = ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j), sum);
            sum = ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j + BLOCK / 2), sum);
        }
        return sum;
    }

    /**
     * {@code sum(d * (nibble · x_block)) + sum(m * xSums[block])}: the minimums' share comes from the per-call sums of x
     * ({@link #blockSums}), so the vector loop only converts nibbles and multiplies; two blocks per step into two
     * accumulators, as in Q4_0.
     */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        if (grouped) return groupedDot(row, x, xOffset, xSums);
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        float minTerm = 0;
        int i = 0;
        for (; i + 2 * BLOCK <= cols; i += 2 * BLOCK, offset += 2 * BLOCK_BYTES) {
            acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
            acc1 = block(offset + BLOCK_BYTES, x, xOffset + i + BLOCK).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + BLOCK_BYTES)), acc1);
            minTerm += f16(data, offset + 2) * xSums[i / BLOCK] + f16(data, offset + BLOCK_BYTES + 2) * xSums[i / BLOCK + 1];
        }
        if (i < cols) {
            acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
            minTerm += f16(data, offset + 2) * xSums[i / BLOCK];
        }
        return VectorMath.sum(acc0.add(acc1)) + minTerm;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            int r = (int) (row % GROUP);
            long offset = (row - r) * rowBytes;
            for (int i = 0; i < cols; i += BLOCK, offset += GROUP_BLOCK_BYTES) {
                FloatVector d = FloatVector.broadcast(F_SPECIES, RowGroups.half(data, offset, HEADER, r, 0));
                FloatVector m = FloatVector.broadcast(F_SPECIES, RowGroups.half(data, offset, HEADER, r, 2));
                for (int j = 0; j < BLOCK / 2; j += lanes) {
                    IntVector v = RowGroups.quants(data, offset, HEADER, j);
                    nibble(v, 8 * r).fma(d, m).intoArray(out, outOffset + i + j);
                    nibble(v, 8 * r + 4).fma(d, m).intoArray(out, outOffset + i + j + BLOCK / 2);
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            FloatVector m = FloatVector.broadcast(F_SPECIES, f16(data, offset + 2));
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector q = signedBytes(data, offset + 4 + j);
                ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(out, outOffset + i + j);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m)
                        .intoArray(out, outOffset + i + j + BLOCK / 2);
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
