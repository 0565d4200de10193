package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ3_XXS (3.06 bits a weight): a super-block (98 bytes, block_iq3_xxs) is f16 d, 64 byte indices (one per 4 weights,
 * into the 256 entries of 4, iq3xxs_grid), then per 32 weights a word of four 7-bit signs ({@link GridTensor#SIGNS},
 * each for 8 weights) under a 4-bit scale s, {@code d * (0.5 + s) / 2}.
 */
final class IQ3_XXSTensor extends GridTensor {
    private static final Codebook BOOK = Codebook.narrow("iq3xxs_grid");

    IQ3_XXSTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ3_XXS, data, cols, rows);
    }

    /** The super-block at byte {@code offset} of {@code data} decoded into {@code g}: its weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, Groups g) {
        float d = f16(data, offset);
        for (int sub = 0; sub < 8; sub++) {
            long indices = data.get(LONG_LE, offset + 2 + 8 * sub);
            int aux = data.get(INT_LE, offset + 66 + 4 * sub);
            for (int k = 0; k < 8; k++) g.narrow(8 * sub + k, BOOK, (int) (indices >>> 8 * k) & 0xFF);
            float scale = d * (0.5f + (aux >>> 28)) * 0.5f;
            g.subBlock(sub, SIGNS[aux & 127] | SIGNS[aux >>> 7 & 127] << 8 | SIGNS[aux >>> 14 & 127] << 16 | SIGNS[aux >>> 21 & 127] << 24, scale, scale);
        }
    }
}
