package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

/**
 * Q4_0: blocks of 32 weights, {@code [f16 scale d][16 bytes]} (18 bytes). Byte j holds weight j in its low nibble and
 * weight j + 16 in its high nibble; weight = d * (nibble - 8).
 * <p>
 * Two layouts of the same bytes: the file's, each row its blocks in order, and the decode layout ({@link #forDecode},
 * {@link RowGroups}), rows in groups of four, each nibble xor 8 so that it reads as the signed 4-bit
 * {@code nibble - 8}: TinyLlama tg64 42.7-44.7 against 36.7-37.2 tokens/s with 2 threads, 22.9-24.1 against 14.8-15.8
 * with one (3 alternating rounds).
 */
final class Q4_0Tensor extends RowGroupTensor {
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 18;
    /** Bytes before a block's quants: the f16 scale. */
    private static final int HEADER = 2;
    private static final int GROUP = RowGroups.ROWS;
    private static final int GROUP_BLOCK_BYTES = GROUP * BLOCK_BYTES;

    Q4_0Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private Q4_0Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.Q4_0, data, cols, rows, grouped, HEADER, 0x88);
    }

    @Override
    Q4_0Tensor inDecodeLayout(MemorySegment data) {
        return new Q4_0Tensor(name, data, cols, rows, true);
    }

    /**
     * {@code sum((nibble[j] - 8) * x[j])} over one block of the file's layout, as lanes. The bytes are widened to int
     * lanes before the nibbles are taken apart: x86 has no byte shift, and byte-lane shifts cost more than the widening.
     */
    private FloatVector block(long offset, float[] x, int xOffset) {
        int lanes = F_SPECIES.length();
        FloatVector sum = FloatVector.zero(F_SPECIES);
        for (int j = 0; j < BLOCK / 2; j += lanes) {
            IntVector q = signedBytes(data, offset + 2 + j);
            FloatVector lo = (FloatVector) q.and(0xF).sub(8).castShape(F_SPECIES, 0);
            FloatVector hi = (FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).sub(8).castShape(F_SPECIES, 0);
            sum = lo.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j), sum);
            sum = hi.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + j + BLOCK / 2), sum);
        }
        return sum;
    }

    /** Bits {@code [p, p + 4)} of each lane of the decode layout's ints, a nibble minus 8, as floats. */
    private static FloatVector nibbles(IntVector v, int p) {
        return RowGroups.signedBits(v, p, 4);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        if (grouped) return groupedDot(row, x, xOffset);
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = FloatVector.zero(F_SPECIES);
        int i = 0;
        for (; i + 2 * BLOCK <= cols; i += 2 * BLOCK, offset += 2 * BLOCK_BYTES) {
            acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
            acc1 = block(offset + BLOCK_BYTES, x, xOffset + i + BLOCK).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + BLOCK_BYTES)), acc1);
        }
        if (i < cols) acc0 = block(offset, x, xOffset + i).fma(FloatVector.broadcast(F_SPECIES, f16(data, offset)), acc0);
        return VectorMath.sum(acc0.add(acc1));
    }

    /** One row's dot product in the decode layout (rows outside a whole group of a {@link #dotRows} range). */
    private float groupedDot(long row, float[] x, int xOffset) {
        int lanes = F_SPECIES.length(), r = (int) (row % GROUP);
        long offset = (row - r) * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += BLOCK, offset += GROUP_BLOCK_BYTES) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector v = RowGroups.quants(data, offset, HEADER, j);
                sum = nibbles(v, 8 * r).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), sum);
                sum = nibbles(v, 8 * r + 4).fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2), sum);
            }
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, RowGroups.half(data, offset, HEADER, r, 0)), acc);
        }
        return VectorMath.sum(acc);
    }

    /**
     * The dot products of the four rows of the group at {@code row} with x, to {@code out[o ..]}. Written out in full:
     * the same body as four calls of a helper passed C2's inlining budget, and calls that are not inlined box their
     * vectors (5-12 against 33 tokens/s).
     */
    private void groupDot4(long row, float[] x, int xOffset, float[] out, int o) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (int i = 0; i < cols; i += BLOCK, offset += GROUP_BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                FloatVector xl = FloatVector.fromArray(F_SPECIES, x, xOffset + i + j), xh = FloatVector.fromArray(F_SPECIES, x, xOffset + i + j + BLOCK / 2);
                IntVector v = RowGroups.quants(data, offset, HEADER, j);
                s0 = nibbles(v, 0).fma(xl, s0);
                s1 = nibbles(v, 8).fma(xl, s1);
                s2 = nibbles(v, 16).fma(xl, s2);
                s3 = nibbles(v, 24).fma(xl, s3);
                s0 = nibbles(v, 4).fma(xh, s0);
                s1 = nibbles(v, 12).fma(xh, s1);
                s2 = nibbles(v, 20).fma(xh, s2);
                s3 = nibbles(v, 28).fma(xh, s3);
            }
            long d = data.get(LONG_LE, offset); // the four f16 scales
            acc0 = s0.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) d)), acc0);
            acc1 = s1.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (d >>> 16))), acc1);
            acc2 = s2.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (d >>> 32))), acc2);
            acc3 = s3.fma(FloatVector.broadcast(F_SPECIES, Float.float16ToFloat((short) (d >>> 48))), acc3);
        }
        out[o] = VectorMath.sum(acc0);
        out[o + 1] = VectorMath.sum(acc1);
        out[o + 2] = VectorMath.sum(acc2);
        out[o + 3] = VectorMath.sum(acc3);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            int r = (int) (row % GROUP);
            long offset = (row - r) * rowBytes;
            for (int i = 0; i < cols; i += BLOCK, offset += GROUP_BLOCK_BYTES) {
                FloatVector d = FloatVector.broadcast(F_SPECIES, RowGroups.half(data, offset, HEADER, r, 0));
                for (int j = 0; j < BLOCK / 2; j += lanes) {
                    IntVector v = RowGroups.quants(data, offset, HEADER, j);
                    nibbles(v, 8 * r).mul(d).intoArray(out, outOffset + i + j);
                    nibbles(v, 8 * r + 4).mul(d).intoArray(out, outOffset + i + j + BLOCK / 2);
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += BLOCK, offset += BLOCK_BYTES) {
            FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset));
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                IntVector q = signedBytes(data, offset + 2 + j);
                ((FloatVector) q.and(0xF).sub(8).castShape(F_SPECIES, 0)).mul(d).intoArray(out, outOffset + i + j);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0xF).sub(8).castShape(F_SPECIES, 0)).mul(d)
                        .intoArray(out, outOffset + i + j + BLOCK / 2);
            }
        }
    }

    /**
     * Row {@code row} for {@link Int16Product}: {@code q[qOffset + k] = nibble - 8} for each column k, and block b's
     * scale d to {@code scale[scaleOffset + b]}.
     */
    void smallIntRow(long row, short[] q, int qOffset, float[] scale, int scaleOffset) {
        int lanes = S_SPECIES.length();
        if (grouped) {
            int r = (int) (row % GROUP);
            long offset = (row - r) * rowBytes;
            for (int b = 0; b < cols / BLOCK; b++, offset += GROUP_BLOCK_BYTES) {
                scale[scaleOffset + b] = RowGroups.half(data, offset, HEADER, r, 0);
                for (int j = 0; j < BLOCK / 2; j += lanes) {
                    IntVector v = RowGroups.quants(data, offset, HEADER, j);
                    int o = qOffset + b * BLOCK + j;
                    ((ShortVector) v.lanewise(VectorOperators.LSHL, 28 - 8 * r).lanewise(VectorOperators.ASHR, 28)
                            .convertShape(VectorOperators.I2S, S_SPECIES, 0)).intoArray(q, o);
                    ((ShortVector) v.lanewise(VectorOperators.LSHL, 24 - 8 * r).lanewise(VectorOperators.ASHR, 28)
                            .convertShape(VectorOperators.I2S, S_SPECIES, 0)).intoArray(q, o + BLOCK / 2);
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int b = 0; b < cols / BLOCK; b++, offset += BLOCK_BYTES) {
            scale[scaleOffset + b] = f16(data, offset);
            for (int j = 0; j < BLOCK / 2; j += lanes) {
                ShortVector v = signedByteShorts(data, offset + 2 + j);
                int o = qOffset + b * BLOCK + j;
                v.and((short) 0xF).sub((short) 8).intoArray(q, o);
                v.lanewise(VectorOperators.ASHR, 4).and((short) 0xF).sub((short) 8).intoArray(q, o + BLOCK / 2);
            }
        }
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] out, int outOffset, long firstRow, int start, int end) {
        int r = start;
        if (grouped) {
            for (; r < end && (firstRow + r) % GROUP != 0; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
            for (; r + GROUP <= end; r += GROUP) groupDot4(firstRow + r, x, xOffset, out, outOffset + r);
        }
        for (; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }
}
