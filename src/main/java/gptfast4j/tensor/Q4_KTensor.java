package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Q4_K: {@code [f16 d][f16 dmin][12 bytes: eight 6-bit scales and mins][128 bytes of nibbles]} per 256 weights.
 * Each 64 weights take 32 bytes: low nibbles are sub-block 2j, high nibbles sub-block 2j+1;
 * weight = d * scale * q - dmin * min.
 * <p>
 * Two layouts of the same weights: the file's, and the decode layout ({@link #forDecode}): rows in groups of as many
 * rows as a float vector has lanes (L, 16 with 512-bit vectors), one row per lane, so that the kernel multiplies L
 * rows at once by one broadcast activation and never sums across lanes. Per group and super-block column:
 * {@code [d of rows 0..L-1: L f32][dmin: L f32]}, then per sub-block {@code [scales: L bytes][mins: L bytes]
 * [4 x L ints]}, int t of lane r holding weights 8t .. 8t + 7 of row r's sub-block, weight 8t + p in bits
 * 4p .. 4p + 3 ({@link RowLanes}' ints). 152 bytes per row and super-block against the file's 144 (d and dmin as
 * floats, as Q5_K and Q6_K keep theirs); a last group that is not full is padded with zero rows. The scales,
 * mins, d and dmin of L rows are each one vector load, so the per-row scalar work of the four-row layout it replaced
 * is gone.
 */
final class Q4_KTensor extends KQuantTensor implements RowLanes.PairKernel, Tensor.PanelProduct {
    /** Rows per group of the decode layout: one per float lane. */
    private static final int L = RowLanes.L;
    /** Decode layout: bytes of a group's d and dmin, of a sub-block, of a super-block column; where a sub-block's ints start. */
    private static final int HEAD = 8 * L, SUB = 18 * L, COLUMN = HEAD + 8 * SUB, INTS = 2 * L;

    Q4_KTensor(String name, MemorySegment data, int cols, long rows) {
        super(name, GGMLType.Q4_K, data, cols, rows);
    }

    private Q4_KTensor(Q4_KTensor file, MemorySegment grouped) {
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
        return new Q4_KTensor(this, laneLayoutCopy(memory, COLUMN, (row, at, group, column, r) -> {
            group.set(FLOAT_LE, column + 4 * r, Float.float16ToFloat(row.get(SHORT_LE, at)));
            group.set(FLOAT_LE, column + 4 * L + 4 * r, Float.float16ToFloat(row.get(SHORT_LE, at + 2)));
            long scales = packedScales(row, at + 4), mins = packedMins(row, at + 4);
            for (int s = 0; s < 8; s++) {
                int sub = column + HEAD + s * SUB, shift = 4 * (s % 2);
                group.set(JAVA_BYTE, sub + r, (byte) (scales >>> 8 * s));
                group.set(JAVA_BYTE, sub + L + r, (byte) (mins >>> 8 * s));
                for (int t = 0; t < 4; t++) {
                    group.set(INT_LE, sub + INTS + 4 * L * t + 4 * r, RowLanes.packNibbles(row.get(LONG_LE, at + 16 + 32 * (s / 2) + 8 * t) >>> shift));
                }
            }
        }));
    }

    /**
     * Per 64 weights (two sub-blocks, 32 quant bytes: byte k holds weight k in its low nibble, 32 + k in its high one):
     * {@code sum(q · x)} per sub-block in floats, times {@code d * scale} once; the mins' share comes from the sums of
     * x ({@link #blockSums}). One flat loop over a super-block's 128 quant bytes, two vectors per step: a loop per 64
     * weights paid C2's loop set-up each time (3.30 against 3.10 ns per 32 weights in cache). Multiplying the 6-bit
     * scales into the quants as ints instead ({@code vpmulld}, then one FMA per vector) was slower: 3.37 against
     * 3.10-3.25 ns, TinyLlama Q4_K decode 15.0-16.0 against 15.5-17.2 tokens/s. Taking the scales from a per-row float
     * array, filled by the mins' loop, was slower too (3.35 ns).
     */
    @Override
    public float dot(long row, float[] x, int xOffset) {
        return grouped ? preparedDot(row, x, xOffset) : dot(row, x, xOffset, blockSums(x, xOffset, cols));
    }

    /** The file layout's dot product given the {@link #blockSums} of x. */
    private float dot(long row, float[] x, int xOffset, float[] xSums) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset);
            long scales = packedScales(offset + 4), qs = offset + 16;
            FloatVector lo = FloatVector.zero(F_SPECIES), hi = lo;
            for (int k = 0; k < 128; k += 2 * lanes) {
                // unsigned bytes, the Vector API's calls written out (Tensor.B_SPECIES)
                IntVector q0 = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qs + k, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, qs + k)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF);
                IntVector q1 = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, qs + k + lanes, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, qs + k + lanes)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).and(0xFF);
                int w = xOffset + i + 2 * k - k % 32;
                lo = ((FloatVector) q0.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, w), lo);
                hi = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, w + 32), hi);
                lo = ((FloatVector) q1.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, w + lanes), lo);
                hi = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, w + 32 + lanes), hi);
                // the end of a 64-weight group (2 * lanes divides 32 for every float species up to 512 bits)
                if ((k + 2 * lanes) % 32 == 0) {
                    int shift = 16 * (k / 32);
                    acc0 = lo.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> shift) & 0xFF)), acc0);
                    acc1 = hi.fma(FloatVector.broadcast(F_SPECIES, d * ((scales >>> shift + 8) & 0xFF)), acc1);
                    lo = FloatVector.zero(F_SPECIES);
                    hi = lo;
                }
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD) - minsShare(row, xSums);
    }

    /**
     * The dot products of the L rows of groups a and b with x (scaled per nibble position, {@link RowLanes#nibbleScaled};
     * block sums {@code xSums}), to {@code out[oA .. oA + L)} and {@code out[oB .. oB + L)} ({@link RowLanes.PairKernel}:
     * a from the first half of a thread's range, b from its second): per sub-block, lane r sums row r's 32 quants
     * times the broadcast activations, each broadcast serving both groups, in four accumulators per group (one per int
     * of the sub-block), then takes {@code d * scale} as one vector for the L rows and the mins' share
     * {@code dmin * min * xSum} as one more FMA. Written with the Vector API's calls alone (the nibbles: an and, the
     * top one a shift), the top nibble out of the loop. Against one group per pass (session 17's kernel, which this
     * replaced): TinyLlama tg64, 2 threads, alternating, 50.1/58.3/54.6/54.8/48.3/50.1 -> 57.5/55.8/59.5/60.6/50.3/55.0
     * tokens/s, Llama-2-7B tg32 8.53/8.70 -> 10.29/10.37 (a pair kernel with helpers of ours in it boxed, session 17).
     * History of the single-group kernel: its mins were a loop of their own once (a third of the kernel's time from
     * memory; TinyLlama tg64 40.7-41.8 -> 55.7-56.0 tokens/s when folded in), and nested loops over super-blocks and
     * their sub-blocks ran 1.4x slower than one flat loop.
     */
    @Override
    public void laneDots(long a, long b, float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int oA, int oB) {
        long columnA = a * L * rowBytes, columnB = b * L * rowBytes;
        FloatVector accA = FloatVector.zero(F_SPECIES), accB = accA;
        for (int c = xOffset, s = 0; c < xOffset + cols; c += 32, s = (s + 1) % 8) {
            long offA = columnA + HEAD + (long) s * SUB, offB = columnB + HEAD + (long) s * SUB;
            IntVector a0 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS, ByteOrder.LITTLE_ENDIAN),
                    a1 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    a2 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    a3 = IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN),
                    b0 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS, ByteOrder.LITTLE_ENDIAN),
                    b1 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    b2 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN),
                    b3 = IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector sa0 = FloatVector.zero(F_SPECIES), sa1 = sa0, sa2 = sa0, sa3 = sa0, sb0 = sa0, sb1 = sa0, sb2 = sa0, sb3 = sa0;
            for (int p = 0; p < 7; p++) { // nibble p of int t: weight 8t + p
                // where registers are sixteen, the ints read again at each position (RowLanes.PairKernel)
                IntVector ua0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS, ByteOrder.LITTLE_ENDIAN) : a0,
                        ua1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : a1,
                        ua2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : a2,
                        ua3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : a3,
                        ub0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS, ByteOrder.LITTLE_ENDIAN) : b0,
                        ub1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : b1,
                        ub2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : b2,
                        ub3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : b3;
                int mask = RowLanes.NIBBLE_MASKS[p];
                FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c + p]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 8 + p]),
                        x2 = FloatVector.broadcast(F_SPECIES, x[c + 16 + p]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 24 + p]);
                sa0 = ((FloatVector) ua0.and(mask).convert(VectorOperators.I2F, 0)).fma(x0, sa0);
                sb0 = ((FloatVector) ub0.and(mask).convert(VectorOperators.I2F, 0)).fma(x0, sb0);
                sa1 = ((FloatVector) ua1.and(mask).convert(VectorOperators.I2F, 0)).fma(x1, sa1);
                sb1 = ((FloatVector) ub1.and(mask).convert(VectorOperators.I2F, 0)).fma(x1, sb1);
                sa2 = ((FloatVector) ua2.and(mask).convert(VectorOperators.I2F, 0)).fma(x2, sa2);
                sb2 = ((FloatVector) ub2.and(mask).convert(VectorOperators.I2F, 0)).fma(x2, sb2);
                sa3 = ((FloatVector) ua3.and(mask).convert(VectorOperators.I2F, 0)).fma(x3, sa3);
                sb3 = ((FloatVector) ub3.and(mask).convert(VectorOperators.I2F, 0)).fma(x3, sb3);
            }
            // the top nibble, shifted down
            IntVector ta0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS, ByteOrder.LITTLE_ENDIAN) : a0,
                    ta1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : a1,
                    ta2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : a2,
                    ta3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offA + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : a3,
                    tb0 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS, ByteOrder.LITTLE_ENDIAN) : b0,
                    tb1 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 4L * L, ByteOrder.LITTLE_ENDIAN) : b1,
                    tb2 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 8L * L, ByteOrder.LITTLE_ENDIAN) : b2,
                    tb3 = X86_WITHOUT_AVX512 ? IntVector.fromMemorySegment(I_SPECIES, data, offB + INTS + 12L * L, ByteOrder.LITTLE_ENDIAN) : b3;
            FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c + 7]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 15]),
                    x2 = FloatVector.broadcast(F_SPECIES, x[c + 23]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 31]);
            sa0 = ((FloatVector) ta0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x0, sa0);
            sb0 = ((FloatVector) tb0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x0, sb0);
            sa1 = ((FloatVector) ta1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x1, sa1);
            sb1 = ((FloatVector) tb1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x1, sb1);
            sa2 = ((FloatVector) ta2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x2, sa2);
            sb2 = ((FloatVector) tb2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x2, sb2);
            sa3 = ((FloatVector) ta3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x3, sa3);
            sb3 = ((FloatVector) tb3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).fma(x3, sb3);
            FloatVector minusSum = FloatVector.broadcast(F_SPECIES, -xSums[(c - xOffset) / 32]);
            FloatVector scalesA = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offA, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    minsA = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offA + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    scalesB = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offB, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0),
                    minsB = (FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, offB + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0);
            FloatVector dA = FloatVector.fromMemorySegment(F_SPECIES, data, columnA, ByteOrder.LITTLE_ENDIAN),
                    dminA = FloatVector.fromMemorySegment(F_SPECIES, data, columnA + 4L * L, ByteOrder.LITTLE_ENDIAN),
                    dB = FloatVector.fromMemorySegment(F_SPECIES, data, columnB, ByteOrder.LITTLE_ENDIAN),
                    dminB = FloatVector.fromMemorySegment(F_SPECIES, data, columnB + 4L * L, ByteOrder.LITTLE_ENDIAN);
            accA = sa0.add(sa1).add(sa2.add(sa3)).fma(dA.mul(scalesA), dminA.mul(minsA).fma(minusSum, accA));
            accB = sb0.add(sb1).add(sb2.add(sb3)).fma(dB.mul(scalesB), dminB.mul(minsB).fma(minusSum, accB));
            if (s == 7) {
                columnA += COLUMN;
                columnB += COLUMN;
            }
        }
        accB.intoArray(out, oB);
        accA.intoArray(out, oA);
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (!grouped) {
            dequantizeScaleMin(row, out, outOffset, -1, 16);
            return;
        }
        // rounding as ggml's dequantize_row_q4_K: (d * scale) * q - dmin * min; row r's ints lie 4L bytes apart
        int r = (int) (row % L);
        long offset = (row - r) * rowBytes;
        int[] nibbles = RowLanes.blockInts();
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += COLUMN) {
            float d = data.get(FLOAT_LE, offset + 4L * r), dmin = data.get(FLOAT_LE, offset + 4L * L + 4L * r);
            for (int s = 0; s < 8; s++) {
                long sub = offset + HEAD + (long) s * SUB;
                FloatVector scale = FloatVector.broadcast(F_SPECIES, d * data.get(JAVA_BYTE, sub + r));
                FloatVector min = FloatVector.broadcast(F_SPECIES, dmin * data.get(JAVA_BYTE, sub + L + r));
                RowLanes.rowNibbles(data, sub + INTS + 4L * r, nibbles);
                for (int j = 0; j < 32; j += L) ((FloatVector) IntVector.fromArray(I_SPECIES, nibbles, j).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, outOffset + i + 32 * s + j);
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
                long sub = column + HEAD + (long) s * SUB, ints = sub + INTS;
                FloatVector scale = d.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0)),
                        min = dmin.mul((FloatVector) ByteVector.fromMemorySegment(LANE_BYTES, data, sub + L, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F_SPECIES, 0));
                IntVector v0 = IntVector.fromMemorySegment(I_SPECIES, data, ints, ByteOrder.LITTLE_ENDIAN),
                        v1 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 4L * L, ByteOrder.LITTLE_ENDIAN),
                        v2 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 8L * L, ByteOrder.LITTLE_ENDIAN),
                        v3 = IntVector.fromMemorySegment(I_SPECIES, data, ints + 12L * L, ByteOrder.LITTLE_ENDIAN);
                int w = at + 32 * s * L;
                for (int p = 0; p < 8; p++, w += L) { // nibble p of int t: weight 8t + p
                    ((FloatVector) v0.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w);
                    ((FloatVector) v1.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 8 * L);
                    ((FloatVector) v2.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 16 * L);
                    ((FloatVector) v3.lanewise(VectorOperators.LSHR, 4 * p).and(0xF).convert(VectorOperators.I2F, 0)).mul(scale).sub(min).intoArray(out, w + 24 * L);
                }
            }
        }
    }

    /** 2^4p for nibble position p < 7, 1 for the top one, shifted down ({@link #panelPairProduct}). */
    private static final float[] POWERS = {1f, 0x1p4f, 0x1p8f, 0x1p12f, 0x1p16f, 0x1p20f, 0x1p24f, 1f};
    /** Each thread's mins of a sub-block times {@link #POWERS}, of two groups: p's of group a at {@code p * L}, of b at {@code (8 + p) * L}. */
    private static final ThreadLocal<float[]> SCALED_MINS = ThreadLocal.withInitial(() -> new float[16 * L]);

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a column at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order (as Q4_0Tensor's). Nibble p < 7 of int t (column 8t + p of a sub-block) is taken
     * in place, q * 2^4p, times the scale, less the min times 2^4p: the panel's {@code q * scale - min} times 2^4p
     * exactly, against x's column scaled by 2^-4p ({@link #columnScales}); the top nibble is shifted down.
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        float[] mins = Tensor.scratch(SCALED_MINS, 16 * L);
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
                for (int p = 0; p < 8; p++) {
                    minA.mul(POWERS[p]).intoArray(mins, p * L);
                    minB.mul(POWERS[p]).intoArray(mins, (8 + p) * L);
                }
                for (int t = 0; t < 4; t++) {
                    IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, subA + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN),
                            vB = IntVector.fromMemorySegment(I_SPECIES, data, subB + INTS + 4L * L * t, ByteOrder.LITTLE_ENDIAN);
                    for (int p = 0; p < 8; p++, xk += TileKernels.PAIR_TOKENS) {
                        IntVector qA = p < 7 ? vA.and(RowLanes.NIBBLE_MASKS[p]) : vA.lanewise(VectorOperators.LSHR, 28),
                                qB = p < 7 ? vB.and(RowLanes.NIBBLE_MASKS[p]) : vB.lanewise(VectorOperators.LSHR, 28);
                        FloatVector u = ((FloatVector) qA.convert(VectorOperators.I2F, 0)).mul(scaleA).sub(FloatVector.fromArray(F_SPECIES, mins, p * L)),
                                w = ((FloatVector) qB.convert(VectorOperators.I2F, 0)).mul(scaleB).sub(FloatVector.fromArray(F_SPECIES, mins, (8 + p) * L));
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
        }
        a0.intoArray(acc, 0); a1.intoArray(acc, L); a2.intoArray(acc, 2 * L); a3.intoArray(acc, 3 * L);
        a4.intoArray(acc, 4 * L); a5.intoArray(acc, 5 * L); a6.intoArray(acc, 6 * L); a7.intoArray(acc, 7 * L);
        c0.intoArray(acc, 8 * L); c1.intoArray(acc, 9 * L); c2.intoArray(acc, 10 * L); c3.intoArray(acc, 11 * L);
        c4.intoArray(acc, 12 * L); c5.intoArray(acc, 13 * L); c6.intoArray(acc, 14 * L); c7.intoArray(acc, 15 * L);
    }

    /**
     * Two more operations per column than Q4_0's (the min, and the scale's multiply apart from d's), so the tiles win
     * from about 24 tokens: `bench`, TinyLlama Q4_K, 2 threads, alternating, tiles -> panel product, pp3 29.4/30.9/
     * 27.9/26.6 -> 42.6/37.2/38.2/37.3 tokens/s, pp8 74.8/78.4/72.7/69.2 -> 113.6/94.5/97.3/92.2, pp16
     * 107.5/111.3/104.8/100.7 -> 137.8/113.1/116.1/116.6, pp32 137.1/141.5/131.6/126.9 -> 143.6/118.2/118.7/116.6.
     */
    @Override
    public int panelProductTokens() {
        return 16;
    }

    /** 2^-4p per column k, p = k % 8 < 7, and 1 for the top nibble (as {@link RowLanes#nibbleScaled} scales x). */
    private static final float[] COLUMN_SCALES = RowLanes.positionScales(4);

    @Override
    public float[] columnScales() {
        return COLUMN_SCALES;
    }

    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        float[] xSums = blockSums(x, xOffset, cols);
        if (grouped) task.use(RowLanes.nibbleScaled(x, xOffset, cols), 0, xSums);
        else task.use(x, xOffset, xSums);
    }

    @Override
    void dotRows(float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (!grouped) {
            for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset, xSums);
            return;
        }
        RowLanes.pairedRows(this, x, xOffset, xSums, quants, out, outOffset, firstRow, start, end);
    }
}
