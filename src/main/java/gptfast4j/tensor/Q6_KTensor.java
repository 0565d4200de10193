package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Q6_K: {@code [128 bytes low nibbles ql][64 bytes high 2-bit pairs qh][16 int8 scales][f16 d]} per 256 weights, in
 * two halves of 128: weight = d * scale * (q - 32), q = 4 bits from ql plus 2 bits from qh.
 */
final class Q6_KTensor extends KQuantTensor {
    Q6_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q6_K, data, cols, rows);
    }

    @Override
    void decode(long offset, float[] out, int o) {
        float d = f16(data, offset + 208);
        for (int half = 0; half < 2; half++) {
            long ql = offset + 64L * half, qh = offset + 128 + 32L * half, sc = offset + 192 + 8L * half;
            int base = o + 128 * half;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int h = u8(qh + l);
                int q1 = ((u8(ql + l) & 0xF) | ((h & 3) << 4)) - 32;
                int q2 = ((u8(ql + l + 32) & 0xF) | (((h >> 2) & 3) << 4)) - 32;
                int q3 = ((u8(ql + l) >> 4) | (((h >> 4) & 3) << 4)) - 32;
                int q4 = ((u8(ql + l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32;
                out[base + l] = d * scale(sc, is) * q1;
                out[base + l + 32] = d * scale(sc, is + 2) * q2;
                out[base + l + 64] = d * scale(sc, is + 4) * q3;
                out[base + l + 96] = d * scale(sc, is + 6) * q4;
            }
        }
    }

    private int scale(long sc, int i) {
        return data.get(ValueLayout.JAVA_BYTE, sc + i);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
