package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

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
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector qx = FloatVector.zero(F_SPECIES);
            FloatVector sx = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                ByteVector q = ByteVector.fromMemorySegment(Q8_0Tensor.B_SPECIES, data, offset + 4 + j, ByteOrder.LITTLE_ENDIAN);
                FloatVector lo = (FloatVector) q.and((byte) 0xF).castShape(F_SPECIES, 0);
                FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).castShape(F_SPECIES, 0);
                FloatVector xlo = FloatVector.fromArray(F_SPECIES, x, xOffset + i + j);
                FloatVector xhi = FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2);
                qx = lo.fma(xlo, qx);
                qx = hi.fma(xhi, qx);
                sx = sx.add(xlo).add(xhi);
            }
            acc = qx.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc);
            acc = sx.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + 2)), acc);
        }
        return VectorMath.sum(acc);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            FloatVector m = FloatVector.broadcast(F_SPECIES, f16(data, offset + 2));
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                ByteVector q = ByteVector.fromMemorySegment(Q8_0Tensor.B_SPECIES, data, offset + 4 + j, ByteOrder.LITTLE_ENDIAN);
                ((FloatVector) q.and((byte) 0xF).castShape(F_SPECIES, 0)).fma(d, m).intoArray(out, outOffset + i + j);
                ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).castShape(F_SPECIES, 0)).fma(d, m).intoArray(out, outOffset + i + j + BLOCK / 2);
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
