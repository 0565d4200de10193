package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Formats read in their file's layout: each format's {@code dot} multiplies its bytes with x straight from them (each
 * final class's {@code dotRows} calls it, so that C2 sees one format there), and {@link #dequantizeBlock} decodes a
 * block to floats with vector code, rounding as ggml's dequantize_row (rows, the tiles). The GGUF types of downloadable
 * files that have no lane kernels of their own: Q5_0 and Q5_1 (older files, and tensors of some K-quant mixes) and Q2_K
 * and Q3_K (the Q2_K and Q3_K_S/M/L mixes). No decode layout of their own, so Q2_K and Q5_1 decode slower per byte than
 * Q4_K (README, "Quantization"); Q3_K's weights are exactly Q6_K's kind ({@link Q6_KTensor#ofQ3_K}) and Q5_0's Q8_0's,
 * so those two decode from copies in those formats' layouts.
 */
abstract sealed class BlockTensor extends Tensor permits Q5_0Tensor, Q5_1Tensor, Q2_KTensor, Q3_KTensor {
    /** Lane i holds i: a lane's position in a vector, for shifts that differ by lane. */
    static final IntVector LANE_INDEX = IntVector.zero(I_SPECIES).addIndex(1);

    BlockTensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        super(name, type, data, cols, rows);
    }

    /** The block at byte {@code offset} as {@code type.blockSize} floats at {@code out[at ..]}. */
    abstract void dequantizeBlock(long offset, float[] out, int at);

    /**
     * Q5_0's and Q5_1's block at {@code offset} (see {@link #fiveBitDot}) to {@code out[at ..]}: {@code (q - bias) * d},
     * and {@code + m} with a min, as ggml rounds them.
     */
    final void fiveBitBlock(long offset, float[] out, int at, int header, int bias, boolean withMin) {
        FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset)), m = FloatVector.broadcast(F_SPECIES, withMin ? f16(data, offset + 2) : 0);
        IntVector high = IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + header));
        for (int j = 0; j < 16; j += I_SPECIES.length()) {
            long quants = offset + header + 4 + j;
            IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                    : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
            IntVector lowFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j)).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector highFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j + 16)).and(1).lanewise(VectorOperators.LSHL, 4);
            FloatVector low = ((FloatVector) q.and(0xF).or(lowFifth).sub(bias).convert(VectorOperators.I2F, 0)).mul(d);
            FloatVector top = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).or(highFifth).sub(bias).convert(VectorOperators.I2F, 0)).mul(d);
            (withMin ? low.add(m) : low).intoArray(out, at + j); // no + 0 without one: it would turn ggml's -0 into +0
            (withMin ? top.add(m) : top).intoArray(out, at + 16 + j);
        }
    }

    /**
     * Q5_0's and Q5_1's dot product straight from the bytes: per block of 32, {@code d} (and Q5_1's {@code m}) in the
     * {@code header} bytes, then 32 fifth bits and 16 nibble bytes; weight {@code (q - bias) * d + m}. Decoding a
     * block into an array and multiplying it after ran TinyLlama Q5_0's decode at 3.1-3.5 tokens/s.
     */
    final float fiveBitDot(long row, float[] x, int xOffset, int header, int bias, boolean withMin) {
        int lanes = I_SPECIES.length();
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        long offset = row * rowBytes;
        for (int i = xOffset; i < xOffset + cols; i += 32, offset += type.blockBytes) {
            float d = f16(data, offset), m = withMin ? f16(data, offset + 2) : 0;
            IntVector high = IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + header));
            for (int j = 0; j < 16; j += lanes) {
                long quants = offset + header + 4 + j;
                IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                IntVector lowFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j)).and(1).lanewise(VectorOperators.LSHL, 4);
                IntVector highFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j + 16)).and(1).lanewise(VectorOperators.LSHL, 4);
                FloatVector low = ((FloatVector) q.and(0xF).or(lowFifth).sub(bias).convert(VectorOperators.I2F, 0)).fma(d, m);
                FloatVector top = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).or(highFifth).sub(bias).convert(VectorOperators.I2F, 0)).fma(d, m);
                acc0 = low.fma(FloatVector.fromArray(F_SPECIES, x, i + j), acc0);
                acc1 = top.fma(FloatVector.fromArray(F_SPECIES, x, i + 16 + j), acc1);
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public final void dequantizeRow(long row, float[] out, int outOffset) {
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += type.blockSize, offset += type.blockBytes) dequantizeBlock(offset, out, outOffset + i);
    }
}
