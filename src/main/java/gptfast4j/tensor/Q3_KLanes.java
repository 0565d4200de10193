package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q3_K's decode layout ({@link Q3_KTensor#forDecode}): rows in groups of L, one row per float lane, as Q4_K's. Per
 * group and super-block column: {@code [d of rows 0..L-1: L f32]}, then per 16-weight sub-block {@code [scales less
 * 32: L int8][2 x L ints]}, row r's quants plus 4 (0..7, {@link Q3_KTensor#quantBytes}) three bits each: weights 0-9
 * in its first int, 10-15 in its second, weight w at bits 3w of its int. 148 bytes per row and super-block against
 * the file's 110 (the copy in Q6_K's layout that this one replaced took 212); d kept as the float the file's f16 makes,
 * so the weights, {@code (d * s) * (q' - 4)}, are the file's bit for bit. The kernel takes a quant where it lies in
 * its twelve bits ({@code q' * 8^p}, p = w % 4 of its int's weights) against activations scaled by {@code 8^-p}
 * ({@link #QUANT_SCALES}), a shift per four.
 */
final class Q3_KLanes extends KQuantTensor implements RowLanes.Kernel {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d, of a sub-block, of a super-block column; where a sub-block's ints start. */
    private static final int HEAD = 4 * L, SUB = 9 * L, COLUMN = HEAD + 16 * SUB, INTS = L;
    /** Per weight w of a sub-block, period 16 (and L more, {@link RowLanes#scaled}): {@code 8^-p}, p its place among its int's fours. */
    private static final float[] QUANT_SCALES = quantScales();

    private static float[] quantScales() {
        float[] scales = new float[16 + L];
        for (int j = 0; j < scales.length; j++) {
            int w = j % 16;
            scales[j] = (float) Math.scalb(1.0, -3 * ((w < 10 ? w : w - 10) % 4));
        }
        return scales;
    }

    private Q3_KLanes(Q3_KTensor file, MemorySegment grouped) {
        super(file, grouped, L, COLUMN);
    }

    /** {@code file}'s rows in this layout, in {@code memory}. */
    static Q3_KLanes of(Q3_KTensor file, OffHeap memory) {
        return new Q3_KLanes(file, laneLayoutCopy(file, memory, COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, f16(row, at + 108));
            long first = Q3_KTensor.packedScales(row, at, false), second = Q3_KTensor.packedScales(row, at, true);
            for (int k = 0; k < 16; k++) {
                int sub = column + HEAD + k * SUB;
                group.set(JAVA_BYTE, sub + r, (byte) Q3_KTensor.scale(first, second, k));
                long low = RowLanes.packFields(Q3_KTensor.quantBytes(row, at, k, 0), 3), high = RowLanes.packFields(Q3_KTensor.quantBytes(row, at, k, 8), 3);
                group.set(INT_LE, sub + INTS + 4 * r, (int) (low | high << 24) & 0x3FFF_FFFF); // weights 0-9
                group.set(INT_LE, sub + INTS + 4 * L + 4 * r, (int) (high >>> 6)); // weights 10-15
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
     * four), takes away 4 times the activations' sum, and multiplies by {@code d * scale}, one vector for the L rows.
     * One flat loop over the sub-blocks, as Q4_K's, written with the Vector API's calls alone.
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, k = 0; c < xOffset + cols; c += 16, k = (k + 1) % 16) { // k: the sub-block in its super-block
            long sub = column + HEAD + (long) k * SUB;
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, sub + INTS, ByteOrder.LITTLE_ENDIAN),
                    w = IntVector.fromMemorySegment(I_SPECIES, data, sub + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
            for (int j = 0; j < 8; j += 4) { // weights j .. j + 3 of the first int: its twelve bits j / 4
                IntVector u = v.lanewise(VectorOperators.LSHR, 3 * j);
                s0 = ((FloatVector) u.and(7).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + j]), s0);
                s1 = ((FloatVector) u.and(7 << 3).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + j + 1]), s1);
                s2 = ((FloatVector) u.and(7 << 6).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + j + 2]), s2);
                s3 = ((FloatVector) u.and(7 << 9).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + j + 3]), s3);
            }
            IntVector u = v.lanewise(VectorOperators.LSHR, 24); // weights 8 and 9
            s0 = ((FloatVector) u.and(7).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 8]), s0);
            s1 = ((FloatVector) u.and(7 << 3).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 9]), s1);
            s2 = ((FloatVector) w.and(7).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 10]), s2);
            s3 = ((FloatVector) w.and(7 << 3).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 11]), s3);
            s0 = ((FloatVector) w.and(7 << 6).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 12]), s0);
            s1 = ((FloatVector) w.and(7 << 9).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 13]), s1);
            u = w.lanewise(VectorOperators.LSHR, 12); // weights 14 and 15
            s2 = ((FloatVector) u.and(7).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 14]), s2);
            s3 = ((FloatVector) u.and(7 << 3).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 15]), s3);
            FloatVector scale = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN)
                    .mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
            acc = s0.add(s1).add(s2.add(s3)).sub(4 * xSums[(c - xOffset) / 16]).fma(scale, acc);
            if (k == 15) column += COLUMN;
        }
        acc.intoArray(out, o);
    }

    /** Row {@code row}, rounded as ggml's dequantize_row_q3_K: {@code (d * (scale - 32)) * (q' - 4)}; its ints lie 4L bytes apart. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int r = (int) (row % L);
        long column = (row - r) * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            float d = data.get(FLOAT_LE, column + 4L * r);
            for (int k = 0; k < 16; k++) {
                long sub = column + HEAD + (long) k * SUB;
                float scale = d * data.get(JAVA_BYTE, sub + r);
                long quants = data.get(INT_LE, sub + INTS + 4L * r) & 0xFFFF_FFFFL | (long) data.get(INT_LE, sub + INTS + 4L * L + 4L * r) << 30;
                for (int w = 0; w < 16; w++) out[outOffset + i + 16 * k + w] = scale * ((int) (quants >>> 3 * w & 7) - 4);
            }
        }
    }

    /** Per super-block column and sub-block, each weight column of the group as one vector ({@link Tensor.PanelRows}). */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int i = 0; i < cols / SUPER_BLOCK; i++) {
            long column = group + (long) i * COLUMN;
            FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN);
            for (int k = 0; k < 16; k++) {
                long sub = column + HEAD + (long) k * SUB;
                FloatVector scale = d.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, sub + INTS, ByteOrder.LITTLE_ENDIAN),
                        w = IntVector.fromMemorySegment(I_SPECIES, data, sub + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN);
                int at = first + (i * SUPER_BLOCK + 16 * k) * L;
                for (int q = 0; q < 16; q++) {
                    IntVector quant = (q < 10 ? v.lanewise(VectorOperators.LSHR, 3 * q) : w.lanewise(VectorOperators.LSHR, 3 * (q - 10))).and(7);
                    ((FloatVector) quant.sub(4).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + q * L);
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
