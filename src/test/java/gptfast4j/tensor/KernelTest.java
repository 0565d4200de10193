package gptfast4j.tensor;

import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each format's vector kernel against a plain scalar reference: the format's bytes decoded here by the published
 * block layout (not by the class under test), then a double-precision dot product.
 */
class KernelTest {
    @AfterEach
    void restoreThreads() {
        Parallel.setThreads(Runtime.getRuntime().availableProcessors());
    }

    /** Scalar decoding of element {@code i} of a row, straight from the block layouts of ggml-common.h. */
    static float reference(GGMLType type, ByteBuffer b, long rowStart, int i) {
        int block = i / 32, j = i % 32;
        int at;
        switch (type) {
            case F32: return b.getFloat((int) rowStart + 4 * i);
            case F16: return Float.float16ToFloat(b.getShort((int) rowStart + 2 * i));
            case BF16: return Float.intBitsToFloat(b.getShort((int) rowStart + 2 * i) << 16);
            case Q8_0:
                at = (int) rowStart + block * 34;
                return Float.float16ToFloat(b.getShort(at)) * b.get(at + 2 + j);
            case Q4_0: {
                at = (int) rowStart + block * 18;
                int q = b.get(at + 2 + j % 16) & 0xFF;
                int nibble = j < 16 ? q & 0xF : q >> 4;
                return Float.float16ToFloat(b.getShort(at)) * (nibble - 8);
            }
            case Q4_1: {
                at = (int) rowStart + block * 20;
                int q = b.get(at + 4 + j % 16) & 0xFF;
                int nibble = j < 16 ? q & 0xF : q >> 4;
                return Float.float16ToFloat(b.getShort(at)) * nibble + Float.float16ToFloat(b.getShort(at + 2));
            }
            case Q4_K, Q5_K: {
                // 256-weight super-blocks: [f16 d][f16 dmin][12 bytes scales/mins]([32 bytes qh] for Q5_K)[128 bytes qs];
                // weight k: sub-block is = k / 32, byte qs[32 (k / 64) + k % 32], low nibble when is is even
                int k = i % 256;
                at = (int) rowStart + (i / 256) * (type == GGMLType.Q4_K ? 144 : 176);
                int is = k / 32, l = k % 32;
                int q = b.get(at + (type == GGMLType.Q4_K ? 16 : 48) + 32 * (k / 64) + l) & 0xFF;
                int nibble = is % 2 == 0 ? q & 0xF : q >> 4;
                if (type == GGMLType.Q5_K) nibble += ((b.get(at + 16 + l) >> is) & 1) * 16;
                int[] scaleMin = scaleMinK4(b, at + 4, is);
                float d = Float.float16ToFloat(b.getShort(at)), dmin = Float.float16ToFloat(b.getShort(at + 2));
                return d * scaleMin[0] * nibble - dmin * scaleMin[1];
            }
            case Q6_K: {
                // [128 bytes ql][64 bytes qh][16 int8 scales][f16 d]; two halves of 128 weights, groups g of 32 in a half
                int k = i % 256, half = k / 128, g = k % 128 / 32, l = k % 32;
                at = (int) rowStart + (i / 256) * 210;
                int q = b.get(at + 64 * half + l + 32 * (g % 2)) & 0xFF;
                int nibble = g < 2 ? q & 0xF : q >> 4;
                int high = (b.get(at + 128 + 32 * half + l) >> (2 * g)) & 3;
                float d = Float.float16ToFloat(b.getShort(at + 208));
                return d * b.get(at + 192 + 8 * half + l / 16 + 2 * g) * ((nibble | high << 4) - 32);
            }
            default: throw new IllegalArgumentException(type.toString());
        }
    }

    /** ggml's get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 packed bytes at {@code at}. */
    private static int[] scaleMinK4(ByteBuffer b, int at, int j) {
        if (j < 4) return new int[]{b.get(at + j) & 63, b.get(at + j + 4) & 63};
        int hi = b.get(at + j + 4) & 0xFF;
        return new int[]{(hi & 0xF) | ((b.get(at + j - 4) & 0xFF) >> 6) << 4, (hi >> 4) | ((b.get(at + j) & 0xFF) >> 6) << 4};
    }

