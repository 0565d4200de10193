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
     * Writes a vision-language model's text part to {@code out}: {@link #write}'s model of {@code base} (qwen2, qwen3,
     * qwen3moe) under the architecture {@code arch} (qwen2vl, qwen3vl, qwen3vlmoe), its M-RoPE's {@code sections}.
     */
    static void writeVl(ModelShape shape, String base, String arch, int[] sections, Path dir, Path out) {
        Path plain = dir.resolve(base + "-plain.gguf");
        write(shape, base, dir.resolve(base + "-llama.gguf"), plain);
        FamilyFiles.rewrite(plain, out, md -> {
            Map<String, Metadata.Value> renamed = new java.util.LinkedHashMap<>();
            md.forEach((k, v) -> renamed.put(k.startsWith(base + ".") ? arch + k.substring(base.length()) : k, v));
            renamed.put("general.architecture", Metadata.Value.string(arch));
            renamed.put(arch + ".rope.dimension_sections", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, sections));
            if (arch.startsWith("qwen3")) renamed.put(arch + ".n_deepstack_layers", Metadata.Value.uint32(1));
            md.clear();
            md.putAll(renamed);
        }, name -> true, (file, tensors) -> { });
    }

    /**
     * The text part of Qwen2-VL and Qwen2.5-VL ({@code qwen2vl}), Qwen3-VL ({@code qwen3vl}) and Qwen3-VL-MoE ({@code
     * qwen3vlmoe}): Qwen2's, Qwen3's and Qwen3-MoE's blocks whose M-RoPE turns a text token's pairs by its position,
     * but for those of the fourth section, which llama.cpp gives position 0 ({@code Checkpoint.textMrope}): sections
     * [2, 3, 2, 1] of the 8 pairs leave the last unturned, qwen3vl's interleaved [3, 1, 1, 0] the fifth (sector 4: past
     * three times the height's 1, not a width's or time's). llama-perplexity's figures (the same command) on the
     * files this test writes, ours 1.7e-8 (qwen3vl) and 6e-9 (qwen3vlmoe) from them, and 2.1e-6 (qwen2vl): llama.cpp's
     * qwen2vl run of those weights with sections that turn every pair ([2, 3, 3, 0]) gives 51070.8967 where its qwen2
     * run gives 51070.7885, which ours gives (7.9e-9 from it) in both (its GLM-4V's M-RoPE matches ours to 2.5e-8:
     * LlamaLikeTest). The plain models' figures (above) differ.
     */
    @Test
    void visionLanguageModelsTextGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Object[][] cases = {{SHAPE, "qwen2", "qwen2vl", new int[]{2, 3, 2, 1}, 7, 51068.9151}, {SHAPE, "qwen3", "qwen3vl", new int[]{3, 1, 1, 0}, 4, 48130.4864},
                {MOE, "qwen3moe", "qwen3vlmoe", new int[]{3, 1, 1, 0}, 4, 49627.1854}};
        for (Object[] k : cases) {
            String arch = (String) k[2];
            Path file = dir.resolve(arch + "-mini.gguf");
            writeVl((ModelShape) k[0], (String) k[1], arch, (int[]) k[3], dir, file);
            Checkpoint c = Checkpoint.load(file, null);
            float[] factors = c.model().config.ropeFreqFactors();
            for (int i = 0; i < factors.length; i++) assertEquals(i == (int) k[4] ? Float.POSITIVE_INFINITY : 1f, factors[i], arch + " pair " + i);
            assertLlamaCppsPerplexity(c, (double) k[5]);
        }
        Path biased = dir.resolve("output-bias.gguf");
        FamilyFiles.rewrite(dir.resolve("qwen2vl-mini.gguf"), biased, md -> { }, name -> true,
                (file, tensors) -> FamilyFiles.bias(tensors, "output.bias", new long[]{SHAPE.vocab()}, 1));
        gptfast4j.io.ModelFormatException bias = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(biased, null));
        assertEquals(biased + ": a bias on the logits (output.bias) is not supported", bias.getMessage());
        Path none = dir.resolve("no-sections.gguf");
        writeVl(SHAPE, "qwen3", "qwen3vl", new int[]{0, 0, 0, 0}, dir, none);
        gptfast4j.io.ModelFormatException e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(none, null));
        assertEquals(none + ": qwen3vl.rope.dimension_sections must be 4 sizes of sections of the 8 rotary pairs; got [0, 0, 0, 0]", e.getMessage());
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
