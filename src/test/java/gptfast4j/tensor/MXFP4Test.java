package gptfast4j.tensor;

import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.EnumSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * MXFP4 ({@link MXFP4Tensor}) on a file llama.cpp made (src/test/resources/mxfp4, README there: the mini Mixtral with
 * every matrix MXFP4, its experts as llama-quantize's MXFP4_MOE writes them): each tensor's dequantization bit for
 * bit llama.cpp's own, the kernels against it, and the model's perplexity llama-perplexity's on llama.cpp's F32
 * dequantization of the file.
 */
class MXFP4Test {
    private static final Path DIR = Path.of("src/test/resources/mxfp4");
    private static final Path FILE = DIR.resolve("mini-mixtral-mxfp4.gguf");

    @Test
    void dequantizationIsGgmls() throws Exception {
        assertEquals(EnumSet.of(GGMLType.F32, GGMLType.MXFP4), BlockFormatsTest.dequantizationIsGgmls(FILE, DIR.resolve("dequantized.sha256")));
    }

    /** Dot products, matrix x vector and matrix x matrix (a few tokens and a prompt's tile) against the dequantized rows, in the file's layout. */
    @Test
    void kernelsAgreeWithTheDequantization() {
        int n = 0;
        for (TensorData td : GGUF.read(FILE).tensors().values()) {
            Tensor t = Tensor.of(td);
            if (!(t instanceof MXFP4Tensor)) continue;
            BlockFormatsTest.kernelsAgree(t, BlockFormatsTest.dequantized(t));
            n++;
        }
        assertEquals(2 * 7 + 2, n, "every matrix of the file (four of attention and three of experts a layer), the token embedding and the output head");
    }

    /**
     * The decode copies ({@link IQ4Lanes}' layout; none at 128 bits, too few lanes for its levels' table, nor under
     * AVX2, {@link IQ4Lanes#preferred}): the same
     * weights bit for bit, and their kernels against them; decode steps of the model with its copies, the file
     * layout's logits.
     */
    @Test
    void decodeCopiesHoldTheSameWeights() {
        for (TensorData td : GGUF.read(FILE).tensors().values()) {
            Tensor file = Tensor.of(td);
            if (!(file instanceof MXFP4Tensor)) continue;
            Tensor decode = file.forDecode(OffHeap.AUTOMATIC);
            if (!IQ4Lanes.preferred(file)) {
                assertSame(file, decode);
                assertEquals(0, file.decodeCopyBytes());
                continue;
            }
            assertNotSame(file, decode);
            assertEquals(file.decodeCopyBytes(), decode.byteSize());
            float[][] w = BlockFormatsTest.dequantized(file), again = BlockFormatsTest.dequantized(decode);
            for (int r = 0; r < w.length; r++) assertArrayEquals(w[r], again[r], td.name() + " row " + r);
            BlockFormatsTest.kernelsAgree(decode, w);
        }
        Llama fileLayout = Checkpoint.load(FILE, null).model(), copied = Checkpoint.load(FILE, null).model();
        assertEquals(IQ4Lanes.preferred(Tensor.of(GGUF.read(FILE).tensors().get("output.weight"))), copied.startDecoding(), "copies made where the layout fits");
        Llama.State a = fileLayout.newState(16, 1), b = copied.newState(16, 1);
        for (int pos = 0, token = 1; pos < 6; pos++, token = 100 + 37 * pos) {
            float[] la = fileLayout.forward(a, token, pos), lb = copied.forward(b, token, pos);
            for (int i = 0; i < la.length; i++) assertEquals(la[i], lb[i], 1e-4f + 1e-5f * Math.abs(la[i]), "position " + pos + ", logit " + i);
        }
    }

    /**
     * llama-perplexity's figure on llama.cpp's F32 dequantization of the file (README there), within 0.5%: ours is
     * 0.27% above it, from one near-tie of two experts' router scores that the engines' last bits settle differently
     * (against llama.cpp's saved log-probabilities of that F32 file: the same top token at 99.7% of the positions, mean
     * KL divergence 0.0011 of which one position 0.72; the F32 mini Mixtral itself is 0.03% apart, KL 0.000015). A
     * wrong level or scale moves it by far more (the file's own figure with llama.cpp's Q8_0 activations is 0.4% off).
     */
    @Test
    void perplexityIsLlamaPerplexitys() throws IOException {
        String text = java.nio.file.Files.readString(gptfast4j.Shared.REFERENCE.resolve("ppl-text.txt"));
        assertEquals(10666.5148, gptfast4j.quant.Perplexity.compute(Checkpoint.load(FILE, null), null, text, 128, c -> { }).ppl(), 10666.5148 * 0.005);
    }

    /** The E8M0 scale as ggml's GGML_E8M0_TO_FP32_HALF: 2^(e - 128), subnormal for e 0 and 1, up to 2^127. */
    @Test
    void scalesAreHalfTheExponents() {
        assertEquals(0x1p-128f, MXFP4Tensor.scale((byte) 0));
        assertEquals(0x1p-127f, MXFP4Tensor.scale((byte) 1));
        assertEquals(0x1p-126f, MXFP4Tensor.scale((byte) 2));
        assertEquals(0.5f, MXFP4Tensor.scale((byte) 127));
        assertEquals(1f, MXFP4Tensor.scale((byte) 128));
        assertEquals(0x1p127f, MXFP4Tensor.scale((byte) 255));
    }
}