    /**
     * Every row's dequantization, dot product and matrix x vector, in the file's layout and in the decode layout
     * ({@link Tensor#forDecode}: Q4_0's, Q4_1's, Q4_K's, Q5_K's and Q6_K's groups of four rows), against the scalar decoding
     * of the file's bytes; dequantization bit for bit, in either layout. Q4_0's and Q4_K's products take x rounded as
     * llama.cpp rounds it for them ({@link #asDecodeRounds}).
     */
    @ParameterizedTest
    @CsvSource({"F32,file", "F16,file", "F16,decode", "BF16,file", "BF16,decode", "Q8_0,file", "Q8_0,decode", "Q4_0,file", "Q4_0,decode", "Q4_1,file", "Q4_1,decode", "Q4_K,file", "Q4_K,decode", "Q5_K,file", "Q5_K,decode", "Q6_K,file", "Q6_K,decode"})
    void dotAndDequantizeMatchTheScalarReference(String typeName, String layout) {
        // ffn_down rows are 512 wide: two K-quant super-blocks, so the step from one to the next is checked too
        TensorData td = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama2-" + typeName + ".gguf")).tensors().get("blk.1.ffn_down.weight");
        Tensor file = Tensor.of(td), t = layout.equals("decode") ? file.forDecode(OffHeap.AUTOMATIC) : file;
        assertEquals(GGMLType.valueOf(typeName), t.type);
        assertEquals(layout.equals("decode"), t != file, "a copy in another layout");
        ByteBuffer bytes = td.data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        Random random = new Random(42);
        float[] x = new float[t.cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        // Q4_0's and Q4_K's products with one token take llama.cpp's arithmetic: x rounded as its Q8_0 and Q8_K
        float[] seen = asDecodeRounds(typeName, x);
        float[] row = new float[t.cols], product = new float[(int) t.rows], shifted = new float[(int) t.rows];
        t.matvec(x, product);
        // rows 1 .. rows - 2: a range that starts and ends inside a group of the decode layout
        t.matvec(x, 0, shifted, 1, 1, (int) t.rows - 2);
        for (long r = 0; r < t.rows; r++) {
            double expected = 0, magnitude = 0;
            t.dequantizeRow(r, row, 0);
            for (int i = 0; i < t.cols; i++) {
                float w = reference(t.type, bytes, r * file.rowBytes, i);
                assertEquals(w, row[i], 0f, "row " + r + " element " + i);
                expected += (double) w * seen[i];
                magnitude += Math.abs((double) w * seen[i]);
            }
            assertEquals(expected, t.dot(r, x, 0), 1e-5 * magnitude + 1e-6, "row " + r);
            assertEquals(expected, product[(int) r], 1e-5 * magnitude + 1e-6, "matvec row " + r);
            if (r > 0 && r < t.rows - 1) assertEquals(expected, shifted[(int) r], 1e-5 * magnitude + 1e-6, "matvec from row 1, row " + r);
        }
    }

    /**
     * Matrix x vector on the decode layouts over row ranges that start and end inside a group, hold an odd number of
     * whole groups (the pair kernels' odd one out) or a single group, against each row's own dot product.
     */
    @ParameterizedTest
    @CsvSource({"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K"})
    void decodeLayoutMatvecOverAnyRowRange(String typeName) {
        Tensor t = Tensor.of(GGUF.read(Shared.REFERENCE.resolve("models/mini-llama2-" + typeName + ".gguf")).tensors().get("blk.1.ffn_up.weight")).forDecode(OffHeap.AUTOMATIC);
        int rows = (int) t.rows, l = RowLanes.L;
        Random random = new Random(7);
        float[] x = new float[t.cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        float[] expected = new float[rows];
        for (int r = 0; r < rows; r++) expected[r] = t.dot(r, x, 0);
        int[][] ranges = {{0, l}, {0, 3 * l}, {l, 3 * l}, {3, 3 * l}, {l + 5, 2 * l - 7}, {0, rows}, {1, rows - 2}, {l, rows - l}};
        for (int[] range : ranges) {
            float[] out = new float[rows + 2];
            t.matvec(x, 0, out, 2, range[0], range[1]);
            for (int i = 0; i < range[1]; i++) {
                assertEquals(expected[range[0] + i], out[2 + i], 1e-5f * (1 + Math.abs(expected[range[0] + i])), typeName + " rows from " + range[0] + ", row " + (range[0] + i));
            }
        }
    }

    /**
     * 7 tokens run the decode kernel per token over chunks of rows ({@code Tensor.laneTokens}); 11 tokens run the tile
     * product (full 4x4 blocks and the leftover path; with 256- and 128-bit vectors, whose groups hold 16 and 8, the
     * "tile" batch is 8 and 4 tokens and takes the decode kernel too); a group and five more the group product with
     * tokens in the lanes (a full group and a zero-padded one) over the rows of a tile in blocks of eight and a
     * repeated-row rest (37 tokens with 512-bit vectors, 21 with 256-bit and 13 with 128-bit ones), which in the
     * decode layouts take the tile product (pairs of panels by eight tokens, then four at a time). The tile and group
     * products are F32 arithmetic for every format; Q4_0's decode kernel takes llama.cpp's.
     */
    @ParameterizedTest
    @CsvSource({"F32,tile,file", "F16,tile,file", "BF16,tile,file", "Q8_0,tile,file", "Q4_0,tile,file", "Q4_1,tile,file", "Q4_K,tile,file", "Q5_K,tile,file", "Q6_K,tile,file",
            "F32,group,file", "F16,group,file", "BF16,group,file", "Q8_0,group,file", "Q4_0,group,file", "Q4_1,group,file", "Q4_K,group,file", "Q5_K,group,file", "Q6_K,group,file",
            "F16,tile,decode", "F16,group,decode", "BF16,tile,decode", "BF16,group,decode", "Q8_0,tile,decode", "Q8_0,group,decode", "Q4_0,tile,decode", "Q4_0,group,decode", "Q4_1,tile,decode", "Q4_1,group,decode", "Q4_K,tile,decode", "Q4_K,group,decode", "Q5_K,tile,decode", "Q5_K,group,decode", "Q6_K,tile,decode", "Q6_K,group,decode",
            "F16,lanes,decode", "BF16,lanes,decode", "Q8_0,lanes,decode", "Q4_0,lanes,decode", "Q4_1,lanes,decode", "Q4_K,lanes,decode", "Q5_K,lanes,decode", "Q6_K,lanes,decode",
            "F32,lanes,file", "F16,lanes,file", "BF16,lanes,file", "Q8_0,lanes,file", "Q4_0,lanes,file", "Q4_1,lanes,file", "Q4_K,lanes,file", "Q5_K,lanes,file", "Q6_K,lanes,file"})
    void matmulMatchesTheReferenceAndIgnoresTheThreadCount(String typeName, String product, String layout) {
        int tokens = switch (product) {
            case "lanes" -> Tensor.LANE_TOKENS - 1; // a small batch: the decode kernel per token
            case "tile" -> Math.min(11, Tensor.GROUP_TOKENS / 2);
            default -> Tensor.GROUP_TOKENS + 5;
        };
        // with 256- and 128-bit vectors (groups of 16 and 8 tokens) the "tile" batch of 8 or 4 takes the decode kernel
        assertTrue((product.equals("group") ? tokens > Tensor.GROUP_TOKENS / 2
                : product.equals("tile") ? tokens <= Tensor.GROUP_TOKENS / 2 : tokens <= Tensor.LANE_TOKENS), "tokens " + tokens);
        TensorData td = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors().get("blk.0.ffn_gate.weight");
        Tensor t = uneven(td, layout.equals("decode"));
        ByteBuffer bytes = td.data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        Random random = new Random(7);
        float[] x = new float[tokens * t.cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        // compiled code sums lanes in another order than interpreted code (see VectorMath): warm up first; Q4_0's and
        // Q4_K's decode kernels take llama.cpp's arithmetic, x rounded as its Q8_0 and Q8_K
        float[] seen = tokens <= Tensor.LANE_TOKENS ? asDecodeRounds(typeName, x) : x;
        assertMatmulMatches(t, bytes, td.type().bytesFor(t.cols), x, seen, tokens, 200);
    }

    /**
     * {@link Tensor.SharedInput} (a layer's wq, wk and wv, or w1 and w3, in one pool call) against each matrix's own
     * matrix x vector, on 1 to 3 threads: the same x prepared once, each part's rows to its own output, whatever the
     * split; wk cut to a row count that is not a multiple of the pool's granule or of a lane group, so that a range
     * crosses from one part into the next inside a group. Parts that prepare x differently (two formats, or one
     * format in both layouts) take one call each.
     */
    @ParameterizedTest
    @CsvSource({"F32,F32,file", "F16,F16,file", "F16,F16,decode", "F16,F16,mixed", "BF16,BF16,decode", "Q8_0,Q8_0,decode", "Q4_0,Q4_0,file", "Q4_0,Q4_0,decode", "Q4_1,Q4_1,decode",
            "Q4_K,Q4_K,decode", "Q5_K,Q5_K,decode", "Q6_K,Q6_K,decode", "Q4_K,Q6_K,decode", "Q4_0,Q4_0,mixed"})
    void sharedInputMatchesEachMatvec(String typeName, String vTypeName, String layout) {
        var tensors = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors();
        Tensor wq = Tensor.of(tensors.get("blk.0.attn_q.weight")), whole = Tensor.of(tensors.get("blk.0.attn_k.weight"));
        Tensor wk = Tensor.of(whole.name, whole.type, whole.data.asSlice(0, (whole.rows - 3) * whole.rowBytes), whole.cols, whole.rows - 3);
        Tensor wv = Tensor.of(GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + vTypeName + ".gguf")).tensors().get("blk.0.attn_v.weight"));
        if (!layout.equals("file")) {
            wq = wq.forDecode(OffHeap.AUTOMATIC);
            wk = wk.forDecode(OffHeap.AUTOMATIC);
            if (layout.equals("decode")) wv = wv.forDecode(OffHeap.AUTOMATIC);
        }
        Tensor[] parts = {wq, wk, wv};
        Random random = new Random(11);
        float[] x = new float[wq.cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        Tensor.SharedInput shared = new Tensor.SharedInput();
        for (int threads = 1; threads <= 3; threads++) {
            Parallel.setThreads(threads);
            float[][] expected = new float[3][], outs = new float[3][];
            for (int i = 0; i < 3; i++) {
                expected[i] = new float[(int) parts[i].rows];
                parts[i].matvec(x, expected[i]);
                outs[i] = new float[(int) parts[i].rows];
                Arrays.fill(outs[i], Float.NaN);
            }
            shared.matmul(x, 1, true, wq, outs[0], wk, outs[1], wv, outs[2]);
            float[] gate = new float[(int) wq.rows], up = new float[(int) wv.rows];
            shared.matmul(x, 1, true, wq, gate, wv, up);
            for (int i = 0; i < 3; i++) {
                for (int r = 0; r < expected[i].length; r++) {
                    // compiled and interpreted code may sum a row's lanes in different orders (see VectorMath)
                    assertEquals(expected[i][r], outs[i][r], 1e-5f * (1 + Math.abs(expected[i][r])), typeName + "/" + vTypeName + " " + layout + ", " + threads + " threads, part " + i + " row " + r);
                }
            }
            for (int r = 0; r < gate.length; r++) assertEquals(expected[0][r], gate[r], 1e-5f * (1 + Math.abs(expected[0][r])), "two parts, first, row " + r);
            for (int r = 0; r < up.length; r++) assertEquals(expected[2][r], up[r], 1e-5f * (1 + Math.abs(expected[2][r])), "two parts, second, row " + r);
        }
    }

    /**
     * A prompt's small batch ({@code exact} false) of a quantized tensor from {@link Tensor#TILE_TOKENS} tokens on takes
     * the tiles, F32 arithmetic in both layouts (so that a prompt's logits do not depend on whether the weights have
     * moved by more than the order of float sums; Q4_0's decode kernel rounds x to int8); below that, and for
     * verification ({@code exact}), the decode kernel per token, each token's outputs its decode step's bits. F16 and
     * BF16 take the decode kernel per token in their files' layouts and below {@link Tensor#FLOAT_PANEL_TOKENS}
     * tokens, the panel product from there in their decode layouts. Against the exact product of the file's weights.
     */
    @ParameterizedTest
    @ValueSource(strings = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"})
    void promptBatchesTakeTheTilesInBothLayouts(String typeName) {
        TensorData td = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors().get("blk.0.ffn_gate.weight");
        Tensor decode = uneven(td, true), whole = Tensor.of(td);
        int rows = Math.toIntExact(decode.rows), cols = decode.cols;
        Tensor file = Tensor.of(whole.name, whole.type, whole.data.asSlice(0, rows * whole.rowBytes), cols, rows);
        ByteBuffer bytes = td.data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        long fileRowBytes = td.type().bytesFor(cols);
        Random random = new Random(11);
        for (int tokens = 2; tokens <= Tensor.LANE_TOKENS; tokens++) {
            float[] x = new float[tokens * cols];
            for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
            float[] fromFile = new float[tokens * rows], fromDecode = new float[tokens * rows], exact = new float[tokens * rows];
            for (int warm = 0; warm < 20; warm++) {
                file.matmul(x, tokens, fromFile, rows, false);
                decode.matmul(x, tokens, fromDecode, rows, false);
            }
            decode.matmul(x, tokens, exact, rows, true);
            float[] single = new float[rows];
            decode.matvec(x, (tokens - 1) * cols, single, 0, 0, rows);
            assertArrayEquals(single, Arrays.copyOfRange(exact, (tokens - 1) * rows, tokens * rows), typeName + ": verification is decode steps, " + tokens + " tokens");
            // the tiles are F32 arithmetic on the file's weights, where the decode kernels of Q4_0 and Q4_K round x as llama.cpp
            float[] seen = tokens < Tensor.TILE_TOKENS ? asDecodeRounds(typeName, x) : x;
            for (int t = 0; t < tokens; t++) {
                for (int r = 0; r < rows; r++) {
                    double want = 0, magnitude = 0;
                    for (int i = 0; i < cols; i++) {
                        double p = (double) reference(td.type(), bytes, r * fileRowBytes, i) * seen[t * cols + i];
                        want += p;
                        magnitude += Math.abs(p);
                    }
                    String where = typeName + " token " + t + " row " + r + " of " + tokens;
                    assertEquals(want, fromFile[t * rows + r], 1e-5 * magnitude + 1e-6, where + ", file's layout");
                    assertEquals(want, fromDecode[t * rows + r], 1e-5 * magnitude + 1e-6, where + ", decode layout");
                }
            }
        }
    }

    /**
     * The first rows of a 512-row tensor, in a number that does not make row blocks come out even: 509, or 508 in the
     * decode layout, whose groups of four must divide the rows.
     */
    private static Tensor uneven(TensorData td, boolean decodeLayout) {
        Tensor whole = Tensor.of(td);
        int rows = decodeLayout ? 508 : 509;
        Tensor t = Tensor.of(whole.name, whole.type, whole.data.asSlice(0, rows * whole.rowBytes), whole.cols, rows);
        if (!decodeLayout) return t;
        Tensor decode = t.forDecode(OffHeap.AUTOMATIC);
        assertTrue(decode != t, "a copy in the decode layout");
        return decode;
    }

    /**
     * {@code t.matmul} of {@code x} on one thread (after {@code warmups} calls) against the exact product of the
     * scalar-decoded weights (of the file's layout, row r at {@code r * fileRowBytes}) with {@code reference} (x as the
     * kernel should see it), then the same call on 2 and 3 threads, which must give the same bits.
     */
    private static void assertMatmulMatches(Tensor t, ByteBuffer bytes, long fileRowBytes, float[] x, float[] reference, int tokens, int warmups) {
        int rows = (int) t.rows;
        Parallel.setThreads(1);
        float[] single = new float[tokens * rows];
        for (int warm = 0; warm < warmups; warm++) t.matmul(x, tokens, single, rows);
        t.matmul(x, tokens, single, rows);
        for (int tok = 0; tok < tokens; tok++) {
            for (int r = 0; r < rows; r++) {
                double expected = 0, magnitude = 0;
                for (int i = 0; i < t.cols; i++) {
                    double p = (double) reference(t.type, bytes, r * fileRowBytes, i) * reference[tok * t.cols + i];
                    expected += p;
                    magnitude += Math.abs(p);
                }
                assertEquals(expected, single[tok * rows + r], 1e-5 * magnitude + 1e-6, "token " + tok + " row " + r);
            }
        }
        assertSameOnMoreThreads(t, x, tokens, single);
    }

    /** {@code t.matmul} of {@code x} on 2 and 3 threads gives the bits {@code single} holds from one thread. */
    private static void assertSameOnMoreThreads(Tensor t, float[] x, int tokens, float[] single) {
        int rows = (int) t.rows;
        for (int threads : new int[]{2, 3}) {
            Parallel.setThreads(threads);
            float[] out = new float[tokens * rows];
            t.matmul(x, tokens, out, rows);
            assertArrayEquals(single, out, 0f, threads + " threads");
        }
    }

    /**
     * Large batches of the quantized formats are F32 arithmetic on the dequantized weights, against the exact product
     * with x as it is: 101 tokens, whole groups and a part-full one; a few large values make blocks with one dominant
     * element, of either sign. (Q4_K took an int16 product on activations rounded as llama.cpp's Q8_K until session
     * 43, Q4_0 and Q4_1 on activations rounded as its Q8_0 and Q8_1 from 64 tokens until session 47: the float tiles
     * ran as fast or faster.)
     */
    @ParameterizedTest
    @CsvSource({"Q8_0,file", "Q8_0,decode", "Q4_0,file", "Q4_0,decode", "Q4_1,file", "Q4_1,decode", "Q4_K,file", "Q4_K,decode", "Q5_K,file",
            "Q5_K,decode", "Q6_K,file", "Q6_K,decode"})
    void largeBatchesAreF32Products(String typeName, String layout) {
        TensorData td = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors().get("blk.0.ffn_gate.weight");
        Tensor t = uneven(td, layout.equals("decode"));
        ByteBuffer bytes = td.data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        int tokens = 101;
        float[] x = largeBatch(tokens, t.cols);
        assertMatmulMatches(t, bytes, td.type().bytesFor(t.cols), x, x, tokens, 20);
    }

    /**
     * A prompt's batch is the same arithmetic in both layouts, bit for bit: the files' group product (tokens in the
     * lanes) and the decode layouts' pair kernel (rows in the lanes) both sum each output as one chain of FMAs in column
     * order over the same dequantized weights. 21 tokens: the group product in the files' layout at every vector
     * width, in the decode layout two passes of eight tokens and one of five (three lanes past the batch, their sums
     * dropped) and no rest; 101 tokens, a prompt's larger batches; 64 rows, two pairs of panels at 512
     * bits. Where the tiles are not whole pairs of panels (chunks of 16 rows at 512 bits, as a process that touched
     * {@code RowLanes} before {@code Tensor} had), the pair kernel goes unused and the test still holds.
     */
    @ParameterizedTest
    @CsvSource({"Q8_0, 21", "Q4_0, 21", "Q4_1, 21", "Q4_0, 101", "Q4_1, 101"})
    void promptBatchesAreTheSameSumsInBothLayouts(String typeName, int tokens) {
        GGMLType type = GGMLType.valueOf(typeName);
        int rows = 64, cols = 2080;
        java.lang.foreign.MemorySegment f32 = java.lang.foreign.Arena.ofAuto().allocate(4L * rows * cols, 64);
        Random random = new Random(17);
        for (long i = 0; i < (long) rows * cols; i++) f32.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) random.nextGaussian());
        Tensor weights = Tensor.of("random", GGMLType.F32, f32, cols, rows);
        Tensor decode = Quantizer.quantize(weights, type, OffHeap.AUTOMATIC), file = Quantizer.quantizeInFileLayout(weights, type, OffHeap.AUTOMATIC);
        assertTrue(decode instanceof Tensor.PanelRows p && p.inLanes() && !((Tensor.PanelRows) file).inLanes());
        float[] x = largeBatch(tokens, cols), inFile = new float[tokens * rows], inLanes = new float[tokens * rows];
        file.matmul(x, tokens, inFile, rows, false);
        decode.matmul(x, tokens, inLanes, rows, false);
        assertArrayEquals(inFile, inLanes, 0f);
    }

    /**
     * From {@link Tensor#BATCH_INVARIANT_TOKENS} tokens on, a prompt's batch gives each token the same sums whatever
     * the rest of the batch, bit for bit: the last 17 and 21 tokens of a 45-token batch on their own, every format in
     * both layouts (what lets the model's last layer run only a prompt's last tokens).
     */
    @ParameterizedTest
    @CsvSource({"F32,file", "F16,file", "F16,decode", "BF16,decode", "Q8_0,file", "Q8_0,decode", "Q4_0,file", "Q4_0,decode", "Q4_1,decode",
            "Q4_K,file", "Q4_K,decode", "Q5_K,decode", "Q6_K,file", "Q6_K,decode"})
    void aTokensSumsDoNotDependOnTheRestOfItsBatch(String typeName, String layout) {
        TensorData td = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors().get("blk.0.ffn_gate.weight");
        Tensor t = uneven(td, layout.equals("decode"));
        int rows = (int) t.rows, cols = t.cols, tokens = 45;
        float[] x = largeBatch(tokens, cols), whole = new float[tokens * rows];
        t.matmul(x, tokens, whole, rows, false);
        for (int part : new int[]{Tensor.BATCH_INVARIANT_TOKENS, 21}) {
            int from = tokens - part;
            float[] out = new float[part * rows];
            t.matmul(Arrays.copyOfRange(x, from * cols, tokens * cols), part, out, rows, false);
            assertArrayEquals(Arrays.copyOfRange(whole, from * rows, tokens * rows), out, 0f, "the last " + part + " tokens alone");
        }
    }

    /**
     * The quantized and half-float formats' decode layouts multiply batches of up to their {@code panelProductTokens()} tokens
     * straight from their bytes ({@code Tensor.panelProduct}): each token's sums are the float tiles' bit for bit (taken from a
     * larger batch, which the tiles run), for batches that fill a pass of eight tokens or not (from the smallest each format takes there), on one to
     * three threads. On 508 rows (at 512 bits 32 lane groups, the last not whole) and 492 (31 groups at 512 bits, the last
     * not whole and paired with itself; 123 at 128 bits).
     */
    @ParameterizedTest
    @CsvSource({"Q4_0,508", "Q4_0,492", "Q8_0,508", "Q8_0,492", "Q4_1,508", "Q4_1,492", "Q4_K,508", "Q4_K,492", "Q5_K,508", "Q5_K,492", "Q6_K,508", "Q6_K,492", "F16,508", "F16,492", "BF16,508", "BF16,492"})
    void panelProductIsTheTilesBitForBit(String typeName, int rows) {
        Tensor whole = Tensor.of(GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors().get("blk.0.ffn_gate.weight"));
        Tensor t = Tensor.of(whole.name, whole.type, whole.data.asSlice(0, rows * whole.rowBytes), whole.cols, rows).forDecode(OffHeap.AUTOMATIC);
        int cols = t.cols, most = ((Tensor.PanelProduct) t).panelProductTokens(), tiled = most + 9;
        assertTrue(t instanceof Tensor.PanelProduct p && p.inLanes());
        float[] x = largeBatch(tiled, cols), tiles = new float[tiled * rows];
        t.matmul(x, tiled, tiles, rows, false);
        for (int threads = 1; threads <= 3; threads++) {
            Parallel.setThreads(threads);
            for (int n : new int[]{t.type.blockSize == 1 ? Tensor.FLOAT_PANEL_TOKENS : Tensor.TILE_TOKENS, 5, 8, 13, Math.min(16, most), Math.min(33, most), most}) {
                float[] out = new float[n * rows];
                t.matmul(Arrays.copyOf(x, n * cols), n, out, rows, false);
                assertArrayEquals(Arrays.copyOf(tiles, n * rows), out, 0f, typeName + ", " + n + " tokens, " + threads + " threads");
            }
        }
    }

    /** {@code tokens} rows of {@code cols} Gaussian activations, every 97th eight times as large. */
    private static float[] largeBatch(int tokens, int cols) {
        Random random = new Random(11);
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian() * (i % 97 == 0 ? 8 : 1);
        return x;
    }

    /** x as a format's products with one token see it: rounded for Q4_0 ({@link #roundedAsLlamaCpp}) and Q4_K ({@link #roundedAsQ8_K}). */
    static float[] asDecodeRounds(String typeName, float[] x) {
        return switch (typeName) {
            case "Q4_0" -> roundedAsLlamaCpp(x);
            case "Q4_K" -> roundedAsQ8_K(x);
            default -> x;
        };
    }

    /**
     * x rounded as llama.cpp rounds activations for its products with Q4_K: quantize_row_q8_K_ref, per 256,
     * iscale = -127 / max (max the value of largest magnitude), q = nearest_int(iscale * x), d = 1 / iscale; times
     * the scale. The signs of iscale and d cancel, so 127 / max|x| serves.
     */
    static float[] roundedAsQ8_K(float[] x) {
        float[] rounded = new float[x.length];
        for (int i = 0; i < x.length; i += 256) {
            float amax = 0;
            for (int k = i; k < i + 256; k++) amax = Math.max(amax, Math.abs(x[k]));
            float iscale = amax == 0 ? 0 : 127 / amax, d = amax == 0 ? 0 : 1 / iscale;
            for (int k = i; k < i + 256; k++) rounded[k] = d * (float) Math.rint(x[k] * iscale);
        }
        return rounded;
    }

    /**
     * x rounded as llama.cpp rounds activations for its products with Q4_0, as Q4_0's decode kernel rounds them: x86
     * quantize_row_q8_0's rounding, per block of 32, d = max|x| / 127 stored as an f16, q = round-half-even(x * 127 /
     * max|x|); times the scale: what the weights are multiplied by.
     */
    static float[] roundedAsLlamaCpp(float[] x) {
        float[] rounded = new float[x.length];
        for (int i = 0; i < x.length; i += 32) {
            float amax = 0;
            for (int k = i; k < i + 32; k++) amax = Math.max(amax, Math.abs(x[k]));
            float d = Float.float16ToFloat(Float.floatToFloat16(amax / 127)), inverse = amax == 0 ? 0 : 127 / amax;
            for (int k = i; k < i + 32; k++) rounded[k] = d * (float) Math.rint(x[k] * inverse);
        }
        return rounded;
    }

    /**
     * The attention kernels against plain loops: scores over transposed keys and the weighted sum of values, one query
     * at a time and four at a time ({@code product4} in both roles), for head sizes of whole vectors (64, 128) or with
     * a masked rest (88, 8), and position counts with and without a masked last vector (at 512 bits: 1, 37, 300, 17, 5,
     * and 32 for four queries' two vectors at a time); an odd head size (9) over chunks of four vectors of positions
     * and a rest (70); what the four-query kernel reads past its columns is NaN and must not show.
     */
    @ParameterizedTest
    @CsvSource({"64,1", "64,37", "128,300", "88,17", "8,5", "64,32", "9,70"})
    void attentionKernelsMatchAScalarReference(int headDim, int positions) {
        Random random = new Random(headDim * 1000L + positions);
        int queries = VectorMath.QUERIES;
        int stride = 411, kvStride = 3 * headDim + 5, qOffset = 7, qStride = headDim + 3, kBase = 2 * headDim * stride + 3, vOffset = 11;
        int wStride = positions + 6, outStride = headDim + 9;
        int slack = VectorMath.PRODUCT_SLACK;
        float[] q = new float[qOffset + queries * qStride], keys = new float[kBase + headDim * stride + slack],
                values = new float[vOffset + positions * kvStride + slack];
        float[] weights = new float[2 + queries * wStride];
        for (float[] a : new float[][]{q, keys, values, weights}) for (int i = 0; i < a.length; i++) a[i] = (float) random.nextGaussian();
        // what the kernels may read past their columns is NaN: it must not reach a stored result
        for (int d = 0; d < headDim; d++) Arrays.fill(keys, kBase + d * stride + positions, kBase + (d + 1) * stride, Float.NaN);
        for (int p = 0; p < positions; p++) Arrays.fill(values, vOffset + p * kvStride + headDim, vOffset + (p + 1) * kvStride, Float.NaN);
        Arrays.fill(keys, keys.length - slack, keys.length, Float.NaN);
        Arrays.fill(values, values.length - slack, values.length, Float.NaN);
        float[] scores = new float[3 + queries * wStride], out = new float[4 + queries * outStride];
        for (int j = 0; j < queries; j++) {
            VectorMath.scores(q, qOffset + j * qStride, keys, kBase, stride, headDim, positions, 0.125f, scores, 3 + j * wStride);
        }
        float[] single = scores.clone();
        Arrays.fill(scores, Float.NaN);
        VectorMath.product4(q, qOffset, qStride, keys, kBase, stride, headDim, positions, 0.125f, scores, 3, wStride);
        for (int j = 0; j < queries; j++) {
            for (int p = 0; p < positions; p++) {
                double expected = 0, magnitude = 0;
                for (int d = 0; d < headDim; d++) {
                    expected += (double) q[qOffset + j * qStride + d] * keys[kBase + d * stride + p];
                    magnitude += Math.abs((double) q[qOffset + j * qStride + d] * keys[kBase + d * stride + p]);
                }
                assertEquals(expected * 0.125, single[3 + j * wStride + p], 1e-6 * magnitude, "query " + j + " score " + p);
                assertEquals(expected * 0.125, scores[3 + j * wStride + p], 1e-6 * magnitude, "four queries: query " + j + " score " + p);
            }
            assertTrue(Float.isNaN(scores[3 + j * wStride + positions]), "four queries wrote past their positions");
        }
        for (int j = 0; j < queries; j++) {
            VectorMath.weightedSum(weights, 2 + j * wStride, values, vOffset, kvStride, positions, out, 4 + j * outStride, headDim);
        }
        single = out.clone();
        Arrays.fill(out, Float.NaN);
        VectorMath.product4(weights, 2, wStride, values, vOffset, kvStride, positions, headDim, 1f, out, 4, outStride);
        for (int j = 0; j < queries; j++) {
            for (int i = 0; i < headDim; i++) {
                double expected = 0, magnitude = 0;
                for (int p = 0; p < positions; p++) {
                    expected += (double) weights[2 + j * wStride + p] * values[vOffset + p * kvStride + i];
                    magnitude += Math.abs((double) weights[2 + j * wStride + p] * values[vOffset + p * kvStride + i]);
                }
                assertEquals(expected, single[4 + j * outStride + i], 1e-6 * magnitude, "query " + j + " output " + i);
                assertEquals(expected, out[4 + j * outStride + i], 1e-6 * magnitude, "four queries: query " + j + " output " + i);
            }
            assertTrue(Float.isNaN(out[4 + j * outStride + headDim]), "four queries wrote past the head");
        }
    }

    /**
     * The weighted sums of a keys-only cache's latents ({@code columnSums}: rows of keys in transposed blocks of 64
     * positions) against a plain loop, one query and four, from the first block or a later one, to a position inside
     * a block (the weights zero from there to its end, as attention makes them; the keys there NaN-free, as the
     * caches make them), for an even and an odd number of rows; nothing written past the rows.
     */
    @ParameterizedTest
    @CsvSource({"512,0,37", "512,64,200", "7,0,64", "33,128,129", "2,0,1"})
    void columnSumsMatchAScalarReference(int rows, int from, int to) {
        Random random = new Random(rows * 1000L + to);
        int block = 64, headDim = rows + 5, blockStride = 3 * headDim * block, kBase = 5 * block + 3, wOffset = 2, wStride = 300, outStride = rows + 4;
        int end = (to + block - 1) / block * block;
        float[] keys = new float[kBase + end / block * blockStride + headDim * block], w = new float[wOffset + VectorMath.QUERIES * wStride];
        for (int i = 0; i < keys.length; i++) keys[i] = (float) random.nextGaussian();
        for (int j = 0; j < VectorMath.QUERIES; j++) {
            for (int p = from; p < to; p++) w[wOffset + j * wStride + p] = random.nextFloat();
        }
        for (int queries : new int[]{1, VectorMath.QUERIES}) {
            float[] out = new float[3 + queries * outStride];
            Arrays.fill(out, Float.NaN);
            VectorMath.columnSums(w, wOffset, wStride, queries, keys, kBase, blockStride, block, from, to, rows, out, 3, outStride);
            for (int j = 0; j < queries; j++) {
                for (int i = 0; i < rows; i++) {
                    double expected = 0, magnitude = 0;
                    for (int p = from; p < to; p++) {
                        double term = (double) w[wOffset + j * wStride + p] * keys[kBase + p / block * blockStride + i * block + p % block];
                        expected += term;
                        magnitude += Math.abs(term);
                    }
                    assertEquals(expected, out[3 + j * outStride + i], 1e-6 * magnitude + 1e-30, queries + " queries: query " + j + " row " + i);
                }
                assertTrue(Float.isNaN(out[3 + j * outStride + rows]), "wrote past the rows");
            }
        }
    }

    /**
     * xIELU (Apertus's activation, {@code xielu}) against ggml's formula in double, over inputs on both sides of 0 and
     * below {@code eps}, for lengths with and without a scalar rest; the exponential the Vector API's, within 1e-6.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 16, 37, 300})
    void xieluMatchesGgmlsFormula(int n) {
        Random random = new Random(n);
        float[] up = new float[n + 3], gate = new float[n + 3];
        for (int i = 0; i < up.length; i++) up[i] = (float) random.nextGaussian() * 4;
        float alphaN = 1.3f, alphaP = 0.6f, beta = 0.5f, eps = -1e-6f;
        VectorMath.xielu(gate, up, 3, n, alphaN, alphaP, beta, eps);
        for (int i = 3; i < n + 3; i++) {
            double u = up[i], expected = u > 0 ? alphaP * u * u + beta * u : (Math.expm1(Math.min(u, eps)) - u) * alphaN + beta * u;
            assertEquals(expected, gate[i], 1e-6 * Math.max(1, Math.abs(expected)), "x = " + u);
        }
    }

    /**
     * GELU's tanh form ungated (BERT's feed-forward, {@code VectorMath.gelu}) against the formula in double, for lengths
     * with and without a scalar rest; the tanh the Vector API's, within 1e-6.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 16, 37, 300})
    void geluMatchesItsFormula(int n) {
        Random random = new Random(n);
        float[] x = new float[n + 3];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian() * 4;
        float[] before = x.clone();
        VectorMath.gelu(x, 3, n);
        for (int i = 0; i < 3; i++) assertEquals(before[i], x[i], "outside the range");
        for (int i = 3; i < n + 3; i++) {
            double g = before[i], expected = 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));
            assertEquals(expected, x[i], 1e-6 * Math.max(1, Math.abs(expected)), "x = " + g);
        }
    }

    /** RMSNorm against a plain loop in double, for lengths with and without a masked last vector. */
    @ParameterizedTest
    @ValueSource(ints = {1, 5, 16, 37, 300})
    void rmsnormMatchesAPlainLoop(int n) {
        Random random = new Random(n);
        float[] x = new float[n + 5], weight = new float[n], out = new float[n + 4];
        for (int i = 0; i < x.length; i++) x[i] = (float) (3 * random.nextGaussian());
        for (int i = 0; i < n; i++) weight[i] = (float) random.nextGaussian();
        double squares = 0;
        for (int i = 0; i < n; i++) squares += (double) x[2 + i] * x[2 + i];
        double scale = 1 / Math.sqrt(squares / n + 1e-5);
        Arrays.fill(out, Float.NaN);
        VectorMath.rmsnorm(out, 1, x, 2, weight, n, 1e-5f);
        for (int i = 0; i < n; i++) {
            double expected = x[2 + i] * scale * weight[i];
            assertEquals(expected, out[1 + i], 1e-6 * Math.abs(expected) + 1e-9, "element " + i);
        }
        assertTrue(Float.isNaN(out[0]) && Float.isNaN(out[1 + n]), "rmsnorm wrote outside its elements");
    }

    /** LayerNorm against a plain loop in double, for lengths with and without a masked last vector; x off zero-mean. */
    @ParameterizedTest
    @ValueSource(ints = {1, 5, 16, 37, 384})
    void layernormMatchesAPlainLoop(int n) {
        Random random = new Random(n);
        float[] x = new float[n + 5], weight = new float[n], out = new float[n + 4];
        for (int i = 0; i < x.length; i++) x[i] = (float) (2 + 3 * random.nextGaussian());
        for (int i = 0; i < n; i++) weight[i] = (float) random.nextGaussian();
        double sum = 0, squares = 0;
        for (int i = 0; i < n; i++) sum += x[2 + i];
        double mean = sum / n;
        for (int i = 0; i < n; i++) squares += (x[2 + i] - mean) * (x[2 + i] - mean);
        double scale = 1 / Math.sqrt(squares / n + 1e-5);
        Arrays.fill(out, Float.NaN);
        VectorMath.layernorm(out, 1, x, 2, weight, n, 1e-5f);
        for (int i = 0; i < n; i++) {
            double expected = (x[2 + i] - mean) * scale * weight[i];
            assertEquals(expected, out[1 + i], 1e-5 * Math.abs(weight[i]) + 1e-6 * Math.abs(expected), "element " + i);
        }
        assertTrue(Float.isNaN(out[0]) && Float.isNaN(out[1 + n]), "layernorm wrote outside its elements");
    }

    /** Softmax against a plain loop in double, for lengths with and without a masked last vector. */
    @ParameterizedTest
    @ValueSource(ints = {1, 5, 16, 37, 300})
    void softmaxMatchesAPlainLoop(int n) {
        Random random = new Random(n);
        float[] x = new float[n + 5];
        for (int i = 0; i < x.length; i++) x[i] = (float) (8 * random.nextGaussian());
        float[] expected = new float[n];
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int i = 0; i < n; i++) max = Math.max(max, x[2 + i]);
        for (int i = 0; i < n; i++) sum += Math.exp(x[2 + i] - max);
        for (int i = 0; i < n; i++) expected[i] = (float) (Math.exp(x[2 + i] - max) / sum);
        float before = x[1], after = x[2 + n];
        VectorMath.softmax(x, 2, n);
        for (int i = 0; i < n; i++) assertEquals(expected[i], x[2 + i], 1e-6f * expected[i] + 1e-9f, "element " + i);
        assertEquals(before, x[1]);
        assertEquals(after, x[2 + n], "softmax wrote past its elements");
    }

