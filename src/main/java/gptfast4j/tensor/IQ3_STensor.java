package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ3_S (3.44 bits a weight): a super-block (110 bytes, block_iq3_s) is f16 d, 64 bytes of index low bits (one per 4
 * weights), per 32 weights a byte of the indices' ninth bits (the 512 entries of 4, iq3s_grid), 32 sign bytes (bit j
 * for weight j of 8), then a byte per 64 weights whose nibbles are the scales s of its halves, {@code d * (1 + 2s)}.
 */
final class IQ3_STensor extends GridTensor {
    private static final Codebook BOOK = Codebook.of("iq3s_grid");

    IQ3_STensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ3_S, data, cols, rows);
    }

    /** The {@code blocks} super-blocks from byte {@code offset} of {@code data}, sub-block by sub-block to {@code g}: their weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, int blocks, Groups g) {
        for (int block = 0; block < blocks; block++, offset += GGMLType.IQ3_S.blockBytes) {
            float d = f16(data, offset);
            long highs = data.get(LONG_LE, offset + 66);
            int scales = data.get(INT_LE, offset + 106);
            for (int sub = 0; sub < 8; sub++) {
                long indices = data.get(LONG_LE, offset + 2 + 8 * sub);
                int high = (int) (highs >>> 8 * sub);
                float scale = d * (1 + 2 * (scales >>> 4 * sub & 0xF));
                g.subBlock(256 * block + 32 * sub, BOOK.pair(index(indices, high, 0), index(indices, high, 1)), BOOK.pair(index(indices, high, 2), index(indices, high, 3)),
                        BOOK.pair(index(indices, high, 4), index(indices, high, 5)), BOOK.pair(index(indices, high, 6), index(indices, high, 7)),
                        data.get(INT_LE, offset + 74 + 4 * sub), scale, scale);
            }
        }
    }

    /** Group {@code k}'s index: byte k of {@code indices}, bit k of {@code high} above. */
    private static int index(long indices, int high, int k) {
        return (int) (indices >>> 8 * k) & 0xFF | high << 8 - k & 256;
    }
}
