package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * TQ2_0 (2.06 bits a weight; llama.cpp's ternary type, as ternary-trained models' files use it): a super-block (66
 * bytes, block_tq2_0) is 64 bytes of 2-bit quants, then f16 d; weight {@code (q - 1) * d}, q in 0..2. Byte m of
 * half h (its 32 bytes) holds weight {@code 128h + 32l + m} in bits {@code 2l, 2l + 1}.
 * <p>
 * Read in the file's layout: a decode copy in Q8_0's layout, which would hold the weights exactly, is four times the
 * bytes these files exist to save.
 */
final class TQ2_0Tensor extends BlockTensor {
    TQ2_0Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.TQ2_0, data, cols, rows);
    }

    /** As ggml's dequantize_row_tq2_0: {@code (q - 1) * d}. */
    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        int lanes = I_SPECIES.length();
        float d = f16(data, offset + 64);
        for (int h = 0; h < 2; h++) {
            for (int m = 0; m < 32; m += lanes) {
                long quants = offset + 32 * h + m;
                // the Vector API's calls written out (Tensor.B_SPECIES); sign-extended bytes, whose low 8 bits the masks keep
                IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                for (int l = 0; l < 4; l++) {
                    ((FloatVector) q.lanewise(VectorOperators.LSHR, 2 * l).and(3).sub(1).convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, at + 128 * h + 32 * l + m);
                }
            }
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
     * Per super-block: q times x summed in floats, times d once; the {@code - 1} of every weight is {@code d} times
     * x's sum over the block ({@code xSums}, once per matrix call), one integer subtraction per 16 weights fewer than
     * {@code (q - 1)} per weight: TinyLlama tg32 57.9/57.8/54.7 -> 63.0/50.5/63.4 tokens/s, alternating JVMs. A sum per
     * bit pair rather than one for the block (session 85): bitnet_b1_58-large's shape, tg64 27.12/26.73 -> 28.15/29.10.
     */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = I_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        float offsets = 0;
        for (int i = xOffset, b = 0; i < xOffset + cols; i += 256, b++, offset += type.blockBytes) {
            // a sum per bit pair: four chains of multiply-adds, not one (a block's sixteen in a row waited on each other)
            FloatVector sum0 = FloatVector.zero(F_SPECIES), sum1 = sum0, sum2 = sum0, sum3 = sum0;
            for (int h = 0; h < 2; h++) {
                for (int m = 0; m < 32; m += lanes) {
                    long quants = offset + 32 * h + m;
                    int at = i + 128 * h + m;
                    IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                    sum0 = ((FloatVector) q.and(3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, at), sum0);
                    sum1 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 2).and(3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, at + 32), sum1);
                    sum2 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, at + 64), sum2);
                    sum3 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 6).and(3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, at + 96), sum3);
                }
            }
            FloatVector sum = sum0.add(sum1).add(sum2.add(sum3));
            float d = f16(data, offset + 64);
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