    /**
     * The decode layouts' packing of nibbles and of 1- to 8-bit fields, both ways it is computed (one {@code pext}
     * where C2 has it, shifts and masks elsewhere), against the packing written out field by field.
     */
    @Test
    void fieldPackingBothWays() {
        Random random = new Random(44);
        long[] values = new long[10_000];
        for (int i = 0; i < values.length; i++) values[i] = random.nextLong();
        values[0] = 0;
        values[1] = -1;
        values[2] = 0x0F0F_0F0F_0F0F_0F0FL;
        values[3] = 0xF0F0_F0F0_F0F0_F0F0L;
        for (long v : values) {
            int expected = 0;
            for (int p = 0; p < 8; p++) expected |= (int) (v >>> 8 * p & 0xF) << 4 * p;
            assertEquals(expected, RowLanes.packNibbles(v), Long.toHexString(v));
            for (int bits = 1; bits <= 8; bits++) {
                long fields = 0;
                for (int p = 0; p < 8; p++) fields |= (v >>> 8 * p & (1L << bits) - 1) << bits * p;
                assertEquals(fields, RowLanes.packFields(v, bits), bits + " bits of " + Long.toHexString(v));
                assertEquals(fields, RowLanes.packFieldsByShifts(v, bits), bits + " bits of " + Long.toHexString(v));
            }
        }
    }

