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
     * Per 64 weights (two sub-blocks, 32 quant bytes: byte k holds weight k in its low nibble, 32 + k in its high one):
     * {@code sum(q · x)} per sub-block in floats, times {@code d * scale} once; the mins' share comes from the sums of
     * x ({@link #blockSums}). One flat loop over a super-block's 128 quant bytes, two vectors per step: a loop per 64
     * weights paid C2's loop set-up each time (3.30 against 3.10 ns per 32 weights in cache). Multiplying the 6-bit
     * scales into the quants as ints instead ({@code vpmulld}, then one FMA per vector) was slower: 3.37 against
     * 3.10-3.25 ns, TinyLlama Q4_K decode 15.0-16.0 against 15.5-17.2 tokens/s. Taking the scales from a per-row float
     * array, filled by the mins' loop, was slower too (3.35 ns).
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** The dot product given the {@link #blockSums} of x. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset);
            long scales = packedScales(offset + 4), qs = offset + 16;
            FloatVector lo = FloatVector.zero(F_SPECIES), hi = lo;
            for (int k = 0; k < 128; k += 2 * lanes) {
                IntVector q0 = bytes(qs + k), q1 = bytes(qs + k + lanes);
                int w = xOffset + i + 2 * k - k % 32;
                lo = floats(q0.and(0xF)).fma(FloatVector.fromArray(F_SPECIES, x, w), lo);
                hi = floats(q0.lanewise(VectorOperators.LSHR, 4)).fma(FloatVector.fromArray(F_SPECIES, x, w + 32), hi);
                lo = floats(q1.and(0xF)).fma(FloatVector.fromArray(F_SPECIES, x, w + lanes), lo);
                hi = floats(q1.lanewise(VectorOperators.LSHR, 4)).fma(FloatVector.fromArray(F_SPECIES, x, w + 32 + lanes), hi);
                // the end of a 64-weight group (2 * lanes divides 32 for every float species up to 512 bits)
                if ((k + 2 * lanes) % 32 == 0) {
                    int shift = 16 * (k / 32);
                    acc0 = lo.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> shift) & 0xFF)), acc0);
                    acc1 = hi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> shift + 8) & 0xFF)), acc1);
                    lo = FloatVector.zero(F_SPECIES);
                    hi = lo;
                }
            }
        }
        return VectorMath.sum(acc0.add(acc1)) - minsShare(row, xSums);
    }

    /** Rows that do not come in fours stay in the file's layout. */
    @Override
    public long decodeCopyBytes() {
        return rows % RowGroups.ROWS != 0 ? 0 : Q4_1Tensor.q4_kDecodeBytes(cols, rows);
    }

    /** Q4_1's decode layout with exact f32 block headers ({@link Q4_1Tensor#ofQ4_K}), or this tensor. */
    @Override
    public Tensor forDecode() {
        return decodeCopyBytes() == 0 ? this : Q4_1Tensor.ofQ4_K(this);
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
