package gptfast4j.tensor;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q4_1: blocks of 32 weights, {@code [f16 scale d][f16 minimum m][16 bytes]} (20 bytes), nibbles laid out as in
 * Q4_0; weight = d * nibble + m. The dot product is {@code d * sum(nibble * x) + m * sum(x)} per block.
 */
final class Q4_1Tensor extends Tensor {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 20;

    Q4_1Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q4_1, data, cols, rows);
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
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
    }
}
