package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * TQ1_0 (1.69 bits a weight; llama.cpp's other ternary type): a super-block (54 bytes, block_tq1_0) is 48 bytes of
 * five base-3 digits each, 4 bytes of four digits each, then f16 d; weight {@code (digit - 1) * d}. Digit n of a byte
 * b is ggml's {@code ((b * 3^n) mod 256) * 3 >> 8} (the bytes hold the digits as a fraction of 243, rounded up, so
 * that a multiply brings each to the top). Byte m of the first 32 holds weights {@code 32n + m}, byte m of the next
 * 16 weights {@code 160 + 16n + m}, byte j of the last 4 weights {@code 240 + 4n + j}.
 * <p>
 * Read in the file's layout, as {@link TQ2_0Tensor}.
 */
final class TQ1_0Tensor extends BlockTensor {
    /** For the last 16 weights, 4 bytes' digits: weight 240 + i is digit {@code i / 4} of byte {@code i % 4}, these its shift and 3^n. */
    private static final int[] LAST_SHIFTS = new int[16], LAST_POWERS = new int[16];
    private static final int[] POWERS = {1, 3, 9, 27, 81};

    static {
        for (int i = 0; i < 16; i++) {
            LAST_SHIFTS[i] = 8 * (i % 4);
            LAST_POWERS[i] = POWERS[i / 4];
        }
    }

    TQ1_0Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.TQ1_0, data, cols, rows);
    }

    /** As ggml's dequantize_row_tq1_0: {@code (digit - 1) * d}. */
    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        int lanes = I_SPECIES.length();
        float d = f16(data, offset + 52);
        // bytes 0-31 hold five digits of weights m, 32 + m, ...; bytes 32-47 five of 160 + m, 176 + m, ...
        for (int m = 0; m < 48; m += lanes) {
            int first = m < 32 ? m : 160 + (m - 32), step = m < 32 ? 32 : 16;
            long quants = offset + m;
            // one or two longs made a vector, as in dot; sign-extended bytes, whose low 8 bits the products keep
            LongVector bytes = LongVector.broadcast(LongVector.SPECIES_128, data.get(LONG_LE, quants));
            if (lanes > 8) bytes = bytes.withLane(1, data.get(LONG_LE, quants + 8));
            IntVector q = (IntVector) bytes.reinterpretAsBytes().convertShape(VectorOperators.B2I, I_SPECIES, 0);
            for (int n = 0; n < 5; n++) {
                ((FloatVector) q.mul(POWERS[n]).and(0xFF).mul(3).lanewise(VectorOperators.LSHR, 8).sub(1).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, at + first + step * n);
            }
        }
        IntVector last = IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 48));
        for (int v = 0; v < 16; v += lanes) {
            IntVector q = last.lanewise(VectorOperators.LSHR, IntVector.fromArray(I_SPECIES, LAST_SHIFTS, v)).mul(IntVector.fromArray(I_SPECIES, LAST_POWERS, v));
            ((FloatVector) q.and(0xFF).mul(3).lanewise(VectorOperators.LSHR, 8).sub(1).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, at + 240 + v);
        }
    }

    /** x's sums per 256, for the {@code - 1} of every weight ({@link #dot(long, float[], int, float[])}). */
    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        task.use(x, xOffset, blockSums(x, xOffset, cols, 256));
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, blockSums(x, xOffset, cols, 256));
    }

    /**
     * Per super-block: the digits times x summed in floats, times d once; the {@code - 1} of every weight is {@code d}
     * times x's sum over the block ({@code xSums}, once per matrix call). The bytes come as one or two longs read from
     * the file and made a vector ({@code withLane}, as {@link GridTensor}'s groups): loaded as a vector ({@code
     * ByteVector.fromMemorySegment}), the load was left as a call in 1 JVM in 3-5, which then decoded TinyLlama at
     * 17.5 tokens/s against 38-45, with or without a launcher command to inline it (docs/kernel-log.md session 65).
     * Each digit from the one before (a multiply by 3, a shift, an and; the vector carried from digit to digit)
     * decoded no faster and, without type profiles, boxed that vector: 15 GB allocated in 500 decode steps.
     */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = I_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        float offsets = 0;
        for (int i = xOffset, b = 0; i < xOffset + cols; i += 256, b++, offset += type.blockBytes) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int m = 0; m < 48; m += lanes) {
                int first = i + (m < 32 ? m : 160 + (m - 32)), step = m < 32 ? 32 : 16;
                long quants = offset + m;
                LongVector bytes = LongVector.broadcast(LongVector.SPECIES_128, data.get(LONG_LE, quants));
                if (lanes > 8) bytes = bytes.withLane(1, data.get(LONG_LE, quants + 8));
                IntVector q = (IntVector) bytes.reinterpretAsBytes().convertShape(VectorOperators.B2I, I_SPECIES, 0);
                for (int n = 0; n < 5; n++) {
                    sum = ((FloatVector) q.mul(POWERS[n]).and(0xFF).mul(3).lanewise(VectorOperators.LSHR, 8).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, first + step * n), sum);
                }
            }
            IntVector last = IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + 48));
            for (int v = 0; v < 16; v += lanes) {
                IntVector q = last.lanewise(VectorOperators.LSHR, IntVector.fromArray(I_SPECIES, LAST_SHIFTS, v)).mul(IntVector.fromArray(I_SPECIES, LAST_POWERS, v));
                sum = ((FloatVector) q.and(0xFF).mul(3).lanewise(VectorOperators.LSHR, 8).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + 240 + v), sum);
            }
            float d = f16(data, offset + 52);
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, d), acc);
            offsets += d * xSums[b];
        }
        return acc.reduceLanes(VectorOperators.ADD) - offsets;
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, sums);
    }
}
