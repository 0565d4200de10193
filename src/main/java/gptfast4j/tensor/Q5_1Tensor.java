package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * Q5_1: blocks of 32 weights, {@code d * q + m} for 5-bit q. A block (24 bytes, block_q5_1): f16 d and m, then Q5_0's
 * fifth bits and nibbles. It decodes from a layout of its own ({@link Q5_1Lanes}).
 */
final class Q5_1Tensor extends BlockTensor {
    Q5_1Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q5_1, data, cols, rows);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        fiveBitBlock(offset, out, at, 4, 0, true);
    }

    /** A copy in a decode layout of its own ({@link Q5_1Lanes}), where the rows are whole columns of 256 weights. */
    @Override
    public Tensor forDecode(OffHeap memory) {
        return Q5_1Lanes.fits(this) ? Q5_1Lanes.of(this, memory) : this;
    }

    @Override
    public long decodeCopyBytes() {
        return Q5_1Lanes.fits(this) ? Q5_1Lanes.layoutBytes(this) : 0;
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return fiveBitDot(row, x, xOffset, 4, 0, true);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
