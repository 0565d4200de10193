package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * Q5_K: {@code [f16 d][f16 dmin][12 bytes scales/mins][32 bytes high bits][128 bytes of nibbles]} per 256 weights;
 * as Q4_K with a fifth bit per weight: bit 2j (low nibbles) or 2j+1 (high nibbles) of {@code qh[l]}.
 */
final class Q5_KTensor extends KQuantTensor {
    Q5_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q5_K, data, cols, rows);
    }

    @Override
    void decode(long offset, float[] out, int o) {
        float d = f16(data, offset), dmin = f16(data, offset + 2);
        long scales = offset + 4, qh = offset + 16, qs = offset + 48;
        for (int j = 0; j < 4; j++) {
            int sm1 = scaleMin(scales, 2 * j), sm2 = scaleMin(scales, 2 * j + 1);
            float d1 = d * (sm1 & 0xFF), m1 = dmin * (sm1 >> 8);
            float d2 = d * (sm2 & 0xFF), m2 = dmin * (sm2 >> 8);
            int u1 = 1 << (2 * j), u2 = 2 << (2 * j);
            for (int l = 0; l < 32; l++) {
                int q = u8(qs + 32L * j + l), h = u8(qh + l);
                out[o + 64 * j + l] = d1 * ((q & 0xF) + ((h & u1) != 0 ? 16 : 0)) - m1;
                out[o + 64 * j + 32 + l] = d2 * ((q >> 4) + ((h & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
