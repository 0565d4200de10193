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
 * 0..L-1: L f32][dmin: L f32]}, then per sub-block of 32 {@code [scales: L bytes][mins: L bytes][5 x L ints of
 * quants]}: quant int t of lane r holds the whole 5-bit quants of weights 6t .. 6t + 5 of row r's sub-block, weight
 * 6t + p in bits 5p .. 5p + 4, so that one and takes a quant out in place, as a nibble of Q4_K's ints: three vector
 * operations per 5-bit quant, where nibble ints and an int of fifth bits took four. Weights 30 and 31 (ten bits,
 * {@code q30 | q31 << 5}) lie two bits at a time in the top of the five ints, bits 2t .. 2t + 1 in int t. 184 bytes
 * per row and super-block against the file's 176 (d and dmin as floats, as Q6_K keeps its d), as the layout of
 * nibble ints and fifth bits that this one replaced ({@link #laneDot}).
 */
final class Q5_KTensor extends KQuantTensor implements RowLanes.Kernel, Tensor.PanelProduct {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d and dmin, of a sub-block, of a super-block column; where a sub-block's quant ints start. */
    private static final int HEAD = 8 * L, SUB = 22 * L, COLUMN = HEAD + 8 * SUB, QUANTS = 2 * L;
    /** {@code 0x1F << 5p}: quant p of a quant int, in place (read from memory, broadcast by the and's load). */
    private static final int[] QUANT_MASKS = IntStream.range(0, 6).map(p -> 0x1F << 5 * p).toArray();
    /**
     * Per weight w of a sub-block (and L more, {@link RowLanes#scaled}): {@code 2^-5p}, p its place in its quant int,
     * taken out of x once per matrix call so that a quant left in place ({@code q * 2^5p}, exact: five significant
     * bits, at most bit 29) times x is {@code q * x}; weight 31 has place 1 among the top bits' ten.
     */
    static final float[] QUANT_SCALES = quantScales();
    /** Per weight w of a sub-block: which of a row's quant ints holds it (5: weights 30 and 31, from the top bits), and at which bit. */
    private static final int[] QUANT_INT = IntStream.range(0, 32).map(w -> w < 30 ? w / 6 : 5).toArray(),
            QUANT_SHIFT = IntStream.range(0, 32).map(w -> w < 30 ? 5 * (w % 6) : 5 * (w - 30)).toArray();

    private static float[] quantScales() {
        float[] scales = new float[32 + L];
        for (int j = 0; j < scales.length; j++) scales[j] = (float) Math.scalb(1.0, -5 * (j % 32 % 6));
        return scales;
    }

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
    public Tensor forDecode(OffHeap memory) {
        if (grouped) return this;
        return new Q5_KTensor(this, laneLayoutCopy(memory, COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, f16(row, at));
            group.set(FLOAT_LE, column + 4 * L + 4 * r, f16(row, at + 2));
            long scales = packedScales(row, at + 4), mins = packedMins(row, at + 4);
            for (int s = 0; s < 8; s++) {
                int sub = column + HEAD + s * SUB;
                group.set(JAVA_BYTE, sub + r, (byte) (scales >>> 8 * s));
                group.set(JAVA_BYTE, sub + L + r, (byte) (mins >>> 8 * s));
                writeQuantInts(fiveBits(row, at, s, 0), fiveBits(row, at, s, 1), fiveBits(row, at, s, 2), fiveBits(row, at, s, 3), group, sub + QUANTS + 4 * r);
            }
        }));
    }

    /**
     * A sub-block's 32 five-bit quants, weights 8p .. 8p + 7 at bits 5w of {@code cp}, into one lane's five quant ints
     * at {@code quants} and 4L bytes apart: int t holds weights 6t .. 6t + 5, and bits 2t .. 2t + 1 of
     * {@code q30 | q31 << 5} on top. Q5_1's decode layout ({@link Q5_1Lanes}) packs its blocks so too.
     */
    static void writeQuantInts(long c0, long c1, long c2, long c3, MemorySegment group, int quants) {
        long s0 = c0 | c1 << 40, s1 = c1 >>> 24 | c2 << 16 | c3 << 56, s2 = c3 >>> 8; // bit 5w of the 160-bit string
        int last = (int) (s2 >>> 22); // weights 30 and 31
        group.set(INT_LE, quants, (int) s0 & 0x3FFF_FFFF | (last & 3) << 30);
        group.set(INT_LE, quants + 4 * L, (int) (s0 >>> 30) & 0x3FFF_FFFF | (last >>> 2 & 3) << 30);
        group.set(INT_LE, quants + 8 * L, (int) (s0 >>> 60 | s1 << 4) & 0x3FFF_FFFF | (last >>> 4 & 3) << 30);
        group.set(INT_LE, quants + 12 * L, (int) (s1 >>> 26) & 0x3FFF_FFFF | (last >>> 6 & 3) << 30);
        group.set(INT_LE, quants + 16 * L, (int) (s1 >>> 56 | s2 << 8) & 0x3FFF_FFFF | (last >>> 8) << 30);
    }

    /**
     * Weights {@code 8p .. 8p + 7} of sub-block s of the file's super-block at {@code row[at ..]}, their 5-bit quants
     * gathered ({@link RowLanes#packFields}, one {@code pext} on x86) at bits 5w of a long: each is a nibble of
     * {@code qs[32 (s / 2) + l]} (the high one for odd s) with bit s of {@code qh[l]} on top. Whole words: unpacking
     * into an int per weight and packing them again cost several times as much.
     */
    private static long fiveBits(MemorySegment row, int at, int s, int p) {
        long nibbles = row.get(LONG_LE, at + 48 + 32 * (s / 2) + 8 * p) >>> 4 * (s % 2) & 0x0F0F_0F0F_0F0F_0F0FL;
        long top = row.get(LONG_LE, at + 16 + 8 * p) >>> s & 0x0101_0101_0101_0101L;
        return RowLanes.packFields(nibbles | top << 4, 5);
    }

    /**
     * The dot products of the L rows of group {@code group} with x (scaled per quant place, {@link #QUANT_SCALES};
     * its {@link #blockSums} per 32, {@code xSums}), to {@code out[o .. o + L)}: per sub-block, lane r sums row r's
     * quants times the broadcast activations in five accumulators (one per quant int; an and and a conversion per
     * quant) and weights 30 and 31 gathered from the ints' top bits, then takes {@code d * scale} and {@code dmin * min} (times the sub-block's activation sum) as one vector
     * each for the L rows. One flat loop over the sub-blocks, as Q4_K's, written with the Vector API's calls alone.
     * Against the layout of nibble ints and a fifth-bit int (four operations per quant, per half sub-block), JMH
     * matvec 1024 x 4096 in cache 3.3 against 5.2 us, from memory 109 against 171 us; TinyLlama tg64 24-38 -> 38-51
     * tokens/s (alternating runs). A first version with a sixth int for weights 30 and 31 (216 bytes per row and
     * super-block) was as fast in cache and no faster from memory (175 us).
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, s = 0; c < xOffset + cols; c += 32, s = (s + 1) % 8) { // s: the sub-block in its super-block
            long sub = column + HEAD + (long) s * SUB, ints = sub + QUANTS;
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, ints, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    v3 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 12L * L, ByteOrder.LITTLE_ENDIAN),
                    v4 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 16L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0, s3 = s0, s4 = s0;
            for (int p = 0; p < 6; p++) { // quant p of int t: weight 6t + p
                int mask = QUANT_MASKS[p];
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
            // the 6-bit scales and mins widened as Q4_K's (LANE_BYTES), d and dmin loaded with them
            FloatVector scales = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    mins = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN),
                    dmin = FloatVector.fromMemorySegment(F_SPECIES, data, column + 4L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector sum = s0.add(s1).add(s2.add(s3)).add(s4.add(s5));
            acc = sum.fma(d.mul(scales), dmin.mul(mins).fma(FloatVector.broadcast(F_SPECIES, -xSums[(c - xOffset) / 32]), acc));
            if (s == 7) column += COLUMN;
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
                    // unsigned bytes, the Vector API's calls written out (Tensor.B_SPECIES)
                    IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qs + 32L * j + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, qs + 32L * j + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF);
                    IntVector h = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qh + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, qh + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF)
                            .lanewise(VectorOperators.LSHL, 4); // bit b of qh[l] at bit b + 4
                    IntVector lo = q.and(0xF).or(h.lanewise(VectorOperators.LSHR, 2 * j).and(16));
                    IntVector hi = q.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2 * j + 1).and(16));
                    qxLo = ((FloatVector) lo.convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, base + l), qxLo);
                    qxHi = ((FloatVector) hi.convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 + l), qxHi);
                }
                acc = qxLo.fma(FloatVector.broadcast(F_SPECIES, d * (scales & 0xFF)), acc);
                acc = qxHi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> 8) & 0xFF)), acc);
            }
        }
        return acc.reduceLanes(VectorOperators.ADD) - minsShare(row, xSums);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (!grouped) {
            dequantizeScaleMin(row, out, outOffset, 16, 48);
            return;
        }
        dequantizeRows(row, 1, out, outOffset, 0);
    }

    /**
     * The decode layout's rows ({@link #dequantizeRow} delegates here for it, the file's layout goes row by row),
     * rounding as ggml's dequantize_row_q5_K: {@code (d * scale) * q - dmin * min}. Row r's quant ints lie 4L bytes
     * apart, read into an array; per vector of weights each int it holds ({@code QUANT_INT}) is broadcast into its
     * lanes (a blend per int after the first), each lane shifted to its quant ({@code QUANT_SHIFT}), as Q6_K's.
     * TinyLlama pp128 after decode: 90-111 tokens/s with a gather from the array, 105-113 so.
     */
    @Override
    void dequantizeRows(long firstRow, int n, float[] out, int outOffset, int stride) {
        if (!grouped) {
            super.dequantizeRows(firstRow, n, out, outOffset, stride);
            return;
        }
        int lanes = F_SPECIES.length();
        int[] ints = ROW_INTS.get();
        for (int row = 0; row < n; row++) {
            int r = (int) ((firstRow + row) % L), o = outOffset + row * stride;
            long column = (firstRow + row - r) * rowBytes;
            for (int i = 0; i < cols; i += SUPER_BLOCK, column += COLUMN) {
                float d = data.get(FLOAT_LE, column + 4L * r), dmin = data.get(FLOAT_LE, column + 4L * L + 4L * r);
                for (int s = 0; s < 8; s++) {
                    long sub = column + HEAD + (long) s * SUB;
                    FloatVector scale = FloatVector.broadcast(F_SPECIES, d * (data.get(JAVA_BYTE, sub + r) & 0xFF));
                    FloatVector min = FloatVector.broadcast(F_SPECIES, dmin * (data.get(JAVA_BYTE, sub + L + r) & 0xFF));
                    readRowQuantInts(ints, sub + QUANTS, r, 5); // then q30 | q31 << 5, from the ints' top bits
                    for (int j = 0; j < 32; j += lanes) {
                        IntVector which = IntVector.fromArray(I_SPECIES, QUANT_INT, j), v = IntVector.broadcast(I_SPECIES, ints[QUANT_INT[j]]);
                        for (int t = QUANT_INT[j] + 1; t <= QUANT_INT[j + lanes - 1]; t++) v = v.blend(ints[t], which.eq(t));
                        IntVector q = v.lanewise(VectorOperators.LSHR, IntVector.fromArray(I_SPECIES, QUANT_SHIFT, j)).and(0x1F);
                        ((FloatVector) q.convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, o + i + 32 * s + j);
                    }
                }
            }
        }
    }

    /**
     * Per super-block column and sub-block, each weight column of the group as one vector, {@code q * (d * scale) - dmin * min}
     * ({@link Tensor.PanelRows}).
     */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int i = 0; i < cols / SUPER_BLOCK; i++) {
            long column = group + (long) i * COLUMN;
            int at = first + i * SUPER_BLOCK * L;
            FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN),
                    dmin = FloatVector.fromMemorySegment(F_SPECIES, data, column + 4L * L, ByteOrder.LITTLE_ENDIAN);
            for (int s = 0; s < 8; s++) {
                long sub = column + HEAD + (long) s * SUB, ints = sub + QUANTS;
                FloatVector scale = d.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        min = dmin.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, ints, ByteOrder.LITTLE_ENDIAN),
                        v1 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 4L * L, ByteOrder.LITTLE_ENDIAN),
                        v2 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 8L * L, ByteOrder.LITTLE_ENDIAN),
                        v3 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 12L * L, ByteOrder.LITTLE_ENDIAN),
                        v4 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 16L * L, ByteOrder.LITTLE_ENDIAN);
                int w = at + 32 * s * L;
                for (int p = 0; p < 6; p++, w += L) { // quant p of int t: weight 6t + p
                    ((FloatVector) v0.lanewise(VectorOperators.LSHR, 5 * p).and(0x1F).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w);
                    ((FloatVector) v1.lanewise(VectorOperators.LSHR, 5 * p).and(0x1F).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 6 * L);
                    ((FloatVector) v2.lanewise(VectorOperators.LSHR, 5 * p).and(0x1F).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 12 * L);
                    ((FloatVector) v3.lanewise(VectorOperators.LSHR, 5 * p).and(0x1F).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 18 * L);
                    ((FloatVector) v4.lanewise(VectorOperators.LSHR, 5 * p).and(0x1F).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 24 * L);
                }
                IntVector last = v0.lanewise(VectorOperators.LSHR, 30).or(v1.lanewise(VectorOperators.LSHR, 28).and(0xC))
                        .or(v2.lanewise(VectorOperators.LSHR, 26).and(0x30)).or(v3.lanewise(VectorOperators.LSHR, 24).and(0xC0))
                        .or(v4.lanewise(VectorOperators.LSHR, 22).and(0x300)); // q30 | q31 << 5
                w = at + (32 * s + 30) * L;
                ((FloatVector) last.and(0x1F).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w);
                ((FloatVector) last.lanewise(VectorOperators.LSHR, 5).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + L);
            }
        }
    }

    /** Each thread's mins of a sub-block times 2^5p, p < 6, of two groups: p's of group a at {@code p * L}, of b at {@code (6 + p) * L}. */
    private static final ThreadLocal<float[]> SCALED_MINS = ThreadLocal.withInitial(() -> new float[12 * L]);

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a column at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order (as Q4_0Tensor's). Quant p of int t (weight 6t + p of a sub-block) is taken in
     * place, q * 2^5p, times the scale, less the min times 2^5p: the panel's {@code q * scale - min} times 2^5p
     * exactly, against x's column scaled by 2^-5p ({@link #QUANT_SCALES}); weights 30 and 31, gathered from the ints'
     * top bits, as quants 0 and 1 of a sixth int (the loops' counts constant, so that C2 unrolls them).
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        float[] mins = Tensor.scratch(SCALED_MINS, 12 * L);
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int i = 0; i < cols / SUPER_BLOCK; i++, a += COLUMN, b += COLUMN) {
            FloatVector dA = FloatVector.fromMemorySegment(F_SPECIES, data, a, ByteOrder.LITTLE_ENDIAN),
                    dminA = FloatVector.fromMemorySegment(F_SPECIES, data, a + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    dB = FloatVector.fromMemorySegment(F_SPECIES, data, b, ByteOrder.LITTLE_ENDIAN),
                    dminB = FloatVector.fromMemorySegment(F_SPECIES, data, b + 4L * L, ByteOrder.LITTLE_ENDIAN);
            for (int s = 0; s < 8; s++) {
                long subA = a + HEAD + (long) s * SUB, subB = b + HEAD + (long) s * SUB;
                FloatVector scaleA = dA.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        minA = dminA.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subA + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        scaleB = dB.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        minB = dminB.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subB + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                for (int p = 0; p < 6; p++) {
                    float power = Math.scalb(1f, 5 * p);
                    minA.mul(power).intoArray(mins, p * L);
                    minB.mul(power).intoArray(mins, (6 + p) * L);
                }
                long intsA = subA + QUANTS, intsB = subB + QUANTS;
                for (int t = 0; t < 5; t++) {
                    IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, intsA + 4L * L * t, ByteOrder.LITTLE_ENDIAN),
                            vB = IntVector.fromMemorySegment(I_SPECIES, data, intsB + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                    for (int p = 0; p < 6; p++, xk += TileKernels.PAIR_TOKENS) {
                        int mask = QUANT_MASKS[p];
                        FloatVector u = ((FloatVector) vA.and(mask).convert(VectorOperators.I2F, 0)).mul(scaleA).sub(FloatVector.fromArray(F_SPECIES, mins, p * L)),
                                w = ((FloatVector) vB.and(mask).convert(VectorOperators.I2F, 0)).mul(scaleB).sub(FloatVector.fromArray(F_SPECIES, mins, (6 + p) * L));
                        FloatVector x = FloatVector.broadcast(F_SPECIES, xt[xk]);
                        a0 = u.fma(x, a0); c0 = w.fma(x, c0);
                        x = FloatVector.broadcast(F_SPECIES, xt[xk + 1]);
                        a1 = u.fma(x, a1); c1 = w.fma(x, c1);
                        x = FloatVector.broadcast(F_SPECIES, xt[xk + 2]);
                        a2 = u.fma(x, a2); c2 = w.fma(x, c2);
                        x = FloatVector.broadcast(F_SPECIES, xt[xk + 3]);
                        a3 = u.fma(x, a3); c3 = w.fma(x, c3);
                        x = FloatVector.broadcast(F_SPECIES, xt[xk + 4]);
                        a4 = u.fma(x, a4); c4 = w.fma(x, c4);
                        x = FloatVector.broadcast(F_SPECIES, xt[xk + 5]);
                        a5 = u.fma(x, a5); c5 = w.fma(x, c5);
                        x = FloatVector.broadcast(F_SPECIES, xt[xk + 6]);
                        a6 = u.fma(x, a6); c6 = w.fma(x, c6);
                        x = FloatVector.broadcast(F_SPECIES, xt[xk + 7]);
                        a7 = u.fma(x, a7); c7 = w.fma(x, c7);
                    }
                }
                // weights 30 and 31: q30 | q31 << 5 from the five ints' top bits (panelGroup's last), taken as quants 0 and 1
                IntVector lastA = IntVector.fromMemorySegment(I_SPECIES, data, intsA, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 30)
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsA + 4L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 28).and(0xC))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsA + 8L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 26).and(0x30))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsA + 12L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 24).and(0xC0))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsA + 16L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 22).and(0x300));
                IntVector lastB = IntVector.fromMemorySegment(I_SPECIES, data, intsB, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 30)
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsB + 4L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 28).and(0xC))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsB + 8L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 26).and(0x30))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsB + 12L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 24).and(0xC0))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, intsB + 16L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 22).and(0x300));
                for (int p = 0; p < 2; p++, xk += TileKernels.PAIR_TOKENS) {
                    int mask = QUANT_MASKS[p];
                    FloatVector u = ((FloatVector) lastA.and(mask).convert(VectorOperators.I2F, 0)).mul(scaleA).sub(FloatVector.fromArray(F_SPECIES, mins, p * L)),
                            w = ((FloatVector) lastB.and(mask).convert(VectorOperators.I2F, 0)).mul(scaleB).sub(FloatVector.fromArray(F_SPECIES, mins, (6 + p) * L));
                    FloatVector x = FloatVector.broadcast(F_SPECIES, xt[xk]);
                    a0 = u.fma(x, a0); c0 = w.fma(x, c0);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 1]);
                    a1 = u.fma(x, a1); c1 = w.fma(x, c1);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 2]);
                    a2 = u.fma(x, a2); c2 = w.fma(x, c2);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 3]);
                    a3 = u.fma(x, a3); c3 = w.fma(x, c3);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 4]);
                    a4 = u.fma(x, a4); c4 = w.fma(x, c4);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 5]);
                    a5 = u.fma(x, a5); c5 = w.fma(x, c5);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 6]);
                    a6 = u.fma(x, a6); c6 = w.fma(x, c6);
                    x = FloatVector.broadcast(F_SPECIES, xt[xk + 7]);
                    a7 = u.fma(x, a7); c7 = w.fma(x, c7);
                }
            }
        }
        a0.intoArray(acc, 0); a1.intoArray(acc, L); a2.intoArray(acc, 2 * L); a3.intoArray(acc, 3 * L);
        a4.intoArray(acc, 4 * L); a5.intoArray(acc, 5 * L); a6.intoArray(acc, 6 * L); a7.intoArray(acc, 7 * L);
        c0.intoArray(acc, 8 * L); c1.intoArray(acc, 9 * L); c2.intoArray(acc, 10 * L); c3.intoArray(acc, 11 * L);
        c4.intoArray(acc, 12 * L); c5.intoArray(acc, 13 * L); c6.intoArray(acc, 14 * L); c7.intoArray(acc, 15 * L);
    }

    @Override
    public float[] columnScales() {
        return QUANT_SCALES;
    }

    /**
     * As Q4_K's: `bench`, TinyLlama Q5_K (make-model), 2 threads, alternating, tiles -> panel product, pp3 26.7/24.9
     * -> 32.0/34.0 tokens/s, pp8 66.1/71.1 -> 105.8/90.1, pp16 92.2/100.9 -> 132.9/110.2.
     */
    @Override
    public int panelProductTokens() {
        return 16;
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        float[] xSums = blockSums(x, xOffset, cols, 32);
        if (grouped) task.use(RowLanes.scaled(x, xOffset, cols, QUANT_SCALES), 0, xSums);
        else task.use(x, xOffset, xSums);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
            return;
        }
        RowLanes.dotRows(this, x, xOffset, xSums, out, outOffset, firstRow, start, end);
    }
}
