package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * IQ4_XS's, IQ4_NL's and MXFP4's decode layout ({@link IQ4_XSTensor#forDecode}, {@link IQ4_NLTensor#forDecode},
 * {@link MXFP4Tensor#forDecode}): rows in groups of L, one row per float lane, as Q4_K's. Per group and 32-weight
 * sub-block (eight per column of 256 weights): {@code [scales: L f32][4 x L ints]}, int t of lane r holding the
 * nibbles of weights 8t .. 8t + 7 of row r's sub-block, weight 8t + p at bits 4p ({@link RowLanes}' ints). 160 bytes
 * per row and 256 weights against IQ4_XS's and MXFP4's 136 and IQ4_NL's 144; the scale kept as the f32 the file's
 * arithmetic makes of it (IQ4_XS's {@code d * (scale - 32)}, IQ4_NL's d, MXFP4's {@code 2^(e - 128)}), so the
 * weights are the file's bit for bit; MXFP4's levels are its own ({@link BlockTensor#MXFP4_LEVELS}). The kernel
 * looks a nibble's level up in the 16 levels held as floats' bits in int lanes ({@code selectFrom} of two tables,
 * which takes an index modulo their 2L lanes, so the nibble needs no mask): with L = 16 both tables are the 16
 * levels, with L = 8 the first and last eight. Narrower vectors have too few lanes for the table ({@link #fits}):
 * IQ4_XS and MXFP4 then stay in their files' layout, IQ4_NL takes Q8_0's.
 */
final class IQ4Lanes extends KQuantTensor implements RowLanes.Kernel {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a sub-block (its scales, then its ints) and of a super-block column. */
    private static final int SUB = 20 * L, COLUMN = 8 * SUB, INTS = 4 * L;
    /**
     * The levels as two tables of L lanes ({@link #levels}): level i at lane i of the 2L lanes, modulo 16, each lane the
     * bits of the level as a float, so that a looked-up vector is the levels' floats as it is (a reinterpretation, no
     * conversion: JMH matvec of TinyLlama's ffn_up, one thread, in cache, IQ4_NL 291.0 -> 235.0 us, IQ4_XS 293.0 ->
     * 239.7; TinyLlama tg64, 2 threads, alternating JVMs, 2-11% faster in each of 7 pairs).
     */
    private static final IntVector FIRST = levels(BlockTensor.LEVELS, 0), SECOND = levels(BlockTensor.LEVELS, L),
            MXFP4_FIRST = levels(BlockTensor.MXFP4_LEVELS, 0), MXFP4_SECOND = levels(BlockTensor.MXFP4_LEVELS, L);

    private static IntVector levels(byte[] levels, int from) {
        return IntVector.fromArray(I_SPECIES, IntStream.range(0, 2 * L).map(i -> Float.floatToIntBits(levels[i % 16])).toArray(), from);
    }

    /** Whether {@code file} can take this layout: two tables of L int lanes hold the 16 levels, and its rows are whole columns of 256. */
    static boolean fits(Tensor file) {
        return 2 * L >= 16 && file.cols % SUPER_BLOCK == 0;
    }

    /**
     * Whether a format with another way to decode (IQ4_NL: Q8_0's layout; MXFP4: its file's) should take this layout:
     * where it {@link #fits}, but not on x86 without AVX-512 ({@link #X86_WITHOUT_AVX512}), whose two-table lookup is a
     * sequence of rearranges and blends there: TinyLlama IQ4_NL tg32 under {@code -XX:UseAVX=2}, 2 threads, 19.3
     * tokens/s in this layout, 40.6 in Q8_0's (IQ4_XS, which has no other, stays in this one: 18.8 there, 21.2 from its
     * file's layout, whose prompts are 20% slower).
     */
    static boolean preferred(Tensor file) {
        return fits(file) && !X86_WITHOUT_AVX512;
    }

    private IQ4Lanes(Tensor file, MemorySegment grouped) {
        super(file, grouped, L, COLUMN);
    }

    /** IQ4_XS's rows in this layout, in {@code memory}: group g of a super-block at {@code row[at ..]} has its nibbles at {@code at + 8 + 16g}. */
    static IQ4Lanes of(IQ4_XSTensor file, OffHeap memory) {
        return new IQ4Lanes(file, laneLayoutCopy(file, memory, COLUMN, (row, at, group, column, r) -> {
            for (int g = 0; g < 8; g++) writeGroup(row, at + 8 + 16 * g, IQ4_XSTensor.scale(row, at, g), group, column + g * SUB, r);
        }));
    }

    /** IQ4_NL's rows in this layout, in {@code memory}: eight blocks of 32 a column, block g's d at {@code at + 18g}, its nibbles after it. */
    static IQ4Lanes of(IQ4_NLTensor file, OffHeap memory) {
        return new IQ4Lanes(file, laneLayoutCopy(file, memory, COLUMN, (row, at, group, column, r) -> {
            for (int g = 0; g < 8; g++) writeGroup(row, at + 18 * g + 2, f16(row, at + 18 * g), group, column + g * SUB, r);
        }));
    }

    /** MXFP4's rows in this layout, in {@code memory}: eight blocks of 32 a column, block g's exponent at {@code at + 17g}, its nibbles after it. */
    static IQ4Lanes of(MXFP4Tensor file, OffHeap memory) {
        return new IQ4Lanes(file, laneLayoutCopy(file, memory, COLUMN, (row, at, group, column, r) -> {
            for (int g = 0; g < 8; g++) writeGroup(row, at + 17 * g + 1, MXFP4Tensor.scale(row.get(JAVA_BYTE, at + 17 * g)), group, column + g * SUB, r);
        }));
    }

    /** One group's scale and the nibbles of its 16 bytes at {@code row[quants ..]} (weight j low in byte j, 16 + j high) into lane r of the sub-block at {@code sub}. */
    private static void writeGroup(MemorySegment row, int quants, float scale, MemorySegment group, int sub, int r) {
        group.set(FLOAT_LE, sub + 4 * r, scale);
        long low = row.get(LONG_LE, quants), high = row.get(LONG_LE, quants + 8);
        group.set(INT_LE, sub + INTS + 4 * r, RowLanes.packNibbles(low));
        group.set(INT_LE, sub + INTS + 4 * L + 4 * r, RowLanes.packNibbles(high));
        group.set(INT_LE, sub + INTS + 8 * L + 4 * r, RowLanes.packNibbles(low >>> 4));
        group.set(INT_LE, sub + INTS + 12 * L + 4 * r, RowLanes.packNibbles(high >>> 4));
    }

    /** The bytes of {@link #of}'s copy of {@code file}. */
    static long layoutBytes(Tensor file) {
        return laneLayoutBytes(file, COLUMN);
    }

    /**
     * The dot products of the L rows of group {@code group} with x, to {@code out[o .. o + L)}: per sub-block, lane r
     * sums row r's levels times the broadcast activations in four accumulators (one per int; a shift, the lookup and
     * a conversion per weight), then takes the L rows' scales as one vector. One flat loop over the sub-blocks, as
     * Q4_K's, written with the Vector API's calls alone.
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        IntVector first = type == GGMLType.MXFP4 ? MXFP4_FIRST : FIRST, second = type == GGMLType.MXFP4 ? MXFP4_SECOND : SECOND;
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, g = 0; c < xOffset + cols; c += 32, g = (g + 1) % 8) { // g: the sub-block in its super-block
            long ints = column + (long) g * SUB + INTS;
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, ints, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 12L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0;
            for (int p = 0; p < 8; p++) { // nibble p of int t: weight 8t + p
                s0 = ((FloatVector) v0.lanewise(VectorOperators.LSHR, 4 * p).selectFrom(first, second).reinterpretAsFloats()).fma(FloatVector.broadcast(F_SPECIES, x[c + p]), s0);
                s1 = ((FloatVector) v1.lanewise(VectorOperators.LSHR, 4 * p).selectFrom(first, second).reinterpretAsFloats()).fma(FloatVector.broadcast(F_SPECIES, x[c + 8 + p]), s1);
                s2 = ((FloatVector) v2.lanewise(VectorOperators.LSHR, 4 * p).selectFrom(first, second).reinterpretAsFloats()).fma(FloatVector.broadcast(F_SPECIES, x[c + 16 + p]), s2);
                s3 = ((FloatVector) v3.lanewise(VectorOperators.LSHR, 4 * p).selectFrom(first, second).reinterpretAsFloats()).fma(FloatVector.broadcast(F_SPECIES, x[c + 24 + p]), s3);
            }
            FloatVector scale = FloatVector.fromMemorySegment(F_SPECIES, data, column + (long) g * SUB, ByteOrder.LITTLE_ENDIAN);
            acc = s0.add(s1).add(s2.add(s3)).fma(scale, acc);
            if (g == 7) column += COLUMN;
        }
        acc.intoArray(out, o);
    }

    /** Row {@code row}, rounded as ggml's dequantize_row_iq4_xs, _iq4_nl and _mxfp4: {@code scale * level}; its ints lie 4L bytes apart. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        byte[] levels = type == GGMLType.MXFP4 ? BlockTensor.MXFP4_LEVELS : BlockTensor.LEVELS;
        int r = (int) (row % L);
        long column = (row - r) * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            for (int g = 0; g < 8; g++) {
                long sub = column + (long) g * SUB;
                float scale = data.get(FLOAT_LE, sub + 4L * r);
                for (int t = 0; t < 4; t++) {
                    int nibbles = data.get(INT_LE, sub + INTS + 4L * L * t + 4L * r);
                    for (int p = 0; p < 8; p++) out[outOffset + i + 32 * g + 8 * t + p] = scale * levels[nibbles >>> 4 * p & 0xF];
                }
            }
        }
    }

    /** Per super-block column and sub-block, each weight column of the group as one vector ({@link Tensor.PanelRows}). */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        IntVector low = type == GGMLType.MXFP4 ? MXFP4_FIRST : FIRST, high = type == GGMLType.MXFP4 ? MXFP4_SECOND : SECOND;
        for (int i = 0; i < cols / SUPER_BLOCK; i++) {
            long column = group + (long) i * COLUMN;
            for (int g = 0; g < 8; g++) {
                long sub = column + (long) g * SUB;
                FloatVector scale = FloatVector.fromMemorySegment(F_SPECIES, data, sub, ByteOrder.LITTLE_ENDIAN);
                for (int t = 0; t < 4; t++) {
                    IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, sub + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                    int w = first + (i * SUPER_BLOCK + 32 * g + 8 * t) * L;
                    for (int p = 0; p < 8; p++, w += L) {
                        ((FloatVector) v.lanewise(VectorOperators.LSHR, 4 * p).selectFrom(low, high).reinterpretAsFloats()).mul(scale).intoArray(out, w);
                    }
                }
            }
        }
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return preparedDot(row, x, xOffset);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        RowLanes.dotRows(this, x, xOffset, sums, out, outOffset, firstRow, start, end);
    }
}
