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
 * f32]}, then per 16 weights (a scale's sub-block) {@code [scales: L int8][3 x L ints of quants]}: quant int t of
 * lane r holds the whole unsigned 6-bit quants of weights 5t .. 5t + 4 of row r's sub-block, weight 5t + p in bits
 * 6p .. 6p + 5, so that one and takes a quant out in place (as Q5_K's layout); weight 15 lies two bits at a time in
 * the top of the three ints, bits 2t .. 2t + 1 in int t. Three vector operations per quant, where the layout this one
 * replaced (two ints of nibbles and one of top bits, put above the nibbles by a rotation, and an and and an or) took
 * four ({@link #laneDot}). 212 bytes per row and super-block against the file's 210: d is kept as a float,
 * because with the f16 d converted for every sub-block the kernel ran 2.4x slower (JMH, 1024 x 4096: 427 against 180 us; most samples on the conversion, for reasons not
 * understood; Q4_K, whose layout keeps f16, ran slower with f32 d, 180 against 121 us). In the order the kernel reads
 * them: a Q4_K layout with each column's scales gathered ahead of its quants ran 1.7x slower from memory.
 */
final class Q6_KTensor extends KQuantTensor implements RowLanes.Kernel, Tensor.PanelProduct {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d, of a sub-block, of a super-block column; where a sub-block's nibble ints and top-bit ints start. */
    private static final int HEAD = 4 * L, SUB = 13 * L, COLUMN = HEAD + 16 * SUB, QUANTS = L;
    /** {@code 0x3F << 6p}: quant p of a quant int, in place (read from memory, broadcast by the and's load). */
    private static final int[] QUANT_MASKS = IntStream.range(0, 5).map(p -> 0x3F << 6 * p).toArray();
    /**
     * Per weight w of a sub-block (and L more, {@link RowLanes#scaled}): {@code 2^-6p}, p its place in its quant int
     * (weight 15's is 0), taken out of x once per matrix call so that a quant left in place ({@code q * 2^6p}, exact:
     * six significant bits, at most bit 29) times x is {@code q * x}.
     */
    private static final float[] QUANT_SCALES = quantScales();
    /** Per weight w of a sub-block: which of a row's quant ints holds it (3: weight 15, from the top bits), and at which bit. */
    private static final int[] QUANT_INT = IntStream.range(0, 16).map(w -> w < 15 ? w / 5 : 3).toArray(),
            QUANT_SHIFT = IntStream.range(0, 16).map(w -> w < 15 ? 6 * (w % 5) : 0).toArray();

    private static float[] quantScales() {
        float[] scales = new float[16 + L];
        for (int j = 0; j < scales.length; j++) scales[j] = (float) Math.scalb(1.0, -6 * (j % 16 % 15 % 5));
        return scales;
    }

    Q6_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q6_K, data, cols, rows);
    }

    private Q6_KTensor(Tensor file, MemorySegment grouped) {
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
        return new Q6_KTensor(this, laneLayoutCopy(memory, COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, f16(row, at + 208));
            for (int k = 0; k < 16; k++) {
                int sub = column + HEAD + k * SUB;
                group.set(JAVA_BYTE, sub + r, row.get(JAVA_BYTE, at + 192 + k));
                // sub-block k: weights 16 (k % 2) .. + 15 of group g = k % 8 / 2 of half h = k / 8 (see laneDot)
                int h = k / 8, g = k % 8 / 2, ql = at + 64 * h + 32 * (g % 2) + 16 * (k % 2), qh = at + 128 + 32 * h + 16 * (k % 2);
                writeQuants(sixBits(row, ql, qh, g), sixBits(row, ql + 8, qh + 8, g), group, sub, r);
            }
        }));
    }

    /**
     * Eight unsigned 6-bit quants of group g of a half, one per byte of a long: the nibbles of the ql bytes at
     * {@code ql} (the high ones for g >= 2) with bit pair g of the qh bytes at {@code qh} on top.
     */
    private static long sixBits(MemorySegment row, int ql, int qh, int g) {
        return row.get(LONG_LE, ql) >>> 4 * (g / 2) & 0x0F0F_0F0F_0F0F_0F0FL | (row.get(LONG_LE, qh) >>> 2 * g & 0x0303_0303_0303_0303L) << 4;
    }

    /**
     * A sub-block's 16 unsigned 6-bit quants, weights 0-7 one per byte of {@code low} and 8-15 of {@code high}, into
     * lane r of its three quant ints at {@code sub + QUANTS} in {@code group}: weights 5t .. 5t + 4 in int t at bits
     * 6p, weight 15's bits 2t .. 2t + 1 on top. {@link RowLanes#packFields} gathers each byte's six bits (one {@code pext}
     * on x86): the 96 bits of the sub-block's quants, weight w at bit 6w, in two longs. Whole words: unpacking into an
     * int per weight and packing them again took 1.9 ns per weight (TinyLlama Q6_K's copy 1.9-2.7 s against 0.9-1.6).
     */
    private static void writeQuants(long low, long high, MemorySegment group, int sub, int r) {
        long a = RowLanes.packFields(low, 6), b = RowLanes.packFields(high, 6); // bits 0-47, 48-95
        int last = (int) (b >>> 42); // weight 15
        int quants = sub + QUANTS + 4 * r;
        group.set(INT_LE, quants, (int) a & 0x3FFF_FFFF | last << 30);
        group.set(INT_LE, quants + 4 * L, (int) (a >>> 30 | b << 18) & 0x3FFF_FFFF | (last >>> 2) << 30);
        group.set(INT_LE, quants + 8 * L, (int) (b >>> 12) & 0x3FFF_FFFF | (last >>> 4) << 30);
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
                    // unsigned bytes, the Vector API's calls written out (Tensor.B_SPECIES)
                    IntVector h = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qh + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, qh + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF).lanewise(VectorOperators.LSHL, 4);
                    IntVector a = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, ql + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, ql + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF);
                    IntVector b = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, ql + l + 32, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, ql + l + 32)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF);
                    for (int g = 0; g < 4; g++) {
                        IntVector q = ((g & 1) == 0 ? a : b).lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(0x30)).sub(32);
                        int scale = (byte) (scales >>> 8 * (l / 16 + 2 * g));
                        sum = ((FloatVector) q.mul(scale).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, base + 32 * g + l), sum);
                    }
                }
            }
            acc = sum.fma(FloatVector.broadcast(F_SPECIES, f16(data, offset + 208)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /**
     * The dot products of the L rows of group {@code group} with x (scaled per quant place, {@link #QUANT_SCALES};
     * its {@link #blockSums} per 16, {@code xSums}), to {@code out[o .. o + L)}: per sub-block of 16 weights, lane r
     * sums row r's unsigned 6-bit quants times the broadcast activations in three accumulators (one per quant int;
     * an and and a conversion per quant) and weight 15 gathered from the ints' top bits, takes away 32 times the
     * activations' sum, and multiplies by {@code d * scale}, one vector for the L rows. One flat loop over the
     * sub-blocks (as Q4_K's), written with the Vector API's calls alone. Against the layout of nibble ints and top
     * bits: see the commit that made this one.
     */
    @Override
    public void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o) {
        long column = group * L * rowBytes;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int c = xOffset, k = 0; c < xOffset + cols; c += 16, k = (k + 1) % 16) { // k: the sub-block in its super-block
            long sub = column + HEAD + (long) k * SUB;
            IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, sub + QUANTS, ByteOrder.LITTLE_ENDIAN),
                    v1 = IntVector.fromMemorySegment(I_SPECIES, data, sub + QUANTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    v2 = IntVector.fromMemorySegment(I_SPECIES, data, sub + QUANTS + 8L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector s0 = FloatVector.zero(F_SPECIES), s1 = s0, s2 = s0;
            for (int p = 0; p < 5; p++) { // quant p of int t: weight 5t + p
                int mask = QUANT_MASKS[p];
                s0 = ((FloatVector) v0.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + p]), s0);
                s1 = ((FloatVector) v1.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 5 + p]), s1);
                s2 = ((FloatVector) v2.and(mask).convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F_SPECIES, x[c + 10 + p]), s2);
            }
            IntVector last = v0.lanewise(VectorOperators.LSHR, 30).or(v1.lanewise(VectorOperators.LSHR, 28).and(0xC))
                    .or(v2.lanewise(VectorOperators.LSHR, 26).and(0x30)); // q15
            FloatVector s3 = ((FloatVector) last.convert(VectorOperators.I2F, 0)).mul(x[c + 15]);
            FloatVector scale = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN)
                    .mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
            acc = s0.add(s1).add(s2.add(s3)).sub(32 * xSums[(c - xOffset) / 16]).fma(scale, acc);
            if (k == 15) column += COLUMN;
        }
        acc.intoArray(out, o);
    }

    /**
     * The decode layout's rows ({@link #dequantizeRow} delegates here for it, the file's layout goes row by row):
     * row r's quant ints lie 4L bytes apart, read into an array; per vector of weights each int it holds
     * ({@code QUANT_INT}) is broadcast into its lanes (a blend per int after the first), each lane shifted to its
     * quant ({@code QUANT_SHIFT}). Prefill after decode, TinyLlama pp128: 95-104 tokens/s with a gather from the
     * array ({@code vpgatherdd}), 98-115 so; a rearrange of the ints as a vector was no faster than the gather.
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
                float d = data.get(FLOAT_LE, column + 4L * r);
                for (int k = 0; k < 16; k++) {
                    long sub = column + HEAD + (long) k * SUB;
                    FloatVector scale = FloatVector.broadcast(F_SPECIES, d * data.get(JAVA_BYTE, sub + r));
                    readRowQuantInts(ints, sub + QUANTS, r, 3); // then q15, from the ints' top bits
                    for (int j = 0; j < 16; j += lanes) {
                        IntVector which = IntVector.fromArray(I_SPECIES, QUANT_INT, j), v = IntVector.broadcast(I_SPECIES, ints[QUANT_INT[j]]);
                        for (int t = QUANT_INT[j] + 1; t <= QUANT_INT[j + lanes - 1]; t++) v = v.blend(ints[t], which.eq(t));
                        IntVector q = v.lanewise(VectorOperators.LSHR, IntVector.fromArray(I_SPECIES, QUANT_SHIFT, j)).and(0x3F);
                        ((FloatVector) q.sub(32).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, o + i + 16 * k + j);
                    }
                }
            }
        }
    }

    /**
     * Per super-block column and sub-block, each weight column of the group as one vector, {@code (q - 32) * (d * scale)}
     * ({@link Tensor.PanelRows}).
     */
    @Override
    public void panelGroup(long group, float[] out, int first) {
        for (int i = 0; i < cols / SUPER_BLOCK; i++) {
            long column = group + (long) i * COLUMN;
            int at = first + i * SUPER_BLOCK * L;
            FloatVector d = FloatVector.fromMemorySegment(F_SPECIES, data, column, ByteOrder.LITTLE_ENDIAN);
            for (int k = 0; k < 16; k++) {
                long sub = column + HEAD + (long) k * SUB;
                FloatVector scale = d.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, sub + QUANTS, ByteOrder.LITTLE_ENDIAN),
                        v1 = IntVector.fromMemorySegment(I_SPECIES, data, sub + QUANTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                        v2 = IntVector.fromMemorySegment(I_SPECIES, data, sub + QUANTS + 8L * L, ByteOrder.LITTLE_ENDIAN);
                int w = at + 16 * k * L;
                for (int p = 0; p < 5; p++, w += L) { // quant p of int t: weight 5t + p
                    ((FloatVector) v0.lanewise(VectorOperators.LSHR, 6 * p).and(0x3F).sub(32).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, w);
                    ((FloatVector) v1.lanewise(VectorOperators.LSHR, 6 * p).and(0x3F).sub(32).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, w + 5 * L);
                    ((FloatVector) v2.lanewise(VectorOperators.LSHR, 6 * p).and(0x3F).sub(32).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, w + 10 * L);
                }
                IntVector last = v0.lanewise(VectorOperators.LSHR, 30).or(v1.lanewise(VectorOperators.LSHR, 28).and(0xC))
                        .or(v2.lanewise(VectorOperators.LSHR, 26).and(0x30)); // q15
                ((FloatVector) last.sub(32).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + (16 * k + 15) * L);
            }
        }
    }

    /** Rounds as ggml's dequantize_row_q6_K does: {@code (d * scale) * q}. */
    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        int lanes = F_SPECIES.length();
        if (grouped) {
            dequantizeRows(row, 1, out, outOffset, 0);
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
                    IntVector h = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qh + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, qh + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24));
                    for (int g = 0; g < 4; g++) {
                        IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, ql + l + 32 * (g & 1), ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                                : IntVector.broadcast(I_SPECIES, data.get(INT_LE, ql + l + 32 * (g & 1))).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24))
                                .lanewise(VectorOperators.LSHR, 4 * (g >> 1)).and(0xF)
                                .or(h.lanewise(VectorOperators.LSHR, 2 * g).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        ((FloatVector) q.convert(VectorOperators.I2F, 0)).mul(d * (byte) (scales >>> 8 * (l / 16 + 2 * g))).intoArray(out, o + 32 * g + l);
                    }
                }
            }
        }
    }

    /** 32 in the place of quant p of a quant int ({@link #panelPairProduct}). */
    private static final int[] QUANT_OFFSETS = IntStream.range(0, 5).map(p -> 32 << 6 * p).toArray();

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a column at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order (as Q4_0Tensor's). Quant p of int t (weight 5t + p of a sub-block) is taken in
     * place, {@code (v & 0x3F << 6p) - (32 << 6p)} = (q - 32) * 2^6p, times the scale: the panel's weight times 2^6p
     * exactly, against x's column scaled by 2^-6p ({@link #QUANT_SCALES}); weight 15 is gathered from the ints' top bits.
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int i = 0; i < cols / SUPER_BLOCK; i++, a += COLUMN, b += COLUMN) {
            FloatVector dA = FloatVector.fromMemorySegment(F_SPECIES, data, a, ByteOrder.LITTLE_ENDIAN),
                    dB = FloatVector.fromMemorySegment(F_SPECIES, data, b, ByteOrder.LITTLE_ENDIAN);
            for (int k = 0; k < 16; k++) {
                long subA = a + HEAD + (long) k * SUB + QUANTS, subB = b + HEAD + (long) k * SUB + QUANTS;
                FloatVector scaleA = dA.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subA - QUANTS, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        scaleB = dB.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, subB - QUANTS, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                for (int t = 0; t < 3; t++) {
                    IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, subA + 4L * L * t, ByteOrder.LITTLE_ENDIAN),
                            vB = IntVector.fromMemorySegment(I_SPECIES, data, subB + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                    for (int p = 0; p < 5; p++, xk += TileKernels.PAIR_TOKENS) {
                        int mask = QUANT_MASKS[p], offset = QUANT_OFFSETS[p];
                        FloatVector u = ((FloatVector) vA.and(mask).sub(offset).convert(VectorOperators.I2F, 0)).mul(scaleA),
                                w = ((FloatVector) vB.and(mask).sub(offset).convert(VectorOperators.I2F, 0)).mul(scaleB);
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
                // weight 15, two bits in the top of each int (panelGroup's q15), x's column not scaled
                IntVector lastA = IntVector.fromMemorySegment(I_SPECIES, data, subA, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 30)
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, subA + 4L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 28).and(0xC))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, subA + 8L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 26).and(0x30));
                IntVector lastB = IntVector.fromMemorySegment(I_SPECIES, data, subB, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 30)
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, subB + 4L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 28).and(0xC))
                        .or(IntVector.fromMemorySegment(I_SPECIES, data, subB + 8L * L, ByteOrder.LITTLE_ENDIAN).lanewise(VectorOperators.LSHR, 26).and(0x30));
                FloatVector u = ((FloatVector) lastA.sub(32).convert(VectorOperators.I2F, 0)).mul(scaleA),
                        w = ((FloatVector) lastB.sub(32).convert(VectorOperators.I2F, 0)).mul(scaleB);
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
                xk += TileKernels.PAIR_TOKENS;
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
     * Past 32 tokens the tiles are level: `bench`, TinyLlama Q6_K, 2 threads, alternating, tiles -> panel product,
     * pp3 26.9/25.1 -> 45.6/38.7 tokens/s, pp8 67.9/63.6 -> 113.4/98.1, pp16 101.6/93.2 -> 141.6/116.5, pp32
     * 136.8/121.1 -> 150.0/127.2, pp48 151.7/138.9 -> 151.8/131.8. (With the loops' bounds varying, four ints of
     * which the last one's single quant, it ran slower than the tiles at every size: C2 unrolls loops of constant
     * counts, which keeps the masks in registers.)
     */
    @Override
    public int panelProductTokens() {
        return 32;
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        if (grouped) task.use(RowLanes.scaled(x, xOffset, cols, QUANT_SCALES), 0, blockSums(x, xOffset, cols, 16));
        else task.use(x, xOffset);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
            return;
        }
        RowLanes.dotRows(this, x, xOffset, sums, out, outOffset, firstRow, start, end);
    }
}
