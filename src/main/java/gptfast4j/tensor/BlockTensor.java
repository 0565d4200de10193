package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Formats read in their file's layout alone, a block at a time: each decodes one block of weights to floats with
 * vector code ({@link #dequantizeBlock}, rounding as ggml's dequantize_row), and a dot product multiplies them with x.
 * The GGUF types of downloadable files that have no lane kernels of their own: Q5_0 and Q5_1 (older files, and
 * tensors of some K-quant mixes) and Q2_K and Q3_K (the Q2_K and Q3_K_S/M/L mixes). No decode layout of their own: a
 * dot product decodes its blocks every time, so these decode slower per byte than Q4_K (README, "Quantization"); but
 * Q3_K's weights are exactly Q6_K's kind ({@link Q6_KTensor#ofQ3_K}), so it decodes in Q6_K's layout.
 */
abstract sealed class BlockTensor extends Tensor permits Q5_0Tensor, Q5_1Tensor, Q2_KTensor, Q3_KTensor {
    /** Lane i holds i: a lane's position in a vector, for shifts that differ by lane. */
    static final IntVector LANE_INDEX = IntVector.zero(I_SPECIES).addIndex(1);

    /** Each thread's decoded block. */
    private static final ThreadLocal<float[]> BLOCK = ThreadLocal.withInitial(() -> new float[256]);

    BlockTensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        super(name, type, data, cols, rows);
    }

    /** The block at byte {@code offset} as {@code type.blockSize} floats at {@code out[at ..]}. */
    abstract void dequantizeBlock(long offset, float[] out, int at);

    /**
     * A row's dot product, a decoded block at a time (each final class's {@code dotRows} calls it, so C2 sees one format
     * here); the formats most of a file can be in (Q2_K, Q3_K) multiply straight from their bytes instead.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        float[] w = BLOCK.get();
        int block = type.blockSize, lanes = F_SPECIES.length();
        FloatVector acc = FloatVector.zero(F_SPECIES);
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += block, offset += type.blockBytes) {
            dequantizeBlock(offset, w, 0);
            for (int l = 0; l < block; l += lanes) acc = FloatVector.fromArray(F_SPECIES, w, l).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + l), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    @Override
    public final void dequantizeRow(long row, float[] out, int outOffset) {
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += type.blockSize, offset += type.blockBytes) dequantizeBlock(offset, out, outOffset + i);
    }
}
