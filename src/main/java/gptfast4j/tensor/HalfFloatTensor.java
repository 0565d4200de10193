package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A two-byte float format (F16, BF16), in the file's layout (rows in order, each format's row kernel) or in its
 * decode layout, and the one copy between them. The decode layout puts rows in groups of L, one row per vector lane
 * ({@link RowLanes}): each group's row ints (columns 2p and 2p + 1 of a row, low and high half) transposed into
 * planes of L, int p of lane r row r's int p; a last group is padded with zero rows. Each format's pair kernel
 * ({@link RowLanes.PairKernel#laneDots}) widens a plane's two halves in place and multiplies them by two broadcast
 * columns of x, four columns a step; its panels ({@link Tensor.PanelRows#panelGroup}) widen them the same way, and so
 * does its product with a short batch in registers ({@link Tensor.PanelProduct#panelPairProduct}).
 * Rows in lanes need no sum across lanes per row, and two groups a pass are two streams through memory: a harness over
 * TinyLlama F16's 154 layer matrices, two threads, read 47-52 GB/s with F16's row kernel against 58-62 here (read
 * bandwidth 64-68 GB/s; both about 30 GB/s where the memory read 28; docs/kernel-log.md, session 45).
 */
abstract sealed class HalfFloatTensor extends Tensor implements RowLanes.PairKernel, Tensor.PanelProduct permits F16Tensor, BF16Tensor {
    /** Rows per group of the decode layout: one per float lane. */
    static final int L = RowLanes.L;
    /** Whether the bytes are in the decode layout. */
    final boolean grouped;

    HalfFloatTensor(String name, GGMLType type, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, type, data, cols, rows);
        this.grouped = grouped;
    }

    /** This tensor over {@code data}, the same rows in the decode layout. */
    abstract HalfFloatTensor inDecodeLayout(MemorySegment data);

    /** One half as a float, exactly: what the format's vector conversions give. */
    abstract float widen(short half);

    @Override
    public final boolean inLanes() {
        return grouped;
    }

    @Override
    boolean preparesLike(Tensor other) {
        return super.preparesLike(other) && grouped == ((HalfFloatTensor) other).grouped;
    }

    /**
     * The copy's bytes: the rows' and a last group's padding; none where the rows are not a whole number of int pairs
     * (the kernels take four columns a step), which no model's are.
     */
    @Override
    public final long decodeCopyBytes() {
        return grouped || cols % 4 != 0 ? 0 : RowLanes.groups(rows) * L * rowBytes;
    }

    /**
     * A copy in the decode layout, off-heap ({@link OffHeap}), or this tensor. The pages of a mapped original are
     * released as the copy goes, so that the copy takes their place in memory. A group at a time through heap arrays:
     * its rows' ints in, transposed, out.
     */
    @Override
    public final Tensor forDecode(OffHeap memory) {
        long bytes = decodeCopyBytes();
        if (bytes == 0) return this;
        MemorySegment copy = memory.allocate(bytes);
        int ints = cols / 2;
        Parallel.run(Math.toIntExact(RowLanes.groups(rows)), 1, (start, end) -> {
            int[] in = new int[L * ints], out = new int[L * ints];
            for (long g = start; g < end; g++) {
                int n = (int) Math.min(L, rows - g * L); // rows past the tensor's end are zeros
                java.util.Arrays.fill(in, n * ints, in.length, 0);
                MemorySegment.copy(data, INT_LE, g * L * rowBytes, in, 0, n * ints);
                for (int r = 0; r < L; r++) {
                    for (int p = 0; p < ints; p++) out[p * L + r] = in[r * ints + p];
                }
                MemorySegment.copy(out, 0, copy, INT_LE, g * L * rowBytes, out.length);
            }
            releaseFilePages(start * L * rowBytes, Math.min(end * L, rows) * rowBytes);
        });
        releaseFilePages();
        return inDecodeLayout(copy);
    }

    /** {@code n} copies of {@code value}: a format's {@link #columnScales}. */
    static float[] filled(int n, float value) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, value);
        return a;
    }

    /** Row {@code row} of the decode layout as floats, a half at a time ({@link #dequantizeRow} there). */
    final void laneRow(long row, float[] out, int outOffset) {
        long ints = row / L * L * rowBytes + 4 * (row % L);
        for (int p = 0; p < cols / 2; p++) {
            int v = data.get(INT_LE, ints + 4L * L * p);
            out[outOffset + 2 * p] = widen((short) v);
            out[outOffset + 2 * p + 1] = widen((short) (v >>> 16));
        }
    }
}
