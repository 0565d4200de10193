package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import static gptfast4j.tensor.Tensor.F_SPECIES;
import static gptfast4j.tensor.Tensor.GROUP_TOKENS;

/**
 * The F32 micro-kernels of {@link Tensor#matmul}'s tiles: a tile of dequantized weights (rows of floats, or panels of
 * {@link RowLanes#L} rows with the rows in the lanes) times a batch of activations, each holding a block of outputs
 * in vector accumulators over all columns. Which one a batch takes, and how the tiles are made and handed to the
 * threads, is {@link Tensor}'s; these only multiply.
 */
final class TileKernels {
    private TileKernels() {
    }

    /**
     * Tile rows {@code r .. r + 7} (stride {@code ws}; rows past {@code lastRow} repeat it, their sums unused) times
     * one token group at {@code xt[group ..]}, over all columns: {@code acc[i * GROUP_TOKENS + t]} = row r + i · token t.
     */
    static void groupKernel(float[] w, int r, int lastRow, int ws, float[] xt, int group, int cols, float[] acc) {
        if (SIXTEEN_REGISTERS) {
            fourRowsByGroup(w, r, lastRow, ws, xt, group, cols, acc, 0);
            fourRowsByGroup(w, r + 4, lastRow, ws, xt, group, cols, acc, 4 * GROUP_TOKENS);
            return;
        }
        int lanes = F_SPECIES.length();
        int w0 = r * ws, w1 = Math.min(r + 1, lastRow) * ws, w2 = Math.min(r + 2, lastRow) * ws, w3 = Math.min(r + 3, lastRow) * ws,
                w4 = Math.min(r + 4, lastRow) * ws, w5 = Math.min(r + 5, lastRow) * ws, w6 = Math.min(r + 6, lastRow) * ws,
                w7 = Math.min(r + 7, lastRow) * ws;
        FloatVector c00 = FloatVector.zero(F_SPECIES), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
                c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
        for (int k = 0; k < cols; k++) {
            FloatVector x0 = FloatVector.fromArray(F_SPECIES, xt, group + k * GROUP_TOKENS),
                    x1 = FloatVector.fromArray(F_SPECIES, xt, group + k * GROUP_TOKENS + lanes);
            FloatVector b = FloatVector.broadcast(F_SPECIES, w[w0 + k]);
            c00 = x0.fma(b, c00); c01 = x1.fma(b, c01);
            b = FloatVector.broadcast(F_SPECIES, w[w1 + k]);
            c10 = x0.fma(b, c10); c11 = x1.fma(b, c11);
            b = FloatVector.broadcast(F_SPECIES, w[w2 + k]);
            c20 = x0.fma(b, c20); c21 = x1.fma(b, c21);
            b = FloatVector.broadcast(F_SPECIES, w[w3 + k]);
            c30 = x0.fma(b, c30); c31 = x1.fma(b, c31);
            b = FloatVector.broadcast(F_SPECIES, w[w4 + k]);
            c40 = x0.fma(b, c40); c41 = x1.fma(b, c41);
            b = FloatVector.broadcast(F_SPECIES, w[w5 + k]);
            c50 = x0.fma(b, c50); c51 = x1.fma(b, c51);
            b = FloatVector.broadcast(F_SPECIES, w[w6 + k]);
            c60 = x0.fma(b, c60); c61 = x1.fma(b, c61);
            b = FloatVector.broadcast(F_SPECIES, w[w7 + k]);
            c70 = x0.fma(b, c70); c71 = x1.fma(b, c71);
        }
        int g = GROUP_TOKENS;
        c00.intoArray(acc, 0); c01.intoArray(acc, lanes);
        c10.intoArray(acc, g); c11.intoArray(acc, g + lanes);
        c20.intoArray(acc, 2 * g); c21.intoArray(acc, 2 * g + lanes);
        c30.intoArray(acc, 3 * g); c31.intoArray(acc, 3 * g + lanes);
        c40.intoArray(acc, 4 * g); c41.intoArray(acc, 4 * g + lanes);
        c50.intoArray(acc, 5 * g); c51.intoArray(acc, 5 * g + lanes);
        c60.intoArray(acc, 6 * g); c61.intoArray(acc, 6 * g + lanes);
        c70.intoArray(acc, 7 * g); c71.intoArray(acc, 7 * g + lanes);
    }

