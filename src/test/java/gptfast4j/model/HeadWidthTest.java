package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.bench.ModelShape;
import gptfast4j.bench.RandomModel;
import gptfast4j.io.GGUF;
import gptfast4j.quant.Perplexity;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Heads of a width of their own ({@link Config#headDim}: GGUF's {@code attention.key_length}, Hugging Face's
 * {@code head_dim}, as Mistral Nemo's 128 at a width of 5120 and 32 heads): random-weight models of width 64 and 4
 * heads of 24 (queries of 96, wider than the model) and of 8 (32, narrower), written by {@link RandomModel} with
 * their {@code key_length}, give llama.cpp's perplexity on ppl-text.txt. The references: {@code llama-perplexity -m
 * FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -ctk f32 -ctv f32} (llama.cpp de3ff81, as scripts/vs-llamacpp.sh builds it)
 * on the files this test writes (the weights come from the tensors' names, so every run writes the same bytes). The
 * same shape with heads of 64 / 4 = 16 lies 1.4e-5 from llama.cpp's (46972.44 against 46971.79), these 4e-5 and
 * 3.7e-5; the attention scaled by dim / heads rather than the heads' own width moves them by 0.2% (51433.66, 49464.59).
 * TensorParallelTest splits the wide model over processes.
 */
class HeadWidthTest {
    static final ModelShape WIDE_HEADS = new ModelShape("wide-heads", 64, 160, 2, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0, 24),
            NARROW_HEADS = new ModelShape("narrow-heads", 64, 160, 2, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0, 8);

    @ParameterizedTest
    @CsvSource({"24, 51325.5658", "8, 49359.4677"})
    void headsOfTheirOwnWidthGiveLlamaCppsPerplexity(int headDim, double llamaCpp, @TempDir Path dir) throws IOException {
        ModelShape shape = headDim == WIDE_HEADS.headDim() ? WIDE_HEADS : NARROW_HEADS;
        Path file = dir.resolve(shape.name() + ".gguf");
        RandomModel.write(shape, GGMLType.F32, file, Shared.TOKENIZERS, b -> { });
        assertEquals(headDim, GGUF.read(file).metadata().getInt("llama.attention.key_length", 0));
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(headDim, c.model().config.headDim());
        assertEquals(4 * headDim, c.model().config.qDim());
        Perplexity.Result r = Perplexity.compute(c, null, Files.readString(Shared.REFERENCE.resolve("ppl-text.txt")), 128, KvCache.Type.F32, chunk -> { });
        assertEquals(llamaCpp, r.ppl(), 1e-4 * llamaCpp, shape.name());
    }
}
