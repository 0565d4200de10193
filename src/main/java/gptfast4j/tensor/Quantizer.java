package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Float weights to Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1, with the rounding rules of llama.cpp's reference quantizers
 * ({@code quantize_row_q8_0_ref}, {@code _q4_0_ref}, ...), so files agree bit for bit with {@code llama-quantize}'s;
 * to IQ4_NL and IQ4_XS ({@link IQ4Quantizer}) and to Q2_K-Q6_K ({@link KQuantizer}), where Q4_0, Q5_0, Q5_1 and Q8_0
 * take the rows that those super-blocks of 256 do not divide. Scales are rounded to half precision to nearest even,
 * as F16C does.
 */
public final class Quantizer {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Quantizer() {
    }

    public static boolean supports(GGMLType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS -> true;
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
                quantizeRow(type, row, 0, t.cols, out, r * rowBytes);
            }
            t.releaseFilePages(start * t.rowBytes, end * t.rowBytes);
        });
        t.releaseFilePages();
        return Tensor.of(t.name, type, out, t.cols, t.rows);
    }

    /** Quantizes {@code n} floats (a multiple of the type's block size, 32 or 256) into {@code out} at {@code offset}. */
    public static void quantizeRow(GGMLType type, float[] x, int from, int n, MemorySegment out, long offset) {
        if (type == GGMLType.IQ4_NL || type == GGMLType.IQ4_XS) {
            IQ4Quantizer.quantizeRow(type, x, from, n, out, offset);
            return;
        }
        if (type.blockSize == 256) {
            KQuantizer.quantizeRow(type, x, from, n, out, offset);
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
                    int[] q = new int[32];
                    for (int j = 0; j < 32; j++) q[j] = Math.min(31, (byte) (int) (x[i0 + j] * id + 16.5f));
                    out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                    writeFiveBits(q, out, offset + 2);
                }
                case Q5_1 -> {
                    float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
                    for (int j = 0; j < 32; j++) {
                        min = Math.min(min, x[i0 + j]);
                        max = Math.max(max, x[i0 + j]);
                    }
                    float d = (max - min) / 31;
                    float id = d != 0 ? 1.0f / d : 0.0f;
                    int[] q = new int[32];
                    for (int j = 0; j < 32; j++) q[j] = (int) ((x[i0 + j] - min) * id + 0.5f) & 0xFF; // C's (uint8_t) cast
                    out.set(SHORT_LE, offset, Float.floatToFloat16(d));
                    out.set(SHORT_LE, offset + 2, Float.floatToFloat16(min));
                    writeFiveBits(q, out, offset + 4);
                }
                default -> throw new IllegalArgumentException("cannot quantize to " + type);
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
        for (int j = 0; j < 32; j++) high |= (q[j] >> 4 & 1) << j;
        out.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), at, high);
        for (int j = 0; j < 16; j++) out.set(ValueLayout.JAVA_BYTE, at + 4 + j, (byte) (q[j] & 0xF | (q[j + 16] & 0xF) << 4));
    }

    /** C's {@code roundf}: halves away from zero (Math.round would send -2.5 to -2). */
    private static int roundHalfAway(float v) {
        return (int) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v);
    }
}
