package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ2_XS (2.31 bits a weight): a super-block (74 bytes, block_iq2_xs) is f16 d, 32 u16 (per 8 weights a 9-bit index
 * into the 512 entries of 8, iq2xs_grid, under 7-bit signs, {@link GridTensor#SIGNS}), then a byte per 32 weights, its
 * nibbles the scales s of their halves, {@code d * (0.5 + s) / 4}.
 */
final class IQ2_XSTensor extends GridTensor {
    private static final Codebook BOOK = Codebook.wide("iq2xs_grid");

    IQ2_XSTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ2_XS, data, cols, rows);
    }

    /** The super-block at byte {@code offset} of {@code data} decoded into {@code g}: its weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, Groups g) {
        float d = f16(data, offset);
        long scales = data.get(LONG_LE, offset + 66);
        for (int sub = 0; sub < 8; sub++) {
            long quants = data.get(LONG_LE, offset + 2 + 8 * sub);
            int signs = 0;
            for (int l = 0; l < 4; l++) {
                int q = (int) (quants >>> 16 * l) & 0xFFFF;
                g.wide(4 * sub + l, BOOK, q & 511);
                signs |= SIGNS[q >>> 9] << 8 * l;
            }
            g.subBlock(sub, signs, d * (0.5f + (scales >>> 8 * sub & 0xF)) * 0.25f, d * (0.5f + (scales >>> 8 * sub + 4 & 0xF)) * 0.25f);
        }
    }
}
