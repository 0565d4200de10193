package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The K-quants (256-weight super-blocks with per-sub-block scales), as most downloadable GGUF files use them.
 * Subclasses decode their block layout (ggml-common.h) in plain scalar code ({@link #decode}: dequantization, and
 * the reference for the tests) and may override {@link #dot} with a vector kernel; the default dot decodes one
 * super-block at a time into an L1-resident scratch.
 */
abstract sealed class KQuantTensor extends Tensor permits Q4_KTensor, Q5_KTensor, Q6_KTensor {
    static final int SUPER_BLOCK = 256;
    static final jdk.incubator.vector.VectorSpecies<Integer> I_SPECIES = F_SPECIES.withLanes(int.class);
    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[SUPER_BLOCK]);

    KQuantTensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        super(name, type, data, cols, rows);
    }

    /** Decodes the super-block at {@code offset} into {@code out[o .. o + 256)}. */
    abstract void decode(long offset, float[] out, int o);

    @Override
    public float dot(long row, float[] x, int xOffset) {
        float[] scratch = SCRATCH.get();
        long offset = row * rowBytes;
        float sum = 0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            decode(offset, scratch, 0);
            sum += VectorMath.dot(scratch, 0, x, xOffset + i, SUPER_BLOCK);
        }
        return sum;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) decode(offset, out, outOffset + i);
    }

    /** Bytes {@code [offset, offset + lanes)} as unsigned int lanes. */
    final jdk.incubator.vector.IntVector bytes(long offset) {
        return ((jdk.incubator.vector.IntVector) jdk.incubator.vector.ByteVector.fromMemorySegment(Q8_0Tensor.B_SPECIES, data, offset,
                java.nio.ByteOrder.LITTLE_ENDIAN).castShape(I_SPECIES, 0)).and(0xFF);
    }

    static jdk.incubator.vector.FloatVector floats(jdk.incubator.vector.IntVector v) {
        return (jdk.incubator.vector.FloatVector) v.castShape(F_SPECIES, 0);
    }

    final int u8(long offset) {
        return data.get(ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }

    /** ggml's get_scale_min_k4 for sub-block j of the 12 packed bytes: the 6-bit scale, and the min shifted left by 8. */
    final int scaleMin(long scales, int j) {
        if (j < 4) return (u8(scales + j) & 63) | (u8(scales + j + 4) & 63) << 8;
        return ((u8(scales + j + 4) & 0xF) | ((u8(scales + j - 4) >> 6) << 4))
                | ((u8(scales + j + 4) >> 4) | ((u8(scales + j) >> 6) << 4)) << 8;
    }
}
