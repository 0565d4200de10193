package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q3_K: super-blocks of 256 weights in 16 sub-blocks of 16, {@code d * (scale - 32) * (q - 4)} for 3-bit q (the
 * third bit set meaning no -4) and 6-bit scale. A super-block (110 bytes, block_q3_K): 32 bytes of third bits, 64
 * of low bit pairs, 12 of scales, f16 d. Sub-blocks as Q2_K's; sub-block s's third bits are bit s / 2 of the
 * high-bit bytes (bytes 0-15 or 16-31, as its quants).
 */
final class Q3_KTensor extends BlockTensor {
    Q3_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q3_K, data, cols, rows);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        float d = f16(data, offset + 108);
        // the 16 scales, 6 bits each: low nibbles from bytes 0-7 (scales 0-7 low, 8-15 high nibbles), top bit pairs
        // from bytes 8-11 (pair k / 4 of byte 8 + k % 4 for scale k)
        int a0 = data.get(INT_LE, offset + 96), a1 = data.get(INT_LE, offset + 100), top = data.get(INT_LE, offset + 104);
        int[] words = {(a0 & 0x0F0F0F0F) | (top & 0x03030303) << 4, (a1 & 0x0F0F0F0F) | (top >>> 2 & 0x03030303) << 4,
                (a0 >>> 4 & 0x0F0F0F0F) | (top >>> 4 & 0x03030303) << 4, (a1 >>> 4 & 0x0F0F0F0F) | (top >>> 6 & 0x03030303) << 4};
        for (int sub = 0; sub < 16; sub++) {
            int half = sub / 8, j = sub % 8 / 2, bytes = sub % 2 * 16;
            int scale = (words[sub / 4] >>> 8 * (sub % 4) & 0xFF) - 32;
            FloatVector dl = FloatVector.broadcast(F_SPECIES, d * scale);
            long quants = offset + 32 + 32L * half + bytes, highBits = offset + bytes;
            int bit = 4 * half + j;
            for (int l = 0; l < 16; l += I_SPECIES.length()) {
                IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                IntVector h = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, highBits + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, highBits + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                IntVector value = q.lanewise(VectorOperators.LSHR, 2 * j).and(3).add(h.lanewise(VectorOperators.LSHR, bit).and(1).lanewise(VectorOperators.LSHL, 2)).sub(4);
                ((FloatVector) value.convert(VectorOperators.I2F, 0)).mul(dl).intoArray(out, at + 16 * sub + l);
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
