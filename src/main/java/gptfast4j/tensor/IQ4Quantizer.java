package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Float weights to IQ4_NL and IQ4_XS as {@code llama-quantize} writes them without an importance matrix (ggml's
 * {@code quantize_iq4_nl} and {@code quantize_iq4_xs}, both {@code quantize_row_iq4_nl_impl} with 7 tries), float for
 * float in the C code's order. Each 32 weights get a scale fitted to the 16 non-uniform levels
 * ({@link BlockTensor#LEVELS}) by weighted least squares over 15 candidate scales, the weights being x^2; IQ4_NL keeps
 * the scale as a half, IQ4_XS rounds a super-block's eight to 6 bits of one half. With an importance matrix
 * ({@code llama-quantize --imatrix}) each weight's error is weighed by its column's importance times
 * {@code sqrt(sigma2 + x^2)} instead (sigma2: twice the super-block's mean square).
 */
final class IQ4Quantizer {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final byte[] LEVELS = BlockTensor.LEVELS;
    /** ggml's {@code GROUP_MAX_EPS}: a block whose largest magnitude is below it is all zeros. */
    private static final float GROUP_MAX_EPS = 1e-15f;
    private static final int TRIES = 7;

    private IQ4Quantizer() {
    }

    /**
     * Quantizes {@code n} floats (a multiple of the type's block, 32 or 256) from {@code x[from]} into {@code out} at
     * {@code offset}; {@code importance}: null, or each column's importance ({@code importance[k]} that of {@code x[from + k]}).
     */
    static void quantizeRow(GGMLType type, float[] x, int from, int n, float[] importance, MemorySegment out, long offset) {
        int superBlock = type.blockSize;
        int[] levels = new int[superBlock];
        float[] scales = new float[superBlock / 32], weights = new float[32];
        for (int i0 = from; i0 < from + n; i0 += superBlock, offset += type.blockBytes) {
            float maxScale = 0, amaxScale = 0;
            float sigma2 = 0; // twice the super-block's mean square, which only the importance weights use
            if (importance != null) {
                for (int j = 0; j < superBlock; j++) sigma2 += x[i0 + j] * x[i0 + j];
                sigma2 *= 2f / superBlock;
            }
            for (int b = 0; b < superBlock / 32; b++) {
                int at = i0 + 32 * b;
                if (importance == null) {
                    for (int j = 0; j < 32; j++) weights[j] = x[at + j] * x[at + j];
                } else {
                    KQuantizer.importanceWeights(x, at, 32, sigma2, importance, at - from, weights);
                }
                scales[b] = fitScale(x, at, weights);
                if (Math.abs(scales[b]) > amaxScale) {
                    amaxScale = Math.abs(scales[b]);
                    maxScale = scales[b];
                }
            }
            long quants;
            if (type == GGMLType.IQ4_NL) {
                // d as a half at 0, the quants at 2; the levels again against the scale (a block of zeros: level 8, +1)
                out.set(SHORT_LE, offset, Float.floatToFloat16(scales[0]));
                float id = scales[0] != 0 ? 1 / scales[0] : 0;
                for (int j = 0; j < 32; j++) levels[j] = nearestLevel(id * x[i0 + j]);
                quants = offset + 2;
            } else {
                // d as a half at 0; the eight 6-bit scales (+32): high 2 bits in the short at 2 (block b's at bits 2b),
                // low 4 bits in the bytes at 4 (two per byte, block 2k low); the quants at 8
                float d = -maxScale / 32;
                out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                float id = d != 0 ? 1 / d : 0f;
                int high = 0;
                byte[] low = new byte[4];
                for (int b = 0; b < 8; b++) {
                    int l = Math.clamp(KQuantizer.nearest(id * scales[b]), -32, 31);
                    float dl = d * l;
                    float idl = dl != 0 ? 1 / dl : 0f;
                    for (int j = 0; j < 32; j++) levels[32 * b + j] = nearestLevel(idl * x[i0 + 32 * b + j]);
                    l += 32;
                    low[b / 2] |= (byte) ((l & 0xF) << 4 * (b % 2));
                    high |= (l >> 4) << 2 * b;
                }
                out.set(SHORT_LE, offset + 2, (short) high);
                MemorySegment.copy(low, 0, out, ValueLayout.JAVA_BYTE, offset + 4, 4);
                quants = offset + 8;
            }
            // per 32 weights, 16 bytes: weight j in the low nibble of byte j, weight 16 + j in the high one
            for (int b = 0; b < superBlock / 32; b++) {
                for (int j = 0; j < 16; j++) {
                    out.set(ValueLayout.JAVA_BYTE, quants + 16L * b + j, (byte) (levels[32 * b + j] | levels[32 * b + 16 + j] << 4));
                }
            }
        }
    }

    /**
     * IQ4_NL as ggml's {@code quantize_row_iq4_nl_ref} writes it (what llama.cpp's CPU backend puts in an iq4_nl KV
     * cache): {@code quantize_row_iq4_nl_impl} with no tries, so each block of 32 is rounded to the levels once, at
     * {@code max / -127} (the other sign from the tried fit's first rounding), the scale kept is the least-squares one
     * for those levels (weights x^2), and the levels are not rounded again against it. Allocates nothing.
     */
    static void quantizeRowUntried(float[] x, int from, int n, MemorySegment out, long offset) {
        for (int at = from; at < from + n; at += 32, offset += GGMLType.IQ4_NL.blockBytes) {
            for (int j = 0; j < 16; j++) out.set(ValueLayout.JAVA_BYTE, offset + 2 + j, (byte) 0);
            float max = Quantizer.largestMagnitude(x, at, 32);
            if (Math.abs(max) < GROUP_MAX_EPS) {
                out.set(SHORT_LE, offset, Float.floatToFloat16(0));
                continue;
            }
            float id = 1 / (max / LEVELS[0]), sumQX = 0, sumQ2 = 0;
            for (int j = 0; j < 32; j++) {
                int l = nearestLevel(id * x[at + j]);
                float q = LEVELS[l], w = x[at + j] * x[at + j];
                sumQX += w * q * x[at + j];
                sumQ2 += w * q * q;
                long b = offset + 2 + (j & 15);
                out.set(ValueLayout.JAVA_BYTE, b, (byte) (out.get(ValueLayout.JAVA_BYTE, b) | l << (j < 16 ? 0 : 4)));
            }
            out.set(SHORT_LE, offset, Float.floatToFloat16(sumQ2 > 0 ? sumQX / sumQ2 : 0f));
        }
    }

    /**
     * The scale of the 32 weights at {@code x[at]}: the least-squares scale (each error weighed by {@code weights[j]}) after rounding to the levels
     * at {@code -max / -127}, and then at {@code (t - 127) / max} for t in -7..7, whichever fits best; 0 for a block of
     * zeros. (The levels are rounded again against the scale as stored.)
     */
    private static float fitScale(float[] x, int at, float[] weights) {
        float max = Quantizer.largestMagnitude(x, at, 32);
        if (Math.abs(max) < GROUP_MAX_EPS) return 0;
        float d = -max / LEVELS[0], id = 1 / d, sumQX = 0, sumQ2 = 0;
        for (int j = 0; j < 32; j++) {
            float q = LEVELS[nearestLevel(id * x[at + j])], w = weights[j];
            sumQX += w * q * x[at + j];
            sumQ2 += w * q * q;
        }
        d = sumQ2 > 0 ? sumQX / sumQ2 : 0f;
        float best = d * sumQX;
        for (int t = -TRIES; t <= TRIES; t++) {
            id = (t + LEVELS[0]) / max;
            sumQX = 0;
            sumQ2 = 0;
            for (int j = 0; j < 32; j++) {
                float q = LEVELS[nearestLevel(id * x[at + j])], w = weights[j];
                sumQX += w * q * x[at + j];
                sumQ2 += w * q * q;
            }
            if (sumQ2 > 0 && sumQX * sumQX > best * sumQ2) {
                d = sumQX / sumQ2;
                best = d * sumQX;
            }
        }
        return d;
    }

    /**
     * For each integer f in -128..127 (at f + 128), the first level above it. The levels are integers, so a value's floor
     * decides which two levels it lies between: the binary search of {@code best_index_int8}, in one load (quantizing
     * stories110M to IQ4_XS on 2 threads: 10.9-11.0 s with the search, 5.7-6.2 s with the table, the same file).
     */
    private static final byte[] LEVEL_ABOVE = new byte[256];

    static {
        for (int f = -128; f < 128; f++) {
            int hi = 0;
            while (hi < 15 && LEVELS[hi] <= f) hi++;
            LEVEL_ABOVE[f + 128] = (byte) hi;
        }
    }

    /** ggml's {@code best_index_int8} over the 16 levels: the nearest, the upper one only where strictly nearer. */
    private static int nearestLevel(float v) {
        if (v <= LEVELS[0]) return 0;
        if (v >= LEVELS[15]) return 15;
        int hi = LEVEL_ABOVE[(int) Math.floor(v) + 128];
        return v - LEVELS[hi - 1] < LEVELS[hi] - v ? hi - 1 : hi;
    }
}
