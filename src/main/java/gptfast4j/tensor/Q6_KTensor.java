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
 * Q6_K: {@code [128 bytes low nibbles ql][64 bytes high 2-bit pairs qh][16 int8 scales][f16 d]} per 256 weights, in
 * two halves of 128: weight = d * scale * (q - 32), q = 4 bits from ql plus 2 bits from qh, a scale per 16 weights.
 * <p>
 * Two layouts of the same weights: the file's, and the decode layout ({@link #forDecode}), one row per float lane as
 * Q4_K's (L rows per group, 16 with 512-bit vectors). Per group and super-block column: {@code [d of rows 0..L-1: L
 * f32]}, then per 16 weights (a scale's sub-block) {@code [scales: L int8][2 x L ints of nibbles][L ints of top
 * bits]}: nibble int t of lane r holds the low four bits of weights 8t .. 8t + 7 of row r's sub-block, weight 8t + p
 * in bits 4p .. 4p + 3 ({@link RowLanes}' ints); the top-bit int of lane r holds weight 8t + p's top two bits in bits
 * 4p + 2t .. 4p + 2t + 1, so one rotation and one and put them above the nibble of either int. 212 bytes per row and
 * super-block against the file's 210: d is kept as a float, because with the f16 d converted for every sub-block
 * the kernel ran 2.4x slower (JMH, 1024 x 4096: 427 against 180 us; most samples on the conversion, for reasons not
 * understood; Q4_K, whose layout keeps f16, ran slower with f32 d, 180 against 121 us). In the order the kernel reads
 * them: a Q4_K layout with each column's scales gathered ahead of its quants ran 1.7x slower from memory.
 */
final class Q6_KTensor extends KQuantTensor implements RowLanes.Kernel {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d, of a sub-block, of a super-block column; where a sub-block's nibble ints and top-bit ints start. */
    private static final int HEAD = 4 * L, SUB = 13 * L, COLUMN = HEAD + 16 * SUB, NIBBLES = L, TOPS = 9 * L;
    /** Per weight w of a sub-block: the right rotation that brings its top bits (bits 4 (w % 8) + 2 (w / 8) of the top-bit int) to bits 4-5. */
    private static final int[] TOP_ROTATIONS = IntStream.range(0, 16).map(w -> (4 * (w % 8) + 2 * (w / 8) - 4) & 31).toArray();

    /** Per nibble position p, where the high bits of its quants lie before {@link #quantsInPlace} ({@code 0x30 << 4p}). */
    private static final int[] TOP_MASKS = IntStream.range(0, 8).map(p -> 0x30 << 4 * p).toArray();

    Q6_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q6_K, data, cols, rows);
    }

    private Q6_KTensor(Q6_KTensor file, MemorySegment grouped) {
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
        return new Q6_KTensor(this, laneLayoutCopy(COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, f16(row, at + 208));
            for (int k = 0; k < 16; k++) {
                // weights 16k .. 16k + 15: in half k / 8, group g = k % 8 / 2, from byte l = 16 (k % 2) on of the
                // half's ql (+32 for odd g, high nibbles for g >= 2) and qh (bit pair g)
                int half = k / 8, g = k % 8 / 2, l = 16 * (k % 2), sub = column + HEAD + k * SUB, tops = 0;
                group.set(JAVA_BYTE, sub + r, row.get(JAVA_BYTE, at + 192 + k));
                for (int t = 0; t < 2; t++) {
                    long low = row.get(LONG_LE, at + 64 * half + 32 * (g & 1) + l + 8 * t) >>> 4 * (g >> 1);
                    long top = row.get(LONG_LE, at + 128 + 32 * half + l + 8 * t) >>> 2 * g & 0x0303_0303_0303_0303L;
                    group.set(INT_LE, sub + NIBBLES + 4 * (t * L + r), RowLanes.packNibbles(low));
                    tops |= RowLanes.packNibbles(top) << 2 * t;
                }
                group.set(INT_LE, sub + TOPS + 4 * r, tops);
            }
        }));
    }

    /**
     * Per {@code lanes} weights of a half: four groups of weights, 32 apart, group g built from a nibble of
     * {@code ql} (low nibbles of bytes 0-31 for g = 0, of bytes 32-63 for g = 1, high nibbles for g = 2, 3) and bit
     * pair g of {@code qh}. A scale covers 16 weights, so a vector (at most 16 lanes) has one scale per group. The
     * groups are a loop rather than four written-out copies, and the half's eight int8 scales are read as one long:
     * C2 stops inlining once a method's graph passes a size limit (NodeCountInliningCutoff), and the written-out form
     * passed it, so the vector operations were no longer inlined and each boxed its result (3x slower). The int8 scales
     * multiply the quants as ints and d is applied once per super-block, so the float side is one conversion and one
     * FMA per vector; {@code ql} and {@code qh} are loaded once per step for all four groups.
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        if (grouped) return preparedDot(row, x, xOffset);
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            FloatVector sum = FloatVector.zero(F_SPECIES);
            for (int half = 0; half < 2; half++) {
                long ql = offset + 64L * half, qh = offset + 128 + 32L * half;
                long scales = data.get(LONG_LE, offset + 192 + 8L * half); // int8 scale k in byte k
                int base = xOffset + i + 128 * half;
                for (int l = 0; l < 32; l += lanes) {
                    IntVector h = bytes(qh + l).lanewise(VectorOperators.LSHL, 4), a = bytes(ql + l), b = bytes(ql + l + 32);
                    for (int g = 0; g < 4; g++) {
                        IntVector q = ((g & 1) == 0 ? a : b).lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(0x30)).sub(32);
                        int scale = (byte) (scales >>> 8 * (l / 16 + 2 * g));
                        sum = floats(q.mul(scale)).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 * g + l), sum);
                    }
                }
            }
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + 208)), acc);
        }
        return VectorMath.sum(acc);
    }

    /**
     * The dot products of the L rows of group {@code group} with x (scaled per nibble position,
     * {@link RowLanes#nibbleScaled}; its {@link #blockSums} per 16, {@code xSums}), to {@code out[o .. o + L)}: per
     * sub-block of 16 weights, lane r sums row r's unsigned 6-bit quants times the broadcast activations in two
     * accumulators (one per nibble int), takes away 32 times the activations' sum, and multiplies by
     * {@code d * scale}, one vector for the L rows. The top-bit int is rotated once per nibble int so that each
     * weight's top bits sit just above its nibble ({@link #quantsInPlace}). One flat loop over the sub-blocks (as
     * Q4_K's), the loop over the eight nibble positions kept a loop for C2's inlining budget.
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, k = 0; c < xOffset + cols; c += 16, k = (k + 1) % 16) { // k: the sub-block in its super-block
            long sub = column + HEAD + (long) k * SUB;
            // the Vector API's loads, not helpers of ours: past the budget C2 drops a helper but not these
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, sub + NIBBLES, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, sub + NIBBLES + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    tops = IntVector.fromMemorySegment(I_SPECIES, data, sub + TOPS, ByteOrder.LITTLE_ENDIAN);
            // int t's top bits at 4p + 2t, moved to 4p + 4
            IntVector tops0 = tops.lanewise(VectorOperators.ROL, 4), tops1 = tops.lanewise(VectorOperators.ROL, 2);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0;
            for (int p = 0; p < 8; p++) {
                s0 = quantsInPlace(v0, tops0, TOP_MASKS, p).fma(broadcast(x, c + p), s0);
                s1 = quantsInPlace(v1, tops1, TOP_MASKS, p).fma(broadcast(x, c + 8 + p), s1);
            }
            FloatVector scale = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN)
                    .mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
            acc = s0.add(s1).sub(32 * xSums[(c - xOffset) / 16]).fma(scale, acc);
            if (k == 15) column += COLUMN;
        }
        acc.intoArray(out, o);
    }

    /** Rounds as ggml's dequantize_row_q6_K does: {@code (d * scale) * q}. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            // row r's nibble ints lie 4L bytes apart (RowLanes.rowNibbles); its top-bit int is one, broadcast
            int r = (int) (row % L);
            long column = (row - r) * rowBytes;
            for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
                float d = data.get(FLOAT_LE, column + 4L * r);
                for (int k = 0; k < 16; k++) {
                    long sub = column + HEAD + (long) k * SUB;
                    FloatVector scale = FloatVector.broadcast(F_SPECIES, d * data.get(JAVA_BYTE, sub + r));
                    IntVector tops = IntVector.broadcast(I_SPECIES, data.get(INT_LE, sub + TOPS + 4L * r));
                    for (int j = 0; j < 16; j += lanes) {
                        IntVector q = RowLanes.rowNibbles(data, sub + NIBBLES + 4L * r, j).and(0xF)
                                .or(tops.lanewise(VectorOperators.ROR, IntVector.fromArray(I_SPECIES, TOP_ROTATIONS, j)).and(0x30));
                        floats(q.sub(32)).mul(scale).intoArray(out, outOffset + i + 16 * k + j);
                    }
                }
            }
            return;
        }
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset + 208);
            for (int half = 0; half < 2; half++) {
                long ql = offset + 64L * half, qh = offset + 128 + 32L * half;
                long scales = data.get(LONG_LE, offset + 192 + 8L * half);
                int o = outOffset + i + 128 * half;
                for (int l = 0; l < 32; l += lanes) { // the Vector API's calls alone (Tensor.B_SPECIES)
                    IntVector h = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qh + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0) : signedBytes(data, qh + l));
                    for (int g = 0; g < 4; g++) {
                        IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, ql + l + 32 * (g & 1), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0) : signedBytes(data, ql + l + 32 * (g & 1)))
                                .lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        ((FloatVector) q.convert(VectorOperators.I2F, 0)).mul(d * (byte) (scales >>> 8 * (l / 16 + 2 * g))).intoArray(out, o + 32 * g + l);
                    }
                }
            }
        }
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        if (grouped) task.use(RowLanes.nibbleScaled(x, xOffset, cols), 0, blockSums(x, xOffset, cols, 16));
        else task.use(x, xOffset);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
            return;
        }
        RowLanes.dotRows(this, x, xOffset, sums, out, outOffset, firstRow, start, end);
    }
}
