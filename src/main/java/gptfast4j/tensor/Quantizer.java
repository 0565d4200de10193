package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Float weights to Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1, with the rounding rules of llama.cpp's reference quantizers
 * ({@code quantize_row_q8_0_ref}, {@code _q4_0_ref}, ...), so files agree bit for bit with {@code llama-quantize}'s;
 * to IQ4_NL and IQ4_XS ({@link IQ4Quantizer}), to TQ1_0 and TQ2_0 ({@link TernaryQuantizer}) and to Q2_K-Q6_K
 * ({@link KQuantizer}), where Q4_0, Q5_0, Q5_1 and Q8_0 take the rows that those super-blocks of 256 do not divide.
 * Scales are rounded to half precision to nearest even, as F16C does. With an importance matrix (each column's mean
 * squared input, {@code llama-imatrix}'s), every type but Q8_0 and the ternary ones fits its scales by an error
 * weighted by it, as llama.cpp's {@code quantize_row_*_impl} functions do.
 */
public final class Quantizer {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Quantizer() {
    }

    public static boolean supports(GGMLType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0 -> true;
            default -> false;
        };
    }

    /**
     * A copy of {@code t} in {@code type}, in {@code memory} (off-heap, outside the JVM's direct-memory limit);
     * Q4_0 and Q4_1 in their decode layout ({@link Tensor#forDecode}).
     * The pages of a mapped {@code t} are released from this process as it goes, so that quantizing at load does not keep
     * the float file resident beside its quantized copy.
     */
    public static Tensor quantize(Tensor t, GGMLType type, OffHeap memory) {
        Tensor q = quantizeInFileLayout(t, type, memory);
        // straight to the decode layout, rather than to a second copy at the first decode step
        return q instanceof RowGroupTensor g ? g.regroupedInPlace() : q;
    }

    /** {@link #quantize} in the file's layout, rows as a GGUF file holds them (the kernel benchmarks and tests compare both). */
    public static Tensor quantizeInFileLayout(Tensor t, GGMLType type, OffHeap memory) {
        if (!supports(type)) throw new IllegalArgumentException("cannot quantize to " + type);
        MemorySegment out = memory.allocate(type.bytesFor((long) t.cols * t.rows));
        long rowBytes = type.bytesFor(t.cols);
        Parallel.run(Math.toIntExact(t.rows), 16, (start, end) -> {
            float[] row = new float[t.cols];
            for (int r = start; r < end; r++) {
                t.dequantizeRow(r, row, 0);
                quantizeRow(type, row, 0, t.cols, null, out, r * rowBytes);
            }
            t.releaseFilePages(start * t.rowBytes, end * t.rowBytes);
        });
        t.releaseFilePages();
        return Tensor.of(t.name, type, out, t.cols, t.rows);
    }

    /**
     * Quantizes {@code n} floats from {@code x[from]} (a multiple of the type's block size, 32 or 256; the row, where
     * {@code importance} is given) into {@code out} at {@code offset}. {@code importance}: null, or the importance of
     * each of the n columns ({@code importance[k]} that of {@code x[from + k]}).
     */
    public static void quantizeRow(GGMLType type, float[] x, int from, int n, float[] importance, MemorySegment out, long offset) {
        if (type == GGMLType.IQ4_NL || type == GGMLType.IQ4_XS) {
            IQ4Quantizer.quantizeRow(type, x, from, n, importance, out, offset);
            return;
        }
        if (type == GGMLType.TQ1_0 || type == GGMLType.TQ2_0) {
            TernaryQuantizer.quantizeRow(type, x, from, n, out, offset);
            return;
        }
        if (type.blockSize == 256) {
            KQuantizer.quantizeRow(type, x, from, n, importance, out, offset);
            return;
        }
        if (importance != null && type != GGMLType.Q8_0) {
            weighted(type, x, from, n, importance, out, offset);
            return;
        }
        for (int b = 0; b < n / 32; b++, offset += type.blockBytes) {
            int i0 = from + 32 * b;
            switch (type) {
                case Q8_0 -> {
                    float amax = 0;
                    for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i0 + j]));
                    float d = amax / 127;
                    float id = d != 0 ? 1.0f / d : 0.0f;
                    out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                    for (int j = 0; j < 32; j++) out.set(ValueLayout.JAVA_BYTE, offset + 2 + j, (byte) roundHalfAway(x[i0 + j] * id));
                }
                case Q4_0 -> {
                    float d = largestMagnitude(x, i0, 32) / -8;
                    float id = d != 0 ? 1.0f / d : 0.0f;
                    out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                    for (int j = 0; j < 16; j++) {
                        int lo = Math.min(15, (byte) (int) (x[i0 + j] * id + 8.5f));
                        int hi = Math.min(15, (byte) (int) (x[i0 + 16 + j] * id + 8.5f));
                        out.set(ValueLayout.JAVA_BYTE, offset + 2 + j, (byte) (lo | hi << 4));
                    }
                }
                case Q4_1 -> {
                    float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
                    for (int j = 0; j < 32; j++) {
                        min = Math.min(min, x[i0 + j]);
                        max = Math.max(max, x[i0 + j]);
                    }
                    float d = (max - min) / 15;
                    float id = d != 0 ? 1.0f / d : 0.0f;
                    out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                    out.set(SHORT_LE, offset + 2, Float.floatToFloat16(min));
                    for (int j = 0; j < 16; j++) {
                        int lo = Math.min(15, (byte) (int) ((x[i0 + j] - min) * id + 0.5f));
                        int hi = Math.min(15, (byte) (int) ((x[i0 + 16 + j] - min) * id + 0.5f));
                        out.set(ValueLayout.JAVA_BYTE, offset + 4 + j, (byte) (lo | hi << 4));
                    }
                }
                case Q5_0 -> {
                    float d = largestMagnitude(x, i0, 32) / -16;
                    float id = d != 0 ? 1.0f / d : 0.0f;
                    out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                    int high = 0;
                    for (int j = 0; j < 32; j++) high |= putLowNibble(out, offset + 6, j, Math.min(31, (byte) (int) (x[i0 + j] * id + 16.5f)));
                    out.set(INT_LE, offset + 2, high);
                }
                case Q5_1 -> {
                    float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
                    for (int j = 0; j < 32; j++) {
                        min = Math.min(min, x[i0 + j]);
                        max = Math.max(max, x[i0 + j]);
                    }
                    float d = (max - min) / 31;
                    float id = d != 0 ? 1.0f / d : 0.0f;
                    out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                    out.set(SHORT_LE, offset + 2, Float.floatToFloat16(min));
                    int high = 0;
                    for (int j = 0; j < 32; j++) high |= putLowNibble(out, offset + 8, j, (int) ((x[i0 + j] - min) * id + 0.5f) & 0xFF); // C's (uint8_t) cast
                    out.set(INT_LE, offset + 4, high);
                }
                default -> throw new IllegalArgumentException("cannot quantize to " + type);
            }
        }
    }

    /**
     * {@code n} floats from {@code x[from]} into {@code out} at {@code offset} as llama.cpp's CPU backend writes them to a
     * KV cache of {@code type} (its {@code from_float}): BF16 rounded to nearest even; Q4_0, Q4_1, Q5_0 and Q5_1 by the
     * reference rounding of {@link #quantizeRow}; IQ4_NL by {@code quantize_row_iq4_nl_ref}, which tries no other
     * scales ({@link IQ4Quantizer#quantizeRowUntried}). Allocates nothing: a decode step calls it.
     */
    public static void quantizeCacheRow(GGMLType type, float[] x, int from, int n, MemorySegment out, long offset) {
        switch (type) {
            case BF16 -> {
                for (int i = 0; i < n; i++) out.set(SHORT_LE, offset + 2L * i, toBf16(x[from + i]));
            }
            case IQ4_NL -> IQ4Quantizer.quantizeRowUntried(x, from, n, out, offset);
            case Q4_0, Q4_1, Q5_0, Q5_1 -> quantizeRow(type, x, from, n, null, out, offset);
            default -> throw new IllegalArgumentException("no KV cache of " + type);
        }
    }

    /** ggml's {@code GGML_FP32_TO_BF16}: to nearest, ties to even; a NaN stays a (quiet) NaN. */
    public static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7fffffff) > 0x7f800000) return (short) (bits >>> 16 | 64);
        return (short) ((bits + (0x7fff + (bits >>> 16 & 1))) >>> 16);
    }

    /**
     * Q4_0, Q4_1, Q5_0 and Q5_1 as ggml's {@code quantize_row_q4_0_impl} ... {@code _q5_1_impl} write them: each
     * weight's error weighed by its column's importance times {@code sqrt(sigma2 + x^2)} (sigma2: the row's mean
     * square), a signed scale fitted over 19 roundings (Q4_0, Q5_0: {@link KQuantizer#fitSigned}) or a scale and a
     * min over 37 (Q4_1, Q5_1: {@link KQuantizer#fitScaleAndMin}); the quants are those of the fit, not rounded again
     * against the scale as stored.
     */
    private static void weighted(GGMLType type, float[] x, int from, int n, float[] importance, MemorySegment out, long offset) {
        float sumX2 = 0;
        for (int j = 0; j < n; j++) sumX2 += x[from + j] * x[from + j];
        float sigma2 = sumX2 / n;
        float[] weights = new float[32], min = new float[1];
        int[] q = new int[32], candidate = new int[32];
        boolean asymmetric = type == GGMLType.Q4_1 || type == GGMLType.Q5_1;
        int nmax = type == GGMLType.Q4_0 ? 8 : type == GGMLType.Q5_0 ? 16 : type == GGMLType.Q4_1 ? 15 : 31;
        for (int b = 0; b < n / 32; b++, offset += type.blockBytes) {
            int i0 = from + 32 * b;
            KQuantizer.importanceWeights(x, i0, 32, sigma2, importance, 32 * b, weights);
            float d = asymmetric ? KQuantizer.fitScaleAndMin(x, i0, 32, nmax, weights, q, 0, min, 0, candidate, -0.9f, 0.05f, 36, false)
                    : KQuantizer.fitSigned(x, i0, 32, nmax, weights, q, 0);
            out.set(SHORT_LE, offset, Float.floatToFloat16(d));
            long quants = offset + 2;
            if (asymmetric) {
                out.set(SHORT_LE, offset + 2, Float.floatToFloat16(-min[0]));
                quants = offset + 4;
            }
            if (nmax == 31 || nmax == 16) {
                writeFiveBits(q, out, quants);
            } else {
                for (int j = 0; j < 16; j++) out.set(ValueLayout.JAVA_BYTE, quants + j, (byte) (q[j] | q[j + 16] << 4));
            }
        }
    }

    /**
     * The first of the {@code n} weights at {@code x[at]} whose magnitude is the largest, sign and all (0 for all
     * zeros): the reference quantizers' {@code amax}/{@code max} scan, whose scales are that weight over the levels.
     */
    static float largestMagnitude(float[] x, int at, int n) {
        float amax = 0, max = 0;
        for (int j = 0; j < n; j++) {
            float v = x[at + j];
            if (Math.abs(v) > amax) {
                amax = Math.abs(v);
                max = v;
            }
        }
        return max;
    }

    /**
     * Q5_0's and Q5_1's quants at {@code at}: the fifth bits as a little-endian int (bit j: weight j's), then the low
     * nibbles, weights j and j + 16 in byte j.
     */
    private static void writeFiveBits(int[] q, MemorySegment out, long at) {
        int high = 0;
        for (int j = 0; j < 32; j++) high |= putLowNibble(out, at + 4, j, q[j]);
        out.set(INT_LE, at, high);
    }

    /**
     * Weight j's low four bits into a block's 16 nibble bytes at {@code nibbles} (weights j and j + 16 share byte j; j
     * below 16 first), as {@link #writeFiveBits} lays them out; returns its fifth bit at bit j, for the block's int.
     * Weight by weight, so that the reference rounding needs no array (the KV cache quantizes with it at every step).
     */
    private static int putLowNibble(MemorySegment out, long nibbles, int j, int q) {
        if (j < 16) out.set(ValueLayout.JAVA_BYTE, nibbles + j, (byte) (q & 0xF));
        else out.set(ValueLayout.JAVA_BYTE, nibbles + j - 16, (byte) (out.get(ValueLayout.JAVA_BYTE, nibbles + j - 16) | (q & 0xF) << 4));
        return (q >> 4 & 1) << j;
    }

    /** C's {@code roundf}: halves away from zero (Math.round would send -2.5 to -2). */
    static int roundHalfAway(float v) {
        return (int) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v);
    }
}
