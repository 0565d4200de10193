package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A format whose blocks are f16 header fields then 16 quant bytes and which decodes from {@link RowLanes}' layout
 * (Q4_0, Q4_1): the file's layout or the decode layout, and the one copy between them.
 */
abstract sealed class RowGroupTensor extends Tensor permits Q4_0Tensor, Q4_1Tensor {
    /** Rows per group of the decode layout: one per float lane. */
    static final int L = RowLanes.L;
    /** Whether the bytes are in the decode layout. */
    final boolean grouped;
    /** Bytes before a block's quants, and what each nibble is xor-ed with in the decode layout. */
    private final int header, flip;

    RowGroupTensor(String name, GGMLType type, MemorySegment data, int cols, long rows, boolean grouped, int header, int flip) {
        super(name, type, data, cols, rows);
        this.grouped = grouped;
        this.header = header;
        this.flip = flip;
    }

    /** This tensor over {@code data}, the same rows in the decode layout. */
    abstract RowGroupTensor inDecodeLayout(MemorySegment data);

    /** The copy's bytes: the tensor's, and a last group's padding. */
    @Override
    public long decodeCopyBytes() {
        return grouped ? 0 : RowLanes.groups(rows) * L * rowBytes;
    }

    /** A copy in the decode layout ({@link RowLanes#copy}), or this tensor. */
    @Override
    public Tensor forDecode() {
        return grouped ? this : inDecodeLayout(RowLanes.copy(this, header, flip));
    }

    /**
     * The tensor rewritten in place in the decode layout, for copies made at load ({@link Quantizer}), or this tensor
     * where the rows do not come in whole groups (the layout would need padding).
     */
    Tensor regroupedInPlace() {
        if (grouped || rows % L != 0) return this;
        RowLanes.relayout(data, data, rows, rowBytes, header, flip);
        return inDecodeLayout(data);
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
