package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q5_K: {@code [f16 d][f16 dmin][12 bytes scales/mins][32 bytes high bits][128 bytes of nibbles]} per 256 weights;
 * as Q4_K with a fifth bit per weight: bit 2j (low nibbles) or 2j+1 (high nibbles) of {@code qh[l]}.
 */
final class Q5_KTensor extends KQuantTensor {
    Q5_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q5_K, data, cols, rows);
    }

    /** As Q4_K's dot product, with the fifth bit of each weight added from {@code qh} before the conversion. */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** The dot product given the {@link #blockSums} of x. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset);
            long scales = packedScales(offset + 4), qh = offset + 16, qs = offset + 48;
            for (int j = 0; j < 4; j++, scales >>>= 16) {
                FloatVector qxLo = FloatVector.zero(F_SPECIES), qxHi = qxLo;
                int base = xOffset + i + 64 * j;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector q = bytes(qs + 32L * j + l);
                    IntVector h = bytes(qh + l).lanewise(VectorOperators.LSHL, 4); // bit b of qh[l] at bit b + 4
                    IntVector lo = q.and(0xF).or(h.lanewise(VectorOperators.LSHR, 2 * j).and(16));
                    IntVector hi = q.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2 * j + 1).and(16));
                    qxLo = floats(lo).fma(FloatVector.fromArray(F_SPECIES, x, base + l), qxLo);
                    qxHi = floats(hi).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 + l), qxHi);
                }
                acc = qxLo.fma(FloatVector.broadcast(F_SPECIES, d * (scales & 0xFF)), acc);
                acc = qxHi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> 8) & 0xFF)), acc);
            }
        }
        return VectorMath.sum(acc) - minsShare(row, xSums);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        dequantizeScaleMin(row, out, outOffset, 16, 48);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        float[] xSums = blockSums(x, xOffset, cols);
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
    }
}
