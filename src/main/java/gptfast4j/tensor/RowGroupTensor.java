package gptfast4j.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A format whose blocks are a small header then quant bytes and which decodes from {@link RowGroups}' layout (Q4_0,
 * Q4_1): the file's layout or the decode layout, and the one copy between them.
 */
abstract sealed class RowGroupTensor extends Tensor permits Q4_0Tensor, Q4_1Tensor {
    /** Whether the bytes are in the decode layout. */
    final boolean grouped;
    /** Bytes before a block's quants, and what each quant byte is xor-ed with in the decode layout. */
    private final int header, flip;

    RowGroupTensor(String name, GGMLType type, MemorySegment data, int cols, long rows, boolean grouped, int header, int flip) {
        super(name, type, data, cols, rows);
        this.grouped = grouped;
        this.header = header;
        this.flip = flip;
    }

    /** This tensor over {@code data}, the same rows in the decode layout. */
    abstract RowGroupTensor inDecodeLayout(MemorySegment data);

    /** Rows that do not come in fours stay in the file's layout. */
    @Override
    public long decodeCopyBytes() {
        return grouped || rows % RowGroups.ROWS != 0 ? 0 : byteSize();
    }

    /** A copy in the decode layout ({@link RowGroups#copy}), or this tensor. */
    @Override
    public Tensor forDecode() {
        return decodeCopyBytes() == 0 ? this : inDecodeLayout(RowGroups.copy(this, type.blockBytes, header, flip));
    }

    /** The tensor rewritten in place in the decode layout, for copies made at load ({@link Quantizer}), or this tensor. */
    Tensor regroupedInPlace() {
        if (decodeCopyBytes() == 0) return this;
        RowGroups.regroup(data, data, rows, rowBytes, type.blockBytes, header, flip);
        return inDecodeLayout(data);
    }
}
