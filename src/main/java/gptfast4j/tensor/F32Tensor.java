package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** 32-bit floats. */
final class F32Tensor extends Tensor {
    F32Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.F32, data, cols, rows);
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
            FloatVector w0 = FloatVector.fromMemorySegment(F_SPECIES, data, base + (long) i * 4, ByteOrder.LITTLE_ENDIAN);
            FloatVector w1 = FloatVector.fromMemorySegment(F_SPECIES, data, base + (long) (i + lanes) * 4, ByteOrder.LITTLE_ENDIAN);
            acc0 = w0.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = w1.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            sum += data.get(FLOAT_LE, base + (long) i * 4) * x[xOffset + i];
        }
        return sum;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        MemorySegment.copy(data, FLOAT_LE, row * rowBytes, out, outOffset, cols);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
