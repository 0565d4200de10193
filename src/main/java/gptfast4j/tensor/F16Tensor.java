package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * IEEE half floats. The Vector API has no half-to-float conversion, so it is done with integer ops: the half,
 * sign-extended to 32 bits and shifted left by 13, has its exponent and mantissa in float position (bits 13-27) and,
 * from the sign extension, its sign in bit 31; masking bits 28-30 away gives a float whose exponent is biased by 127
 * instead of 15, and one multiply by 2^112 rebiases it ({@link #dequantizeRow}). Matrix x vector converts
 * two halves per int load and leaves the rebias to x and the sums ({@link #pairedDot}). Both exact for normal and
 * subnormal halves (weights hold no infinities or NaNs); checked against {@code Float.float16ToFloat} for all 65536
 * halves in the tests.
 * <p>
 * Two layouts of the same halves: the file's, rows in order, and the decode layout ({@link HalfFloatTensor}), rows
 * in groups of L, one row per vector lane.
 */
final class F16Tensor extends HalfFloatTensor {

    /**
     * Columns before the first whole chunk of a row that starts on a vector boundary: a 64-byte load across two cache
     * lines costs two, and GGUF aligns tensors to 32 bytes only (all of make-model's F16 tensors start at 32 mod 64).
     * The same for every row where the row's bytes are a multiple of the vector's, else 0 (loads left unaligned).
     */
    private final int head;
    /** The first column past the last whole chunk of 2L columns after {@link #head}. */
    private final int bound;

    F16Tensor(String name, MemorySegment data, int cols, long rows) {
        this(name, data, cols, rows, false);
    }

    private F16Tensor(String name, MemorySegment data, int cols, long rows, boolean grouped) {
        super(name, GGMLType.F16, data, cols, rows, grouped);
        int vectorBytes = I_SPECIES.vectorByteSize(), chunk = 2 * F_SPECIES.length();
        int misaligned = (int) (data.address() % vectorBytes);
        int h = !grouped && rowBytes % vectorBytes == 0 && misaligned % 2 == 0 ? (vectorBytes - misaligned) % vectorBytes / 2 : 0;
        head = Math.min(h, cols);
        bound = grouped ? 0 : head + (cols - head) / chunk * chunk;
    }

    @Override
    F16Tensor inDecodeLayout(MemorySegment data) {
        return new F16Tensor(name, data, cols, rows, true);
    }

    @Override
    float widen(short half) {
        return Float.float16ToFloat(half);
    }

    @Override
    public float dot(long row, float[] x, int xOffset) {
        return preparedDot(row, x, xOffset);
    }

    /** x's pairing starts at {@link #head}, which depends on where the tensor lies; the decode layout's x is not paired. */
    @Override
    boolean preparesLike(Tensor other) {
        return super.preparesLike(other) && head == ((F16Tensor) other).head && bound == ((F16Tensor) other).bound;
    }

    /** 2^56: x is scaled by it in {@link #prepare} and the sums by it again, to undo the 2^-112 of {@link #pairedDot}. */
    private static final float HALF_SCALE = 0x1p56f;
    /** Each thread's prepared activations, kept between calls. */
    private static final ThreadLocal<float[]> PAIRED = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * x as {@link #pairedDot} reads it, all scaled by 2^56: per chunk of 2L columns (L float lanes) from
     * {@link #head} to {@link #bound}, the L even columns then the L odd ones; the columns before and after in place.
     */
    @Override
    void prepare(float[] x, int xOffset, RowTask task) {
        int lanes = F_SPECIES.length();
        float[] paired = scratch(PAIRED, cols);
        if (grouped) { // in column order, scaled
            int c = 0;
            for (int vectors = cols - cols % lanes; c < vectors; c += lanes) FloatVector.fromArray(F_SPECIES, x, xOffset + c).mul(HALF_SCALE).intoArray(paired, c);
            for (; c < cols; c++) paired[c] = x[xOffset + c] * HALF_SCALE;
            task.use(paired, 0);
            return;
        }
        for (int c = 0; c < head; c++) paired[c] = x[xOffset + c] * HALF_SCALE;
        for (int c = head; c < bound; c += 2 * lanes) {
            for (int j = 0; j < lanes; j++) {
                paired[c + j] = x[xOffset + c + 2 * j] * HALF_SCALE;
                paired[c + lanes + j] = x[xOffset + c + 2 * j + 1] * HALF_SCALE;
            }
        }
        for (int c = bound; c < cols; c++) paired[c] = x[xOffset + c] * HALF_SCALE;
        task.use(paired, 0);
    }

    /**
     * Row r times x prepared ({@link #prepare}). Each int of the row holds two halves, the even column in its low 16
     * bits: arithmetically shifted right by 3, the high half has its sign in bit 31 (and 28-30) and its exponent and
     * mantissa in float position (bits 13-27); the low half gets there shifted left by 16 first. Masking bits 0-12
     * and 28-30 away leaves each half as a float 2^-112 times its value, exact for normal and subnormal halves
     * (weights hold no infinities or NaNs). Three integer operations per 16 weights, against five for
     * {@link #dequantizeRow}'s, and the 2^-112 is undone on x and the sum, not per weight: products of weights and x
     * scaled by 2^56 are the true products times 2^-56, so products go subnormal only below 2^-70 and x overflows only
     * past 2^72. The columns outside the aligned chunks are converted one half per lane, as {@link #dequantizeRow}
     * converts them but left 2^-112 times their value like the pairs; the scalar rest takes true values. Written
     * out with the Vector API's calls: after KernelTest's calls, a helper for them was left out of line in this loop
     * and boxed, 240 KB per decode step of the reference mini model.
     */
    private float pairedDot(long row, float[] x, int xOffset) {
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        FloatVector edges = FloatVector.zero(F_SPECIES);
        int i = 0;
        for (; i + lanes <= head; i += lanes) {
            edges = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), edges);
        }
        float edge = 0;
        for (; i < head; i++) edge += f16(data, base + (long) i * 2) * x[xOffset + i];
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (; i + 4 * lanes <= bound; i += 4 * lanes) { // four sums, not two: measured at dotRows
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN);
            IntVector u = IntVector.fromMemorySegment(I_SPECIES, data, base + (long) i * 2 + 4L * lanes, ByteOrder.LITTLE_ENDIAN);
            acc0 = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = v.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
            acc2 = u.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 2 * lanes), acc2);
            acc3 = u.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + 3 * lanes), acc3);
        }
        acc0 = acc0.add(acc2);
        acc1 = acc1.add(acc3);
        for (; i < bound; i += 2 * lanes) { // a last chunk of 2L columns
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN);
            FloatVector even = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats();
            FloatVector odd = v.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats();
            acc0 = even.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), acc0);
            acc1 = odd.fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i + lanes), acc1);
        }
        for (; i + lanes <= cols; i += lanes) {
            edges = ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().fma(FloatVector.fromArray(F_SPECIES, x, xOffset + i), edges);
        }
        for (; i < cols; i++) edge += f16(data, base + (long) i * 2) * x[xOffset + i];
        return acc0.add(acc1).add(edges).reduceLanes(VectorOperators.ADD) * HALF_SCALE + edge / HALF_SCALE;
    }

    /**
     * The dot products of the L rows of groups a and b with x prepared ({@link #prepare}: scaled by 2^56), to
     * {@code out[oA .. oA + L)} and {@code out[oB ..]}: per int plane, each lane's two halves converted as
     * {@link #pairedDot} converts them (2^-112 times their value) and multiplied by one broadcast column of x, four
     * sums per group (two planes a step), the sums scaled by 2^56 at the end.
     */
    @Override
    public void laneDots(long a, long b, float[] x, int xOffset, float[] xSums, int[] quants, float[] out, int oA, int oB) {
        long offsetA = a * L * rowBytes, offsetB = b * L * rowBytes;
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int c = xOffset; c < xOffset + cols; c += 4, offsetA += 8L * L, offsetB += 8L * L) {
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, offsetA, ByteOrder.LITTLE_ENDIAN),
                    u = IntVector.fromMemorySegment(I_SPECIES, data, offsetA + 4L * L, ByteOrder.LITTLE_ENDIAN);
            IntVector w = IntVector.fromMemorySegment(I_SPECIES, data, offsetB, ByteOrder.LITTLE_ENDIAN),
                    z = IntVector.fromMemorySegment(I_SPECIES, data, offsetB + 4L * L, ByteOrder.LITTLE_ENDIAN);
            FloatVector x0 = FloatVector.broadcast(F_SPECIES, x[c]), x1 = FloatVector.broadcast(F_SPECIES, x[c + 1]),
                    x2 = FloatVector.broadcast(F_SPECIES, x[c + 2]), x3 = FloatVector.broadcast(F_SPECIES, x[c + 3]);
            a0 = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x0, a0);
            a1 = v.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x1, a1);
            a2 = u.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x2, a2);
            a3 = u.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x3, a3);
            b0 = w.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x0, b0);
            b1 = w.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x1, b1);
            b2 = z.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x2, b2);
            b3 = z.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().fma(x3, b3);
        }
        a0.add(a1).add(a2.add(a3)).mul(HALF_SCALE).intoArray(out, oA);
        b0.add(b1).add(b2.add(b3)).mul(HALF_SCALE).intoArray(out, oB);
    }

    /**
     * {@link #panelGroup}'s weights of groups a and b, made in registers a plane at a time, times {@link
     * TileKernels#PAIR_TOKENS} tokens: what {@link TileKernels#panelPairTokens} computes from the two panels, the same
     * multiply-adds in the same order, with no tile written and read back. Each half is converted as {@link
     * #pairedDot} converts it, 2^-112 times its value, against x scaled by 2^56 ({@link #columnScales}), and the sums
     * scaled by 2^56 at the end: products and sums 2^-56 times the tiles', rounded alike (a power of two apart) unless
     * a value falls below 2^-70, as in the decode kernel. The low half is moved up 16 bits before the shift down by
     * 3 that puts a half's sign in bit 31.
     */
    @Override
    public void panelPairProduct(long a, long b, float[] xt, int xk, float[] acc) {
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int p = 0; p < cols / 2; p++, a += 4L * L, b += 4L * L, xk += 2 * TileKernels.PAIR_TOKENS) {
            IntVector vA = IntVector.fromMemorySegment(I_SPECIES, data, a, ByteOrder.LITTLE_ENDIAN),
                    vB = IntVector.fromMemorySegment(I_SPECIES, data, b, ByteOrder.LITTLE_ENDIAN);
            FloatVector u = vA.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats(),
                    w = vB.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats();
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
            u = vA.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats();
            w = vB.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats();
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 8]);
            a0 = u.fma(x, a0); c0 = w.fma(x, c0);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 9]);
            a1 = u.fma(x, a1); c1 = w.fma(x, c1);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 10]);
            a2 = u.fma(x, a2); c2 = w.fma(x, c2);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 11]);
            a3 = u.fma(x, a3); c3 = w.fma(x, c3);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 12]);
            a4 = u.fma(x, a4); c4 = w.fma(x, c4);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 13]);
            a5 = u.fma(x, a5); c5 = w.fma(x, c5);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 14]);
            a6 = u.fma(x, a6); c6 = w.fma(x, c6);
            x = FloatVector.broadcast(F_SPECIES, xt[xk + 15]);
            a7 = u.fma(x, a7); c7 = w.fma(x, c7);
        }
        a0.mul(HALF_SCALE).intoArray(acc, 0); a1.mul(HALF_SCALE).intoArray(acc, L); a2.mul(HALF_SCALE).intoArray(acc, 2 * L); a3.mul(HALF_SCALE).intoArray(acc, 3 * L);
        a4.mul(HALF_SCALE).intoArray(acc, 4 * L); a5.mul(HALF_SCALE).intoArray(acc, 5 * L); a6.mul(HALF_SCALE).intoArray(acc, 6 * L); a7.mul(HALF_SCALE).intoArray(acc, 7 * L);
        c0.mul(HALF_SCALE).intoArray(acc, 8 * L); c1.mul(HALF_SCALE).intoArray(acc, 9 * L); c2.mul(HALF_SCALE).intoArray(acc, 10 * L); c3.mul(HALF_SCALE).intoArray(acc, 11 * L);
        c4.mul(HALF_SCALE).intoArray(acc, 12 * L); c5.mul(HALF_SCALE).intoArray(acc, 13 * L); c6.mul(HALF_SCALE).intoArray(acc, 14 * L); c7.mul(HALF_SCALE).intoArray(acc, 15 * L);
    }

    /** 2^56 for every column ({@link #panelPairProduct}; a period of one, then L more, {@link RowLanes#scaled}). */
    private static final float[] COLUMN_SCALES = filled(1 + L, HALF_SCALE);

    @Override
    public float[] columnScales() {
        return COLUMN_SCALES;
    }

    /** Per int plane of the group, its two columns of L weights as two vectors, converted as {@link #dequantizeRow}. */
    @Override
    public void panelGroup(long group, float[] out, int at) {
        for (int p = 0; p < cols / 2; p++) {
            IntVector v = IntVector.fromMemorySegment(I_SPECIES, data, group + 4L * L * p, ByteOrder.LITTLE_ENDIAN);
            v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f).intoArray(out, at + 2 * p * L);
            v.lanewise(VectorOperators.ASHR, 3).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f).intoArray(out, at + (2 * p + 1) * L);
        }
    }

    @Override
    public void dequantizeRow(long row, float[] out, int outOffset) {
        if (grouped) {
            laneRow(row, out, outOffset);
            return;
        }
        long base = row * rowBytes;
        int lanes = F_SPECIES.length();
        int i = 0;
        // load's body, the Vector API's calls alone: inlined into Llama.runBatch (the token embedding) from a profile
        // without call counts, C2 left a call to load out of line ("already compiled into a medium method") and boxed
        // its vectors, 1.5 KB per decode step of the reference mini model that stayed for good. The loop bound
        // computed first: with i + lanes <= cols as the test, C2 recompiled runBatch again and again (a profiled loop
        // predicate that failed each time, each failure a step in the interpreter).
        for (int bound = cols - cols % lanes; i < bound; i += lanes) {
            ((IntVector) ShortVector.fromMemorySegment(S_SPECIES, data, base + (long) i * 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, I_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000).reinterpretAsFloats().mul(0x1p112f).intoArray(out, outOffset + i);
        }
        for (; i < cols; i++) out[outOffset + i] = f16(data, base + (long) i * 2);
    }

    /**
     * Rows {@code start .. end} in order, one stream through memory per thread. With {@link #pairedDot}'s four sums
     * (two before): TinyLlama F16 tg64, 2 threads, four alternating rounds, 20.3-21.9 tokens/s against 17.2-19.5 for
     * two sums and rows alternating between the range's two halves (session 21's two streams per thread, which had
     * measured 16.1 against 15.0 with two sums), and 16.2-17.1 for two sums in order. A one-thread sweep of the file:
     * 21-22.6 against 15-20 GB/s (C with the same arithmetic: 24-25).
     */
    @Override
    void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        if (grouped) {
            RowLanes.pairedRows(this, x, xOffset, sums, quants, out, outOffset, firstRow, start, end);
            return;
        }
        for (int r = start; r < end; r++) out[outOffset + r] = pairedDot(firstRow + r, x, xOffset);
    }
}
