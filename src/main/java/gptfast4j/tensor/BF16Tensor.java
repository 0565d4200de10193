package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** bfloat16: the top 16 bits of a float, so widening is a 16-bit shift. */
final class BF16Tensor extends Tensor {

    BF16Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.BF16, data, cols, rows);
    }

    static float bf16(MemorySegment data, long offset) {
        return Float.intBitsToFloat(data.get(SHORT_LE, offset) << 16);
    }

    /**
     * Widened with the Vector API's calls written out, as in {@link F16Tensor}: a helper of ours left out of line boxes.
     * Four sums, as F16's: TinyLlama BF16 tg64, 2 threads, five alternating pairs, 20.0-25.7 tokens/s against
     * 12.4-21.7 with two.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        int bound = cols - cols % (2 * lanes);
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        int i = 0;
        for (; i + 4 * lanes <= bound; i += 4 * lanes) {
            acc0 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
            acc2 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + 2 * lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 2 * lanes), acc2);
            acc3 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + 3 * lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 3 * lanes), acc3);
        }
        acc0 = acc0.add(acc2);
        acc1 = acc1.add(acc3);
        for (; i < bound; i += 2 * lanes) {
            acc0 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) (i + lanes) * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += bf16(data, base + (long) i * 2) * x[xOffset + i];
        }
        return sum;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        int i = 0;
        // the Vector API's calls alone, as F16Tensor.dequantizeRow's (a helper left out of line boxes)
        for (int bound = cols - cols % lanes; i < bound; i += lanes) {
            ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(out, outOffset + i);
        }
        for (; i < cols; i++) out[outOffset + i] = bf16(data, base + (long) i * 2);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