    /**
     * Where registers are sixteen ({@link #SIXTEEN_REGISTERS}), half of {@link #groupKernel}: tile rows {@code r .. r + 3}
     * times the token group, eight accumulators, two x vectors and a broadcast (11 registers live, where the eight rows'
     * 19 spilled), the group read twice per call (from L1). Each lane's sum is groupKernel's bit for bit, the four
     * rows' to {@code acc[at ..]}, {@code acc[at + GROUP_TOKENS ..]}, ...
     */
    private static void fourRowsByGroup(float[] w, int r, int lastRow, int ws, float[] xt, int group, int cols, float[] acc, int at) {
        int lanes = F_SPECIES.length(), g = GROUP_TOKENS;
        int w0 = Math.min(r, lastRow) * ws, w1 = Math.min(r + 1, lastRow) * ws, w2 = Math.min(r + 2, lastRow) * ws, w3 = Math.min(r + 3, lastRow) * ws;
        FloatVector c00 = FloatVector.zero(F_SPECIES), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (int k = 0; k < cols; k++) {
            FloatVector x0 = FloatVector.fromArray(F_SPECIES, xt, group + k * g), x1 = FloatVector.fromArray(F_SPECIES, xt, group + k * g + lanes);
            FloatVector b = FloatVector.broadcast(F_SPECIES, w[w0 + k]);
            c00 = x0.fma(b, c00); c01 = x1.fma(b, c01);
            b = FloatVector.broadcast(F_SPECIES, w[w1 + k]);
            c10 = x0.fma(b, c10); c11 = x1.fma(b, c11);
            b = FloatVector.broadcast(F_SPECIES, w[w2 + k]);
            c20 = x0.fma(b, c20); c21 = x1.fma(b, c21);
            b = FloatVector.broadcast(F_SPECIES, w[w3 + k]);
            c30 = x0.fma(b, c30); c31 = x1.fma(b, c31);
        }
        c00.intoArray(acc, at); c01.intoArray(acc, at + lanes);
        c10.intoArray(acc, at + g); c11.intoArray(acc, at + g + lanes);
        c20.intoArray(acc, at + 2 * g); c21.intoArray(acc, at + 2 * g + lanes);
        c30.intoArray(acc, at + 3 * g); c31.intoArray(acc, at + 3 * g + lanes);
    }

