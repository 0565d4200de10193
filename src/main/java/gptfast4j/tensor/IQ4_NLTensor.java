package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * IQ4_NL: blocks of 32 weights, {@code d * LEVELS[q]} for 4-bit q, the 16 levels non-uniform ({@link BlockTensor#LEVELS}).
 * A block (18 bytes, ggml-common.h's block_iq4_nl): f16 d, then 16 bytes whose low nibbles are weights 0-15 and high
 * nibbles 16-31, as Q4_0's.
 */
final class IQ4_NLTensor extends BlockTensor {
    IQ4_NLTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ4_NL, data, cols, rows);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        levelsBlock(offset + 2, f16(data, offset), out, at, false);
    }

    /**
     * IQ4_XS's decode layout ({@link IQ4Lanes}: 160 bytes per row and 256 weights against IQ4_NL's 144), or where that
     * does not fit (rows not of whole 256s, vectors of 128 bits) Q8_0's, which holds IQ4_NL's weights exactly too:
     * {@code d * LEVELS[q]} is Q8_0's {@code d * q'} with the int8 {@code q' = LEVELS[q]} ({@link #q8_0Copy}: 34 bytes
     * a block against 18). TinyLlama IQ4_NL tg64, 2 threads: 26.9 tokens/s from the file's layout, 36.9-38.2 from
     * Q8_0's. Q8_0's too on x86 without AVX-512 ({@link IQ4Lanes#preferred}).
     */
    @Override
    public Tensor forDecode(OffHeap memory) {
        if (IQ4Lanes.preferred(this)) return IQ4Lanes.of(this, memory);
        return q8_0Copy(memory, (from, q8, to) -> {
            q8.set(SHORT_LE, to, data.get(SHORT_LE, from));
            for (int j = 0; j < 16; j++) {
                int nibbles = data.get(JAVA_BYTE, from + 2 + j);
                q8.set(JAVA_BYTE, to + 2 + j, LEVELS[nibbles & 0xF]);
                q8.set(JAVA_BYTE, to + 18 + j, LEVELS[nibbles >> 4 & 0xF]);
            }
        });
    }

    @Override
    public long decodeCopyBytes() {
        return IQ4Lanes.preferred(this) ? IQ4Lanes.layoutBytes(this) : q8_0CopyBytes();
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return levelsDot(row, x, xOffset, false, false);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
