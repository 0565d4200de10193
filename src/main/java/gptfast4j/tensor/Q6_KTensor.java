package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q6_K: {@code [128 bytes low nibbles ql][64 bytes high 2-bit pairs qh][16 int8 scales][f16 d]} per 256 weights, in
 * two halves of 128: weight = d * scale * (q - 32), q = 4 bits from ql plus 2 bits from qh.
 */
final class Q6_KTensor extends KQuantTensor {
    Q6_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q6_K, data, cols, rows);
    }

    /**
     * Per {@code lanes} weights of a half: four groups of weights, 32 apart, group g built from a nibble of
     * {@code ql} (low nibbles of bytes 0-31 for g = 0, of bytes 32-63 for g = 1, high nibbles for g = 2, 3) and bit
     * pair g of {@code qh}. A scale covers 16 weights, so a vector (at most 16 lanes) has one scale per group. The
     * groups are a loop rather than four written-out copies, and the half's eight int8 scales are read as one long:
     * C2 stops inlining once a method's graph passes a size limit (NodeCountInliningCutoff), and the written-out form
     * passed it, so the vector operations were no longer inlined and each boxed its result (3x slower). The int8 scales
     * multiply the quants as ints and d is applied once per super-block, so the float side is one conversion and one
     * FMA per vector; {@code ql} and {@code qh} are loaded once per step for all four groups.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int half = 0; half < 2; half++) {
                long ql = offset + 64L * half, qh = offset + 128 + 32L * half;
                long scales = data.get(LONG_LE, offset + 192 + 8L * half); // int8 scale k in byte k
                int base = xOffset + i + 128 * half;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector h = bytes(qh + l).lanewise(VectorOperators.LSHL, 4), a = bytes(ql + l), b = bytes(ql + l + 32);
                    for (int g = 0; g < 4; g++) {
                        IntVector q = ((g & 1) == 0 ? a : b).lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(0x30)).sub(32);
                        int scale = (byte) (scales >>> 8 * (l / 16 + 2 * g));
                        sum = floats(q.mul(scale)).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 * g + l), sum);
                    }
                }
            }
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + 208)), acc);
        }
        return VectorMath.sum(acc);
    }

    /** Rounds as ggml's dequantize_row_q6_K does: {@code (d * scale) * q}. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset + 208);
            for (int half = 0; half < 2; half++) {
                long ql = offset + 64L * half, qh = offset + 128 + 32L * half;
                long scales = data.get(LONG_LE, offset + 192 + 8L * half);
                int o = outOffset + i + 128 * half;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector h = bytes(qh + l);
                    for (int g = 0; g < 4; g++) {
                        IntVector q = bytes(ql + l + 32 * (g & 1)).lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        floats(q).mul(d * (byte) (scales >>> 8 * (l / 16 + 2 * g))).intoArray(out, o + 32 * g + l);
                    }
                }
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
