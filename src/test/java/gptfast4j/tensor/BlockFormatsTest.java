package gptfast4j.tensor;

import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import gptfast4j.quant.Perplexity;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The formats read in their file's layout (Q2_K, Q3_K, Q5_0, Q5_1, IQ4_NL, IQ4_XS; {@link BlockTensor}), and in a
 * decode layout too (Q5_0 in Q8_0's, the others in their own), on a file llama.cpp made
 * (src/test/resources/block-formats, README there): each tensor's dequantization bit for bit llama.cpp's own, the
 * kernels against it, and the model's perplexity llama-perplexity's on llama.cpp's F32 dequantization of the file.
 */
class BlockFormatsTest {
    private static final Path DIR = Path.of("src/test/resources/block-formats");
    private static final Path FILE = DIR.resolve("mini-llama2-mixed.gguf");

    @Test
    void dequantizationIsGgmls() throws Exception {
        Set<GGMLType> seen = dequantizationIsGgmls(FILE, DIR.resolve("dequantized.sha256"));
        assertEquals(EnumSet.of(GGMLType.F32, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL, GGMLType.IQ4_XS), seen);
    }

    /** Each tensor of {@code file} dequantized, its F32 bytes' SHA-256 against llama.cpp's ({@code sha256s}); the types seen. */
    static Set<GGMLType> dequantizationIsGgmls(Path file, Path sha256s) throws Exception {
        Map<String, String> expected = new TreeMap<>();
        for (String line : Files.readAllLines(sha256s)) expected.put(line.split(" ")[0], line.split(" ")[1]);
        Set<GGMLType> seen = EnumSet.noneOf(GGMLType.class);
        Map<String, TensorData> tensors = GGUF.read(file).tensors();
        assertEquals(expected.keySet(), new TreeMap<>(tensors).keySet());
        for (TensorData td : tensors.values()) {
            Tensor t = Tensor.of(td);
            seen.add(t.type);
            float[] row = new float[t.cols];
            ByteBuffer bytes = ByteBuffer.allocate(4 * t.cols).order(ByteOrder.LITTLE_ENDIAN);
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (long r = 0; r < t.rows; r++) {
                t.dequantizeRow(r, row, 0);
                bytes.clear();
                bytes.asFloatBuffer().put(row);
                sha.update(bytes.array());
            }
            assertEquals(expected.get(td.name()), HexFormat.of().formatHex(sha.digest()), td.name() + " (" + t.type + ")");
        }
        return seen;
    }

    /** Dot products, matrix x vector and matrix x matrix (a few tokens and a prompt's tile) against the dequantized rows. */
    @Test
    void kernelsAgreeWithTheDequantization() {
        for (TensorData td : GGUF.read(FILE).tensors().values()) {
            Tensor t = Tensor.of(td);
            if (t instanceof BlockTensor) kernelsAgree(t, dequantized(t));
        }
    }

    /**
     * Q5_0 in Q8_0's decode layout, Q2_K, Q3_K, Q5_1, IQ4_NL and IQ4_XS in their own ({@link Q2_KLanes}, {@link
     * Q3_KLanes}, {@link Q5_1Lanes}, {@link IQ4Lanes}; IQ4_NL in Q8_0's at 128 bits): the same weights bit for bit, and
     * their kernels against them; a decode step of the model with its copies, the file layout's logits.
     */
    @Test
    void decodeCopiesHoldTheSameWeights() {
        int made = 0, kept = 0;
        for (TensorData td : GGUF.read(FILE).tensors().values()) {
            Tensor file = Tensor.of(td);
            if (file.type == GGMLType.F32) continue;
            Tensor decode = file.forDecode(OffHeap.AUTOMATIC);
            if (file.type == GGMLType.IQ4_XS && !IQ4Lanes.fits(file)) { // 128-bit vectors: too few lanes for its levels' table
                assertSame(file, decode);
                assertEquals(0, file.decodeCopyBytes());
                kept++;
                continue;
            }
            assertNotSame(file, decode);
            assertEquals(td.name(), decode.name);
            assertEquals(file.decodeCopyBytes(), decode.byteSize());
            float[][] w = dequantized(file), again = dequantized(decode);
            for (int r = 0; r < w.length; r++) assertArrayEquals(w[r], again[r], td.name() + " row " + r);
            kernelsAgree(decode, w);
            made++;
        }
        assertEquals(3 + 3 + 4 + 2 + 2 + 2, made + kept, "the tensors of every block format in the file");
        Llama fileLayout = Checkpoint.load(FILE, null).model(), copied = Checkpoint.load(FILE, null).model();
        assertTrue(copied.startDecoding(), "the decode copies made");
        Llama.State a = fileLayout.newState(16, 1), b = copied.newState(16, 1);
        for (int pos = 0, token = 1; pos < 6; pos++, token = 100 + 37 * pos) {
            float[] la = fileLayout.forward(a, token, pos), lb = copied.forward(b, token, pos);
            for (int i = 0; i < la.length; i++) assertEquals(la[i], lb[i], 1e-4f + 1e-5f * Math.abs(la[i]), "position " + pos + ", logit " + i);
        }
    }

    static float[][] dequantized(Tensor t) {
        float[][] w = new float[(int) t.rows][t.cols];
        for (int r = 0; r < w.length; r++) t.dequantizeRow(r, w[r], 0);
        return w;
    }

    /**
     * {@link #kernelsAgree} on every tensor of {@code file} that {@code formats} takes, each read from the file's layout
     * (no decode copy, none counted); how many there were.
     */
    static int kernelsAgreeWithoutCopies(Path file, Predicate<Tensor> formats) {
        int n = 0;
        for (TensorData td : GGUF.read(file).tensors().values()) {
            Tensor t = Tensor.of(td);
            if (!formats.test(t)) continue;
            kernelsAgree(t, dequantized(t));
            assertSame(t, t.forDecode(OffHeap.AUTOMATIC), "no decode copy");
            assertEquals(0, t.decodeCopyBytes());
            n++;
        }
        return n;
    }

    static void kernelsAgree(Tensor t, float[][] w) {
        Random random = new Random(7);
        int rows = (int) t.rows, cols = t.cols;
        for (int tokens : new int[]{1, 3, 8, 40}) {
            float[] x = new float[tokens * cols];
            for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
            float[] out = new float[tokens * rows], exact = new float[tokens * rows];
            t.matmul(x, tokens, out, rows, false);
            t.matmul(x, tokens, exact, rows, true);
            for (int k = 0; k < tokens; k++) {
                for (int r = 0; r < rows; r++) {
                    double expected = 0, magnitude = 0;
                    for (int i = 0; i < cols; i++) {
                        expected += (double) w[r][i] * x[k * cols + i];
                        magnitude += Math.abs((double) w[r][i] * x[k * cols + i]);
                    }
                    String where = t.name + " (" + t.type + (t instanceof Tensor.PanelRows p && p.inLanes() ? ", decode layout" : "") + ") token " + k + " of " + tokens + ", row " + r;
                    assertEquals(expected, out[k * rows + r], 1e-5 * magnitude + 1e-6, where);
                    assertEquals(expected, exact[k * rows + r], 1e-5 * magnitude + 1e-6, "exact (each token's dot product), " + where);
                    if (tokens == 1) assertEquals(expected, t.dot(r, x, 0), 1e-5 * magnitude + 1e-6, "dot, " + where);
                }
            }
        }
    }

    @Test
    void perplexityIsLlamaPerplexitys() throws IOException {
        perplexityIs(FILE, 12245.2310); // llama-perplexity on llama.cpp's F32 dequantization of the file (README there)
    }

    /** The perplexity of {@code file} on the reference text, chunks of 128 tokens, within 0.1% of {@code expected}. */
    static void perplexityIs(Path file, double expected) throws IOException {
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"));
        assertEquals(expected, Perplexity.compute(Checkpoint.load(file, null), null, text, 128, c -> { }).ppl(), expected * 0.001);
    }
}
