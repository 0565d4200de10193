package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q4_K: {@code [f16 d][f16 dmin][12 bytes: eight 6-bit scales and mins][128 bytes of nibbles]} per 256 weights.
 * Each 64 weights take 32 bytes: low nibbles are sub-block 2j, high nibbles sub-block 2j+1;
 * weight = d * scale * q - dmin * min.
 */
final class Q4_KTensor extends KQuantTensor {
    Q4_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q4_K, data, cols, rows);
    }

    /** Per 64 weights: {@code d1 * (lo · x) + d2 * (hi · x)}; the mins' share comes from the sums of x ({@link #subBlockSums}). */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, subBlockSums(x, xOffset));
    }

    /** The dot product given the {@link #subBlockSums} of x. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        float minTerm = 0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset), dmin = f16(data, offset + 2);
            long scales = packedScales(offset + 4), mins = packedMins(offset + 4), qs = offset + 16;
            for (int j = 0; j < 4; j++, scales >>>= 16, mins >>>= 16) {
                FloatVector qxLo = FloatVector.zero(F_SPECIES), qxHi = qxLo;
                int base = xOffset + i + 64 * j;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector q = bytes(qs + 32L * j + l);
                    IntVector lo = q.and(0xF), hi = q.lanewise(VectorOperators.LSHR, 4);
                    qxLo = floats(lo).fma(FloatVector.fromArray(F_SPECIES, x, base + l), qxLo);
                    qxHi = floats(hi).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 + l), qxHi);
                }
                acc = qxLo.fma(FloatVector.broadcast(F_SPECIES, d * (scales & 0xFF)), acc);
                acc = qxHi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> 8) & 0xFF)), acc);
                int sub = (i + 64 * j) / 32;
                minTerm += dmin * ((mins & 0xFF) * xSums[sub] + ((mins >>> 8) & 0xFF) * xSums[sub + 1]);
            }
        }
        return VectorMath.sum(acc) - minTerm;
    }

    /** Rounds as ggml's dequantize_row_q4_K does: {@code (d * scale) * q - dmin * min}. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset), dmin = f16(data, offset + 2);
            long scales = packedScales(offset + 4), mins = packedMins(offset + 4), qs = offset + 16;
            for (int j = 0; j < 4; j++, scales >>>= 16, mins >>>= 16) {
                FloatVector d1 = FloatVector.broadcast(F_SPECIES, d * (scales & 0xFF)), m1 = FloatVector.broadcast(F_SPECIES, dmin * (mins & 0xFF));
                FloatVector d2 = FloatVector.broadcast(F_SPECIES, d * ((scales >>> 8) & 0xFF)), m2 = FloatVector.broadcast(F_SPECIES, dmin * ((mins >>> 8) & 0xFF));
                int o = outOffset + i + 64 * j;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector q = bytes(qs + 32L * j + l);
                    floats(q.and(0xF)).mul(d1).sub(m1).intoArray(out, o + l);
                    floats(q.lanewise(VectorOperators.LSHR, 4)).mul(d2).sub(m2).intoArray(out, o + 32 + l);
                }
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        float[] xSums = subBlockSums(x, xOffset);
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
    }
}
