package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Float weights to Q2_K, Q3_K, Q4_K, Q5_K and Q6_K with the rounding of llama.cpp's reference quantizers
 * ({@code quantize_row_q2_K_ref}, ..., {@code _q6_K_ref}: what {@code llama-quantize} writes without an importance
 * matrix), so that files agree with its bit for bit. Every sum and product is taken in float in the C code's
 * order, and C's {@code nearest_int} (adding 1.5 * 2^23) is rounding to nearest, ties to even ({@link Math#rint}).
 * <p>
 * A super-block holds 256 weights. Q4_K and Q5_K give each 32 of them a scale and a min, the best of 22 (Q4_K) or 17
 * (Q5_K) candidate fits by an error that weighs each weight by its size and its sub-block's RMS, the scales and mins
 * then rounded to 6 bits of two half-precision super-block factors. Q6_K gives each 16 a signed scale, searched over 19 candidates, and
 * rounds the scales to 8 bits of one factor. Q2_K fits a scale and a min to each 16 (absolute error, 4 bits of two
 * factors), Q3_K a signed scale to each 16 (refined weight by weight, 6 bits of one factor).
 * <p>
 * With an importance matrix ({@code llama-imatrix}'s mean squared input per column) the fits are those of ggml's
 * {@code quantize_row_q2_K_impl} ... {@code _q6_K_impl}, as {@code llama-quantize --imatrix} makes them: each weight's
 * error weighed by its column's importance times {@code sqrt(sigma2 + x^2)} (sigma2: twice the super-block's mean
 * square; Q2_K once; Q6_K by the importance alone), a finer search of 37 candidate fits for scales and mins, and the
 * super-block's scales themselves rounded by a weighted fit ({@link #fitPositive}, {@link #fitSigned}) rather than
 * against their largest.
 */
final class KQuantizer {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** ggml's {@code GROUP_MAX_EPS}: a group whose largest magnitude is below it is all zeros. */
    private static final float GROUP_MAX_EPS = 1e-15f;

    private KQuantizer() {
    }

    /**
     * Quantizes {@code n} floats (a multiple of 256) from {@code x[from]} into {@code out} at {@code offset};
     * {@code importance}: null, or each column's importance ({@code importance[k]} that of {@code x[from + k]}).
     */
    static void quantizeRow(GGMLType type, float[] x, int from, int n, float[] importance, MemorySegment out, long offset) {
        int[] quants = new int[256];
        for (int i0 = from; i0 < from + n; i0 += 256, offset += type.blockBytes) {
            int w0 = i0 - from; // the super-block's first column, in importance
            switch (type) {
                case Q4_K -> {
                    scalesAndMins(x, i0, 15, -1f, 20, importance, w0, quants, out, offset);
                    writeNibbles(quants, out, offset + 16);
                }
                case Q5_K -> {
                    scalesAndMins(x, i0, 31, -0.5f, 15, importance, w0, quants, out, offset);
                    // qh (32 bytes at 16): bit 2k of byte l is weight 64k + l's fifth bit, bit 2k + 1 weight 64k + 32 + l's;
                    // then the low nibbles at 48
                    for (int l = 0; l < 32; l++) {
                        int high = 0;
                        for (int k = 0; k < 4; k++) high |= (quants[64 * k + l] >> 4) << 2 * k | (quants[64 * k + 32 + l] >> 4) << 2 * k + 1;
                        out.set(ValueLayout.JAVA_BYTE, offset + 16 + l, (byte) high);
                    }
                    writeNibbles(quants, out, offset + 48);
                }
                case Q6_K -> q6_K(x, i0, importance, w0, quants, out, offset);
                case Q2_K -> {
                    if (importance == null) q2_K(x, i0, quants, out, offset);
                    else q2_KWeighted(x, i0, importance, w0, quants, out, offset);
                }
                case Q3_K -> q3_K(x, i0, importance, w0, quants, out, offset);
                default -> throw new IllegalArgumentException("cannot quantize to " + type);
            }
        }
    }

