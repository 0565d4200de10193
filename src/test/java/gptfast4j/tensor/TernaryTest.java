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
 * llama.cpp's ternary types ({@link TQ1_0Tensor}, {@link TQ2_0Tensor}) on a file llama.cpp made
 * (src/test/resources/ternary, README there): each tensor's dequantization bit for bit llama.cpp's own, the kernels
 * against it, and the model's perplexity llama-perplexity's on llama.cpp's F32 dequantization of the file.
 */
class TernaryTest {
    private static final Path DIR = Path.of("src/test/resources/ternary");
    private static final Path FILE = DIR.resolve("mini-llama2-tq.gguf");

    @Test
    void dequantizationIsGgmls() throws Exception {
        assertEquals(EnumSet.of(GGMLType.F32, GGMLType.TQ1_0, GGMLType.TQ2_0), BlockFormatsTest.dequantizationIsGgmls(FILE, DIR.resolve("dequantized.sha256")));
    }

    /** Dot products, matrix x vector and matrix x matrix (a few tokens and a prompt's tile) against the dequantized rows. */
    @Test
    void kernelsAgreeWithTheDequantization() {
        assertEquals(2 * 7 + 2, BlockFormatsTest.kernelsAgreeWithoutCopies(FILE, t -> t instanceof TQ1_0Tensor || t instanceof TQ2_0Tensor),
                "every matrix of the file, the token embedding and the output head");
    }

    /**
     * Quantizing (QuantizeTest makes this file again, bit for bit) rounds each weight over the block's largest
     * magnitude as C's {@code lroundf} does, halves away from zero: exact halves, which the fixture's random weights
     * do not have.
     */
    @Test
    void quantizingRoundsHalvesAwayFromZero() {
        float[] x = new float[256];
        x[0] = 2;
        x[1] = -1;
        x[2] = 1;
        x[3] = -0.99f;
        x[160] = -1;
        x[241] = 1;
        x[255] = -2;
        for (GGMLType type : new GGMLType[]{GGMLType.TQ1_0, GGMLType.TQ2_0}) {
            java.lang.foreign.MemorySegment block = java.lang.foreign.Arena.ofAuto().allocate(type.blockBytes);
            Quantizer.quantizeRow(type, x, 0, 256, null, block, 0);
            float[] back = new float[256];
            Tensor.of("t", type, block, 256, 1).dequantizeRow(0, back, 0);
            for (int i = 0; i < 256; i++) {
                float expected = switch (i) {
                    case 0, 2, 241 -> 2;
                    case 1, 160, 255 -> -2;
                    default -> 0;
                };
                assertEquals(expected, back[i], type + " weight " + i);
            }
        }
    }

    @Test
    void perplexityIsLlamaPerplexitys() throws IOException {
        BlockFormatsTest.perplexityIs(FILE, 19164.3430); // llama-perplexity on llama.cpp's F32 dequantization of the file (README there)
    }

    /** A model of these formats decodes with nothing to copy: {@code startDecoding} has no layout to make. */
    @Test
    void decodesFromTheFile() {
        Llama model = Checkpoint.load(FILE, null).model();
        assertFalse(model.startDecoding(), "no decode copies");
    }
}
