package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.bench.ModelShape;
import gptfast4j.bench.RandomModel;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;
import gptfast4j.quant.Perplexity;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Families that are Llama's blocks with a few numbers changed: Granite 3.x ({@code granite}: the embeddings, the
 * attention scores, the residual branches and the logits each scaled; {@code granitemoe} its mixtures; MiniCPM's the same), SmolLM3 ({@code smollm3}: every fourth layer
 * without RoPE), Mistral Small 3.x ({@code mistral3}: none), OLMo2 ({@code olmo2}: its norms moved), OLMoE, Command-R and Cohere2
 * ({@code command-r}: LayerNorm, parallel blocks). Random-weight models written here (RandomModel's Llama shape of width 64, 4 heads sharing 2 kv
 * heads, 4 layers, its keys renamed) against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c
 * 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the files this test writes (every run writes the same bytes).
 */
class LlamaLikeTest {

    static final ModelShape SHAPE = new ModelShape("mini", 64, 160, 4, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);

    /** Writes a model of {@code arch} to {@code out}: a Llama file of {@link #SHAPE} at {@code scratch}, its keys renamed, {@code edit} changing them last. */
    static void write(String arch, Path scratch, Path out, Consumer<Map<String, Metadata.Value>> edit) {
        FamilyFiles.write(SHAPE, arch, scratch, out, edit, name -> true, (llama, tensors) -> { });
    }

    /** Writes the Refact mini model to {@code out}: Llama's blocks without RoPE's keys (ALiBi in its place). */
    static void writeRefact(Path scratch, Path out) {
        write("refact", scratch, out, md -> md.keySet().removeIf(k -> k.startsWith("refact.rope.")));
    }

    /** Writes the PLaMo mini model to {@code out}: Llama's blocks without FFN norms (the attention and the FFN in parallel on one norm). */
    static void writePlamo(Path scratch, Path out) {
        FamilyFiles.write(SHAPE, "plamo", scratch, out, md -> { }, name -> !name.endsWith("ffn_norm.weight"), (llama, tensors) -> { });
    }