    /** Q4_K's and Q5_K's low 4 bits of 256 quants, 128 bytes at {@code at}: per 64, byte l holds l (low nibble) and l + 32. */
    private static void writeNibbles(int[] quants, MemorySegment out, long at) {
        for (int j = 0; j < 256; j += 64) {
            for (int l = 0; l < 32; l++) out.set(ValueLayout.JAVA_BYTE, at + j / 2 + l, (byte) (quants[j + l] & 0xF | (quants[j + l + 32] & 0xF) << 4));
        }
    }

    /**
     * Q4_K's and Q5_K's head (d and dmin as halves at 0 and 2, the 6-bit scales and mins packed in 12 bytes at 4) for
     * the super-block at {@code x[i0]}, and its quants (0..nmax) in {@code quants}. {@code rmin} and {@code nsteps}:
     * the scale search's range ({@link #fitScaleAndMin}) without an importance matrix; {@code importance}: null, or
     * the row's column importances from {@code w0} on.
     */
    private static void scalesAndMins(float[] x, int i0, int nmax, float rmin, int nsteps, float[] importance, int w0,
                                      int[] quants, MemorySegment out, long offset) {
        float[] scales = new float[8], mins = new float[8], weights = new float[32], sums = new float[8];
        int[] candidate = new int[32];
        float maxScale = 0, maxMin = 0;
        float sigma2 = importance == null ? 0 : 2 * sumOfSquares(x, i0, 256) / 256;
        for (int j = 0; j < 8; j++) {
            int at = i0 + 32 * j;
            if (importance == null) {
                float rms = (float) Math.sqrt(sumOfSquares(x, at, 32) / 32);
                for (int l = 0; l < 32; l++) weights[l] = rms + Math.abs(x[at + l]);
                scales[j] = fitScaleAndMin(x, at, 32, nmax, weights, quants, 32 * j, mins, j, candidate, rmin, 0.1f, nsteps, false);
            } else {
                sums[j] = importanceWeights(x, at, 32, sigma2, importance, w0 + 32 * j, weights);
                scales[j] = fitScaleAndMin(x, at, 32, nmax, weights, quants, 32 * j, mins, j, candidate, -0.9f, 0.05f, 36, false);
            }
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        int[] sixBitScales = new int[8], sixBitMins = new int[8];
        float superScale, superMin;
        if (importance == null) {
            float inverseScale = maxScale > 0 ? 63f / maxScale : 0f, inverseMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < 8; j++) {
                // C keeps nearest_int's result in a uint8_t before the MIN
                sixBitScales[j] = Math.min(63, nearest(inverseScale * scales[j]) & 0xFF);
                sixBitMins[j] = Math.min(63, nearest(inverseMin * mins[j]) & 0xFF);
            }
            superScale = maxScale / 63f;
            superMin = maxMin / 63f;
        } else {
            superScale = fitPositive(scales, 8, 63, sixBitScales, sums);
            superMin = fitPositive(mins, 8, 63, sixBitMins, sums);
        }
        byte[] packed = new byte[12];
        for (int j = 0; j < 8; j++) {
            int ls = sixBitScales[j], lm = sixBitMins[j];
            // sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7's low 4 bits in bytes 8-11,
            // their top 2 bits in the top bits of bytes 0-7
            if (j < 4) {
                packed[j] = (byte) ls;
                packed[j + 4] = (byte) lm;
            } else {
                packed[j + 4] = (byte) (ls & 0xF | (lm & 0xF) << 4);
                packed[j - 4] |= (byte) ((ls >> 4) << 6);
                packed[j] |= (byte) ((lm >> 4) << 6);
            }
        }
        short dHalf = Float.floatToFloat16(superScale), dminHalf = Float.floatToFloat16(superMin);
        out.set(SHORT_LE, offset, dHalf);
        out.set(SHORT_LE, offset + 2, dminHalf);
        MemorySegment.copy(packed, 0, out, ValueLayout.JAVA_BYTE, offset + 4, 12);
        // the quants again, against the scales and mins as rounded (sub-blocks whose scale rounded to 0 keep the fit's)
        superScale = Float.float16ToFloat(dHalf);
        superMin = Float.float16ToFloat(dminHalf);
        for (int j = 0; j < 8; j++) {
            float d = superScale * sixBitScales[j];
            if (d == 0) continue;
            float dm = superMin * sixBitMins[j];
            for (int l = 0; l < 32; l++) quants[32 * j + l] = Math.clamp(nearest((x[i0 + 32 * j + l] + dm) / d), 0, nmax);
        }
    }

