package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Q8_0: blocks of 32 weights, {@code [f16 scale d][32 x int8 q]} (34 bytes), weight = d * q. */
final class Q8_0Tensor extends Tensor {
    static final VectorSpecies<Byte> B_SPECIES = VectorSpecies.of(byte.class, VectorShape.forBitSize(F_SPECIES.vectorBitSize() / 4));
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 34;

    Q8_0Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q8_0, data, cols, rows);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector block = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK; j += lanes) {
                FloatVector w = (FloatVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 2 + j, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2F, F_SPECIES, 0);
                block = w.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), block);
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
            for (int j = 0; j < BLOCK; j++) {
                out[outOffset + i + j] = d * data.get(ValueLayout.JAVA_BYTE, offset + 2 + j);
            }
        }
    }
}
