package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ2_XXS (2.06 bits a weight): a super-block (66 bytes, block_iq2_xxs) is f16 d, then per 32 weights two words: four
 * byte indices into the 256 entries of 8 (iq2xxs_grid), and four 7-bit signs ({@link GridTensor#SIGNS}) under a 4-bit
 * scale s, {@code d * (0.5 + s) / 4}.
 */
final class IQ2_XXSTensor extends GridTensor {
    private static final Codebook BOOK = Codebook.of("iq2xxs_grid");

    IQ2_XXSTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ2_XXS, data, cols, rows);
    }

    /** The {@code blocks} super-blocks from byte {@code offset} of {@code data}, sub-block by sub-block to {@code g}: their weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, int blocks, Groups g) {
        for (int block = 0; block < blocks; block++, offset += GGMLType.IQ2_XXS.blockBytes) {
            float d = f16(data, offset);
            for (int sub = 0; sub < 8; sub++) {
                long words = data.get(LONG_LE, offset + 2 + 8 * sub);
                int indices = (int) words, aux = (int) (words >>> 32);
                float scale = d * (0.5f + (aux >>> 28)) * 0.25f;
                g.subBlock(256 * block + 32 * sub, BOOK.entry(indices & 0xFF), BOOK.entry(indices >>> 8 & 0xFF), BOOK.entry(indices >>> 16 & 0xFF), BOOK.entry(indices >>> 24),
                        SIGNS[aux & 127] | SIGNS[aux >>> 7 & 127] << 8 | SIGNS[aux >>> 14 & 127] << 16 | SIGNS[aux >>> 21 & 127] << 24, scale, scale);
            }
        }
    }
}