    /**
     * {@link #groupKernel} for a last group of at most one vector's tokens: its first vector alone, so that a batch
     * just past a whole number of groups does not pay for a whole group more. Each lane's sum is groupKernel's, bit
     * for bit (the same multiply-adds in the same order). {@code acc[i * GROUP_TOKENS + t]} as there.
     */
    static void halfGroupKernel(float[] w, int r, int lastRow, int ws, float[] xt, int group, int cols, float[] acc) {
        int w0 = r * ws, w1 = Math.min(r + 1, lastRow) * ws, w2 = Math.min(r + 2, lastRow) * ws, w3 = Math.min(r + 3, lastRow) * ws,
                w4 = Math.min(r + 4, lastRow) * ws, w5 = Math.min(r + 5, lastRow) * ws, w6 = Math.min(r + 6, lastRow) * ws,
                w7 = Math.min(r + 7, lastRow) * ws;
        FloatVector c0 = FloatVector.zero(F_SPECIES), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        for (int k = 0; k < cols; k++) {
            FloatVector x0 = FloatVector.fromArray(F_SPECIES, xt, group + k * GROUP_TOKENS);
            c0 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w0 + k]), c0);
            c1 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w1 + k]), c1);
            c2 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w2 + k]), c2);
            c3 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w3 + k]), c3);
            c4 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w4 + k]), c4);
            c5 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w5 + k]), c5);
            c6 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w6 + k]), c6);
            c7 = x0.fma(FloatVector.broadcast(F_SPECIES, w[w7 + k]), c7);
        }
        int g = GROUP_TOKENS;
        c0.intoArray(acc, 0); c1.intoArray(acc, g); c2.intoArray(acc, 2 * g); c3.intoArray(acc, 3 * g);
        c4.intoArray(acc, 4 * g); c5.intoArray(acc, 5 * g); c6.intoArray(acc, 6 * g); c7.intoArray(acc, 7 * g);
    }

    /**
     * One panel of L rows ({@code w[panel ..]}, {@link #eachPanelTile}) times tokens {@code from .. nTokens}, four at a
     * time: per column, one load of the L rows' weights serves four tokens' broadcast activations, the lanes the rows'
     * outputs, so each output is one lane summed in column order. Outputs of rows {@code row .. row + height} (a last
     * panel's padding rows are not written: their sums pass through {@code partial}).
     */
    static void panelTokens(float[] w, int panel, float[] x, int from, int nTokens, int cols, float[] out, int outStride, int row, int height, float[] partial) {
        int l = RowLanes.L;
        for (int t = from; t < nTokens; t += 4) {
            // past the last token, a token's row repeats the last one; its sums are not written
            int x0 = t * cols, x1 = Math.min(t + 1, nTokens - 1) * cols, x2 = Math.min(t + 2, nTokens - 1) * cols, x3 = Math.min(t + 3, nTokens - 1) * cols;
            FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < cols; k++) {
                FloatVector v = FloatVector.fromArray(F_SPECIES, w, panel + k * RowLanes.L);
                a0 = v.fma(FloatVector.broadcast(F_SPECIES, x[x0 + k]), a0);
                a1 = v.fma(FloatVector.broadcast(F_SPECIES, x[x1 + k]), a1);
                a2 = v.fma(FloatVector.broadcast(F_SPECIES, x[x2 + k]), a2);
                a3 = v.fma(FloatVector.broadcast(F_SPECIES, x[x3 + k]), a3);
            }
            a0.intoArray(partial, 0);
            a1.intoArray(partial, l);
            a2.intoArray(partial, 2 * l);
            a3.intoArray(partial, 3 * l);
            for (int j = 0; j < Math.min(4, nTokens - t); j++) System.arraycopy(partial, j * l, out, (t + j) * outStride + row, height);
        }
    }

    /** Tokens per pass of {@link #panelPairTokens}. */
    static final int PAIR_TOKENS = 8;

    /**
     * {@link #panelTokens} over two whole panels ({@code 2L} rows from {@code w[panel ..]}) at once, {@link
     * #PAIR_TOKENS} tokens at a time while more than four are left: per column, two weight loads and eight broadcasts
     * serve sixteen FMAs into sixteen accumulators, where a panel by four tokens has one FMA per broadcast and four
     * accumulators, too few to cover the FMA's latency. The eight tokens' activations of a column are adjacent
     * ({@code xt}, x transposed in groups of eight), one stream of broadcasts where eight rows of x were eight: JMH
     * matmulN 128 tokens, Q4_K decode layout, one thread, alternating, 4096 x 11008 69.6-76.7 -> 63.6-67.5 ms, 4096
     * x 4096 23.8-28.8 -> 22.9-26.4; Llama-2-7B Q4_K pp128, 2 threads, ten alternating pairs, mean 23.7 -> 25.1
     * tokens/s; at 2048 columns (TinyLlama) level (Q4_0 pp24 and pp48 within 2%; in JMH on two threads up to 5%
     * slower, x's transposition then costing what the stream saves). The last tokens (four or fewer) are read from
     * x. Each output is the same lane sum in the same order, so the results are {@link
     * #panelTokens}' bit for bit. TinyLlama Q4_0, 2 threads, decode layout, alternating, before -> after the pairs of
     * panels: pp9 56.46/56.20 -> 66.29/67.34 tokens/s, pp12 74.55/73.55 -> 82.29/89.47, pp16 80.52/80.24 ->
     * 107.85/114.23; Q8_0 pp16 75.69/74.02 -> 98.41/97.16; Llama-2-7B Q4_0 (whose tiles were one panel tall before)
     * pp9 8.71/8.42 -> 9.32/9.77, pp16 12.41/11.95 -> 15.23/14.36.
     */
    static void panelPairTokens(float[] w, int panel, float[] x, float[] xt, int nTokens, int cols, float[] out, int outStride, int row, float[] partial) {
        int l = RowLanes.L, second = panel + l * cols, t = 0;
        for (; nTokens - t > 4; t += PAIR_TOKENS) {
            if (SIXTEEN_REGISTERS) {
                pairOfPanelsByFour(w, panel, second, xt, t * cols, 0, cols, partial);
                pairOfPanelsByFour(w, panel, second, xt, t * cols, 4, cols, partial);
                for (int j = 0; j < Math.min(PAIR_TOKENS, nTokens - t); j++) System.arraycopy(partial, 2 * l * j, out, (t + j) * outStride + row, 2 * l);
                continue;
            }
            // lanes past the batch hold whatever the scratch held; their sums are not written
            FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
                    c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
            for (int k = 0, at = 0, xk = t * cols; k < cols; k++, at += l, xk += PAIR_TOKENS) {
                FloatVector v = FloatVector.fromArray(F_SPECIES, w, panel + at), u = FloatVector.fromArray(F_SPECIES, w, second + at);
                FloatVector b = FloatVector.broadcast(F_SPECIES, xt[xk]);
                a0 = v.fma(b, a0); c0 = u.fma(b, c0);
                b = FloatVector.broadcast(F_SPECIES, xt[xk + 1]);
                a1 = v.fma(b, a1); c1 = u.fma(b, c1);
                b = FloatVector.broadcast(F_SPECIES, xt[xk + 2]);
                a2 = v.fma(b, a2); c2 = u.fma(b, c2);
                b = FloatVector.broadcast(F_SPECIES, xt[xk + 3]);
                a3 = v.fma(b, a3); c3 = u.fma(b, c3);
                b = FloatVector.broadcast(F_SPECIES, xt[xk + 4]);
                a4 = v.fma(b, a4); c4 = u.fma(b, c4);
                b = FloatVector.broadcast(F_SPECIES, xt[xk + 5]);
                a5 = v.fma(b, a5); c5 = u.fma(b, c5);
                b = FloatVector.broadcast(F_SPECIES, xt[xk + 6]);
                a6 = v.fma(b, a6); c6 = u.fma(b, c6);
                b = FloatVector.broadcast(F_SPECIES, xt[xk + 7]);
                a7 = v.fma(b, a7); c7 = u.fma(b, c7);
            }
            // token j's 2L outputs, adjacent in out, at partial[2L * j ..]
            a0.intoArray(partial, 0); c0.intoArray(partial, l);
            a1.intoArray(partial, 2 * l); c1.intoArray(partial, 3 * l);
            a2.intoArray(partial, 4 * l); c2.intoArray(partial, 5 * l);
            a3.intoArray(partial, 6 * l); c3.intoArray(partial, 7 * l);
            a4.intoArray(partial, 8 * l); c4.intoArray(partial, 9 * l);
            a5.intoArray(partial, 10 * l); c5.intoArray(partial, 11 * l);
            a6.intoArray(partial, 12 * l); c6.intoArray(partial, 13 * l);
            a7.intoArray(partial, 14 * l); c7.intoArray(partial, 15 * l);
            for (int j = 0; j < Math.min(PAIR_TOKENS, nTokens - t); j++) System.arraycopy(partial, 2 * l * j, out, (t + j) * outStride + row, 2 * l);
        }
        panelTokens(w, panel, x, t, nTokens, cols, out, outStride, row, l, partial);
        panelTokens(w, second, x, t, nTokens, cols, out, outStride, row + l, l, partial);
    }

    /**
     * Whether the vector registers are x86's sixteen ({@link Tensor#X86_WITHOUT_AVX512}: AVX2, where AVX-512 has 32,
     * as ARM's NEON and SVE have): there {@link #panelPairTokens}' 16 accumulators, two weight vectors and a broadcast
     * do not fit, nor {@link #groupKernel}'s, and C2 spills them to the stack in their inner loops.
     */
    static final boolean SIXTEEN_REGISTERS = Tensor.X86_WITHOUT_AVX512;

    /**
     * Where registers are sixteen, half of {@link #panelPairTokens}' pass: the pair of panels at {@code w[panel ..]}
     * and {@code w[second ..]} times tokens {@code half .. half + 3} of the eight whose columns start at
     * {@code xt[xk ..]}, eight accumulators, two weight vectors and a broadcast (11 registers); the panels are read
     * twice per pass (from cache: a tile fits L2). Each output is the same lanes' multiply-adds in the same order as
     * the full pass's, so bit for bit the same. Their sums to {@code partial} where the full pass puts them.
     */
    private static void pairOfPanelsByFour(float[] w, int panel, int second, float[] xt, int xk, int half, int cols, float[] partial) {
        int l = RowLanes.L;
        FloatVector a0 = FloatVector.zero(F_SPECIES), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        for (int k = 0, at = 0, x = xk + half; k < cols; k++, at += l, x += PAIR_TOKENS) {
            FloatVector v = FloatVector.fromArray(F_SPECIES, w, panel + at), u = FloatVector.fromArray(F_SPECIES, w, second + at);
            FloatVector b = FloatVector.broadcast(F_SPECIES, xt[x]);
            a0 = v.fma(b, a0); c0 = u.fma(b, c0);
            b = FloatVector.broadcast(F_SPECIES, xt[x + 1]);
            a1 = v.fma(b, a1); c1 = u.fma(b, c1);
            b = FloatVector.broadcast(F_SPECIES, xt[x + 2]);
            a2 = v.fma(b, a2); c2 = u.fma(b, c2);
            b = FloatVector.broadcast(F_SPECIES, xt[x + 3]);
            a3 = v.fma(b, a3); c3 = u.fma(b, c3);
        }
        int at = 2 * l * half;
        a0.intoArray(partial, at); c0.intoArray(partial, at + l);
        a1.intoArray(partial, at + 2 * l); c1.intoArray(partial, at + 3 * l);
        a2.intoArray(partial, at + 4 * l); c2.intoArray(partial, at + 5 * l);
        a3.intoArray(partial, at + 6 * l); c3.intoArray(partial, at + 7 * l);
    }

    /**
     * Four rows of {@code w} (at {@code wOffset}, stride {@code ws}) times four vectors of {@code x} (at
     * {@code xOffset}, stride {@code n}), each of length {@code n}: sixteen dot products with sixteen vector accumulators, each weight and each
     * input vector loaded once per four multiply-adds. Result (row i, token j) goes to {@code out[o + j * stride + i]}.
     */
    static void dot4x4(float[] w, int wOffset, int ws, float[] x, int xOffset, int n, float[] out, int o, int stride) {
        if (SIXTEEN_REGISTERS) {
            twoRowsByFour(w, wOffset, ws, x, xOffset, n, out, o, stride);
            twoRowsByFour(w, wOffset + 2 * ws, ws, x, xOffset, n, out, o + 2, stride);
            return;
        }
        FloatVector a00 = FloatVector.zero(F_SPECIES), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00,
                a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int lanes = F_SPECIES.length();
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            FloatVector x0 = FloatVector.fromArray(F_SPECIES, x, xOffset + i), x1 = FloatVector.fromArray(F_SPECIES, x, xOffset + n + i),
                    x2 = FloatVector.fromArray(F_SPECIES, x, xOffset + 2 * n + i), x3 = FloatVector.fromArray(F_SPECIES, x, xOffset + 3 * n + i);
            FloatVector w0 = FloatVector.fromArray(F_SPECIES, w, wOffset + i);
            a00 = w0.fma(x0, a00); a01 = w0.fma(x1, a01); a02 = w0.fma(x2, a02); a03 = w0.fma(x3, a03);
            FloatVector w1 = FloatVector.fromArray(F_SPECIES, w, wOffset + ws + i);
            a10 = w1.fma(x0, a10); a11 = w1.fma(x1, a11); a12 = w1.fma(x2, a12); a13 = w1.fma(x3, a13);
            FloatVector w2 = FloatVector.fromArray(F_SPECIES, w, wOffset + 2 * ws + i);
            a20 = w2.fma(x0, a20); a21 = w2.fma(x1, a21); a22 = w2.fma(x2, a22); a23 = w2.fma(x3, a23);
            FloatVector w3 = FloatVector.fromArray(F_SPECIES, w, wOffset + 3 * ws + i);
            a30 = w3.fma(x0, a30); a31 = w3.fma(x1, a31); a32 = w3.fma(x2, a32); a33 = w3.fma(x3, a33);
        }
        // results straight to out (no array per call); the scalar tail is empty when n is a multiple of the lanes
        int w1 = wOffset + ws, w2 = wOffset + 2 * ws, w3 = wOffset + 3 * ws, x1 = xOffset + n, x2 = xOffset + 2 * n, x3 = xOffset + 3 * n;
        out[o] = a00.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, xOffset, i, n);
        out[o + stride] = a01.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, x1, i, n);
        out[o + 2 * stride] = a02.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, x2, i, n);
        out[o + 3 * stride] = a03.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, x3, i, n);
        out[o + 1] = a10.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, xOffset, i, n);
        out[o + 1 + stride] = a11.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x1, i, n);
        out[o + 1 + 2 * stride] = a12.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x2, i, n);
        out[o + 1 + 3 * stride] = a13.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x3, i, n);
        out[o + 2] = a20.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, xOffset, i, n);
        out[o + 2 + stride] = a21.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, x1, i, n);
        out[o + 2 + 2 * stride] = a22.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, x2, i, n);
        out[o + 2 + 3 * stride] = a23.reduceLanes(VectorOperators.ADD) + tail(w, w2, x, x3, i, n);
        out[o + 3] = a30.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, xOffset, i, n);
        out[o + 3 + stride] = a31.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, x1, i, n);
        out[o + 3 + 2 * stride] = a32.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, x2, i, n);
        out[o + 3 + 3 * stride] = a33.reduceLanes(VectorOperators.ADD) + tail(w, w3, x, x3, i, n);
    }

    /**
     * Where registers are sixteen, half of {@link #dot4x4}: rows {@code w[wOffset ..]} and {@code w[wOffset + ws ..]}
     * times the four vectors of x, eight accumulators, four x vectors and a weight vector (13 live, where dot4x4's 21
     * spilled), x read twice per four rows (from L1). Each output is dot4x4's bit for bit (the same lanes in the same
     * order, the same lane sum and tail), to {@code out[o + j * stride + i]} for row i, token j.
     */
    private static void twoRowsByFour(float[] w, int wOffset, int ws, float[] x, int xOffset, int n, float[] out, int o, int stride) {
        FloatVector a00 = FloatVector.zero(F_SPECIES), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        int lanes = F_SPECIES.length();
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            FloatVector x0 = FloatVector.fromArray(F_SPECIES, x, xOffset + i), x1 = FloatVector.fromArray(F_SPECIES, x, xOffset + n + i),
                    x2 = FloatVector.fromArray(F_SPECIES, x, xOffset + 2 * n + i), x3 = FloatVector.fromArray(F_SPECIES, x, xOffset + 3 * n + i);
            FloatVector w0 = FloatVector.fromArray(F_SPECIES, w, wOffset + i);
            a00 = w0.fma(x0, a00); a01 = w0.fma(x1, a01); a02 = w0.fma(x2, a02); a03 = w0.fma(x3, a03);
            FloatVector w1 = FloatVector.fromArray(F_SPECIES, w, wOffset + ws + i);
            a10 = w1.fma(x0, a10); a11 = w1.fma(x1, a11); a12 = w1.fma(x2, a12); a13 = w1.fma(x3, a13);
        }
        int w1 = wOffset + ws, x1 = xOffset + n, x2 = xOffset + 2 * n, x3 = xOffset + 3 * n;
        out[o] = a00.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, xOffset, i, n);
        out[o + stride] = a01.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, x1, i, n);
        out[o + 2 * stride] = a02.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, x2, i, n);
        out[o + 3 * stride] = a03.reduceLanes(VectorOperators.ADD) + tail(w, wOffset, x, x3, i, n);
        out[o + 1] = a10.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, xOffset, i, n);
        out[o + 1 + stride] = a11.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x1, i, n);
        out[o + 1 + 2 * stride] = a12.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x2, i, n);
        out[o + 1 + 3 * stride] = a13.reduceLanes(VectorOperators.ADD) + tail(w, w1, x, x3, i, n);
    }

    /** {@code sum(w[wOffset + k] * x[xOffset + k])} for {@code from <= k < n}. */
    static float tail(float[] w, int wOffset, float[] x, int xOffset, int from, int n) {
        float sum = 0;
        for (int k = from; k < n; k++) sum += w[wOffset + k] * x[xOffset + k];
        return sum;
    }
}
