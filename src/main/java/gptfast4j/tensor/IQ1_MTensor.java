package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ1_M (1.75 bits a weight): a super-block (56 bytes, block_iq1_m) is 32 bytes of index low bits (one per 8 weights),
 * then per 16 weights a byte: each nibble the top three bits of an index (the 2048 entries of 8, iq1s_grid, each weight
 * -1, 0 or 1) and the sign of its group's shift of 1/8; then four u16 of 3-bit scales s, {@code d * (2s + 1)} per 16
 * weights, whose top nibbles hold the f16 d.
 */
final class IQ1_MTensor extends GridTensor {
    private static final Codebook BOOK = IQ1_STensor.BOOK; // the same codebook

    IQ1_MTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ1_M, data, cols, rows);
    }

    /** The {@code blocks} super-blocks from byte {@code offset} of {@code data}, sub-block by sub-block to {@code g}: their weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, int blocks, Groups g) {
        for (int block = 0; block < blocks; block++, offset += GGMLType.IQ1_M.blockBytes) {
            long scales = data.get(LONG_LE, offset + 48);
            int s = (int) scales, t = (int) (scales >>> 32);
            float d = Float.float16ToFloat((short) (s >>> 12 & 0xF | s >>> 24 & 0xF0 | t >>> 4 & 0xF00 | t >>> 16 & 0xF000));
            for (int sub = 0; sub < 8; sub++) {
                int indices = data.get(INT_LE, offset + 4 * sub), high = data.get(SHORT_LE, offset + 32 + 2 * sub);
                int subScales = (int) (scales >>> 16 * (sub / 2) + 6 * (sub & 1));
                // the codebook holds 8 times the weights
                g.subBlock(256 * block + 32 * sub, BOOK.entry(index(indices, high, 0)), BOOK.entry(index(indices, high, 1)), BOOK.entry(index(indices, high, 2)), BOOK.entry(index(indices, high, 3)),
                        0, d * (2 * (subScales & 7) + 1) * 0.125f, d * (2 * (subScales >>> 3 & 7) + 1) * 0.125f);
            }
        }
    }

    /**
     * Group {@code l}'s index: its byte of {@code indices}, the top three bits from its nibble of {@code high}, and
     * the nibble's bit 3 (the shift -1/8) choosing the codebook's second half.
     */
    private static int index(int indices, int high, int l) {
        int nibble = high >>> 4 * l & 0xF;
        return (nibble & 8) << 8 | indices >>> 8 * l & 0xFF | (nibble & 7) << 8;
    }
}
