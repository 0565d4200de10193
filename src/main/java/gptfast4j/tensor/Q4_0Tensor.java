package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

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

    /**
     * {@code sum((nibble[j] - 8) * x[j])} over one block, as lanes. The bytes are widened to int lanes before the
     * nibbles are taken apart: x86 has no byte shift, and byte-lane shifts cost more than the widening.
     */
    private FloatVector block(long offset, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        FloatVector sum = FloatVector.zero(F_SPECIES);
        for (int j = 0; j < BLOCK / 2; j += lanes) {
            IntVector q = signedBytes(data, offset + 2 + j);
            FloatVector lo = (FloatVector) q.and(0xF).sub(8).castShape(F_SPECIES, 0);
            FloatVector hi = (FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).sub(8).castShape(F_SPECIES, 0);
            sum = lo.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j), sum);
            sum = hi.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j + BLOCK / 2), sum);
        }
        return sum;
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        long offset = row * rowBytes;
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
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector q = signedBytes(data, offset + 2 + j);
                ((FloatVector) q.and(0xF).sub(8).castShape(F_SPECIES, 0)).mul(d).intoArray(out, outOffset + i + j);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).sub(8).castShape(F_SPECIES, 0)).mul(d)
                        .intoArray(out, outOffset + i + j + BLOCK / 2);
            }
        }
    }

    /**
     * Row {@code row} for {@link Int16Product}: {@code q[qOffset + k] = nibble - 8} for each column k, and block b's
     * scale d to {@code scale[scaleOffset + b]}.
     */
    void smallIntRow(long row, short[] q, int qOffset, float[] scale, int scaleOffset) {
        long offset = row * rowBytes;
        for (int b = 0; b < cols / BLOCK; b++, offset += BLOCK_BYTES) {
            scale[scaleOffset + b] = f16(data, offset);
            for (int j = 0; j < BLOCK / 2; j += S_SPECIES.length()) {
                ShortVector v = signedByteShorts(data, offset + 2 + j);
                int o = qOffset + b * BLOCK + j;
                v.and((short) 0xF).sub((short) 8).intoArray(q, o);
                v.lanewise(VectorOperators.ASHR, 4).and((short) 0xF).sub((short) 8).intoArray(q, o + BLOCK / 2);
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
