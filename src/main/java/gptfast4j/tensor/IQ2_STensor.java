package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ2_S (2.56 bits a weight): a super-block (82 bytes, block_iq2_s) is f16 d, 32 bytes of index low bits (one per 8
 * weights), 32 sign bytes (bit j for weight j of the 8), then per 32 weights a byte of the indices' top two bits (the
 * 1024 entries of 8, iq2s_grid) and a byte whose nibbles are the scales s of its halves, {@code d * (0.5 + s) / 4}.
 */
final class IQ2_STensor extends GridTensor {
    private static final Codebook BOOK = Codebook.of("iq2s_grid");

    IQ2_STensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ2_S, data, cols, rows);
    }

    /** The {@code blocks} super-blocks from byte {@code offset} of {@code data}, sub-block by sub-block to {@code g}: their weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, int blocks, Groups g) {
        for (int block = 0; block < blocks; block++, offset += GGMLType.IQ2_S.blockBytes) {
            float d = f16(data, offset);
            long highs = data.get(LONG_LE, offset + 66), scales = data.get(LONG_LE, offset + 74);
            for (int sub = 0; sub < 8; sub++) {
                int indices = data.get(INT_LE, offset + 2 + 4 * sub), high = (int) (highs >>> 8 * sub);
                g.subBlock(256 * block + 32 * sub, BOOK.entry(index(indices, high, 0)), BOOK.entry(index(indices, high, 1)), BOOK.entry(index(indices, high, 2)), BOOK.entry(index(indices, high, 3)),
                        data.get(INT_LE, offset + 34 + 4 * sub), d * (0.5f + (scales >>> 8 * sub & 0xF)) * 0.25f, d * (0.5f + (scales >>> 8 * sub + 4 & 0xF)) * 0.25f);
            }
        }
    }

    /** Group {@code l}'s index: its byte of {@code indices}, its two bits of {@code high} above. */
    private static int index(int indices, int high, int l) {
        return indices >>> 8 * l & 0xFF | high << 8 - 2 * l & 0x300;
    }
}
