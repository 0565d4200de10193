package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Q5_1's decode layout ({@link Q5_1Tensor#forDecode}): rows in groups of L, one row per float lane, as Q5_K's. Per
 * group and 32-weight block (eight per column of 256 weights): {@code [d: L f32][m: L f32][5 x L ints]}, the ints as
 * Q5_K's quant ints ({@link Q5_KTensor#writeQuantInts}: weights 6t .. 6t + 5 in int t at bits 5p, weights 30 and 31
 * two bits at a time on top). 28 bytes per row and block against the file's 24; d and m kept as the floats the
 * file's f16 make, so the weights, {@code q * d + m}, are the file's bit for bit. The kernel is Q5_K's with a block's
 * d and m where Q5_K takes a sub-block's scale and min.
 */
final class Q5_1Lanes extends KQuantTensor implements RowLanes.Kernel {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a block and of a column of 256 weights; where a block's ints start. */
    private static final int SUB = 28 * L, COLUMN = 8 * SUB, QUANTS = 8 * L;

    /** Whether {@code file}'s rows are whole columns of 256. */
    static boolean fits(Tensor file) {
        return file.cols % SUPER_BLOCK == 0;
    }

    private Q5_1Lanes(Q5_1Tensor file, MemorySegment grouped) {
        super(file, grouped, L, COLUMN);
    }

    /** {@code file}'s rows in this layout, in {@code memory}: eight blocks a column, block g at {@code at + 24g}. */
    static Q5_1Lanes of(Q5_1Tensor file, OffHeap memory) {
        return new Q5_1Lanes(file, laneLayoutCopy(file, memory, COLUMN, (row, at, group, column, r) -> {
            for (int g = 0; g < 8; g++) {
                int block = at + 24 * g, sub = column + g * SUB;
                group.set(FLOAT_LE, sub + 4 * r, f16(row, block));
                group.set(FLOAT_LE, sub + 4 * L + 4 * r, f16(row, block + 2));
                int fifths = row.get(INT_LE, block + 4); // bit j: weight j's fifth bit
                long low = row.get(LONG_LE, block + 8), high = row.get(LONG_LE, block + 16); // weight j low in byte j, 16 + j high
                Q5_KTensor.writeQuantInts(fiveBits(low, fifths), fiveBits(high, fifths >>> 8), fiveBits(low >>> 4, fifths >>> 16),
                        fiveBits(high >>> 4, fifths >>> 24), group, sub + QUANTS + 4 * r);
            }
        }));
    }

    /** Eight weights' 5-bit quants at bits 5w of a long: the low nibbles of {@code nibbles}' bytes, bit w of {@code fifths} on top of w's. */
    private static long fiveBits(long nibbles, int fifths) {
        long top = 0;
        for (int w = 0; w < 8; w++) top |= (long) (fifths >>> w & 1) << 8 * w + 4;
        return RowLanes.packFields(nibbles & 0x0F0F_0F0F_0F0F_0F0FL | top, 5);
    }

    /** The bytes of {@link #of}'s copy of {@code file}. */
    static long layoutBytes(Tensor file) {
        return laneLayoutBytes(file, COLUMN);
    }

