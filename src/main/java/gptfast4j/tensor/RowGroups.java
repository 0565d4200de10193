package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A decode layout for formats whose blocks are a small header then quant bytes (Q4_0 {@code [f16 d]}, Q4_1
 * {@code [f16 d][f16 m]}): rows in groups of {@link #ROWS}, and per block column the group's four headers, then its
 * quant bytes transposed, int j holding byte j of rows 0-3 in its bytes 0-3 ({@code [h0 h1 h2 h3][quant bytes x 4]},
 * the size of four blocks). Decode reads a group
 * as one stream (the row kernels live on the hardware prefetcher following one stream per thread), takes four rows'
 * quants from one vector load with two shifts per row, and loads each block of activations once for the four rows.
 */
final class RowGroups {
    static final int ROWS = 4;

    private RowGroups() {
    }

    /**
     * A copy of {@code t}'s bytes in the decode layout, off-heap ({@link OffHeap}); the pages of a mapped original are
     * then released from this process, so that the copy takes their place in memory rather than adding to them.
     */
    static MemorySegment copy(Tensor t, int blockBytes, int header, int flip) {
        MemorySegment copy = OffHeap.allocate(t.byteSize());
        regroup(t.data, copy, t.rows, t.rowBytes, blockBytes, header, flip);
        if (t.data.isMapped()) t.data.unload();
        return copy;
    }

    /**
     * Rows in the file's layout at {@code from} to the decode layout at {@code to} (which may be {@code from}), blocks
     * of {@code header} bytes then quant bytes, each quant byte xor {@code flip}. {@code rows} must be a multiple of
     * {@link #ROWS}.
     */
    static void regroup(MemorySegment from, MemorySegment to, long rows, long rowBytes, int blockBytes, int header, int flip) {
        int blocks = Math.toIntExact(rowBytes / blockBytes), quants = blockBytes - header;
        Parallel.run(Math.toIntExact(rows / ROWS), 4, (start, end) -> {
            // a group at a time through heap arrays: its rows in with one bulk copy, out the same way
            byte[] in = new byte[ROWS * blocks * blockBytes], out = new byte[in.length];
            for (long g = start; g < end; g++) {
                MemorySegment.copy(from, ValueLayout.JAVA_BYTE, g * in.length, in, 0, in.length);
                for (int b = 0, o = 0; b < blocks; b++, o += ROWS * blockBytes) {
                    for (int r = 0; r < ROWS; r++) {
                        int block = (r * blocks + b) * blockBytes;
                        System.arraycopy(in, block, out, o + header * r, header);
                        for (int j = 0; j < quants; j++) out[o + header * ROWS + 4 * j + r] = (byte) (in[block + header + j] ^ flip);
                    }
                }
                MemorySegment.copy(out, 0, to, ValueLayout.JAVA_BYTE, g * in.length, out.length);
            }
        });
    }

    /**
     * The ints of quant bytes {@code j ..} of the group block at {@code offset}, after four headers of {@code header}
     * bytes, as many as a float vector has lanes.
     */
    static IntVector quants(MemorySegment data, long offset, int header, int j) {
        return IntVector.fromMemorySegment(Tensor.I_SPECIES, data, offset + (long) header * ROWS + 4L * j, ByteOrder.LITTLE_ENDIAN);
    }

    /** Bits {@code [p, p + width)} of each lane as a signed value, as floats. */
    static FloatVector signedBits(IntVector v, int p, int width) {
        IntVector top = p + width == 32 ? v : v.lanewise(VectorOperators.LSHL, 32 - width - p);
        return (FloatVector) top.lanewise(VectorOperators.ASHR, 32 - width).convert(VectorOperators.I2F, 0);
    }

    /** The f16 at byte {@code at} of row r's header in the group block at {@code offset}, headers of {@code header} bytes. */
    static float half(MemorySegment data, long offset, int header, int r, int at) {
        return Tensor.f16(data, offset + (long) header * r + at);
    }
}
