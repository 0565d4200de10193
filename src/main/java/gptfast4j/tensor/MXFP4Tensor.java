package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * MXFP4 (OCP microscaling FP4, ggml's block_mxfp4, as llama-quantize's MXFP4_MOE type writes a MoE model's experts):
 * blocks of 32 weights, 17 bytes: an E8M0 exponent e, then 16 bytes whose low nibbles are weights 0-15 and high
 * nibbles 16-31, as IQ4_NL's. Each nibble is an E2M1 float; ggml keeps them doubled as int8 levels
 * ({@link BlockTensor#MXFP4_LEVELS}) and halves the scale: weight = {@code level[q] * 2^(e - 128)}. IQ4_NL's kernels
 * with MXFP4's levels: {@link #levelsDot} in the file's layout, and IQ4_XS's decode layout ({@link IQ4Lanes}, the
 * scale an f32 per 32 weights: 160 bytes per row and 256 weights against the file's 136) where it fits, as IQ4_XS's;
 * Q8_0's layout, IQ4_NL's other, would not do: its f16 scale cannot hold every {@code 2^(e - 128)}.
 */
final class MXFP4Tensor extends BlockTensor {
    MXFP4Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.MXFP4, data, cols, rows);
    }

    /** {@code 2^(e - 128)} for the E8M0 byte e, as ggml's GGML_E8M0_TO_FP32_HALF: subnormal for e < 2. */
    static float scale(byte e) {
        int x = e & 0xFF;
        return Float.intBitsToFloat(x < 2 ? 0x0020_0000 << x : x - 1 << 23);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        levelsBlock(offset + 1, scale(data.get(JAVA_BYTE, offset)), out, at, true);
    }

    /** A copy in {@link IQ4Lanes}' layout where that is {@link IQ4Lanes#preferred}; otherwise decode reads the file's layout. */
    @Override
    public Tensor forDecode(OffHeap memory) {
        return IQ4Lanes.preferred(this) ? IQ4Lanes.of(this, memory) : this;
    }

    @Override
    public long decodeCopyBytes() {
        return IQ4Lanes.preferred(this) ? IQ4Lanes.layoutBytes(this) : 0;
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return levelsDot(row, x, xOffset, false, true);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
