package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/** Q8_0: blocks of 32 weights, {@code [f16 scale d][32 x int8 q]} (34 bytes), weight = d * q. */
final class Q8_0Tensor extends Tensor {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 34;

    Q8_0Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q8_0, data, cols, rows);
    }

    /**
     * {@code sum(q[j] * x[j])} over one block, as lanes. The first product is a multiply, not a multiply-add onto a
     * zero vector: in a 1 GiB Q8_0 matrix x vector with 2 threads, the zero-vector form ran at 15 GB/s in about half of
     * the JVM runs (33-35 in the others), this form at 32-35 in every run; TinyLlama Q8_0 decode gained 4-9% (five
     * paired runs, each faster).
     */
    private FloatVector block(long offset, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        FloatVector sum = weights(offset + 2).mul(FloatVector.fromArray(F_SPECIES, x, xOffset));
        for (int j = lanes; j < BLOCK; j += lanes) sum = weights(offset + 2 + j).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j), sum);
        return sum;
    }

    /** One float vector of quants, from the bytes at {@code offset}. */
    private FloatVector weights(long offset) {
        return (FloatVector) signedBytes(data, offset).convert(VectorOperators.I2F, 0);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        long offset = row * rowBytes;
        // two blocks per step into two accumulators, so consecutive blocks do not wait on each other
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = FloatVector.zero(F_SPECIES);
        int i = 0;
        for (; i + 2 * BLOCK <= cols; i += 2 * BLOCK, offset += 2 * BLOCK_BYTES) {
            acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
            acc1 = block(offset + BLOCK_BYTES, x, xOffset + i + BLOCK).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + BLOCK_BYTES)), acc1);
        }
        if (i < cols) acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
        return VectorMath.sum(acc0.add(acc1));
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            for (int j = 0; j < BLOCK; j += lanes) {
                ((FloatVector) signedBytes(data, offset + 2 + j).convert(VectorOperators.I2F, 0))
                        .mul(d).intoArray(out, outOffset + i + j);
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