    /**
     * The dot products of the L rows of group {@code group} with x (scaled per quant place, {@link
     * Q5_KTensor#QUANT_SCALES}; its {@link #blockSums} per 32, {@code xSums}), to {@code out[o .. o + L)}: per block,
     * lane r sums row r's quants times the broadcast activations in five accumulators (an and and a conversion per
     * quant) and weights 30 and 31 gathered from the ints' top bits, then takes d, and m times the block's activation
     * sum, as one vector each for the L rows. Q5_K's kernel, one flat loop over the blocks.
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, g = 0; c < xOffset + cols; c += 32, g = (g + 1) % 8) { // g: the block in its column
            long sub = column + (long) g * SUB, ints = sub + QUANTS;
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, ints, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 12L * L, ByteOrder.LITTLE_ENDIAN),
                    v4 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 16L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0, s4 = s0;
            for (int p = 0; p < 6; p++) { // quant p of int t: weight 6t + p
                int mask = 0x1F << 5 * p;
                s0 = ((FloatVector) v0.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + p]), s0);
                s1 = ((FloatVector) v1.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 6 + p]), s1);
                s2 = ((FloatVector) v2.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 12 + p]), s2);
                s3 = ((FloatVector) v3.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 18 + p]), s3);
                s4 = ((FloatVector) v4.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 24 + p]), s4);
            }
            IntVector last = v0.lanewise(VectorOperators.LSHR, 30).or(v1.lanewise(VectorOperators.LSHR, 28).and(0xC))
                    .or(v2.lanewise(VectorOperators.LSHR, 26).and(0x30)).or(v3.lanewise(VectorOperators.LSHR, 24).and(0xC0))
                    .or(v4.lanewise(VectorOperators.LSHR, 22).and(0x300)); // q30 | q31 << 5
            FloatVector s5 = ((FloatVector) last.and(0x1F).convert(VectorOperators.I2F, 0)).mul(x[c + 30])
                    .add(((FloatVector) last.and(0x3E0).convert(VectorOperators.I2F, 0)).mul(x[c + 31]));
            FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, sub, ByteOrder.LITTLE_ENDIAN),
                    m = FloatVector.fromMemorySegment(F_SPECIES, data, sub + 4L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector sum = s0.add(s1).add(s2.add(s3)).add(s4.add(s5));
            acc = sum.fma(d, m.fma(FloatVector.broadcast(F_SPECIES, xSums[(c - xOffset) / 32]), acc));
            if (g == 7) column += COLUMN;
        }
        acc.intoArray(out, o);
    }

    /** Quant w of a block's five ints (30 and 31 from their top bits). */
    private static int quant(int[] ints, int w) {
        if (w < 30) return ints[w / 6] >>> 5 * (w % 6) & 0x1F;
        int last = 0;
        for (int t = 0; t < 5; t++) last |= (ints[t] >>> 30) << 2 * t;
        return last >>> 5 * (w - 30) & 0x1F;
    }

    /** Row {@code row}, rounded as ggml's dequantize_row_q5_1: {@code q * d + m}; its ints lie 4L bytes apart. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int r = (int) (row % L);
        long column = (row - r) * rowBytes;
        int[] ints = ROW_INTS.get();
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            for (int g = 0; g < 8; g++) {
                long sub = column + (long) g * SUB;
                float d = data.get(FLOAT_LE, sub + 4L * r), m = data.get(FLOAT_LE, sub + 4L * L + 4L * r);
                for (int t = 0; t < 5; t++) ints[t] = data.get(INT_LE, sub + QUANTS + 4L * L * t + 4L * r);
                for (int w = 0; w < 32; w++) out[outOffset + i + 32 * g + w] = quant(ints, w) * d + m;
            }
        }
    }

    /** Per column of 256 weights and block, each weight column of the group as one vector ({@link Tensor.PanelRows}). */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int i = 0; i < cols / SUPER_BLOCK; i++) {
            long column = group + (long) i * COLUMN;
            for (int g = 0; g < 8; g++) {
                long sub = column + (long) g * SUB, ints = sub + QUANTS;
                FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, sub, ByteOrder.LITTLE_ENDIAN),
                        m = FloatVector.fromMemorySegment(F_SPECIES, data, sub + 4L * L, ByteOrder.LITTLE_ENDIAN);
                IntVector last = IntVector.zero(I_SPECIES);
                int at = first + (i * SUPER_BLOCK + 32 * g) * L;
                for (int t = 0; t < 5; t++) {
                    IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, ints + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                    for (int p = 0; p < 6; p++) {
                        ((FloatVector) v.lanewise(VectorOperators.LSHR, 5 * p).and(0x1F).convert(VectorOperators.I2F, 0)).mul(d).add(m).intoArray(out, at + (6 * t + p) * L);
                    }
                    last = last.or(v.lanewise(VectorOperators.LSHR, 30).lanewise(VectorOperators.LSHL, 2 * t));
                }
                ((FloatVector) last.and(0x1F).convert(VectorOperators.I2F, 0)).mul(d).add(m).intoArray(out, at + 30 * L);
                ((FloatVector) last.lanewise(VectorOperators.LSHR, 5).convert(VectorOperators.I2F, 0)).mul(d).add(m).intoArray(out, at + 31 * L);
            }
        }
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return preparedDot(row, x, xOffset);
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        task.use(RowLanes.scaled(x, xOffset, cols, Q5_KTensor.QUANT_SCALES), 0, blockSums(x, xOffset, cols, 32));
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        RowLanes.dotRows(this, x, xOffset, sums, out, outOffset, firstRow, start, end);
    }
}
