package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q2_K's decode layout ({@link Q2_KTensor#forDecode}): rows in groups of L, one row per float lane, as Q4_K's. Per
 * group and super-block column: {@code [d of rows 0..L-1: L f32][dmin: L f32]}, then per 16-weight sub-block
 * {@code [scale and min: L bytes][L ints]}, row r's byte as the file has it (the scale in its low nibble, the min in
 * its high one), the int of lane r holding row r's 16 two-bit quants, weight w at bits 2w. 88 bytes per row and
 * super-block against the file's 84 (104 while the scales and the mins took a byte each); d and dmin kept as the
 * floats the file's f16 make, so the weights are the file's bit for bit. The kernel takes a quant where it lies in
 * its byte ({@code q * 4^p}, exact in a float, p = w % 4) against activations scaled by {@code 4^-p}
 * ({@link #QUANT_SCALES}), a shift per byte.
 */
final class Q2_KLanes extends KQuantTensor implements RowLanes.Kernel {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d and dmin, of a sub-block, of a super-block column; where a sub-block's ints start. */
    private static final int HEAD = 8 * L, SUB = 5 * L, COLUMN = HEAD + 16 * SUB, INTS = L;
    /** Per weight w of a sub-block, period 4 (and L more, {@link RowLanes#scaled}): {@code 4^-(w % 4)}, its place in its byte. */
    private static final float[] QUANT_SCALES = quantScales();

    private static float[] quantScales() {
        float[] scales = new float[4 + L];
        for (int j = 0; j < scales.length; j++) scales[j] = (float) Math.scalb(1.0, -2 * (j % 4));
        return scales;
    }

    private Q2_KLanes(Q2_KTensor file, MemorySegment grouped) {
        super(file, grouped, L, COLUMN);
    }

    /** {@code file}'s rows in this layout, in {@code memory}. */
    static Q2_KLanes of(Q2_KTensor file, OffHeap memory) {
        return new Q2_KLanes(file, laneLayoutCopy(file, memory, COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, f16(row, at + 80));
            group.set(FLOAT_LE, column + 4 * L + 4 * r, f16(row, at + 82));
            for (int k = 0; k < 16; k++) { // sub-block k: bit pair j of 16 quant bytes of half h, as Q2_KTensor's
                int sub = column + HEAD + k * SUB, h = k / 8, j = k % 8 / 2, quants = at + 16 + 32 * h + 16 * (k % 2);
                group.set(JAVA_BYTE, sub + r, row.get(JAVA_BYTE, at + k));
                long first = RowLanes.packFields(row.get(LONG_LE, quants) >>> 2 * j, 2), second = RowLanes.packFields(row.get(LONG_LE, quants + 8) >>> 2 * j, 2);
                group.set(INT_LE, sub + INTS + 4 * r, (int) (first | second << 16));
            }
        }));
    }

    /** The bytes of {@link #of}'s copy of {@code file}. */
    static long layoutBytes(Tensor file) {
        return laneLayoutBytes(file, COLUMN);
    }

    /**
     * The dot products of the L rows of group {@code group} with x (scaled per quant place, {@link #QUANT_SCALES};
     * its {@link #blockSums} per 16, {@code xSums}), to {@code out[o .. o + L)}: per sub-block, lane r sums row r's
     * quants times the broadcast activations in four accumulators (an and and a conversion per quant, a shift per
     * four), then takes {@code d * scale} and {@code dmin * min} (times the sub-block's activation sum) as one vector
     * each for the L rows. One flat loop over the sub-blocks, as Q4_K's, written with the Vector API's calls alone.
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, k = 0; c < xOffset + cols; c += 16, k = (k + 1) % 16) { // k: the sub-block in its super-block
            long sub = column + HEAD + (long) k * SUB;
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, sub + INTS, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
            for (int w = 0; w < 16; w += 4) { // the int's byte w / 4: weights w .. w + 3, each taken in place
                IntVector u = v.lanewise(VectorOperators.LSHR, 2 * w);
                s0 = ((FloatVector) u.and(3).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + w]), s0);
                s1 = ((FloatVector) u.and(3 << 2).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + w + 1]), s1);
                s2 = ((FloatVector) u.and(3 << 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + w + 2]), s2);
                s3 = ((FloatVector) u.and(3 << 6).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + w + 3]), s3);
            }
            IntVector scaleMin = (IntVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0);
            FloatVector scales = (FloatVector) scaleMin.and(0xF).convert(VectorOperators.I2F, 0),
                    mins = (FloatVector) scaleMin.lanewise(VectorOperators.LSHR, 4).and(0xF).convert(VectorOperators.I2F, 0);
            FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN),
                    dmin = FloatVector.fromMemorySegment(F_SPECIES, data, column + 4L * L, ByteOrder.LITTLE_ENDIAN);
            acc = s0.add(s1).add(s2.add(s3)).fma(d.mul(scales), dmin.mul(mins).fma(FloatVector.broadcast(F_SPECIES, -xSums[(c - xOffset) / 16]), acc));
            if (k == 15) column += COLUMN;
        }
        acc.intoArray(out, o);
    }

    /** Row {@code row}, rounded as ggml's dequantize_row_q2_K: {@code (d * scale) * q - dmin * min}; its ints lie 4L bytes apart. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int r = (int) (row % L);
        long column = (row - r) * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            float d = data.get(FLOAT_LE, column + 4L * r), dmin = data.get(FLOAT_LE, column + 4L * L + 4L * r);
            for (int k = 0; k < 16; k++) {
                long sub = column + HEAD + (long) k * SUB;
                int scaleMin = data.get(JAVA_BYTE, sub + r);
                float scale = d * (scaleMin & 0xF), min = dmin * (scaleMin >>> 4 & 0xF);
                int quants = data.get(INT_LE, sub + INTS + 4L * r);
                for (int w = 0; w < 16; w++) out[outOffset + i + 16 * k + w] = (quants >>> 2 * w & 3) * scale - min;
            }
        }
    }

    /** Per super-block column and sub-block, each weight column of the group as one vector ({@link Tensor.PanelRows}). */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int i = 0; i < cols / SUPER_BLOCK; i++) {
            long column = group + (long) i * COLUMN;
            FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN),
                    dmin = FloatVector.fromMemorySegment(F_SPECIES, data, column + 4L * L, ByteOrder.LITTLE_ENDIAN);
            for (int k = 0; k < 16; k++) {
                long sub = column + HEAD + (long) k * SUB;
                IntVector scaleMin = (IntVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0);
                FloatVector scale = d.mul((FloatVector) scaleMin.and(0xF).convert(VectorOperators.I2F, 0)),
                        min = dmin.mul((FloatVector) scaleMin.lanewise(VectorOperators.LSHR, 4).and(0xF).convert(VectorOperators.I2F, 0));
                IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, sub + INTS, ByteOrder.LITTLE_ENDIAN);
                int at = first + (i * SUPER_BLOCK + 16 * k) * L;
                for (int w = 0; w < 16; w++) {
                    ((FloatVector) v.lanewise(VectorOperators.LSHR, 2 * w).and(3).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, at + w * L);
                }
            }
        }
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return preparedDot(row, x, xOffset);
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        task.use(RowLanes.scaled(x, xOffset, cols, QUANT_SCALES), 0, blockSums(x, xOffset, cols, 16));
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        RowLanes.dotRows(this, x, xOffset, sums, out, outOffset, firstRow, start, end);
    }
}