    /**
     * Writes the BitNet mini model to {@code out}: Llama's blocks with RMS norms of the heads' outputs before wo and of
     * the feed-forward's activation before its down projection, its logits the embeddings', RoPE on halves, linear rope
     * scaling of 1 as its converter writes it.
     */
    static void writeBitnet(Path scratch, Path out) {
        FamilyFiles.write(SHAPE, "bitnet", scratch, out, md -> {
            md.put("bitnet.rope.scaling.type", Metadata.Value.string("linear"));
            md.put("bitnet.rope.scaling.factor", Metadata.Value.float32(1f));
        }, name -> !name.equals("output.weight"), (llama, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                FamilyFiles.norm(tensors, "blk." + l + ".attn_sub_norm.weight", SHAPE.dim(), 20 + l);
                FamilyFiles.norm(tensors, "blk." + l + ".ffn_sub_norm.weight", SHAPE.hiddenDim(), 30 + l);
            }
        });
    }

    /**
     * Writes the ChatGLM mini model to {@code out}: Llama's blocks with the query, key and value projections fused
     * (their bias too), the gate and up projections fused in ffn_up (gate first), RoPE on the first 8 of each head's 16
     * elements as adjacent pairs.
     */
    static void writeChatGlm(Path scratch, Path out) {
        FamilyFiles.write(SHAPE, "chatglm", scratch, out, md -> md.put("chatglm.rope.dimension_count", Metadata.Value.uint32(SHAPE.headDim() / 2)),
                name -> !name.matches("blk\\.\\d+\\.(attn_[qkv]|ffn_gate|ffn_up)\\.weight"), (llama, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.fused(tensors, p + "attn_qkv.weight", llama.get(p + "attn_q.weight"), llama.get(p + "attn_k.weight"), llama.get(p + "attn_v.weight"));
                FamilyFiles.bias(tensors, p + "attn_qkv.bias", new long[]{SHAPE.dim() + 2L * SHAPE.kvHeads() * SHAPE.headDim()}, 10 * l);
                FamilyFiles.fused(tensors, p + "ffn_up.weight", llama.get(p + "ffn_gate.weight"), llama.get(p + "ffn_up.weight"));
            }
        });
    }

    /**
     * Writes the Hunyuan mini model ({@code hunyuan-dense}) to {@code out}: Llama's blocks, RoPE on halves, each head's
     * query and key normalized (after RoPE, as its graph has it).
     */
    static void writeHunyuanDense(Path scratch, Path out) {
        writeNormedAfterRope("hunyuan-dense", scratch, out);
    }

    /** Writes a mini model of {@code arch} to {@code out}: Llama's blocks with each head's query and key norms. */
    static void writeNormedAfterRope(String arch, Path scratch, Path out) {
        FamilyFiles.write(SHAPE, arch, scratch, out, md -> { }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", SHAPE.headDim(), 40 + l);
                FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", SHAPE.headDim(), 50 + l);
            }
        });
    }

    /** Baichuan 13B's mini: 40 layers (llama.cpp's count for ALiBi), 4 heads of 16 each its own kv head. */
    static final ModelShape BAICHUAN_13B_SHAPE = new ModelShape("baichuan-13b-mini", 64, 160, 40, 4, 4, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);

    /** Writes the Baichuan 13B mini model ({@link #BAICHUAN_13B_SHAPE}) to {@code out}: Llama's blocks under its name. */
    static void writeBaichuan13b(Path scratch, Path out) {
        FamilyFiles.write(BAICHUAN_13B_SHAPE, "baichuan", scratch, out, md -> { }, name -> true, (llama, tensors) -> { });
    }

    /** {@code c}'s perplexity on ppl-text.txt in chunks of 128 positions, an F32 cache: llama-perplexity's {@code -c 128 -ctk f32 -ctv f32}. */
    static double perplexity(Checkpoint c) throws IOException {
        return Perplexity.compute(c, null, Files.readString(Shared.REFERENCE.resolve("ppl-text.txt")), 128, KvCache.Type.F32, chunk -> { }).ppl();
    }

    /** The first {@code n} tokens of ppl-text.txt in {@code c}'s vocabulary. */
    static int[] pplTokens(Checkpoint c, int n) throws IOException {
        return java.util.Arrays.copyOf(c.promptTokens(Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"))), n);
    }

    /**
     * Granite 3.x's multipliers (its 2B's embeddings x12, scores x1/64, residuals x0.22; the logits divided by 0.5
     * rather than its 8, which leaves a random model's distribution near uniform: so the figure moves by 9e-4 with the
     * residual scale 0.3, against 6e-5 at 8). Ours lies 1e-9 from llama.cpp's.
     */
    @Test
    void graniteGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("granite-mini.gguf");
        write("granite", dir.resolve("llama.gguf"), file, md -> graniteScales("granite", md));
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(0.22f, c.model().config.variant().residualScale());
        assertEquals(202444.6453, perplexity(c), 1e-6 * 202444.6453);
    }

    /**
     * MiniCPM ({@code minicpm}): Granite's blocks, its scales 12 (embeddings), 1.4 / sqrt(layers) (residuals) and 256 /
     * dim (the logits' divisor) where the file gives none, the scores Llama's: llama-perplexity's figures with the
     * defaults and with the keys given (6, 0.5, 0.25), ours 3e-9 and 5e-10 from them.
     */
    @Test
    void miniCpmGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path defaults = dir.resolve("minicpm.gguf"), keys = dir.resolve("minicpm-keys.gguf");
        write("minicpm", dir.resolve("llama.gguf"), defaults, md -> { });
        write("minicpm", dir.resolve("llama.gguf"), keys, md -> {
            md.put("minicpm.embedding_scale", Metadata.Value.float32(6f));
            md.put("minicpm.residual_scale", Metadata.Value.float32(0.5f));
            md.put("minicpm.logit_scale", Metadata.Value.float32(0.25f));
        });
        Checkpoint c = Checkpoint.load(defaults, null);
        assertEquals(0.7f, c.model().config.variant().residualScale());
        assertEquals(32492.2041, perplexity(c), 1e-6 * 32492.2041);
        assertEquals(39459194.0376, perplexity(Checkpoint.load(keys, null)), 1e-6 * 39459194.0376);
    }

    /** Granite 2B's multipliers under {@code arch}'s keys, the logits divided by 0.5 (above). */
    static void graniteScales(String arch, Map<String, Metadata.Value> md) {
        md.put(arch + ".embedding_scale", Metadata.Value.float32(12f));
        md.put(arch + ".attention.scale", Metadata.Value.float32(0.015625f));
        md.put(arch + ".residual_scale", Metadata.Value.float32(0.22f));
        md.put(arch + ".logit_scale", Metadata.Value.float32(0.5f));
    }

    /** A mixture of 4 experts, 2 used, 96 wide, in {@link #SHAPE}'s other dimensions. */
    static final ModelShape MOE = new ModelShape("moe-mini", 64, 96, 2, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 4, 2);

    /**
     * Granite 3.x's mixtures ({@code granitemoe}: 1B-A400M, 3B-A800M): Granite's multipliers, Mixtral's routing, the
     * mixture's output times the residual scale as the dense FFN's is. A random model of {@link #MOE} (a Mixtral file
     * renamed): llama-perplexity's figure, ours 1e-9 from it (205332.79 with the mixture's output unscaled). A file
     * whose {@code expert_shared_feed_forward_length} promises a shared expert it lacks is refused (SharedExpertTest
     * runs one).
     */
    @Test
    void graniteMoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("granitemoe-mini.gguf");
        writeGraniteMoe(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.isMoE());
        assertEquals(203246.5670, perplexity(c), 1e-6 * 203246.5670);
        Path shared = dir.resolve("granitemoe-shared.gguf");
        FamilyFiles.write(MOE, "granitemoe", dir.resolve("mixtral.gguf"), shared, md -> {
            graniteScales("granitemoe", md);
            md.put("granitemoe.expert_shared_feed_forward_length", Metadata.Value.uint32(64));
        }, name -> true, (llama, tensors) -> { });
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(shared, null));
        assertEquals(shared + ": missing tensor blk.0.ffn_gate_shexp.weight", e.getMessage());
    }

    /** Writes {@link #graniteMoeGivesLlamaCppsPerplexity}'s model to {@code out}, a Mixtral file of {@link #MOE} at {@code scratch}. */
    static void writeGraniteMoe(Path scratch, Path out) {
        FamilyFiles.write(MOE, "granitemoe", scratch, out, md -> graniteScales("granitemoe", md), name -> true, (llama, tensors) -> { });
    }

    /**
     * GLM-4 ({@code glm4}: GLM-4-9B/32B-0414, GLM-Z1): Gemma 2's norms before and after the attention and the FFN, biases
     * on the query, key and value projections, RoPE on half of each head's elements (8 of 16), its gate and up
     * projections in one tensor (the gate's rows first). llama-perplexity's figure, ours 2e-9 from it. A file with
     * next-token prediction layers is refused.
     */
    @Test
    void glm4GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("glm4-mini.gguf");
        writeGlm4(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(8, c.model().config.variant().rotaryDim());
        assertEquals(43441.8489, perplexity(c), 1e-6 * 43441.8489);
        Path nextn = dir.resolve("glm4-nextn.gguf");
        FamilyFiles.write(SHAPE, "glm4", dir.resolve("llama.gguf"), nextn, md -> md.put("glm4.nextn_predict_layers", Metadata.Value.uint32(1)),
                name -> true, (t, tensors) -> { });
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(nextn, null));
        assertEquals(nextn + ": a model with next-token prediction layers (glm4.nextn_predict_layers) is not supported", e.getMessage());
    }

    /** GLM-4's byte-level vocabulary starts a text without BOS, as llama.cpp's has none, whatever the file says; others as their files say. */
    @Test
    void glm4VocabulariesAddNoBos() {
        java.util.function.BiFunction<String, String, Metadata> md = (model, pre) -> new Metadata(Map.of("tokenizer.ggml.model", Metadata.Value.string(model),
                "tokenizer.ggml.pre", Metadata.Value.string(pre), "tokenizer.ggml.add_bos_token", Metadata.Value.bool(true)), "test");
        org.junit.jupiter.api.Assertions.assertFalse(Checkpoint.addsBos(md.apply("gpt2", "glm4")));
        org.junit.jupiter.api.Assertions.assertFalse(Checkpoint.addsBos(md.apply("gpt2", "chatglm-bpe")));
        assertTrue(Checkpoint.addsBos(md.apply("gpt2", "llama-bpe")));
        assertTrue(Checkpoint.addsBos(md.apply("llama", "glm4")));
    }

    /** Writes {@code in} again as {@code out} with M-RoPE's {@code sections} under {@code arch}: a vision-language model's text part. */
    static void withMropeSections(Path in, Path out, String arch, int... sections) {
        FamilyFiles.rewrite(in, out, md -> md.put(arch + ".rope.dimension_sections", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, sections)),
                name -> true, (t, tensors) -> { });
    }

    /**
     * GLM-4.1V's and GLM-4.5V's text parts: glm4's and glm4moe's blocks with M-RoPE ({@code rope.dimension_sections},
     * the first two not 0, as llama.cpp tells them apart), whose pairs llama.cpp turns as halves (GLM-4's plain RoPE
     * turns adjacent ones), a text token's by its position but the fourth section's (of [1, 1, 1, 1], the last of the 4
     * rotary pairs), which never turns. llama-perplexity's figures (the same command) on the files this test writes,
     * ours 2.5e-8 and 1e-8 from them; glm4's and GLM-4.5's without sections (43441.8489 above, 53137.8068: SharedExpertTest) differ.
     */
    @Test
    void glmVisionLanguageModelsTextGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path glm4 = dir.resolve("glm4.gguf"), glm4v = dir.resolve("glm4v-mini.gguf"), glm45 = dir.resolve("glm45.gguf"), glm45v = dir.resolve("glm45v-mini.gguf");
        writeGlm4(dir.resolve("llama.gguf"), glm4);
        withMropeSections(glm4, glm4v, "glm4", 1, 1, 1, 1);
        SharedExpertTest.writeGlm45(dir.resolve("mixtral.gguf"), glm45, false);
        withMropeSections(glm45, glm45v, "glm4moe", 1, 1, 1, 1);
        Map<Path, Double> llamaCpp = Map.of(glm4v, 44683.8453, glm45v, 53134.8113);
        for (Path file : List.of(glm4v, glm45v)) {
            Checkpoint c = Checkpoint.load(file, null);
            assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
            assertEquals(List.of(1f, 1f, 1f, Float.POSITIVE_INFINITY), java.util.stream.IntStream.range(0, 4).mapToObj(i -> c.model().config.ropeFreqFactors()[i]).toList());
            assertEquals(llamaCpp.get(file), perplexity(c), 1e-6 * llamaCpp.get(file), file.getFileName().toString());
        }
        Path plain = dir.resolve("glm4-no-mrope.gguf");
        withMropeSections(glm4, plain, "glm4", 0, 2, 2, 0); // the first 0: plain RoPE, as llama.cpp reads it
        assertEquals(43441.8489, perplexity(Checkpoint.load(plain, null)), 1e-6 * 43441.8489);
    }

    /** Writes {@link #glm4GivesLlamaCppsPerplexity}'s model to {@code out}, a Llama file of {@link #SHAPE} at {@code scratch}. */
    static void writeGlm4(Path scratch, Path out) {
        int qDim = SHAPE.heads() * SHAPE.headDim(), kvDim = SHAPE.kvHeads() * SHAPE.headDim();
        FamilyFiles.write(SHAPE, "glm4", scratch, out, md -> md.put("glm4.rope.dimension_count", Metadata.Value.uint32(SHAPE.headDim() / 2)),
                name -> !name.matches("blk\\.\\d+\\.(ffn_gate|ffn_up)\\.weight"), (t, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.fused(tensors, p + "ffn_up.weight", t.get(p + "ffn_gate.weight"), t.get(p + "ffn_up.weight"));
                FamilyFiles.norm(tensors, p + "post_attention_norm.weight", SHAPE.dim(), 4 * l);
                FamilyFiles.norm(tensors, p + "post_ffw_norm.weight", SHAPE.dim(), 4 * l + 1);
                FamilyFiles.qkvBiases(tensors, p, qDim, kvDim, 4 * l + 2);
            }
        });
    }

    /**
     * Seed-OSS ({@code seed_oss}: Seed-OSS-36B): Llama's blocks with RoPE on halves, query, key and value biases, the
     * FFN's norm under the name of a post-attention norm. llama-perplexity's figure, ours 1e-8 from it.
     */
    @Test
    void seedOssGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("seed-oss-mini.gguf");
        writeSeedOss(dir.resolve("llama.gguf"), file);
        assertEquals(48234.3984, perplexity(Checkpoint.load(file, null)), 1e-6 * 48234.3984);
    }

    /** Writes {@link #seedOssGivesLlamaCppsPerplexity}'s model to {@code out}, a Llama file of {@link #SHAPE} at {@code scratch}. */
    static void writeSeedOss(Path scratch, Path out) {
        int qDim = SHAPE.heads() * SHAPE.headDim(), kvDim = SHAPE.kvHeads() * SHAPE.headDim();
        FamilyFiles.write(SHAPE, "seed_oss", scratch, out, md -> { }, name -> !name.endsWith("ffn_norm.weight"), (t, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                String p = "blk." + l + ".";
                TensorData norm = t.get(p + "ffn_norm.weight");
                tensors.add(new GGUFWriter.TensorSpec(p + "post_attention_norm.weight", norm.type(), norm.shape(), target -> target.copyFrom(norm.data())));
                FamilyFiles.qkvBiases(tensors, p, qDim, kvDim, 3 * l);
            }
        });
    }

    /**
     * Arcee ({@code arcee}: AFM-4.5B): Llama's blocks whose feed-forwards have no gate, {@code w2 · max(w3 · x, 0)²}.
     * llama-perplexity's figure, ours 1e-8 from it.
     */
    @Test
    void arceeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("arcee-mini.gguf");
        writeArcee(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(null, ((FeedForward.Dense) c.model().weights().layers()[0].feedForward()).w1());
        assertEquals(56230.3834, perplexity(c), 1e-6 * 56230.3834);
    }

    /** Writes {@link #arceeGivesLlamaCppsPerplexity}'s model to {@code out}: {@link #SHAPE}'s Llama file without its gates. */
    static void writeArcee(Path scratch, Path out) {
        FamilyFiles.write(SHAPE, "arcee", scratch, out, md -> { }, name -> !name.endsWith("ffn_gate.weight"), (t, tensors) -> { });
    }

    /**
     * Apertus ({@code apertus}: Apertus-8B and -70B): Llama's blocks with Qwen3's per-head query and key norms before
     * RoPE on halves, an output bias on the attention, and feed-forwards without a gate whose activation is xIELU of
     * the up projection with each layer's parameters ({@code xielu.*}: an array per layer, or one value for all, as
     * llama.cpp reads them, softplus'd as ggml's {@code xielu}); the norms' biases, which llama.cpp reads and leaves
     * out, are read and left out. llama-perplexity's figure on the file this test writes, ours 9e-9 from it.
     */
    @Test
    void apertusGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("apertus-mini.gguf");
        writeApertus(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(null, ((FeedForward.Dense) c.model().weights().layers()[0].feedForward()).w1());
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertEquals(57303.1141, perplexity(c), 1e-6 * 57303.1141);
    }

    /** Writes {@link #apertusGivesLlamaCppsPerplexity}'s model to {@code out}: {@link #SHAPE}'s Llama file without gates, with norms and biases. */
    static void writeApertus(Path scratch, Path out) {
        float[] alphaN = {0.1f, -0.3f, 0.5f, 0f}, alphaP = {0.2f, 0.4f, -0.2f, 0.7f}, beta = {0.5f, 0.4f, 0.6f, 0.5f};
        FamilyFiles.write(SHAPE, "apertus", scratch, out, md -> {
            md.put("xielu.alpha_n", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT32, alphaN));
            md.put("xielu.alpha_p", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT32, alphaP));
            md.put("xielu.beta", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT32, beta));
            md.put("xielu.eps", Metadata.Value.float32(-1e-6f));
        }, name -> !name.endsWith("ffn_gate.weight"), (t, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.norm(tensors, p + "attn_q_norm.weight", SHAPE.headDim(), 5 * l);
                FamilyFiles.norm(tensors, p + "attn_k_norm.weight", SHAPE.headDim(), 5 * l + 1);
                FamilyFiles.bias(tensors, p + "attn_q_norm.bias", new long[]{SHAPE.headDim()}, 5 * l + 2);
                FamilyFiles.bias(tensors, p + "attn_k_norm.bias", new long[]{SHAPE.headDim()}, 5 * l + 3);
                FamilyFiles.bias(tensors, p + "attn_output.bias", new long[]{SHAPE.dim()}, 5 * l + 4);
            }
        });
    }

    /** SmolLM3's layers 3, 7, ... without RoPE: ours 4e-8 from llama.cpp's figure. */
    @Test
    void smolLm3GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("smollm3-mini.gguf");
        write("smollm3", dir.resolve("llama.gguf"), file, md -> { });
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.variant().ropes(2) && !c.model().config.variant().ropes(3));
        assertEquals(47418.8883, perplexity(c), 1e-6 * 47418.8883);
    }

    /**
     * Mistral Small 3.x's {@code mistral3}: Llama's blocks (llama.cpp's NORM RoPE, the converter's permuted rows), so the
     * same tensors give llama-perplexity's figure under that name (ours 4e-8 from it). Ministral 3's YaRN and
     * attention temperature: RopeScalingTest.
     */
    @Test
    void mistral3IsLlamasBlocks(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("mistral3-mini.gguf");
        write("mistral3", dir.resolve("llama.gguf"), file, md -> { });
        assertEquals(47615.3673, perplexity(Checkpoint.load(file, null)), 1e-6 * 47615.3673);
    }

    /**
     * XVERSE ({@code xverse}: Llama's blocks under its name), Refact ({@code refact}: Refact-1.6B, ALiBi with max bias 8
     * in place of RoPE), PLaMo ({@code plamo}: PLaMo-13B, the attention and the FFN in parallel on one RMS norm, RoPE
     * on halves) and Baichuan 13B ({@code baichuan} of 40 layers: ALiBi, as llama.cpp tells it from Baichuan-7B's 32
     * layers with RoPE): llama-perplexity's figures, ours within 3e-8 of them. A Baichuan file of another count of
     * layers, which llama.cpp runs with neither RoPE nor ALiBi, is refused in one line.
     */
    @Test
    void xverseRefactPlamoAndBaichuanGiveLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path xverse = dir.resolve("xverse-mini.gguf"), refact = dir.resolve("refact-mini.gguf"), plamo = dir.resolve("plamo-mini.gguf"),
                baichuan = dir.resolve("baichuan-13b-mini.gguf"), other = dir.resolve("baichuan-4-mini.gguf");
        write("xverse", dir.resolve("llama.gguf"), xverse, md -> { });
        writeRefact(dir.resolve("llama.gguf"), refact);
        writePlamo(dir.resolve("llama.gguf"), plamo);
        writeBaichuan13b(dir.resolve("baichuan-llama.gguf"), baichuan);
        write("baichuan", dir.resolve("llama.gguf"), other, md -> { });
        Checkpoint r = Checkpoint.load(refact, null), p = Checkpoint.load(plamo, null), b = Checkpoint.load(baichuan, null);
        assertEquals(List.of(8f, 8f), List.of(r.model().config.variant().alibiMaxBias(), b.model().config.variant().alibiMaxBias()));
        // a variant's ALiBi and clamp are part of what it is (configs compared across processes, info's blocks line)
        org.junit.jupiter.api.Assertions.assertNotEquals(Config.Variant.LLAMA.withoutRope(), r.model().config.variant());
        org.junit.jupiter.api.Assertions.assertNotEquals(r.model().config.variant(), r.model().config.variant().alibi(8f, 0.5f));
        assertTrue(p.model().config.variant().parallelBlocks() && !p.model().config.variant().layerNorm());
        assertEquals(Config.RopeStyle.HALVES, p.model().config.ropeStyle());
        assertEquals(47615.3673, perplexity(Checkpoint.load(xverse, null)), 1e-6 * 47615.3673);
        assertEquals(46936.7833, perplexity(r), 1e-6 * 46936.7833);
        assertEquals(46354.1373, perplexity(p), 1e-6 * 46354.1373);
        assertEquals(45502.9459, perplexity(b), 1e-6 * 45502.9459);
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(other, null));
        assertEquals(other + ": a baichuan model of 4 layers is not supported (32 layers: RoPE, 40: ALiBi)", e.getMessage());
    }

    /**
     * ChatGLM ({@code chatglm}: GLM-4-9B-Chat, GLM-4-9B, ChatGLM3's blocks): Llama's blocks with fused projections (the
     * query, key and value ones with a bias; gate and up in one ffn_up) and RoPE on the first half of each head as
     * adjacent pairs: llama-perplexity's figure, ours 1.4e-8 from it.
     */
    @Test
    void chatGlmGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("chatglm-mini.gguf");
        writeChatGlm(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(Config.RopeStyle.INTERLEAVED, c.model().config.ropeStyle());
        assertEquals(SHAPE.headDim() / 2, c.model().config.rotaryDim());
        assertEquals(SHAPE.dim(), c.model().weights().layers()[0].qBias().length);
        assertEquals(48921.1048, perplexity(c), 1e-6 * 48921.1048);
    }

    /**
     * Hunyuan's dense models ({@code hunyuan-dense}: Hunyuan-0.5B to 7B-Instruct): Qwen3's blocks with each head's query
     * and key normalized after RoPE: llama-perplexity's figure, ours 2e-8 from it (the norms before RoPE, as Qwen3's,
     * give 48260.59); Maincoder's ({@code maincoder}: Maincoder-1B) the same on adjacent pairs, its figure to 2e-8.
     */
    @Test
    void hunyuanDenseGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("hunyuan-dense-mini.gguf");
        writeHunyuanDense(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.variant().headNormsAfterRope());
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertEquals(48315.6803, perplexity(c), 1e-6 * 48315.6803);
        // Maincoder's the same norms after RoPE on adjacent pairs (its converter turns the rows as Llama's)
        Path maincoder = dir.resolve("maincoder-mini.gguf");
        writeNormedAfterRope("maincoder", dir.resolve("llama.gguf"), maincoder);
        Checkpoint m = Checkpoint.load(maincoder, null);
        assertEquals(Config.RopeStyle.INTERLEAVED, m.model().config.ropeStyle());
        assertEquals(48253.8980, perplexity(m), 1e-6 * 48253.8980);
    }

    /**
     * BitNet ({@code bitnet}: 1bitLLM's bitnet_b1_58, whose ternary weights TQ1_0 and TQ2_0 hold): llama-perplexity's
     * figure (large: its norms before wo and w2 give logits of a wide range), ours 3e-7 from it.
     */
    @Test
    void bitnetGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("bitnet-mini.gguf");
        writeBitnet(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Layer layer = c.model().weights().layers()[0];
        assertEquals(List.of(SHAPE.dim(), SHAPE.hiddenDim()), List.of(layer.attendedNorm().length, ((FeedForward.Dense) layer.feedForward()).hiddenNorm().length));
        assertTrue(c.model().weights().output() == c.model().weights().tokEmbeddings());
        assertEquals(3.018742272e14, perplexity(c), 1e-6 * 3.018742272e14);
    }

    /**
     * EXAONE 3.x ({@code exaone}: Llama's blocks, RoPE on halves, as its converter leaves the rows) and ERNIE 4.5's dense
     * models ({@code ernie4_5}, its 0.3B: Llama's blocks, adjacent pairs): the same tensors under each name give
     * llama-perplexity's figure for it (ours 2e-8 and 5e-8 from them). ERNIE 4.5's mixtures, which interleave dense
     * layers with sparse ones, are refused.
     */
    @Test
    void exaoneAndErnieAreLlamasBlocks(@TempDir Path dir) throws IOException {
        Path exaone = dir.resolve("exaone-mini.gguf"), ernie = dir.resolve("ernie-mini.gguf"), ernieMoe = dir.resolve("ernie-moe.gguf");
        write("exaone", dir.resolve("llama.gguf"), exaone, md -> { });
        write("ernie4_5", dir.resolve("llama.gguf"), ernie, md -> { });
        Checkpoint c = Checkpoint.load(exaone, null);
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertEquals(47360.1116, perplexity(c), 1e-6 * 47360.1116);
        assertEquals(47615.3673, perplexity(Checkpoint.load(ernie, null)), 1e-6 * 47615.3673);
        write("ernie4_5", dir.resolve("llama.gguf"), ernieMoe, md -> md.put("ernie4_5.expert_count", Metadata.Value.uint32(64)));
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(ernieMoe, null));
        assertEquals(ernieMoe + ": an ernie4_5 model with experts is not supported", e.getMessage());
    }

    /**
     * OLMo2 ({@code olmo2}): no norms before the attention and the FFN, Gemma's norms after them, all heads' queries
     * and keys normalized together, RoPE on halves. Written from the same model, its attn_norm and ffn_norm tensors
     * dropped and the norms added (weights 0.5 to 1.5): llama-perplexity's figure (ours 1e-8 from it); split across
     * processes, refused (a process holds only its own heads, and the norms want them all).
     */
    @Test
    void olmo2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("olmo2-mini.gguf");
        int qDim = SHAPE.heads() * SHAPE.headDim(), kvDim = SHAPE.kvHeads() * SHAPE.headDim();
        FamilyFiles.write(SHAPE, "olmo2", dir.resolve("llama.gguf"), file, md -> { },
                name -> !name.endsWith("attn_norm.weight") && !name.endsWith("ffn_norm.weight"), (llama, tensors) -> {
                    for (int l = 0; l < SHAPE.layers(); l++) {
                        String p = "blk." + l + ".";
                        FamilyFiles.norm(tensors, p + "attn_q_norm.weight", qDim, 4 * l);
                        FamilyFiles.norm(tensors, p + "attn_k_norm.weight", kvDim, 4 * l + 1);
                        FamilyFiles.norm(tensors, p + "post_attention_norm.weight", SHAPE.dim(), 4 * l + 2);
                        FamilyFiles.norm(tensors, p + "post_ffw_norm.weight", SHAPE.dim(), 4 * l + 3);
                    }
                });
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.variant().wholeQkNorms());
        assertEquals(48907.2619, perplexity(c), 1e-6 * 48907.2619);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> c.model().checkSplit(2));
    }

    /**
     * OLMoE ({@code olmoe}, OLMoE-1B-7B): Llama's norms before the attention and the FFN, OLMo2's queries and keys
     * normalized across all heads (llama.cpp's norms are {@code dim} wide: heads as many as kv heads), RoPE on halves,
     * and a mixture whose chosen experts weigh their probabilities as they are, not renormalized. A random model of 8
     * experts, 3 used (a Mixtral file renamed, norms of 0.5 to 1.5 added): llama-perplexity's figure, ours 1e-8 from it
     * (49258.73 renormalized).
     */
    @Test
    void olmoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        ModelShape shape = new ModelShape("olmoe-mini", 64, 96, 2, 4, 4, 32000, 256, 10000, 1e-5f, false, 0, 8, 3);
        Path file = dir.resolve("olmoe-mini.gguf");
        FamilyFiles.write(shape, "olmoe", dir.resolve("mixtral.gguf"), file, md -> { }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < shape.layers(); l++) {
                FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", shape.dim(), 2 * l);
                FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", shape.dim(), 2 * l + 1);
            }
        });
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.variant().wholeQkNorms() && c.model().weights().layers()[0].attentionNorm() != null);
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertEquals(48996.1100, perplexity(c), 1e-6 * 48996.1100);
    }

    /** {@link #minimaxM2GivesLlamaCppsPerplexity}'s model, a Mixtral file of its shape at {@code scratch}. */
    static void writeMinimaxM2(Path scratch, Path out) {
        ModelShape shape = MINIMAX;
        int qDim = shape.heads() * shape.headDim(), kvDim = shape.kvHeads() * shape.headDim();
        FamilyFiles.write(shape, "minimax-m2", scratch, out, md -> {
            md.put("minimax-m2.expert_gating_func", Metadata.Value.uint32(2));
            md.put("minimax-m2.expert_feed_forward_length", Metadata.Value.uint32(shape.hiddenDim()));
            md.put("minimax-m2.rope.dimension_count", Metadata.Value.uint32(shape.headDim() / 2));
        }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < shape.layers(); l++) {
                FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", qDim, 3 * l);
                FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", kvDim, 3 * l + 1);
                FamilyFiles.bias(tensors, "blk." + l + ".exp_probs_b.bias", new long[]{shape.experts()}, 3 * l + 2);
            }
        });
    }

    static final ModelShape MINIMAX = new ModelShape("minimax-mini", 64, 96, 2, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 8, 3);

    /**
     * MiniMax-M2 ({@code minimax-m2}: M2, M2.1, M2.5): OLMoE's queries and keys normalized across all heads (its norms
     * as wide as the queries and the keys: 2 kv heads of 4 here), RoPE on halves of half of each head, and a mixture
     * chosen by sigmoids with a selection bias ({@code exp_probs_b}), its weights renormalized; its vocabulary's split
     * o200k's ({@code minimax-m2}, llama.cpp's GPT-4o's). A random model of 8 experts, 3 used: llama-perplexity's
     * figure, ours 5e-10 from it; tensor parallelism refuses it (the norms span all heads).
     */
    @Test
    void minimaxM2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("minimax-m2-mini.gguf");
        writeMinimaxM2(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.variant().wholeQkNorms());
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertEquals(MINIMAX.headDim() / 2, c.model().config.variant().rotaryDim());
        assertEquals(49715.9548, perplexity(c), 1e-6 * 49715.9548);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> c.model().checkSplit(2));
    }

    /**
     * Command-R ({@code command-r}, its 35B's blocks): LayerNorm without bias, the attention and the FFN side by side on
     * one normalized input, both added to the residual, the logits times {@code logit_scale} (0.5 here: its 0.0625
     * flattens a random model's distribution), the output head the token embedding. Written from the same model, its
     * ffn_norm and output tensors dropped: llama-perplexity's figure (ours 3e-7 from it: LayerNorm's sums run in
     * another order).
     */
    @Test
    void commandRGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("command-r-mini.gguf");
        FamilyFiles.write(SHAPE, "command-r", dir.resolve("llama.gguf"), file, md -> {
            md.put("command-r.attention.layer_norm_epsilon", md.remove("command-r.attention.layer_norm_rms_epsilon"));
            md.put("command-r.logit_scale", Metadata.Value.float32(0.5f));
        }, name -> !name.endsWith("ffn_norm.weight") && !name.equals("output.weight"), (llama, tensors) -> { });
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.variant().parallelBlocks() && c.model().config.variant().layerNorm());
        assertEquals(404088265.5697, perplexity(c), 1e-6 * 404088265.5697);
    }

    /**
     * Cohere2 ({@code cohere2}, Command R7B): Command-R's blocks, three of every four layers sliding over a window (8
     * positions here) and rotated by the model's RoPE base (llama.cpp's graph leaves {@code rope.freq_base_swa}, 5000
     * here, unread: 189373657.83 if it were used), the fourth attending to everything without RoPE. Written as
     * Command-R's above: llama-perplexity's figure, ours 2e-7 from it (LayerNorm's sums). A pattern whose global layers
     * are not every fourth is refused.
     */
    @Test
    void cohere2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("cohere2-mini.gguf");
        Consumer<Map<String, Metadata.Value>> cohere2 = md -> {
            md.put("cohere2.attention.layer_norm_epsilon", md.remove("cohere2.attention.layer_norm_rms_epsilon"));
            md.put("cohere2.logit_scale", Metadata.Value.float32(0.5f));
            md.put("cohere2.attention.sliding_window", Metadata.Value.uint32(8));
            md.put("cohere2.rope.freq_base_swa", Metadata.Value.float32(5000f));
        };
        FamilyFiles.write(SHAPE, "cohere2", dir.resolve("llama.gguf"), file, cohere2,
                name -> !name.endsWith("ffn_norm.weight") && !name.equals("output.weight"), (llama, tensors) -> { });
        Config.Variant v = Checkpoint.load(file, null).model().config.variant();
        assertTrue(v.slides(2) && v.ropes(2) && !v.slides(3) && !v.ropes(3) && v.parallelBlocks());
        assertEquals(189967301.0848, perplexity(Checkpoint.load(file, null)), 1e-6 * 189967301.0848);
        Path everyThird = dir.resolve("cohere2-third.gguf");
        FamilyFiles.write(SHAPE, "cohere2", dir.resolve("llama.gguf"), everyThird, cohere2.andThen(md -> md.put("cohere2.attention.sliding_window_pattern", Metadata.Value.uint32(3))),
                name -> !name.endsWith("ffn_norm.weight") && !name.equals("output.weight"), (llama, tensors) -> { });
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(everyThird, null));
        assertTrue(e.getMessage().endsWith("a cohere2 sliding window pattern whose global layers are not every fourth is not supported"), e.getMessage());
    }

    /**
     * EXAONE 4.0 ({@code exaone4}): OLMo2's norms after the attention and the FFN only, Qwen3's per-head query and key
     * norms, RoPE on halves; with 64 layers (its 32B) three of every four sliding (8 positions here) and the fourth
     * without RoPE, as llama.cpp reads that size alone. Written from Llama files of 4 and 64 layers, their pre-norms
     * dropped and the norms added: llama-perplexity's figures, ours 2e-8 and 1e-7 from them (the 64 layers without the
     * window: 50118.37).
     */
    @Test
    void exaone4GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        ModelShape deep = new ModelShape("exaone4-64", 64, 160, 64, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);
        Map<ModelShape, Double> figures = Map.of(SHAPE, 49717.4751, deep, 48529.6817);
        for (ModelShape s : List.of(SHAPE, deep)) {
            Path file = dir.resolve("exaone4-" + s.layers() + ".gguf");
            FamilyFiles.write(s, "exaone4", dir.resolve("llama-" + s.layers() + ".gguf"), file, md -> {
                if (s.layers() == 64) md.put("exaone4.attention.sliding_window", Metadata.Value.uint32(8));
            }, name -> !name.endsWith("attn_norm.weight") && !name.endsWith("ffn_norm.weight"), (llama, tensors) -> {
                for (int l = 0; l < s.layers(); l++) {
                    String p = "blk." + l + ".";
                    FamilyFiles.norm(tensors, p + "attn_q_norm.weight", s.headDim(), 4 * l);
                    FamilyFiles.norm(tensors, p + "attn_k_norm.weight", s.headDim(), 4 * l + 1);
                    FamilyFiles.norm(tensors, p + "post_attention_norm.weight", s.dim(), 4 * l + 2);
                    FamilyFiles.norm(tensors, p + "post_ffw_norm.weight", s.dim(), 4 * l + 3);
                }
            });
            Checkpoint c = Checkpoint.load(file, null);
            assertEquals(s.layers() == 64, c.model().config.variant().slides(0) && !c.model().config.variant().ropes(3));
            assertEquals(figures.get(s), perplexity(c), 1e-6 * figures.get(s), s.name());
        }
    }
}
