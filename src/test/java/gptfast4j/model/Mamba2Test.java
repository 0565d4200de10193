package gptfast4j.model;

import gptfast4j.bench.ModelShape;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mamba-2 alone ({@code mamba2}: Mamba-Codestral's kind): every block a norm and a Mamba-2 mixer ({@link Mamba2}) with
 * its residual, no attention and no feed-forward. A random-weight model written here (width 64, 4 blocks, the mixers
 * of {@link FamilyFiles#mamba2}: 8 heads of 16 in 2 groups, states of 16) against llama.cpp de3ff81's {@code
 * llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1} on the file this test writes.
 */
public class Mamba2Test {
    /** Writes the mini Mamba-2 model to {@code out} ({@code scratch} for the Llama file it is made from). */
    public static void write(Path scratch, Path out) {
        ModelShape shape = new ModelShape("mamba2-mini", 64, 160, 4, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);
        FamilyFiles.write(shape, "mamba2", scratch, out, md -> {
            // as the converter writes them: no heads, no feed-forward, a context of 2^20
            md.keySet().removeIf(k -> k.startsWith("mamba2.attention.head_count_kv") || k.startsWith("mamba2.rope."));
            md.put("mamba2.attention.head_count", gptfast4j.io.Metadata.Value.uint32(0));
            md.put("mamba2.feed_forward_length", gptfast4j.io.Metadata.Value.uint32(0));
            md.put("mamba2.context_length", gptfast4j.io.Metadata.Value.uint32(1 << 20));
            FamilyFiles.mamba2Metadata(md, "mamba2");
        }, name -> !name.startsWith("blk.") || name.contains("attn_norm"), (llama, tensors) -> {
            for (int l = 0; l < shape.layers(); l++) FamilyFiles.mamba2(tensors, l, shape.dim());
        });
    }

    @TempDir
    static Path dir;
    static Checkpoint mamba;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("llama.gguf"), dir.resolve("mamba2-mini.gguf"));
        mamba = Checkpoint.load(dir.resolve("mamba2-mini.gguf"), null);
    }

    /** llama-perplexity's figure (48313.4998); ours 2.5e-8 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        for (Layer layer : mamba.model().weights().layers()) assertTrue(layer.recurrent() instanceof Mamba2 && layer.feedForward() == null);
        assertEquals(48313.4998, LlamaLikeTest.perplexity(mamba), 1e-6 * 48313.4998);
    }

    /** A split across processes is refused in one line. */
    @Test
    void refusesASplit() {
        assertEquals("this model's Mamba-2 layers (mamba2) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(mamba.model().config, 2)).getMessage());
    }

    /** No layer attends: the KV cache takes no memory, whatever its type (the config's nominal head is one of 32, a block of each). */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "q8_0", "q4_0", "q8_0/f16"})
    void theKvCacheTakesNoMemory(String type) {
        assertEquals(0, mamba.model().newState(4096, 8, 8, KvCache.Type.parse(type)).kvBytes(), type);
    }
}
