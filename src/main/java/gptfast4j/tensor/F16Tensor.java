package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * IEEE half floats. The Vector API has no half-to-float conversion, so it is done with integer ops: the half,
 * sign-extended to 32 bits and shifted left by 13, has its exponent and mantissa in float position (bits 13-27) and,
 * from the sign extension, its sign in bit 31; masking bits 28-30 away gives a float whose exponent is biased by 127
 * instead of 15, and one multiply by 2^112 rebiases it. Exact for normal and subnormal halves (weights hold no
 * infinities or NaNs); checked against {@code Float.float16ToFloat} for all 65536 halves in the tests.
 */
final class F16Tensor extends Tensor {

    F16Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.F16, data, cols, rows);
    }

    /** {@code lanes} halves at {@code offset} as floats. */
    static FloatVector load(MemorySegment data, long offset) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, offset, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.S2I, I_SPECIES, 0); // sign-extended
        return h.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        int bound = cols - cols % (2 * lanes);
        FloatVector acc0 = FloatVector.zero(F_SPECIES);
        FloatVector acc1 = FloatVector.zero(F_SPECIES);
        int i = 0;
        for (; i < bound; i += 2 * lanes) {
            acc0 = load(data, base + (long) i * 2).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = load(data, base + (long) (i + lanes) * 2).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
        }
        float sum = VectorMath.sum(acc0.add(acc1));
        for (; i < cols; i++) {
            sum += f16(data, base + (long) i * 2) * x[xOffset + i];
        }
        return sum;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        int i = 0;
        for (; i + lanes <= cols; i += lanes) load(data, base + (long) i * 2).intoArray(out, outOffset + i);
        for (; i < cols; i++) out[outOffset + i] = f16(data, base + (long) i * 2);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
