package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q5_1: blocks of 32 weights, {@code d * q + m} for 5-bit q. A block (24 bytes, block_q5_1): f16 d and m, then Q5_0's
 * fifth bits and nibbles.
 */
final class Q5_1Tensor extends BlockTensor {
    Q5_1Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q5_1, data, cols, rows);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset)), m = FloatVector.broadcast(F_SPECIES, f16(data, offset + 2));
        IntVector high = IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 4));
        for (int j = 0; j < 16; j += I_SPECIES.length()) {
            IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + 8 + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                    : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 8 + j)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
            IntVector lowFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j)).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector highFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j + 16)).and(1).lanewise(VectorOperators.LSHL, 4);
            ((FloatVector) q.and(0xF).or(lowFifth).convert(VectorOperators.I2F, 0)).mul(d).add(m).intoArray(out, at + j);
            ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).or(highFifth).convert(VectorOperators.I2F, 0)).mul(d).add(m).intoArray(out, at + 16 + j);
        }
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return fiveBitDot(row, x, xOffset, 4, 0, true);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
