package gptfast4j.tensor;

import gptfast4j.io.ModelFormatException;
import gptfast4j.io.TensorData;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A weight matrix in one storage format, read in place from its (usually memory-mapped) bytes.
 * Shape in GGML order: {@code cols = shape[0]} is the contiguous input dimension; all other dimensions are flattened
 * into {@code rows} (an expert tensor {@code [cols, rows, experts]} is {@code rows * experts} rows).
 * <p>
 * A format implements two things on its own bytes: the dot product of one row with a float vector (the hot loop of
 * decoding) and the dequantization of one row (embeddings, tests). Matrix-vector and matrix-matrix products are
 * built here on top of the row dot product and split across the {@link Parallel} pool by rows, which is the same as
 * splitting by bytes since all rows have the same size.
 */
public abstract class Tensor {
    static final VectorSpecies<Float> F_SPECIES = FloatVector.SPECIES_PREFERRED;
    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Rows handed to one thread at a time are a multiple of this; also the tile height of {@link #matmul}. */
    private static final int ROW_GRANULE = 16;

    public final String name;
    public final GGMLType type;
    public final MemorySegment data;
    public final int cols;
    public final long rows;
    public final long rowBytes;

    protected Tensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        this.name = name;
        this.type = type;
        this.data = data;
        this.cols = cols;
        this.rows = rows;
        this.rowBytes = type.bytesFor(cols);
    }

    /** Wraps a tensor's bytes in the kernel class of its format. */
    public static Tensor of(TensorData t) {
        long cols = t.shape()[0];
        if (cols > Integer.MAX_VALUE) throw new ModelFormatException("tensor " + t.name() + " rows are too long: " + cols);
        long rows = t.elementCount() / cols;
        return of(t.name(), t.type(), t.data(), (int) cols, rows);
    }

    public static Tensor of(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        if (cols % type.blockSize != 0) {
            throw new ModelFormatException("tensor " + name + ": row length " + cols + " is not a multiple of the " + type + " block size " + type.blockSize);
        }
        return switch (type) {
            case F32 -> new F32Tensor(name, data, cols, rows);
            case F16 -> new F16Tensor(name, data, cols, rows);
            case BF16 -> new BF16Tensor(name, data, cols, rows);
            case Q8_0 -> new Q8_0Tensor(name, data, cols, rows);
            case Q4_0 -> new Q4_0Tensor(name, data, cols, rows);
            case Q4_1 -> new Q4_1Tensor(name, data, cols, rows);
            default -> throw new ModelFormatException("tensor " + name + " has unsupported tensor type " + type);
        };
    }

    /** Dot product of row {@code row} with {@code x[xOffset .. xOffset + cols)}. */
    public abstract float dot(long row, float[] x, int xOffset);

    /** Writes row {@code row} as floats to {@code out[outOffset .. outOffset + cols)}. */
    public abstract void dequantizeRow(long row, float[] out, int outOffset);

    public long byteSize() {
        return rows * rowBytes;
    }

    /** {@code out[outOffset + r] = dot(firstRow + r, x)} for {@code r < nRows}: matrix x vector. */
    public void matvec(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int nRows) {
        Parallel.run(nRows, ROW_GRANULE, (start, end) -> {
            for (int r = start; r < end; r++) {
                out[outOffset + r] = dot(firstRow + r, x, xOffset);
            }
        });
    }

    /** Matrix x vector over all rows. */
    public void matvec(float[] x, float[] out) {
        matvec(x, 0, out, 0, 0, Math.toIntExact(rows));
    }

    /**
     * Matrix x matrix: for each of {@code nTokens} input vectors {@code x[t * cols ..]} writes
     * {@code out[t * outStride + r] = dot(r, x_t)} for all rows. Rows are taken a tile at a time and every token is
     * run over the tile while its weights are still in cache, so weights are read from memory once per call.
     */
    public void matmul(float[] x, int nTokens, float[] out, int outStride) {
        if (nTokens == 1) {
            matvec(x, out);
            return;
        }
        int nRows = Math.toIntExact(rows);
        Parallel.run(nRows, ROW_GRANULE, (start, end) -> {
            for (int tile = start; tile < end; tile += ROW_GRANULE) {
                int tileEnd = Math.min(end, tile + ROW_GRANULE);
                for (int t = 0; t < nTokens; t++) {
                    int xOffset = t * cols;
                    int outOffset = t * outStride;
                    for (int r = tile; r < tileEnd; r++) {
                        out[outOffset + r] = dot(r, x, xOffset);
                    }
                }
            }
        });
    }

    static float f16(MemorySegment data, long offset) {
        return Float.float16ToFloat(data.get(SHORT_LE, offset));
    }

    @Override
    public String toString() {
        return name + " " + type + " [" + cols + " x " + rows + "]";
    }
}
