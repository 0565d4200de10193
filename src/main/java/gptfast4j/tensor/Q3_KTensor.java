package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

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

    /**
     * The 16 sub-block scales of the super-block at {@code offset} (6 bits each, 32 more than the scale) as the bytes
     * of two longs, sub-block s in byte {@code s % 8} of the first (s < 8) or second: each scale's low nibble from
     * byte {@code s % 8} of the 12 scale bytes (the low nibble for sub-blocks 0-7, the high for 8-15), its top two
     * bits from byte {@code 8 + s % 4} (bits {@code 2 * (s / 4)}). Whole words, so that the kernel takes no byte apart.
     */
    private long packedScales(long offset, boolean second) {
        return packedScales(data, offset, second);
    }

    /** {@link #packedScales(long, boolean)} of the super-block at {@code offset} of {@code m}. */
    static long packedScales(MemorySegment m, long offset, boolean second) {
        int a0 = m.get(INT_LE, offset + 96), a1 = m.get(INT_LE, offset + 100), top = m.get(INT_LE, offset + 104);
        int shift = second ? 4 : 0;
        long first = (a0 >>> shift & 0x0F0F0F0F) | (top >>> shift & 0x03030303) << 4, next = (a1 >>> shift & 0x0F0F0F0F) | (top >>> shift + 2 & 0x03030303) << 4;
        return first & 0xFFFFFFFFL | next << 32;
    }

    /** Sub-block {@code sub}'s scale, less 32, from {@link #packedScales}. */
    static int scale(long first, long second, int sub) {
        return (int) ((sub < 8 ? first : second) >>> 8 * (sub % 8) & 0xFF) - 32;
    }

    /**
     * The dot product straight from the bytes: a load of quants and third bits serves four sub-blocks (the shifts
     * differ).
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        int lanes = I_SPECIES.length();
        FloatVector acc = FloatVector.zero(F_SPECIES);
        long offset = row * rowBytes;
        for (int i = xOffset; i < xOffset + cols; i += 256, offset += type.blockBytes) {
            float d = f16(data, offset + 108);
            long first = packedScales(offset, false), second = packedScales(offset, true);
            for (int bytes = 0; bytes < 32; bytes += 16) {
                for (int l = 0; l < 16; l += lanes) {
                    IntVector h = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + bytes + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + bytes + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                    for (int half = 0; half < 2; half++) {
                        long quants = offset + 32 + 32L * half + bytes + l;
                        IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                                : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                        for (int j = 0; j < 4; j++) {
                            int sub = 8 * half + 2 * j + bytes / 16;
                            IntVector value = q.lanewise(VectorOperators.LSHR, 2 * j).and(3).add(h.lanewise(VectorOperators.LSHR, 4 * half + j).and(1).lanewise(VectorOperators.LSHL, 2)).sub(4);
                            acc = ((FloatVector) value.convert(VectorOperators.I2F, 0)).mul(d * scale(first, second, sub)).fma(FloatVector.fromArray(F_SPECIES, x, i + 16 * sub + l), acc);
                        }
                    }
                }
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        float d = f16(data, offset + 108);
        long first = packedScales(offset, false), second = packedScales(offset, true);
        for (int sub = 0; sub < 16; sub++) {
            int half = sub / 8, j = sub % 8 / 2, bytes = sub % 2 * 16;
            FloatVector dl = FloatVector.broadcast(F_SPECIES, d * scale(first, second, sub));
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

    /**
     * A copy in a decode layout of its own ({@link Q3_KLanes}), 1.35x Q3_K's bytes. TinyLlama Q3_K_M tg64, 2 threads,
     * from the file's layout 22.2-22.5 tokens/s; from a copy in Q6_K's decode layout (its weights exactly Q6_K's kind,
     * at 1.9x their bytes) 56.6-58.7.
     */
    @Override
    public Tensor forDecode(OffHeap memory) {
        return Q3_KLanes.of(this, memory);
    }

    @Override
    public long decodeCopyBytes() {
        return Q3_KLanes.layoutBytes(this);
    }

    /**
     * Weights {@code l .. l + 7} (l = 0 or 8) of sub-block {@code sub} of the super-block at {@code row[at ..]} (a
     * row's bytes) as their quants plus 4 (0..7), one per byte of a long: the bit pair from the quant bytes and the
     * third bit from the high-bit bytes, eight at a time.
     */
    static long quantBytes(MemorySegment row, int at, int sub, int l) {
        int half = sub / 8, j = sub % 8 / 2, bytes = sub % 2 * 16 + l;
        long quants = row.get(LONG_LE, at + 32 + 32 * half + bytes) >>> 2 * j & 0x0303_0303_0303_0303L;
        long third = row.get(LONG_LE, at + bytes) >>> 4 * half + j & 0x0101_0101_0101_0101L;
        return quants | third << 2;
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