    @Test
    void f16ConversionIsExactForEveryHalf() {
        java.lang.foreign.MemorySegment all = java.lang.foreign.Arena.ofAuto().allocate(2 * 65536);
        for (int h = 0; h < 65536; h++) all.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * h, (short) h);
        float[] out = new float[65536];
        Tensor.of("all halves", GGMLType.F16, all, 65536, 1).dequantizeRow(0, out, 0);
        for (int h = 0; h < 65536; h++) {
            float expected = Float.float16ToFloat((short) h);
            if (((h >> 10) & 0x1F) == 0x1F) continue; // infinities and NaNs never occur in weights
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(out[h]), "half 0x" + Integer.toHexString(h));
        }
    }

    /**
     * The decode kernel's own conversion (two halves per int, {@link F16Tensor}'s {@code pairedDot}) gives every half
     * exactly: with x one column's unit vector, matrix x vector returns that column's weights. Rows that start on a
     * 64-byte boundary, 2 bytes past one (31 columns before the aligned chunks) and 32 past one (GGUF's alignment),
     * and rows that end in a partial chunk (1032 columns).
     */
    @ParameterizedTest
    @CsvSource({"0,1024", "2,1024", "32,1024", "0,1032", "2,1032", "32,1032"})
    void f16MatvecIsExactForEveryHalf(int offset, int cols) {
        int rows = (65536 + cols - 1) / cols;
        java.lang.foreign.MemorySegment all = java.lang.foreign.Arena.ofAuto().allocate(2L * rows * cols + 64, 64).asSlice(offset, 2L * rows * cols);
        for (int i = 0; i < rows * cols; i++) all.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, finiteHalf(i));
        Tensor t = Tensor.of("all-halves", GGMLType.F16, all, cols, rows);
        float[] x = new float[cols], out = new float[rows];
        for (int j = 0; j < cols; j++) {
            x[j] = 1;
            t.matvec(x, out);
            x[j] = 0;
            for (int r = 0; r < rows; r++) {
                assertEquals(Float.float16ToFloat(finiteHalf(r * cols + j)), out[r], 0f, "row " + r + " column " + j);
            }
        }
    }

    /** Half number i mod 2^16, or 0 where that is an infinity or a NaN (never in weights). */
    private static short finiteHalf(int i) {
        short h = (short) i;
        return ((h >> 10) & 0x1F) == 0x1F ? 0 : h;
    }
}
