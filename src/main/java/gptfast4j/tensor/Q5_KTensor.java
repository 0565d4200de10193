package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q5_K: {@code [f16 d][f16 dmin][12 bytes scales/mins][32 bytes high bits][128 bytes of nibbles]} per 256 weights;
 * as Q4_K with a fifth bit per weight: bit 2j (low nibbles) or 2j+1 (high nibbles) of {@code qh[l]}.
 * <p>
 * Two layouts of the same weights: the file's, and the decode layout ({@link #forDecode}), one row per float lane as
 * Q4_K's and Q6_K's (L rows per group, 16 with 512-bit vectors). Per group and super-block column: {@code [d of rows
 * 0..L-1: L f32][dmin: L f32]}, then per sub-block of 32 {@code [scales: L bytes][mins: L bytes][L ints of fifth
 * bits][4 x L ints of nibbles]}, in the order the kernel first reads them (fifth bits after the nibbles, read for the
 * first half, made the stream go back a line: from memory 6.6-7.1 against 5.7-6.0 ms in JMH): nibble int t of lane
 * r holds weights 8t .. 8t + 7 of row r's sub-block, weight 8t + p in bits 4p .. 4p + 3 ({@link RowLanes}' ints);
 * the fifth-bit int of lane r holds weight 8t + p's fifth bit in bit 4p + t, so that one rotation and one and put it
 * above the nibble of any of the four ints. 184 bytes per row and super-block against the file's 176 (d and dmin as
 * floats, as Q6_K keeps its d).
 */
final class Q5_KTensor extends KQuantTensor implements RowLanes.Kernel {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d and dmin, of a sub-block, of a super-block column; where a sub-block's nibble ints and fifth-bit ints start. */
    private static final int HEAD = 8 * L, SUB = 22 * L, COLUMN = HEAD + 8 * SUB, NIBBLES = 6 * L, FIFTHS = 2 * L;
    /** Per weight w of a sub-block: the right rotation that brings its fifth bit (bit 4 (w % 8) + w / 8 of the fifth-bit int) to bit 4. */
    private static final int[] FIFTH_ROTATIONS = IntStream.range(0, 32).map(w -> (4 * (w % 8) + w / 8 - 4) & 31).toArray();

    /** Per nibble position p, where the high bits of its quants lie before {@link #quantsInPlace} ({@code 0x10 << 4p}). */
    private static final int[] FIFTH_MASKS = IntStream.range(0, 8).map(p -> 0x10 << 4 * p).toArray();

