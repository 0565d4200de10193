package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A 32-weight block format of f16 header fields then quants (Q8_0, Q4_0, Q4_1), in the file's layout or in its decode
 * layout, and the one copy between them. The decode layout puts rows in groups of L, one row per float lane
 * ({@link RowLanes}); per group and block column, each header field as a plane of L halves
 * ({@code [d of rows 0..L-1][m of rows 0..L-1]}), then the quants as planes of L ints, int t of lane r holding row
 * r's quants in the order its format's kernel takes them ({@link #laneInts}). The same bytes per block as the file's;
 * a last group that is not full is padded with zero rows.
 */
abstract sealed class RowGroupTensor extends Tensor implements Tensor.PanelRows permits Q8_0Tensor, Q4_0Tensor, Q4_1Tensor {
    /** Rows per group of the decode layout: one per float lane. */
    static final int L = RowLanes.L;
    /** Whether the bytes are in the decode layout. */
    final boolean grouped;
    /** Bytes before a block's quants. */
    private final int header;

    RowGroupTensor(String name, GGMLType type, MemorySegment data, int cols, long rows, boolean grouped, int header) {
        super(name, type, data, cols, rows);
        this.grouped = grouped;
        this.header = header;
    }

    @Override
    public final boolean inLanes() {
        return grouped;
    }

    @Override
    final boolean preparesLike(Tensor other) {
        return super.preparesLike(other) && grouped == ((RowGroupTensor) other).grouped;
    }

    /** This tensor over {@code data}, the same rows in the decode layout. */
    abstract RowGroupTensor inDecodeLayout(MemorySegment data);

    /**
     * A block's quants in the decode layout: from the file's block at {@code in[block ..]}, its int t (four for Q4_0
     * and Q4_1, eight for Q8_0) to {@code out[at + 4 * L * t ..]}, little-endian ({@link #INT_VIEW}).
     */
    abstract void laneInts(byte[] in, int block, byte[] out, int at);

    /** The copy's bytes: the tensor's, and a last group's padding. */
    @Override
    public long decodeCopyBytes() {
        return grouped ? 0 : RowLanes.groups(rows) * L * rowBytes;
    }

    /**
     * A copy in the decode layout, off-heap ({@link OffHeap}), or this tensor; the pages of a mapped original are
     * released from this process as the copy goes ({@link #relayout}), so that the copy takes their place in memory
     * rather than adding to them.
     */
    @Override
    public Tensor forDecode(OffHeap memory) {
        if (grouped) return this;
        MemorySegment copy = memory.allocate(decodeCopyBytes());
        relayout(copy);
        releaseFilePages();
        return inDecodeLayout(copy);
    }

    /**
     * The tensor rewritten in place in the decode layout, for copies made at load ({@link Quantizer}), or this tensor
     * where the rows do not come in whole groups (the layout would need padding).
     */
    Tensor regroupedInPlace() {
        if (grouped || rows % L != 0) return this;
        relayout(data);
        return inDecodeLayout(data);
    }

    /**
     * The rows in the decode layout at {@code to}, which may be this tensor's own bytes when the rows come in whole
     * groups: a group at a time through heap arrays, read and written with byte-array views (one bounds check per
     * access; through heap segments this loop ran about twice as long).
     */
    private void relayout(MemorySegment to) {
        int blockBytes = type.blockBytes, blocks = Math.toIntExact(rowBytes / blockBytes), fields = header / 2;
        int row = blocks * blockBytes, groupBytes = L * row, columnBytes = L * blockBytes;
        Parallel.run(Math.toIntExact(RowLanes.groups(rows)), 1, (start, end) -> {
            byte[] in = new byte[groupBytes], out = new byte[groupBytes];
            for (long g = start; g < end; g++) {
                int n = (int) Math.min(L, rows - g * L); // rows past the tensor's end are zero blocks
                java.util.Arrays.fill(in, n * row, groupBytes, (byte) 0);
                MemorySegment.copy(data, ValueLayout.JAVA_BYTE, g * groupBytes, in, 0, n * row);
                for (int r = 0; r < L; r++) {
                    for (int block = r * row, column = 0; column < groupBytes; block += blockBytes, column += columnBytes) {
                        for (int f = 0; f < fields; f++) SHORT_VIEW.set(out, column + 2 * (f * L + r), (short) SHORT_VIEW.get(in, block + 2 * f));
                        laneInts(in, block, out, column + header * L + 4 * r);
                    }
                }
                MemorySegment.copy(out, 0, to, ValueLayout.JAVA_BYTE, g * groupBytes, groupBytes);
            }
            releaseFilePages((long) start * groupBytes, Math.min((long) end * groupBytes, rows * rowBytes));
        });
    }

    /** Little-endian views of byte arrays, for {@link #relayout} and {@link #laneInts}. */
    static final VarHandle SHORT_VIEW = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN),
            INT_VIEW = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN),
            LONG_VIEW = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /**
     * Q4_0/Q4_1's {@link #laneInts}: a block's 16 nibble bytes at {@code in[nibbles ..]} (byte j holding weight j low
     * and weight j + 16 high) as four ints, int t weights 8t .. 8t + 7, weight 8t + p in bits 4p .. 4p + 3.
     */
    static void nibbleInts(byte[] in, int nibbles, byte[] out, int at) {
        long low = (long) LONG_VIEW.get(in, nibbles), high = (long) LONG_VIEW.get(in, nibbles + 8);
        INT_VIEW.set(out, at, RowLanes.packNibbles(low));
        INT_VIEW.set(out, at + 4 * L, RowLanes.packNibbles(high));
        INT_VIEW.set(out, at + 8 * L, RowLanes.packNibbles(low >>> 4));
        INT_VIEW.set(out, at + 12 * L, RowLanes.packNibbles(high >>> 4));
    }

    /**
     * {@code offset * sum(x)} per block of 32, in this thread's scratch: the share of an offset that a lane kernel
     * leaves out of its quants (Q8_0's bytes are {@code q + 128} in the decode layout).
     */
    final float[] offsetSums(float[] x, int xOffset, float offset) {
        float[] sums = blockSums(x, xOffset, cols);
        for (int b = 0; b < cols / 32; b++) sums[b] *= offset;
        return sums;
    }

    /** Where block column b of the group of {@code row} starts, in the decode layout. */
    final long laneBlock(long row, int b) {
        return row / L * L * rowBytes + (long) b * L * type.blockBytes;
    }

    /** Where row {@code row}'s first int of block column b lies, in the decode layout (its others follow 4L bytes apart). */
    final long rowInts(long row, int b) {
        return laneBlock(row, b) + (long) header * L + 4 * (row % L);
    }
}
