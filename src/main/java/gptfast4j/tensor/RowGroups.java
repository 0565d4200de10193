package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A decode layout for formats whose blocks are {@code [f16 d][quant bytes]} (used by Q4_0): rows in groups of
 * {@link #ROWS}, and per block column the group's four scales, then its quant bytes transposed, int j holding byte j
 * of rows 0-3 in its bytes 0-3 ({@code [d0 d1 d2 d3][quant bytes x 4]}, the size of four blocks). Decode reads a group
 * as one stream (the row kernels live on the hardware prefetcher following one stream per thread), takes four rows'
 * quants from one vector load with two shifts per row, and loads each block of activations once for the four rows.
 */
final class RowGroups {
    static final int ROWS = 4;
    static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RowGroups() {
    }

    /**
     * Rows in the file's layout at {@code from} to the decode layout at {@code to} (which may be {@code from}), each
     * quant byte xor {@code flip}. {@code rows} must be a multiple of {@link #ROWS}.
     */
    static void regroup(MemorySegment from, MemorySegment to, long rows, long rowBytes, int blockBytes, int flip) {
        int blocks = Math.toIntExact(rowBytes / blockBytes), quants = blockBytes - 2;
        Parallel.run(Math.toIntExact(rows / ROWS), 4, (start, end) -> {
            // a group at a time through heap arrays: its rows in with one bulk copy, out the same way
            byte[] in = new byte[ROWS * blocks * blockBytes], out = new byte[in.length];
            for (long g = start; g < end; g++) {
                MemorySegment.copy(from, ValueLayout.JAVA_BYTE, g * in.length, in, 0, in.length);
                for (int b = 0, o = 0; b < blocks; b++, o += ROWS * blockBytes) {
                    for (int r = 0; r < ROWS; r++) {
                        int block = (r * blocks + b) * blockBytes;
                        out[o + 2 * r] = in[block];
                        out[o + 2 * r + 1] = in[block + 1];
                        for (int j = 0; j < quants; j++) out[o + 2 * ROWS + 4 * j + r] = (byte) (in[block + 2 + j] ^ flip);
                    }
                }
                MemorySegment.copy(out, 0, to, ValueLayout.JAVA_BYTE, g * in.length, out.length);
            }
        });
    }

    /** The ints of quant bytes {@code j ..} of the group block at {@code offset}, as many as a float vector has lanes. */
    static IntVector quants(MemorySegment data, long offset, int j) {
        return IntVector.fromMemorySegment(Tensor.I_SPECIES, data, offset + 2 * ROWS + 4L * j, ByteOrder.LITTLE_ENDIAN);
    }

    /** Bits {@code [p, p + width)} of each lane as a signed value, as floats. */
    static FloatVector signedBits(IntVector v, int p, int width) {
        IntVector top = p + width == 32 ? v : v.lanewise(VectorOperators.LSHL, 32 - width - p);
        return (FloatVector) top.lanewise(VectorOperators.ASHR, 32 - width).convert(VectorOperators.I2F, 0);
    }

    /** Row r's scale in the group block at {@code offset}. */
    static float scale(MemorySegment data, long offset, int r) {
        return Tensor.f16(data, offset + 2L * r);
    }
}
