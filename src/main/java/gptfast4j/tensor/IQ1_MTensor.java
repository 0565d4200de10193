package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * IQ1_M (1.75 bits a weight): a super-block (56 bytes, block_iq1_m) is 32 bytes of index low bits (one per 8 weights),
 * then per 16 weights a byte: each nibble the top three bits of an index (the 2048 entries of 8, iq1s_grid, each weight
 * -1, 0 or 1) and the sign of its group's shift of 1/8; then four u16 of 3-bit scales s, {@code d * (2s + 1)} per 16
 * weights, whose top nibbles hold the f16 d.
 */
final class IQ1_MTensor extends GridTensor {
    private static final Codebook BOOK = Codebook.shifted("iq1s_grid");

    IQ1_MTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.IQ1_M, data, cols, rows, BOOK);
    }

    /** The header of the super-block at byte {@code offset} of {@code data}, decoded into {@code g}. */
    static void decode(MemorySegment data, long offset, Groups g) {
        int s0 = data.get(SHORT_LE, offset + 48) & 0xFFFF, s1 = data.get(SHORT_LE, offset + 50) & 0xFFFF;
        int s2 = data.get(SHORT_LE, offset + 52) & 0xFFFF, s3 = data.get(SHORT_LE, offset + 54) & 0xFFFF;
        float d = Float.float16ToFloat((short) (s0 >>> 12 | s1 >>> 8 & 0xF0 | s2 >>> 4 & 0xF00 | s3 & 0xF000));
        for (int sub = 0; sub < 8; sub++) {
            int scales = data.get(SHORT_LE, offset + 48 + 2 * (sub / 2)) >>> 6 * (sub & 1);
            g.scale[2 * sub] = d * (2 * (scales & 7) + 1) * 0.125f; // the codebook holds 8 times the weights
            g.scale[2 * sub + 1] = d * (2 * (scales >>> 3 & 7) + 1) * 0.125f;
            for (int l = 0; l < 4; l++) {
                int high = data.get(JAVA_BYTE, offset + 32 + 2 * sub + l / 2) >>> 4 * (l & 1) & 0xF;
                // bit 3: the shift -1/8, the codebook's second half
                g.entry[4 * sub + l] = (high & 8) << 8 | data.get(JAVA_BYTE, offset + 4 * sub + l) & 0xFF | (high & 7) << 8;
            }
            g.signs(sub, 0);
        }
    }
}
