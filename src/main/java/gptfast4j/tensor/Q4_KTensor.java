package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q4_K: {@code [f16 d][f16 dmin][12 bytes: eight 6-bit scales and mins][128 bytes of nibbles]} per 256 weights.
 * Each 64 weights take 32 bytes: low nibbles are sub-block 2j, high nibbles sub-block 2j+1;
 * weight = d * scale * q - dmin * min.
 */
final class Q4_KTensor extends KQuantTensor {
    Q4_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q4_K, data, cols, rows);
    }

    /**
     * Per super-block: {@code d * sum(scale * q · x)} - the mins' share, which comes from the sums of x
     * ({@link #blockSums}). One flat loop over the 128 quant bytes (byte k: weight 64(k/32) + k%32 in its low nibble,
     * 32 further in its high one); the 6-bit scales multiply the quants as ints, so the floats see one conversion and
     * one FMA per vector. A loop per 64 weights paid its set-up each time (C2's pre- and post-loops): 3.80 against
     * 3.45 ns per 32 weights in cache, and TinyLlama Q4_K decode 13.6/14.1 against 15.2/15.6 tokens/s.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** The dot product given the {@link #blockSums} of x. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset);
            long scales = packedScales(offset + 4), qs = offset + 16;
            FloatVector lo = FloatVector.zero(F_SPECIES), hi = lo;
            for (int k = 0; k < 128; k += lanes) {
                int shift = 16 * (k / 32);
                IntVector q = bytes(qs + k);
                int w = xOffset + i + 2 * k - k % 32;
                lo = floats(q.and(0xF).mul((int) (scales >>> shift) & 0xFF)).fma(FloatVector.fromArray(F_SPECIES, x, w), lo);
                hi = floats(q.lanewise(VectorOperators.LSHR, 4).mul((int) (scales >>> shift + 8) & 0xFF)).fma(FloatVector.fromArray(F_SPECIES, x, w + 32), hi);
            }
            acc = lo.add(hi).fma(FloatVector.broadcast(F_SPECIES, d), acc);
        }
        return VectorMath.sum(acc) - minsShare(row, xSums);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        dequantizeScaleMin(row, out, outOffset, -1, 16);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        float[] xSums = blockSums(x, xOffset, cols);
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
    }
}
