package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * IQ4_XS: super-blocks of 256 weights in 8 groups of 32, {@code d * (scale - 32) * LEVELS[q]} for 4-bit q
 * ({@link BlockTensor#LEVELS}) and a 6-bit scale per group. A super-block (136 bytes, block_iq4_xs): f16 d, the
 * scales' top bit pairs (u16, group g's at bits 2g), their low nibbles (4 bytes, group g's in byte g / 2, the high
 * nibble for odd g), then per group IQ4_NL's 16 nibble bytes. It decodes from a layout of its own ({@link IQ4Lanes}):
 * {@code d * (scale - 32)} needs more than Q8_0's f16 scale, and the levels more than Q6_K's six bits.
 */
final class IQ4_XSTensor extends BlockTensor {
    IQ4_XSTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ4_XS, data, cols, rows);
    }

    /** Group g's scale {@code d * (scale - 32)} of the super-block at {@code offset}, as ggml computes it (exact: 11 bits times 6). */
    static float scale(MemorySegment data, long offset, int g) {
        int low = data.get(JAVA_BYTE, offset + 4 + g / 2) >> 4 * (g % 2) & 0xF, high = data.get(SHORT_LE, offset + 2) >> 2 * g & 3;
        return f16(data, offset) * ((low | high << 4) - 32);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        for (int g = 0; g < 8; g++) levelsBlock(offset + 8 + 16 * g, scale(data, offset, g), out, at + 32 * g, false);
    }

    @Override
    public Tensor forDecode(OffHeap memory) {
        return IQ4Lanes.fits(this) ? IQ4Lanes.of(this, memory) : this;
    }

    @Override
    public long decodeCopyBytes() {
        return IQ4Lanes.fits(this) ? IQ4Lanes.layoutBytes(this) : 0;
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return levelsDot(row, x, xOffset, true, false);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
