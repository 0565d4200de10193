package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * IQ2_XS (2.31 bits a weight): a super-block (74 bytes, block_iq2_xs) is f16 d, 32 u16 (per 8 weights a 9-bit index
 * into the 512 entries of 8, iq2xs_grid, under 7-bit signs, {@link GridTensor#SIGNS}), then a byte per 32 weights, its
 * nibbles the scales s of their halves, {@code d * (0.5 + s) / 4}.
 */
final class IQ2_XSTensor extends GridTensor {
    private static final Codebook BOOK = Codebook.of("iq2xs_grid");

    IQ2_XSTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ2_XS, data, cols, rows);
    }

    /** The {@code blocks} super-blocks from byte {@code offset} of {@code data}, sub-block by sub-block to {@code g}: their weights' bytes, signs and scales. */
    static void decode(MemorySegment data, long offset, int blocks, Groups g) {
        for (int block = 0; block < blocks; block++, offset += GGMLType.IQ2_XS.blockBytes) {
            float d = f16(data, offset);
            long scales = data.get(LONG_LE, offset + 66);
            for (int sub = 0; sub < 8; sub++) {
                long quants = data.get(LONG_LE, offset + 2 + 8 * sub); // four u16: a 9-bit index under 7 sign bits
                int q0 = (int) quants & 0xFFFF, q1 = (int) (quants >>> 16) & 0xFFFF, q2 = (int) (quants >>> 32) & 0xFFFF, q3 = (int) (quants >>> 48);
                g.subBlock(256 * block + 32 * sub, BOOK.entry(q0 & 511), BOOK.entry(q1 & 511), BOOK.entry(q2 & 511), BOOK.entry(q3 & 511),
                        SIGNS[q0 >>> 9] | SIGNS[q1 >>> 9] << 8 | SIGNS[q2 >>> 9] << 16 | SIGNS[q3 >>> 9] << 24,
                        d * (0.5f + (scales >>> 8 * sub & 0xF)) * 0.25f, d * (0.5f + (scales >>> 8 * sub + 4 & 0xF)) * 0.25f);
            }
        }
    }
}
