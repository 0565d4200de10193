package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q5_0: blocks of 32 weights, {@code d * (q - 16)} for 5-bit q. A block (22 bytes, ggml-common.h's block_q5_0): f16
 * d, 32 fifth bits (bit j for weight j), then 16 bytes whose low nibbles are weights 0-15 and high nibbles 16-31.
 */
final class Q5_0Tensor extends BlockTensor {
    Q5_0Tensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q5_0, data, cols, rows);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        fiveBitBlock(offset, out, at, 2, 16, false);
    }

    /**
     * Q8_0's decode layout, which holds Q5_0's weights exactly: {@code d * (q - 16)} is Q8_0's {@code d * q'} with the
     * int8 {@code q' = q - 16}, blocks of 32 alike ({@link #q8_0Copy}: 34 bytes a block against Q5_0's 22).
     */
    @Override
    public Tensor forDecode(OffHeap memory) {
        return q8_0Copy(memory, (from, q8, to) -> {
            q8.set(SHORT_LE, to, data.get(SHORT_LE, from));
            int high = data.get(INT_LE, from + 2);
            for (int j = 0; j < 16; j++) {
                int nibbles = data.get(JAVA_BYTE, from + 6 + j);
                q8.set(JAVA_BYTE, to + 2 + j, (byte) ((nibbles & 0xF | (high >>> j & 1) << 4) - 16));
                q8.set(JAVA_BYTE, to + 18 + j, (byte) ((nibbles >> 4 & 0xF | (high >>> j + 16 & 1) << 4) - 16));
            }
        });
    }

    @Override
    public long decodeCopyBytes() {
        return q8_0CopyBytes();
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return fiveBitDot(row, x, xOffset, 2, 16, false);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