    Q5_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q5_K, data, cols, rows);
    }

    private Q5_KTensor(Q5_KTensor file, MemorySegment grouped) {
        super(file, grouped, L, COLUMN);
    }

    @Override
    public long decodeCopyBytes() {
        return laneLayoutBytes(COLUMN);
    }

    /** A copy in the decode layout ({@link #laneLayoutCopy}). */
    @Override
    public Tensor forDecode() {
        if (grouped) return this;
        return new Q5_KTensor(this, laneLayoutCopy(COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, f16(row, at));
            group.set(FLOAT_LE, column + 4 * L + 4 * r, f16(row, at + 2));
            long scales = packedScales(row, at + 4), mins = packedMins(row, at + 4);
            for (int s = 0; s < 8; s++) {
                int sub = column + HEAD + s * SUB, fifths = 0;
                group.set(JAVA_BYTE, sub + r, (byte) (scales >>> 8 * s));
                group.set(JAVA_BYTE, sub + L + r, (byte) (mins >>> 8 * s));
                for (int t = 0; t < 4; t++) { // weights 8t .. 8t + 7: nibbles of qs, bit s of qh
                    long nibbles = row.get(LONG_LE, at + 48 + 32 * (s / 2) + 8 * t) >>> 4 * (s % 2);
                    group.set(INT_LE, sub + NIBBLES + 4 * (t * L + r), RowLanes.packNibbles(nibbles));
                    fifths |= RowLanes.packNibbles(row.get(LONG_LE, at + 16 + 8 * t) >>> s & 0x0101_0101_0101_0101L) << t;
                }
                group.set(INT_LE, sub + FIFTHS + 4 * r, fifths);
            }
        }));
    }

    /**
     * The dot products of the L rows of group {@code group} with x (scaled per nibble position,
     * {@link RowLanes#nibbleScaled}; its {@link #blockSums} per 16, {@code xSums}), to {@code out[o .. o + L)}: per
     * half sub-block (16 weights, two nibble ints), lane r sums row r's 5-bit quants ({@link #quantsInPlace}) times
     * the broadcast activations in two accumulators, then takes {@code d * scale} and {@code dmin * min} (times
     * the half's activation sum) as one vector each for the L rows. One flat loop over the halves, the eight nibble
     * positions kept a loop, as Q6_K's kernel. The mins in a loop of their own after this one, inlined here by C2,
     * passed its inlining budget in some JVM runs (10-30x slower).
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, k = 0; c < xOffset + cols; c += 16, k = (k + 1) % 16) { // k: the half in its super-block
            long sub = column + HEAD + (long) (k / 2) * SUB, nibbles = sub + NIBBLES + 8L * L * (k % 2);
            // the Vector API's loads, not a helper of ours: past the budget C2 drops such a helper but not these (as in Q4_K)
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, nibbles, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, nibbles + 4L * L, ByteOrder.LITTLE_ENDIAN);
            // the fifth bits of ints t = 2 (k % 2) and 2 (k % 2) + 1, at 4p + t, moved to 4p + 4
            IntVector fifths = IntVector.fromMemorySegment(I_SPECIES, data, sub + FIFTHS, ByteOrder.LITTLE_ENDIAN),
                    fifths0 = fifths.lanewise(VectorOperators.ROL, 4 - 2 * (k % 2)),
                    fifths1 = fifths.lanewise(VectorOperators.ROL, 3 - 2 * (k % 2));
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0;
            for (int p = 0; p < 8; p++) {
                s0 = quantsInPlace(v0, fifths0, FIFTH_MASKS, p).fma(broadcast(x, c + p), s0);
                s1 = quantsInPlace(v1, fifths1, FIFTH_MASKS, p).fma(broadcast(x, c + 8 + p), s1);
            }
            // the 6-bit scales and mins widened as Q4_K's (LANE_BYTES), d and dmin loaded with them
            FloatVector scales = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    mins = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN),
                    dmin = FloatVector.fromMemorySegment(F_SPECIES, data, column + 4L * L, ByteOrder.LITTLE_ENDIAN);
            acc = s0.add(s1).fma(d.mul(scales), dmin.mul(mins).fma(FloatVector.broadcast(F_SPECIES, -xSums[(c - xOffset) / 16]), acc));
            if (k == 15) column += COLUMN;
        }
        acc.intoArray(out, o);
    }

    /** As Q4_K's dot product, with the fifth bit of each weight added from {@code qh} before the conversion. */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return grouped ? preparedDot(row, x, xOffset) : dot(row, x, xOffset, blockSums(x, xOffset, cols, 32));
    }

    /** The file layout's dot product given the {@link #blockSums} of x per 32. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset);
            long scales = packedScales(offset + 4), qh = offset + 16, qs = offset + 48;
            for (int j = 0; j < 4; j++, scales >>>= 16) {
                FloatVector qxLo = FloatVector.zero(F_SPECIES), qxHi = qxLo;
                int base = xOffset + i + 64 * j;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector q = bytes(qs + 32L * j + l);
                    IntVector h = bytes(qh + l).lanewise(VectorOperators.LSHL, 4); // bit b of qh[l] at bit b + 4
                    IntVector lo = q.and(0xF).or(h.lanewise(VectorOperators.LSHR, 2 * j).and(16));
                    IntVector hi = q.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2 * j + 1).and(16));
                    qxLo = floats(lo).fma(FloatVector.fromArray(F_SPECIES, x, base + l), qxLo);
                    qxHi = floats(hi).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 + l), qxHi);
                }
                acc = qxLo.fma(FloatVector.broadcast(F_SPECIES, d * (scales & 0xFF)), acc);
                acc = qxHi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> 8) & 0xFF)), acc);
            }
        }
        return VectorMath.sum(acc) - minsShare(row, xSums);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (!grouped) {
            dequantizeScaleMin(row, out, outOffset, 16, 48);
            return;
        }
        // rounding as ggml's dequantize_row_q5_K: (d * scale) * q - dmin * min; row r's nibble ints lie 4L bytes apart
        int lanes = F_SPECIES.length(), r = (int) (row % L);
        long column = (row - r) * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
            float d = data.get(FLOAT_LE, column + 4L * r), dmin = data.get(FLOAT_LE, column + 4L * L + 4L * r);
            for (int s = 0; s < 8; s++) {
                long sub = column + HEAD + (long) s * SUB;
                FloatVector scale = FloatVector.broadcast(F_SPECIES, d * (data.get(JAVA_BYTE, sub + r) & 0xFF));
                FloatVector min = FloatVector.broadcast(F_SPECIES, dmin * (data.get(JAVA_BYTE, sub + L + r) & 0xFF));
                IntVector fifths = IntVector.broadcast(I_SPECIES, data.get(INT_LE, sub + FIFTHS + 4L * r));
                for (int j = 0; j < 32; j += lanes) {
                    IntVector q = RowLanes.rowNibbles(data, sub + NIBBLES + 4L * r, j).and(0xF)
                            .or(fifths.lanewise(VectorOperators.ROR, IntVector.fromArray(I_SPECIES, FIFTH_ROTATIONS, j)).and(0x10));
                    floats(q).mul(scale).sub(min).intoArray(out, outOffset + i + 32 * s + j);
                }
            }
        }
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        float[] xSums = blockSums(x, xOffset, cols, grouped ? 16 : 32);
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
