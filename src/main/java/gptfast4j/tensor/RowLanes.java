package gptfast4j.tensor;

import com.sun.management.HotSpotDiagnosticMXBean;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.stream.IntStream;

/**
 * The decode layouts: rows in groups of {@link #L}, one row per float lane, so that a kernel multiplies L rows at once
 * by one broadcast activation and never sums across lanes. The 32-weight formats' layout (Q8_0, Q4_0, Q4_1) is
 * {@link RowGroupTensor}'s; the K-quants' layouts are built from the same pieces (planes of L scales, planes of L ints
 * of packed quants). A row range is walked over groups two per pass for the 32-weight formats and Q4_K ({@link PairKernel},
 * {@link #pairedRows}) and one per pass for Q5_K and Q6_K ({@link Kernel}, {@link #dotRows}).
 */
final class RowLanes {
    /** Rows per group: one per float lane (16 with 512-bit vectors). */
    static final int L = Tensor.F_SPECIES.length();
    /** Per lane l of a vector of weights j .. j + L - 1 of a block, read from {@code j % 8}: its nibble's bit offset in its int. */
    private static final int[] NIBBLE_SHIFTS = IntStream.range(0, 8 + L).map(l -> 4 * (l % 8)).toArray();
    /** The scales of {@link #nibbleScaled}: {@link #positionScales} for 4-bit quants. */
    private static final float[] NIBBLE_SCALES = positionScales(4);
    /** {@code 0xF << 4p}: read from memory, a mask is broadcast by a load, where computed from p it took three operations. */
    static final int[] NIBBLE_MASKS = IntStream.range(0, 8).map(p -> 0xF << 4 * p).toArray();
    /** Each thread's scaled activations ({@link #scaled}), kept between calls. */
    private static final ThreadLocal<float[]> SCALED = ThreadLocal.withInitial(() -> new float[0]);
    /** Lanes 8 .. 15 of a 16-lane vector: the weights of a block's next int. */
    private static final VectorMask<Integer> SECOND_INT = VectorMask.fromLong(Tensor.I_SPECIES, 0xFF00L);

    private RowLanes() {
    }

    /** A decode layout's kernel: the tensors whose rows are in groups of L, one per lane. */
    interface Kernel {
        /**
         * The dot products of the L rows of group {@code group} with x, to {@code out[o .. o + L)}; {@code xSums} are
         * the format's sums of x per block where its weights carry an offset.
         */
        void laneDot(long group, float[] x, int xOffset, float[] xSums, float[] out, int o);
    }

    /**
     * A decode layout's kernel over two groups per pass (Q8_0, Q4_0, Q4_1): each activation broadcast serves both, and
     * the two groups come from the two halves of a thread's range ({@link #pairedRows}), two streams through memory.
     * Decode, 2 threads, alternating runs against one group per pass: TinyLlama Q8_0 37.2-38.5 against 30.9-35.3
     * tokens/s, Q4_0 47.8-54.0 against 45.6-51.7, Llama-2-7B Q8_0 6.5-6.9 against 5.3-5.5 (JMH Q4_0 1024 x 4096, one
     * thread: 75-76 against 84-88 us).
     * <p>
     * Where registers are sixteen ({@link TileKernels#SIXTEEN_REGISTERS}), Q4_1's kernel (and Q4_K's float kernel
     * before session 70's int16 one) reads a block's eight int vectors again for each nibble position: holding them, C2
     * spilled the sums instead, each multiply-add then a load and a store on the sum's chain. The reads are new
     * variables of the loop's body, chosen against the held vectors by the constant flag: assigned to the held ones,
     * they made them loop-carried, and without type profiles ({@code -XX:-UseTypeProfile}) C2 typed those phis as
     * {@code IntVector}, did not inline their calls and boxed them (DecodeAllocationTest: 200 MB in 500 steps). Under
     * {@code -XX:UseAVX=2}, TinyLlama tg32, alternating jars: one thread Q4_K 20.1/20.4 -> 25.0/25.6 tokens/s, Q4_1
     * 23.2/22.3 -> 28.1/26.4; two threads Q4_K 39.0/36.0 -> 46.3/44.7, Q4_1 39.9/41.4 -> 45.4/50.7. With AVX-512 the
     * vectors are held, as before (read at each use there, one thread ran 20% slower: 47-50 -> 38-39).
     */
    interface PairKernel {
        /**
         * The dot products of the L rows of group {@code a} with x to {@code out[oA .. oA + L)}, and of group
         * {@code b}'s to {@code out[oB .. oB + L)}; a may be b. {@code xSums} as for {@link Kernel#laneDot}.
         */
        void laneDots(long a, long b, float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int oA, int oB);
    }

