package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.bench.ModelShape;
import gptfast4j.io.Metadata;
import gptfast4j.quant.Perplexity;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Qwen3 (GGUF architecture {@code qwen3}): Llama's blocks with each head's query and key RMS-normalized before RoPE
 * ({@code attn_q_norm}, {@code attn_k_norm}) and RoPE on halves (llama.cpp's NEOX; the converter leaves Qwen's rows
 * unpermuted). A random-weight model written here (RandomModel's Llama shape of width 64, 4 heads of 16, its keys
 * renamed {@code qwen3.*}, norms of weights 0.5 to 1.5 added) gives llama.cpp's perplexity on ppl-text.txt: {@code
 * llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -ctk f32 -ctv f32 -fa off} (llama.cpp de3ff81; its CPU
 * flash attention, on by default, rounds to F16 inside: 47990.5817) on the file this test writes (every run writes the
 * same bytes); ours lay 2e-8 from it. Without the queries' norms the figure moves to 47785.33, with rope on adjacent
 * pairs to 47106.13.
 */
class QwenTest {

    static final ModelShape SHAPE = new ModelShape("qwen3-mini", 64, 160, 2, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0),
            MOE = new ModelShape("qwen3moe-mini", 64, 96, 2, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 4, 2);

    /** Writes the dense model to {@code out}, a Llama file of {@link #SHAPE} at {@code scratch} made first. */
    static void write(Path scratch, Path out) {
        write(SHAPE, "qwen3", scratch, out);
    }

    /**
     * Writes a Qwen model of {@code shape} to {@code out}: a Llama (or Mixtral) file made at {@code scratch}, its keys
     * renamed {@code arch.*}, per-head norms added (Qwen3's) or the projections' biases (qwen2); a mixture's experts'
     * width as {@code expert_feed_forward_length}, its {@code feed_forward_length} set to a width no tensor has.
     */
    static void write(ModelShape shape, String arch, Path scratch, Path out) {
        write(shape, arch, scratch, out, md -> { });
    }

    /** {@link #write(ModelShape, String, Path, Path)}, {@code edit} changing the keys last. */
    static void write(ModelShape shape, String arch, Path scratch, Path out, Consumer<Map<String, Metadata.Value>> edit) {
        FamilyFiles.write(shape, arch, scratch, out, md -> {
            if (shape.experts() > 0) {
                md.put(arch + ".expert_feed_forward_length", Metadata.Value.uint32(shape.hiddenDim()));
                md.put(arch + ".feed_forward_length", Metadata.Value.uint32(6 * shape.hiddenDim()));
            }
            edit.accept(md);
        }, name -> true, (llama, tensors) -> {
            int headDim = shape.headDim();
            for (int l = 0; l < shape.layers(); l++) {
                if (arch.equals("qwen2")) {
                    // the projections' biases, -0.5 to 0.5
                    for (String which : new String[]{"q", "k", "v"}) {
                        int n = (which.equals("q") ? shape.heads() : shape.kvHeads()) * headDim;
                        FamilyFiles.bias(tensors, "blk." + l + ".attn_" + which + ".bias", new long[]{n}, l * 3 + which.charAt(0));
                    }
                    continue;
                }
                FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", headDim, l * 2);
                FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", headDim, l * 2 + 1);
            }
        });
    }

    /** {@code c}'s perplexity on ppl-text.txt (chunks of 128, an F32 cache) within 1e-5 of llama-perplexity's figure. */
    private static void assertLlamaCppsPerplexity(Checkpoint c, double llamaCpp) throws IOException {
        Perplexity.Result r = Perplexity.compute(c, null, Files.readString(Shared.REFERENCE.resolve("ppl-text.txt")), 128, KvCache.Type.F32, chunk -> { });
        assertEquals(llamaCpp, r.ppl(), 1e-5 * llamaCpp);
    }

    @Test
    void qwen3GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("qwen3-mini.gguf");
        write(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals("qwen3", c.model().config.architecture());
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertNotNull(c.model().weights().layers()[1].kNorm());
        assertNull(Checkpoint.load(dir.resolve("llama.gguf"), null).model().weights().layers()[0].qNorm());
        assertLlamaCppsPerplexity(c, 47990.9633);
    }

    /**
     * Qwen2 (and Qwen2.5): Qwen3's RoPE on halves and pre-tokenizer, no norms, its query, key and value projections
     * with biases; written as above (biases of -0.5 to 0.5) it gives llama-perplexity's figure (the same command), ours
     * 6e-9 from it.
     */
    @Test
    void qwen2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("qwen2-mini.gguf");
        write(SHAPE, "qwen2", dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertNotNull(c.model().weights().layers()[0].vBias());
        assertNull(c.model().weights().layers()[0].qNorm());
        assertLlamaCppsPerplexity(c, 51070.7885);
    }

    /**
     * Qwen3's mixture of experts ({@code qwen3moe}, as Qwen3-30B-A3B): Qwen3's attention and Mixtral's routing (the
     * softmax of the top experts' scores), its experts {@code expert_feed_forward_length} wide. A random model of 4
     * experts, 2 used, written as above gives llama-perplexity's figure (the same command, -fa off), ours 4e-8 from it;
     * read with the dense width its {@code feed_forward_length} names, the experts' tensors would not fit.
     */
    @Test
    void qwen3MoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("qwen3moe-mini.gguf");
        write(MOE, "qwen3moe", dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(MOE.hiddenDim(), c.model().config.hiddenDim());
        assertEquals(4, c.model().config.expertCount());
        assertLlamaCppsPerplexity(c, 49126.0494);
    }
}
