package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q2_K: super-blocks of 256 weights in 16 sub-blocks of 16, {@code (d * scale) * q - dmin * min} for 2-bit q and
 * 4-bit scale and min. A super-block (84 bytes, block_q2_K): 16 bytes of scale (low nibble) and min (high), 64
 * bytes of quants, f16 d and dmin. Each half (128 weights) takes 32 quant bytes four times, bits 2j..2j+1 for its
 * sub-blocks 2j and 2j + 1 (bytes 0-15, then 16-31).
 */
final class Q2_KTensor extends BlockTensor {
    Q2_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q2_K, data, cols, rows);
    }

    /** The dot product straight from the bytes: a load of quants serves four sub-blocks (the shifts differ). */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        int lanes = I_SPECIES.length();
        FloatVector acc = FloatVector.zero(F_SPECIES);
        long offset = row * rowBytes;
        for (int i = xOffset; i < xOffset + cols; i += 256, offset += type.blockBytes) {
            float d = f16(data, offset + 80), dmin = f16(data, offset + 82);
            long first = data.get(LONG_LE, offset), second = data.get(LONG_LE, offset + 8); // sub-block s's scale and min in byte s
            for (int bytes = 0; bytes < 32; bytes += 16) {
                for (int l = 0; l < 16; l += lanes) {
                    for (int half = 0; half < 2; half++) {
                        long quants = offset + 16 + 32L * half + bytes + l;
                        IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                                : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                        for (int j = 0; j < 4; j++) {
                            int sub = 8 * half + 2 * j + bytes / 16;
                            int scale = (int) ((half == 0 ? first : second) >>> 8 * (sub % 8)) & 0xFF;
                            FloatVector w = ((FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j).and(3).convert(VectorOperators.I2F, 0)).mul(d * (scale & 0xF)).sub(dmin * (scale >>> 4));
                            acc = w.fma(FloatVector.fromArray(F_SPECIES, x, i + 16 * sub + l), acc);
                        }
                    }
                }
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** A copy in a decode layout of its own ({@link Q2_KLanes}). */
    @Override
    public Tensor forDecode(OffHeap memory) {
        return Q2_KLanes.of(this, memory);
    }

    @Override
    public long decodeCopyBytes() {
        return Q2_KLanes.layoutBytes(this);
    }

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        float d = f16(data, offset + 80), dmin = f16(data, offset + 82);
        for (int sub = 0; sub < 16; sub++) {
            int half = sub / 8, j = sub % 8 / 2, bytes = sub % 2 * 16; // 128 weights, bit pair, first or second 16 bytes
            int scale = data.get(JAVA_BYTE, offset + sub) & 0xFF;
            FloatVector dl = FloatVector.broadcast(F_SPECIES, d * (scale & 0xF)), ml = FloatVector.broadcast(F_SPECIES, dmin * (scale >>> 4));
            long quants = offset + 16 + 32L * half + bytes;
            for (int l = 0; l < 16; l += I_SPECIES.length()) {
                IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                ((FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j).and(3).convert(VectorOperators.I2F, 0)).mul(dl).sub(ml).intoArray(out, at + 16 * sub + l);
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