    /** A group's outputs, for a range that starts or ends inside a group and for a single row. */
    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[L]);

    /**
     * {@link #dotRows} for a {@link PairKernel}: the whole groups of the range in pairs, group i of its first half
     * with group i of its second (an odd one out paired with itself), a group the range cuts through a scratch array.
     */
    static void pairedRows(PairKernel kernel, float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        int r = start;
        int lead = (int) Math.min(end - r, (L - (firstRow + r) % L) % L);
        if (lead > 0) {
            partialGroup(kernel, x, xOffset, xSums, quants, firstRow + r, lead, out, outOffset + r);
            r += lead;
        }
        int groups = (end - r) / L, half = groups / 2, second = r + (groups - half) * L;
        long g = (firstRow + r) / L, gSecond = (firstRow + second) / L;
        for (int i = 0; i < half; i++) kernel.laneDots(g + i, gSecond + i, x, xOffset, xSums, quants, out, outOffset + r + i * L, outOffset + second + i * L);
        if (groups % 2 == 1) kernel.laneDots(g + half, g + half, x, xOffset, xSums, quants, out, outOffset + r + half * L, outOffset + r + half * L);
        r += groups * L;
        if (r < end) partialGroup(kernel, x, xOffset, xSums, quants, firstRow + r, end - r, out, outOffset + r);
    }

    /** Rows {@code row .. row + n} (within one group) to {@code out[o ..]}, the whole group computed into scratch. */
    private static void partialGroup(PairKernel kernel, float[] x, int xOffset, float[] xSums, int[] quants, long row, int n, float[] out, int o) {
        float[] lanes = Tensor.scratch(LANES, L);
        long group = row / L;
        kernel.laneDots(group, group, x, xOffset, xSums, quants, lanes, 0, 0);
        System.arraycopy(lanes, (int) (row % L), out, o, n);
    }

    /**
     * Rows {@code start .. end} of a matrix x vector on a lane layout, row {@code firstRow + r} to
     * {@code out[outOffset + r]}: whole groups straight into {@code out}, a group the range cuts through a scratch
     * array, of which the rows in range are kept. The kernel call is an interface call, once per group of L rows.
     */
    static void dotRows(Kernel kernel, float[] x, int xOffset, float[] xSums, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; ) {
            long row = firstRow + r, group = row / L;
            int from = (int) (row % L), n = Math.min(L - from, end - r);
            if (n == L) {
                kernel.laneDot(group, x, xOffset, xSums, out, outOffset + r);
            } else {
                float[] lanes = Tensor.scratch(LANES, L);
                kernel.laneDot(group, x, xOffset, xSums, lanes, 0);
                System.arraycopy(lanes, from, out, outOffset + r, n);
            }
            r += n;
        }
    }

    static long groups(long rows) {
        return (rows + L - 1) / L;
    }

    /**
     * The low nibbles of the eight bytes of {@code v}, byte p's at bits 4p .. 4p + 3 of an int: a decode layout's int
     * of eight weights, from eight bytes of a file's block. One {@code pext} where C2 makes {@code Long.compress} one
     * (x86 with BMI2): the decode layouts' copy of Llama-2-7B Q4_0, its memory already faulted in, 1.36-1.43 -> 0.98-1.07
     * s against the shift-and-mask steps (three alternating pairs). Elsewhere (ARM without SVE2, such as Apple's
     * cores, or x86 without BMI2) {@code Long.compress} is a Java loop, 15.9 ns a call against 1.1 for the steps.
     */
    static int packNibbles(long v) {
        return (int) packFields(v, 4);
    }

    /**
     * The low {@code bits} bits (1 to 8) of each of the eight bytes of {@code v}, byte p's at bits {@code bits * p}
     * of the result: {@link #packNibbles}, and the Q5_K/Q6_K decode layouts' 5- and 6-bit quants. One {@code pext}
     * where there is one, else {@link #packFieldsByShifts}.
     */
    static long packFields(long v, int bits) {
        return Pext.ONE_INSTRUCTION ? Long.compress(v, 0x0101_0101_0101_0101L * ((1 << bits) - 1)) : packFieldsByShifts(v, bits);
    }

    /**
     * {@link #packFields} in three shift-and-mask steps: in each unit of 16, then 32, then 64 bits, the upper half's
     * field moved down onto the top of the lower half's ({@code in16}, {@code in32}, {@code in64}: each unit's lower field).
     */
    static long packFieldsByShifts(long v, int bits) {
        long in16 = 0x0001_0001_0001_0001L * ((1L << bits) - 1), in32 = 0x0000_0001_0000_0001L * ((1L << 2 * bits) - 1), in64 = (1L << 4 * bits) - 1;
        v &= 0x0101_0101_0101_0101L * ((1L << bits) - 1);
        v = v & in16 | v >>> 8 - bits & in16 << bits;
        v = v & in32 | v >>> 16 - 2 * bits & in32 << 2 * bits;
        return v & in64 | v >>> 32 - 4 * bits & in64 << 4 * bits;
    }

    /** Asked on the first decode layout's copy (the HotSpot MXBean's classes take about 20 ms to load), not before. */
    private static final class Pext {
        /** Whether C2 compiles {@code Long.compress} to {@code pext}: its intrinsic needs BMI2, which it then uses. */
        static final boolean ONE_INSTRUCTION = bmi2();

        private static boolean bmi2() {
            try {
                HotSpotDiagnosticMXBean hotSpot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
                return hotSpot != null && Boolean.parseBoolean(hotSpot.getVMOption("UseBMI2Instructions").getValue());
            } catch (IllegalArgumentException e) { // no such option: not an x86 HotSpot
                return false;
            }
        }
    }

    /**
     * {@code x[xOffset + j] / 2^4p} for the n activations (n a multiple of 8), p = j % 8 the nibble position that
     * multiplies them, in this thread's scratch: the 4-bit kernels take nibble p < 7 of an int in place with one and
     * ({@code nibble * 2^4p}, exact in a float: four significant bits) and shift the top one down (not scaled). Scaling
     * by powers of two is exact while x stays above 2^-98 in magnitude (then it goes subnormal).
     */
    static float[] nibbleScaled(float[] x, int xOffset, int n) {
        return scaled(x, xOffset, n, NIBBLE_SCALES);
    }

    /**
     * For an int holding {@code 32 / bits} quants of {@code bits} bits that a kernel takes in place (quant p at bit
     * {@code bits * p} reads as {@code q * 2^(bits * p)}; the top one is shifted down, its sign bit being bit 31): per j
     * of x from a multiple of that period, {@code 2^-(bits * p)} for p = j % period, 1 for the top position. Period + L
     * entries, so that a vector may start at any multiple of L ({@link #scaled}).
     */
    static float[] positionScales(int bits) {
        int period = 32 / bits;
        float[] scales = new float[period + L];
        for (int j = 0; j < scales.length; j++) {
            int p = j % period;
            scales[j] = p == period - 1 ? 1 : (float) Math.scalb(1.0, -bits * p);
        }
        return scales;
    }

    /**
     * {@code x[xOffset + j] * scales[j % period]} for the n activations, in this thread's scratch: the activations of a
     * kernel that leaves its quants in place, each position's power of two taken out of x once per matrix call.
     * {@code scales} repeats with {@code period = scales.length - L} (a power of two that divides n: 4, 8 or 32), so
     * that a vector may start at any multiple of L. (The period is a mask, not a modulo: a division per vector, on the
     * calling thread alone before every decode matrix call, made the self time of {@code Tensor.matmul} in a TinyLlama
     * Q4_0 decode profile 1.26% against 0.77% with the mask, and the waiting worker's 4.5% against 3.3%.)
     */
    static float[] scaled(float[] x, int xOffset, int n, float[] scales) {
        float[] out = Tensor.scratch(SCALED, n);
        int mask = scales.length - L - 1;
        for (int j = 0; j < n; j += L) {
            FloatVector.fromArray(Tensor.F_SPECIES, x, xOffset + j).mul(FloatVector.fromArray(Tensor.F_SPECIES, scales, j & mask)).intoArray(out, j);
        }
        return out;
    }

    /** Int16 lanes as wide as the float lanes: the int16 kernels (Q4_0's, Q4_K's) read each int of a plane as two int16 lanes. */
    static final VectorSpecies<Short> PAIRS = VectorSpecies.of(short.class, Tensor.F_SPECIES.vectorShape());
    /** Both int16 halves' low nibble: what is left of nibble j of each after an int shift by 4j. */
    static final int NIBBLE_PAIRS = 0x000F_000F;
    /** Added and taken off again, 1.5 * 2^23 leaves no fraction bits: rounds |v| <= 127 half to even, as rint and ggml's nearest_int. */
    private static final float ROUNDER = 0x1.8p23f;

    /**
     * max|x| over {@code x[from .. from + n)} (n a multiple of L), taken on the bits: non-negative floats order as their
     * bits do, and an int max is one instruction where a float max takes four (Java's rules for NaN and -0).
     */
    static float maxAbs(float[] x, int from, int n) {
        IntVector m = IntVector.zero(Tensor.I_SPECIES);
        for (int k = 0; k < n; k += L) m = FloatVector.fromArray(Tensor.F_SPECIES, x, from + k).reinterpretAsInts().and(0x7FFFFFFF).max(m);
        return Float.intBitsToFloat(m.reduceLanes(VectorOperators.MAX));
    }

    /**
     * The 32 activations at {@code x[from ..]} times {@code inverse}, rounded half to even, to {@code q[at ..]}; returns
     * their sum. In order, or {@code paired} for the int16 kernels: {@code q[at + 8t + j]} (j < 4) holds values 8t + j
     * and 8t + 4 + j as its low and high int16, made from each vector of values and the same one four lanes on
     * ({@code slice}), in place; the ints at 8t + 4 .. 8t + 7 are not read.
     */
    static int roundBlock(float[] x, int from, float inverse, int[] q, int at, boolean paired) {
        IntVector sum = IntVector.zero(Tensor.I_SPECIES);
        for (int i = 0; i < 32; i += L) {
            IntVector values = (IntVector) FloatVector.fromArray(Tensor.F_SPECIES, x, from + i).mul(inverse).add(ROUNDER).sub(ROUNDER).convert(VectorOperators.F2I, 0);
            sum = values.add(sum);
            values.intoArray(q, at + i);
        }
        // in place: each vector of pairs reads its own values and the next vector's, which is still unpaired
        for (int i = 0; paired && i < 32; i += L) {
            IntVector values = IntVector.fromArray(Tensor.I_SPECIES, q, at + i),
                    next = i + L < 32 ? IntVector.fromArray(Tensor.I_SPECIES, q, at + i + L) : IntVector.zero(Tensor.I_SPECIES);
            values.and(0xFFFF).or(values.slice(4, next).lanewise(VectorOperators.LSHL, 16)).intoArray(q, at + i);
        }
        return sum.reduceLanes(VectorOperators.ADD);
    }

    /** Each thread's ints of one row of a block ({@link #blockInts}). */
    private static final ThreadLocal<int[]> BLOCK_INTS = ThreadLocal.withInitial(() -> new int[32]);

    /** The calling thread's array of an int per weight of a block (32): {@link #rowNibbles}, Q8_0's rows, Q4_0's rounded activations. */
    static int[] blockInts() {
        return BLOCK_INTS.get();
    }

    /**
     * The 32 weights of one row of a block, whose ints are at {@code ints} and {@code 4L} bytes apart, as their nibbles
     * 0 .. 15 in {@code out[0 .. 32)}: per vector of L weights, the one int they come from broadcast (two with 16
     * lanes, blended), each lane shifted to its nibble and masked. Written to an array, not returned as a vector: a
     * helper of ours that returns a vector boxes it in a JVM whose C2 leaves the helper out of line
     * (docs/kernel-log.md, sessions 17-21); the callers read the array back, a store and a load per vector.
     */
    static void rowNibbles(MemorySegment data, long ints, int[] out) {
        for (int j = 0; j < 32; j += L) {
            IntVector v = IntVector.broadcast(Tensor.I_SPECIES, data.get(Tensor.INT_LE, ints + 4L * L * (j / 8)));
            if (L > 8) v = v.blend(data.get(Tensor.INT_LE, ints + 4L * L * (j / 8 + 1)), SECOND_INT);
            v.lanewise(VectorOperators.LSHR, IntVector.fromArray(Tensor.I_SPECIES, NIBBLE_SHIFTS, j % 8)).and(0xF).intoArray(out, j);
        }
    }
}
