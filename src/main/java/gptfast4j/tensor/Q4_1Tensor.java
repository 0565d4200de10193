package gptfast4j.tensor;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q4_1: blocks of 32 weights, {@code [f16 scale d][f16 minimum m][16 bytes]} (20 bytes), nibbles laid out as in
 * Q4_0; weight = d * nibble + m. The dot product is {@code d * sum(nibble * x) + m * sum(x)} per block. Like Q4_0 it
 * decodes from a layout of its own ({@link #forDecode}, {@link RowGroupTensor}: one row per vector lane, the L rows' d and m
 * as two planes of halves per block).
 */
final class Q4_1Tensor extends RowGroupTensor implements RowLanes.Kernel {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 20;
    /** Bytes before a block's quants: the f16 scale and minimum. */
    private static final int HEADER = 4;
    /** The ints of a decode-layout block column start after the L scales and the L minimums. */
    private static final int INTS = HEADER * L;

    Q4_1Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private Q4_1Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.Q4_1, data, cols, rows, grouped, HEADER);
    }

    @Override
    int laneInt(MemorySegment in, long block, int t) {
        return nibbleInt(in, block + HEADER, t);
    }

    @Override
    Q4_1Tensor inDecodeLayout(MemorySegment data) {
        return new Q4_1Tensor(name, data, cols, rows, true);
    }

    /**
     * The dot products of the L rows of group {@code group} with x (scaled per nibble position,
     * {@link RowLanes#nibbleScaled}; block sums {@code xSums}), to {@code out[o .. o + L)}: Q4_0's lane kernel
     * ({@link Q4_0Tensor}), and the minimums' share {@code m * xSum} one vector FMA per block.
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long offset = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES), mins = acc;
        for (int c = xOffset, b = 0; c < xOffset + cols; c += BLOCK, b++, offset += (long) L * BLOCK_BYTES) {
            // the Vector API's loads, not a helper of ours: near the inlining budget C2 dropped such a helper in some compiles
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, offset + INTS, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, offset + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, offset + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, offset + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
            for (int p = 0; p < 8; p++) { // nibble p of int t: weight 8t + p
                s0 = RowLanes.nibbleInPlace(v0, p).fma(FloatVector.broadcast(F_SPECIES, x[c + p]), s0);
                s1 = RowLanes.nibbleInPlace(v1, p).fma(FloatVector.broadcast(F_SPECIES, x[c + 8 + p]), s1);
                s2 = RowLanes.nibbleInPlace(v2, p).fma(FloatVector.broadcast(F_SPECIES, x[c + 16 + p]), s2);
                s3 = RowLanes.nibbleInPlace(v3, p).fma(FloatVector.broadcast(F_SPECIES, x[c + 24 + p]), s3);
            }
            acc = s0.add(s1).add(s2.add(s3)).fma(F16Tensor.load(data, offset), acc);
            mins = F16Tensor.load(data, offset + 2L * L).fma(FloatVector.broadcast(F_SPECIES, xSums[b]), mins);
        }
        acc.add(mins).intoArray(out, o);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return grouped ? preparedDot(row, x, xOffset) : dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** {@code sum(nibble[j] * x[j])} over one block, as lanes. */
    private FloatVector block(long offset, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        FloatVector sum = FloatVector.zero(F_SPECIES);
        for (int j = 0; j < BLOCK / 2; j += lanes) {
            IntVector q = signedBytes(data, offset + 4 + j);
            sum = ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j), sum);
            sum = ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j + BLOCK / 2), sum);
        }
        return sum;
    }

    /**
     * {@code sum(d * (nibble · x_block)) + sum(m * xSums[block])}: the minimums' share comes from the per-call sums of x
     * ({@link #blockSums}), so the vector loop only converts nibbles and multiplies; two blocks per step into two
     * accumulators, as in Q4_0.
     */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        float minTerm = 0;
        int i = 0;
        for (; i + 2 * BLOCK <= cols; i += 2 * BLOCK, offset += 2 * BLOCK_BYTES) {
            acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
            acc1 = block(offset + BLOCK_BYTES, x, xOffset + i + BLOCK).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + BLOCK_BYTES)), acc1);
            minTerm += f16(data, offset + 2) * xSums[i / BLOCK] + f16(data, offset + BLOCK_BYTES + 2) * xSums[i / BLOCK + 1];
        }
        if (i < cols) {
            acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
            minTerm += f16(data, offset + 2) * xSums[i / BLOCK];
        }
        return VectorMath.sum(acc0.add(acc1)) + minTerm;
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            for (int b = 0; b < cols / BLOCK; b++) {
                long block = laneBlock(row, b) + 2 * (row % L);
                FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, block)), m = FloatVector.broadcast(F_SPECIES, f16(data, block + 2L * L));
                long ints = rowInts(row, b);
                for (int j = 0; j < BLOCK; j += lanes) {
                    ((FloatVector) RowLanes.rowNibbles(data, ints, j).and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(out, outOffset + b * BLOCK + j);
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            FloatVector m = FloatVector.broadcast(F_SPECIES, f16(data, offset + 2));
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector q = signedBytes(data, offset + 4 + j);
                ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(out, outOffset + i + j);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m)
                        .intoArray(out, outOffset + i + j + BLOCK / 2);
            }
        }
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        float[] xSums = blockSums(x, xOffset, cols);
        if (grouped) task.use(RowLanes.nibbleScaled(x, xOffset, cols), 0, xSums);
        else task.use(x, xOffset, xSums);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] xSums, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
            return;
        }
        RowLanes.dotRows(this, x, xOffset, xSums, out, outOffset, firstRow, start, end);
    }
}