    /**
     * ggml's {@code make_qkx2_quants}: for the {@code n} weights at {@code x[at]}, a scale and a min (returned, and
     * {@code -min} into {@code mins[j]}) and their quants 0..nmax into {@code quants[q0..]}, the best, by the weighted
     * squared error (absolute error with {@code mad}, as Q2_K asks), of the plain max-min fit and the least-squares fits
     * after rounding with {@code nmax + rmin + rdelta * step} levels, step 0..nsteps ({@code make_qkx3_quants} with
     * weights given is the same search).
     */
    static float fitScaleAndMin(float[] x, int at, int n, int nmax, float[] weights, int[] quants, int q0, float[] mins, int j,
                                int[] candidate, float rmin, float rdelta, int nsteps, boolean mad) {
        float min = x[at], max = x[at], sumW = weights[0], sumX = sumW * x[at];
        for (int i = 1; i < n; i++) {
            if (x[at + i] < min) min = x[at + i];
            if (x[at + i] > max) max = x[at + i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[at + i];
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) quants[q0 + i] = 0;
            mins[j] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min), scale = 1 / iscale, bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.clamp(nearest(iscale * (x[at + i] - min)), 0, nmax);
            quants[q0 + i] = l;
            float diff = scale * l + min - x[at + i];
            bestError += weights[i] * (mad ? Math.abs(diff) : diff * diff);
        }
        for (int step = 0; step <= nsteps; step++) {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.clamp(nearest(iscale * (x[at + i] - min)), 0, nmax);
                candidate[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[at + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det, thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * candidate[i] + thisMin - x[at + i];
                    error += weights[i] * (mad ? Math.abs(diff) : diff * diff);
                }
                if (error < bestError) {
                    System.arraycopy(candidate, 0, quants, q0, n);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        mins[j] = -min;
        return scale;
    }

    /**
     * Q6_K's super-block at {@code x[i0]}: ql (low nibbles, 128 bytes at 0), qh (top two bits, 64 bytes at 128), the
     * 16 int8 scales at 192 and d as a half at 208. With importances, each weight's error is weighed by its column's.
     */
    private static void q6_K(float[] x, int i0, float[] importance, int w0, int[] quants, MemorySegment out, long offset) {
        float[] scales = new float[16], weights = importance == null ? null : new float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int b = 0; b < 16; b++) {
            if (importance != null) System.arraycopy(importance, w0 + 16 * b, weights, 0, 16);
            float scale = fitSigned(x, i0 + 16 * b, 16, 32, weights, quants, 16 * b);
            scales[b] = scale;
            if (Math.abs(scale) > maxAbsScale) {
                maxAbsScale = Math.abs(scale);
                maxScale = scale;
            }
        }
        if (maxAbsScale < GROUP_MAX_EPS) {
            out.asSlice(offset, GGMLType.Q6_K.blockBytes).fill((byte) 0);
            return;
        }
        float iscale = -128f / maxScale;
        short dHalf = Float.floatToFloat16(1 / iscale);
        out.set(SHORT_LE, offset + 208, dHalf);
        float superScale = Float.float16ToFloat(dHalf);
        for (int b = 0; b < 16; b++) {
            byte scale = (byte) Math.min(127, nearest(iscale * scales[b]));
            out.set(ValueLayout.JAVA_BYTE, offset + 192 + b, scale);
            float d = superScale * scale;
            if (d == 0) continue;
            for (int l = 0; l < 16; l++) quants[16 * b + l] = Math.clamp(nearest(x[i0 + 16 * b + l] / d), -32, 31) + 32;
        }
        // per 128 weights: ql's 64 bytes hold weights l and l + 64 (l < 32), then l + 32 and l + 96, low nibble first;
        // qh's 32 bytes the top two bits of l, l + 32, l + 64 and l + 96 from the lowest bits up
        for (int half = 0; half < 2; half++) {
            int j = 128 * half;
            long ql = offset + 64L * half, qh = offset + 128 + 32L * half;
            for (int l = 0; l < 32; l++) {
                int q1 = quants[j + l], q2 = quants[j + l + 32], q3 = quants[j + l + 64], q4 = quants[j + l + 96];
                out.set(ValueLayout.JAVA_BYTE, ql + l, (byte) (q1 & 0xF | (q3 & 0xF) << 4));
                out.set(ValueLayout.JAVA_BYTE, ql + 32 + l, (byte) (q2 & 0xF | (q4 & 0xF) << 4));
                out.set(ValueLayout.JAVA_BYTE, qh + l, (byte) (q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6));
            }
        }
    }

    /**
     * Q2_K's super-block at {@code x[i0]}: per 16 weights a scale (low nibble) and a min (high nibble) in bytes 0-15,
     * the 2-bit quants in 64 bytes at 16 ({@link #writeTwoBits}), d and dmin as halves at 80 and 82.
     */
    private static void q2_K(float[] x, int i0, int[] quants, MemorySegment out, long offset) {
        float[] scales = new float[16], mins = new float[16], weights = new float[16];
        int[] candidate = new int[16];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = Math.abs(x[i0 + 16 * j + l]);
            scales[j] = fitScaleAndMin(x, i0 + 16 * j, 16, 3, weights, quants, 16 * j, mins, j, candidate, -0.5f, 0.1f, 15, true);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        byte[] packed = new byte[16]; // C's uint8_t scales: nearest_int's result and its shift kept to 8 bits
        short dHalf = 0, dminHalf = 0;
        if (maxScale > 0) {
            float iscale = 15f / maxScale;
            for (int j = 0; j < 16; j++) packed[j] = (byte) nearest(iscale * scales[j]);
            dHalf = Float.floatToFloat16(maxScale / 15f);
        }
        if (maxMin > 0) {
            float iscale = 15f / maxMin;
            for (int j = 0; j < 16; j++) packed[j] |= (byte) (nearest(iscale * mins[j]) << 4);
            dminHalf = Float.floatToFloat16(maxMin / 15f);
        }
        MemorySegment.copy(packed, 0, out, ValueLayout.JAVA_BYTE, offset, 16);
        out.set(SHORT_LE, offset + 80, dHalf);
        out.set(SHORT_LE, offset + 82, dminHalf);
        for (int j = 0; j < 16; j++) {
            float d = Float.float16ToFloat(dHalf) * (packed[j] & 0xF);
            if (d == 0) continue;
            float dm = Float.float16ToFloat(dminHalf) * ((packed[j] & 0xFF) >> 4);
            for (int l = 0; l < 16; l++) quants[16 * j + l] = Math.clamp(nearest((x[i0 + 16 * j + l] + dm) / d), 0, 3);
        }
        writeTwoBits(quants, out, offset + 16);
    }

    /**
     * Q2_K's super-block at {@code x[i0]} with importances (ggml's {@code quantize_row_q2_K_impl}): each 16 weights'
     * scale and min fitted with the weights importance times {@code sqrt(sigma2 + x^2)} over 37 candidates, squared
     * error, then the sixteen scales and mins rounded to 4 bits by weighted fits of their own ({@link #fitPositive}).
     */
    private static void q2_KWeighted(float[] x, int i0, float[] importance, int w0, int[] quants, MemorySegment out, long offset) {
        float[] scales = new float[16], mins = new float[16], weights = new float[16], sums = new float[16];
        int[] candidate = new int[16], fourBitScales = new int[16], fourBitMins = new int[16];
        float sigma2 = sumOfSquares(x, i0, 256) / 256;
        for (int j = 0; j < 16; j++) {
            sums[j] = importanceWeights(x, i0 + 16 * j, 16, sigma2, importance, w0 + 16 * j, weights);
            scales[j] = fitScaleAndMin(x, i0 + 16 * j, 16, 3, weights, quants, 16 * j, mins, j, candidate, -0.9f, 0.05f, 36, false);
        }
        short dHalf = Float.floatToFloat16(fitPositive(scales, 16, 15, fourBitScales, sums));
        short dminHalf = Float.floatToFloat16(fitPositive(mins, 16, 15, fourBitMins, sums));
        out.set(SHORT_LE, offset + 80, dHalf);
        out.set(SHORT_LE, offset + 82, dminHalf);
        for (int j = 0; j < 16; j++) {
            out.set(ValueLayout.JAVA_BYTE, offset + j, (byte) (fourBitScales[j] | fourBitMins[j] << 4));
            float d = Float.float16ToFloat(dHalf) * fourBitScales[j];
            if (d == 0) continue;
            float dm = Float.float16ToFloat(dminHalf) * fourBitMins[j];
            for (int l = 0; l < 16; l++) quants[16 * j + l] = Math.clamp(nearest((x[i0 + 16 * j + l] + dm) / d), 0, 3);
        }
        writeTwoBits(quants, out, offset + 16);
    }

    /**
     * Q3_K's super-block at {@code x[i0]}: the quants' third bits in 32 bytes at 0 (bit k of byte m: weight 32k + m's),
     * their low 2 bits in 64 bytes at 32 ({@link #writeTwoBits}), the sixteen 6-bit signed scales (+32) in 12 bytes at 96 (low
     * nibbles in bytes 0-7, sub-blocks 0-7 then 8-15 in the high ones; top two bits in bytes 8-11, sub-block j's at
     * byte 8 + j % 4, bits 2 * (j / 4)), d as a half at 108. With importances: the scales fitted by weighted least
     * squares over 19 roundings, and rounded to 6 bits by such a fit of their own, weighed by their sub-blocks' weights.
     */
    private static void q3_K(float[] x, int i0, float[] importance, int w0, int[] quants, MemorySegment out, long offset) {
        float[] scales = new float[16];
        int[] sixBit = new int[16]; // the scales' 6 bits, +32
        float d = 0;
        if (importance == null) {
            float maxScale = 0, amax = 0;
            for (int j = 0; j < 16; j++) {
                scales[j] = scaleSignedThreeBits(x, i0 + 16 * j, quants, 16 * j);
                float scale = Math.abs(scales[j]);
                if (scale > amax) {
                    amax = scale;
                    maxScale = scales[j];
                }
            }
            if (maxScale != 0) {
                float iscale = -32f / maxScale;
                // C keeps nearest_int's result in an int8_t
                for (int j = 0; j < 16; j++) sixBit[j] = Math.clamp((byte) nearest(iscale * scales[j]), -32, 31) + 32;
                d = 1 / iscale;
            }
        } else {
            float sigma2 = 2 * sumOfSquares(x, i0, 256) / 256;
            float[] weights = new float[16], sums = new float[16];
            for (int j = 0; j < 16; j++) {
                sums[j] = importanceWeights(x, i0 + 16 * j, 16, sigma2, importance, w0 + 16 * j, weights);
                scales[j] = fitSigned(x, i0 + 16 * j, 16, 4, weights, quants, 16 * j);
            }
            d = fitSigned(scales, 0, 16, 32, sums, sixBit, 0);
        }
        byte[] packed = new byte[12];
        for (int j = 0; j < 16; j++) {
            int l = sixBit[j];
            if (j < 8) packed[j] = (byte) (l & 0xF);
            else packed[j - 8] |= (byte) ((l & 0xF) << 4);
            packed[j % 4 + 8] |= (byte) ((l >> 4) << 2 * (j / 4));
        }
        short dHalf = Float.floatToFloat16(d);
        MemorySegment.copy(packed, 0, out, ValueLayout.JAVA_BYTE, offset + 96, 12);
        out.set(SHORT_LE, offset + 108, dHalf);
        for (int j = 0; j < 16; j++) {
            int low = j < 8 ? packed[j] & 0xF : (packed[j - 8] & 0xFF) >> 4;
            int sc = (low | ((packed[8 + j % 4] & 0xFF) >> 2 * (j / 4) & 3) << 4) - 32;
            float dl = Float.float16ToFloat(dHalf) * sc;
            if (dl == 0) continue;
            for (int l = 0; l < 16; l++) quants[16 * j + l] = Math.clamp(nearest(x[i0 + 16 * j + l] / dl), -4, 3) + 4;
        }
        int[] hmask = new int[32];
        for (int j = 0; j < 256; j++) {
            if (quants[j] > 3) {
                hmask[j % 32] |= 1 << j / 32;
                quants[j] -= 4;
            }
        }
        for (int m = 0; m < 32; m++) out.set(ValueLayout.JAVA_BYTE, offset + m, (byte) hmask[m]);
        writeTwoBits(quants, out, offset + 32);
    }

    /** Q2_K's and Q3_K's low two bits of 256 quants, 64 bytes at {@code at}: per 128, byte l holds l, l + 32, l + 64, l + 96 from the lowest bits up. */
    private static void writeTwoBits(int[] quants, MemorySegment out, long at) {
        for (int half = 0; half < 2; half++) {
            int j = 128 * half;
            for (int l = 0; l < 32; l++) {
                int q = quants[j + l] | quants[j + l + 32] << 2 | quants[j + l + 64] << 4 | quants[j + l + 96] << 6;
                out.set(ValueLayout.JAVA_BYTE, at + 32L * half + l, (byte) q);
            }
        }
    }

    /**
     * ggml's {@code make_q3_quants} as Q3_K calls it (nmax 4, weights x^2, refined): a signed scale for the 16 weights
     * at {@code x[at]} and their quants (0..7, zero at 4) into {@code quants[q0..]}: rounded at {@code -4 / max}, then
     * up to five passes moving each quant to where the least-squares fit of the others puts it, where that fits better.
     */
    private static float scaleSignedThreeBits(float[] x, int at, int[] quants, int q0) {
        int n = 16, nmax = 4;
        float max = Quantizer.largestMagnitude(x, at, n);
        if (Math.abs(max) < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) quants[q0 + i] = 0;
            return 0f;
        }
        float iscale = -nmax / max, sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.clamp(nearest(iscale * x[at + i]), -nmax, nmax - 1);
            quants[q0 + i] = l;
            float w = x[at + i] * x[at + i];
            sumLX += w * x[at + i] * l;
            sumL2 += w * l * l;
        }
        for (int pass = 0; pass < 5; pass++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float w = x[at + i] * x[at + i];
                int l = quants[q0 + i];
                float slx = sumLX - w * x[at + i] * l;
                if (slx > 0) {
                    float sl2 = sumL2 - w * l * l;
                    int moved = Math.clamp(nearest(x[at + i] * sl2 / slx), -nmax, nmax - 1);
                    if (moved != l) {
                        slx += w * x[at + i] * moved;
                        sl2 += w * moved * moved;
                        if (sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2) {
                            quants[q0 + i] = moved;
                            sumLX = slx;
                            sumL2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; i++) quants[q0 + i] += nmax;
        return sumL2 > 0 ? sumLX / sumL2 : 0f;
    }

    /**
     * ggml's {@code make_qx_quants} (rmse_type 1): a signed scale for the {@code n} weights at {@code x[at]} and their
     * quants (0..2 nmax - 1, zero at nmax) into {@code quants[q0..]}, the best by the weighted least-squares fit of 19
     * roundings with {@code nmax + 0.1 * step} levels, step -9..9; each weight's error weighed by {@code weights[i]},
     * or by x^2 where weights is null (Q6_K without an importance matrix). A group of zeros: scale 0, quants 0.
     */
    static float fitSigned(float[] x, int at, int n, int nmax, float[] weights, int[] quants, int q0) {
        float max = Quantizer.largestMagnitude(x, at, n);
        if (Math.abs(max) < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) quants[q0 + i] = 0;
            return 0f;
        }
        float iscale = -nmax / max, sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.clamp(nearest(iscale * x[at + i]), -nmax, nmax - 1);
            quants[q0 + i] = l + nmax;
            float w = weights != null ? weights[i] : x[at + i] * x[at + i];
            sumLX += w * x[at + i] * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f, best = scale * sumLX;
        for (int step = -9; step <= 9; step++) {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumLX = 0;
            sumL2 = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.clamp(nearest(iscale * x[at + i]), -nmax, nmax - 1);
                float w = weights != null ? weights[i] : x[at + i] * x[at + i];
                sumLX += w * x[at + i] * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
                for (int i = 0; i < n; i++) quants[q0 + i] = nmax + Math.clamp(nearest(iscale * x[at + i]), -nmax, nmax - 1);
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }

    /**
     * ggml's {@code make_qp_quants}: the super-block factor for {@code n} non-negative sub-block scales (or mins)
     * {@code x}, and their levels 0..nmax into {@code levels}, fitted with the sub-blocks' summed weights
     * {@code weights}: the best of nine roundings at {@code (nmax + 0.1 * step) / max} by weighted squared error, then
     * up to five passes moving each level to where the fit of the others puts it, where that fits better.
     */
    static float fitPositive(float[] x, int n, int nmax, int[] levels, float[] weights) {
        float max = 0;
        for (int i = 0; i < n; i++) max = Math.max(max, x[i]);
        if (max < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) levels[i] = 0;
            return 0f;
        }
        float iscale = nmax / max, scale = 1 / iscale, bestError = 0;
        for (int i = 0; i < n; i++) {
            float diff = x[i] - scale * (nearest(iscale * x[i]) & 0xFF); // C keeps it in a uint8_t
            bestError += weights[i] * diff * diff;
        }
        for (int step = -4; step <= 4; step++) {
            if (step == 0) continue;
            float iscaleStep = (0.1f * step + nmax) / max, scaleStep = 1 / iscaleStep, error = 0;
            for (int i = 0; i < n; i++) {
                float diff = x[i] - scaleStep * Math.min(nmax, nearest(iscaleStep * x[i]));
                error += weights[i] * diff * diff;
            }
            if (error < bestError) {
                bestError = error;
                iscale = iscaleStep;
            }
        }
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.min(nmax, nearest(iscale * x[i]));
            levels[i] = l;
            sumLX += weights[i] * x[i] * l;
            sumL2 += weights[i] * l * l;
        }
        for (int pass = 0; pass < 5; pass++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float w = weights[i];
                int l = levels[i];
                float slx = sumLX - w * x[i] * l, sl2 = sumL2 - w * l * l;
                if (slx > 0 && sl2 > 0) {
                    int moved = Math.min(nmax, nearest(x[i] * sl2 / slx));
                    if (moved != l) {
                        slx += w * x[i] * moved;
                        sl2 += w * moved * moved;
                        if (slx * slx * sumL2 > sumLX * sumLX * sl2) {
                            levels[i] = moved;
                            sumLX = slx;
                            sumL2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        return sumL2 > 0 ? sumLX / sumL2 : 0f;
    }

    /** The sum of the squares of the {@code n} weights at {@code x[at]}, in order. */
    private static float sumOfSquares(float[] x, int at, int n) {
        float sum = 0;
        for (int i = 0; i < n; i++) sum += x[at + i] * x[at + i];
        return sum;
    }

    /**
     * The fitting weights of the {@code n} weights at {@code x[at]} into {@code weights}: the column's importance
     * (from {@code importance[w]}) times {@code sqrt(sigma2 + x^2)}; returns their sum.
     */
    static float importanceWeights(float[] x, int at, int n, float sigma2, float[] importance, int w, float[] weights) {
        float sum = 0;
        for (int i = 0; i < n; i++) {
            weights[i] = importance[w + i] * (float) Math.sqrt(sigma2 + x[at + i] * x[at + i]);
            sum += weights[i];
        }
        return sum;
    }

    /** C's {@code nearest_int}: to the nearest integer, ties to even (its 1.5 * 2^23 trick, for |v| < 2^22). */
    static int nearest(float v) {
        return (int) Math.rint(v);
    }
}
