package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

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

    @Override
    void dequantizeBlock(long offset, float[] out, int at) {
        float d = f16(data, offset + 80), dmin = f16(data, offset + 82);
        for (int sub = 0; sub < 16; sub++) {
            int half = sub / 8, j = sub % 8 / 2, bytes = sub % 2 * 16; // 128 weights, bit pair, first or second 16 bytes
            int scale = data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, offset + sub) & 0xFF;
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
