package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ1_S (1.56 bits a weight): a super-block (50 bytes, block_iq1_s) is f16 d, 32 bytes of index low bits (one per 8
 * weights), then per 32 weights a u16: the four indices' top three bits (the 2048 entries of 8, iq1s_grid, each weight
 * -1, 0 or 1), a 3-bit scale s, {@code d * (2s + 1)}, and in bit 15 the sign of the shift of 1/8 added to every weight.
 */
final class IQ1_STensor extends GridTensor {
    static final Codebook BOOK = Codebook.shifted("iq1s_grid");

    IQ1_STensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ1_S, data, cols, rows);
    }

    /** The {@code blocks} super-blocks from byte {@code offset} of {@code data}, sub-block by sub-block to {@code g}: their weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, int blocks, Groups g) {
        for (int block = 0; block < blocks; block++, offset += GGMLType.IQ1_S.blockBytes) {
            float d = f16(data, offset);
            for (int sub = 0; sub < 8; sub++) {
                int indices = data.get(INT_LE, offset + 2 + 4 * sub), high = data.get(SHORT_LE, offset + 34 + 2 * sub) & 0xFFFF;
                int half = (high & 0x8000) != 0 ? 2048 : 0; // the shift -1/8: the codebook's second half
                float scale = d * (2 * (high >>> 12 & 7) + 1) * 0.125f; // the codebook holds 8 times the weights
                g.subBlock(256 * block + 32 * sub, BOOK.entry(half + index(indices, high, 0)), BOOK.entry(half + index(indices, high, 1)),
                        BOOK.entry(half + index(indices, high, 2)), BOOK.entry(half + index(indices, high, 3)), 0, scale, scale);
            }
        }
    }

    /** Group {@code l}'s index: its byte of {@code indices}, its three bits of {@code high} above. */
    private static int index(int indices, int high, int l) {
        return indices >>> 8 * l & 0xFF | (high >>> 3 * l & 7) << 8;
    }
}
