package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q4_0: blocks of 32 weights, {@code [f16 scale d][16 bytes]} (18 bytes). Byte j holds weight j in its low nibble and
 * weight j + 16 in its high nibble; weight = d * (nibble - 8).
 */
final class Q4_0Tensor extends Tensor {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 18;

    Q4_0Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q4_0, data, cols, rows);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector block = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                ByteVector q = ByteVector.fromMemorySegment(Q8_0Tensor.B_SPECIES, data, offset + 2 + j, ByteOrder.LITTLE_ENDIAN);
                FloatVector lo = (FloatVector) q.and((byte) 0xF).sub((byte) 8).convertShape(VectorOperators.B2F, F_SPECIES, 0);
                FloatVector hi = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and((byte) 0xF).sub((byte) 8)
                        .convertShape(VectorOperators.B2F, F_SPECIES, 0);
                block = lo.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), block);
                block = hi.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2), block);
            }
            acc = block.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc);
        }
        return VectorMath.sum(acc);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            float d = f16(data, offset);
            for (int j = 0; j < BLOCK / 2; j++) {
                int q = data.get(ValueLayout.JAVA_BYTE, offset + 2 + j) & 0xFF;
                out[outOffset + i + j] = d * ((q & 0xF) - 8);
                out[outOffset + i + j + BLOCK / 2] = d * ((q >>> 4) - 8);
            }
        }
    }
}
