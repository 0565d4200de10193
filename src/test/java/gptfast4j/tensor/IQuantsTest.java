package gptfast4j.tensor;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.EnumSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The grid i-quants ({@link GridTensor}: IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) on a file llama.cpp made
 * (src/test/resources/i-quants, README there): each tensor's dequantization bit for bit llama.cpp's own, the kernels
 * against it, and the model's perplexity llama-perplexity's on llama.cpp's F32 dequantization of the file.
 */
class IQuantsTest {
    private static final Path DIR = Path.of("src/test/resources/i-quants");
    private static final Path FILE = DIR.resolve("mini-llama2-iq.gguf");

    @Test
    void dequantizationIsGgmls() throws Exception {
        assertEquals(EnumSet.of(GGMLType.F32, GGMLType.IQ1_S, GGMLType.IQ1_M, GGMLType.IQ2_XXS, GGMLType.IQ2_XS, GGMLType.IQ2_S, GGMLType.IQ3_XXS, GGMLType.IQ3_S),
                BlockFormatsTest.dequantizationIsGgmls(FILE, DIR.resolve("dequantized.sha256")));
    }

    /** Dot products, matrix x vector and matrix x matrix (a few tokens and a prompt's tile) against the dequantized rows. */
    @Test
    void kernelsAgreeWithTheDequantization() {
        assertEquals(2 * 7 + 2, BlockFormatsTest.kernelsAgreeWithoutCopies(FILE, t -> t instanceof GridTensor), "every matrix of the file, the token embedding and the output head");
    }

    @Test
    void perplexityIsLlamaPerplexitys() throws IOException {
        BlockFormatsTest.perplexityIs(FILE, 14319.0108); // llama-perplexity on llama.cpp's F32 dequantization of the file (README there)
    }

    /** A model of these formats decodes with nothing to copy: {@code startDecoding} has no layout to make. */
    @Test
    void decodesFromTheFile() {
        Llama model = Checkpoint.load(FILE, null).model();
        assertFalse(model.startDecoding(), "no decode copies");
    }
}
