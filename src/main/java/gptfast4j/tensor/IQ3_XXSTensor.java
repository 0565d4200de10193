package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ3_XXS (3.06 bits a weight): a super-block (98 bytes, block_iq3_xxs) is f16 d, 64 byte indices (one per 4 weights,
 * into the 256 entries of 4, iq3xxs_grid), then per 32 weights a word of four 7-bit signs ({@link GridTensor#SIGNS},
 * each for 8 weights) under a 4-bit scale s, {@code d * (0.5 + s) / 2}.
 */
final class IQ3_XXSTensor extends GridTensor {
    private static final Codebook BOOK = Codebook.of("iq3xxs_grid");

    IQ3_XXSTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ3_XXS, data, cols, rows);
    }

    /** The {@code blocks} super-blocks from byte {@code offset} of {@code data}, sub-block by sub-block to {@code g}: their weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, int blocks, Groups g) {
        for (int block = 0; block < blocks; block++, offset += GGMLType.IQ3_XXS.blockBytes) {
            float d = f16(data, offset);
            for (int sub = 0; sub < 8; sub++) {
                long indices = data.get(LONG_LE, offset + 2 + 8 * sub);
                int aux = data.get(INT_LE, offset + 66 + 4 * sub);
                float scale = d * (0.5f + (aux >>> 28)) * 0.5f;
                g.subBlock(256 * block + 32 * sub, BOOK.pair(index(indices, 0), index(indices, 1)), BOOK.pair(index(indices, 2), index(indices, 3)),
                        BOOK.pair(index(indices, 4), index(indices, 5)), BOOK.pair(index(indices, 6), index(indices, 7)),
                        SIGNS[aux & 127] | SIGNS[aux >>> 7 & 127] << 8 | SIGNS[aux >>> 14 & 127] << 16 | SIGNS[aux >>> 21 & 127] << 24, scale, scale);
            }
        }
    }

    /** Group {@code k}'s index: byte k of {@code indices}. */
    private static int index(long indices, int k) {
        return (int) (indices >>> 8 * k) & 0xFF;
    }
}
