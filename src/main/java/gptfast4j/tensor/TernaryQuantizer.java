package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Float weights to llama.cpp's ternary types as ggml's {@code quantize_row_tq1_0_ref} and {@code _tq2_0_ref} write
 * them: per super-block of 256, d the largest magnitude (as a half) and each weight {@code round(x / d)}, -1, 0 or 1
 * (halves away from zero, as C's {@code lroundf}), kept as that plus 1. No importance matrix: llama.cpp's ternary
 * quantizers take none. For ternary-trained models (TriLM's); other weights keep little of what they carry.
 */
final class TernaryQuantizer {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private TernaryQuantizer() {
    }

    /** {@code n} floats from {@code x[from]} (a multiple of 256) into {@code out} at {@code offset}, in TQ1_0 or TQ2_0. */
    static void quantizeRow(GGMLType type, float[] x, int from, int n, MemorySegment out, long offset) {
        for (int i0 = from; i0 < from + n; i0 += 256, offset += type.blockBytes) {
            float d = 0;
            for (int j = 0; j < 256; j++) d = Math.max(d, Math.abs(x[i0 + j]));
            float id = d != 0 ? 1 / d : 0;
            if (type == GGMLType.TQ2_0) {
                // byte m of each half (32 bytes) holds weights m, 32 + m, 64 + m and 96 + m of its 128, two bits each from the lowest up
                for (int h = 0; h < 2; h++) {
                    for (int m = 0; m < 32; m++) {
                        int q = 0;
                        for (int l = 0; l < 4; l++) q |= trit(x[i0 + 128 * h + 32 * l + m] * id) << 2 * l;
                        out.set(ValueLayout.JAVA_BYTE, offset + 32 * h + m, (byte) q);
                    }
                }
                out.set(SHORT_LE, offset + 64, Float.floatToFloat16(d));
            } else if (type == GGMLType.TQ1_0) {
                // bytes 0-31 five trits each of weights m, 32 + m, ... 128 + m; bytes 32-47 of 160 + m, 176 + m, ... 224 + m;
                // bytes 48-51 four each of 240 + j, 244 + j, 248 + j, 252 + j, then times 3: a byte is its base-3 number
                // (first trit highest) scaled from 243 to 256, rounded up
                for (int m = 0; m < 48; m++) {
                    int first = m < 32 ? i0 + m : i0 + 160 + (m - 32), step = m < 32 ? 32 : 16, q = 0;
                    for (int k = 0; k < 5; k++) q = 3 * q + trit(x[first + step * k] * id);
                    out.set(ValueLayout.JAVA_BYTE, offset + m, (byte) scaledUp(q));
                }
                for (int j = 0; j < 4; j++) {
                    int q = 0;
                    for (int k = 0; k < 4; k++) q = 3 * q + trit(x[i0 + 240 + j + 4 * k] * id);
                    out.set(ValueLayout.JAVA_BYTE, offset + 48 + j, (byte) scaledUp(3 * q));
                }
                out.set(SHORT_LE, offset + 52, Float.floatToFloat16(d));
            } else {
                throw new IllegalArgumentException(type + " is not a ternary type");
            }
        }
    }

    /** A weight over d, -1 .. 1, as 0 .. 2. */
    private static int trit(float v) {
        return Quantizer.roundHalfAway(v) + 1;
    }

    /** A base-3 number of five trits (0 .. 242) as a byte, {@code ceil(q * 256 / 243)}. */
    private static int scaledUp(int q) {
        return (q * 256 + 242) / 243;
    }
}
