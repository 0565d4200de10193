package gptfast4j.model;

import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static gptfast4j.model.LlamaLikeTest.MOE;
import static gptfast4j.model.LlamaLikeTest.perplexity;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mixtures with a shared expert, one every token runs beside the ones it chooses: Qwen2-MoE ({@code qwen2moe}, its
 * output gated by a sigmoid), ERNIE 4.5's ({@code ernie4_5-moe}: a dense first layer, experts chosen with a bias),
 * Granite's ({@code granitemoe} with {@code expert_shared_feed_forward_length}), DeepSeek-MoE's ({@code deepseek}),
 * dots.llm1's ({@code dots1}) and Ling's ({@code bailingmoe}). Random models of {@link
 * LlamaLikeTest#MOE} (a Mixtral file renamed, its shared experts 80 wide against its experts' 96) against llama.cpp
 * de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the
 * files this test writes.
 */
public class SharedExpertTest {
    private static final int SHARED_WIDTH = 80, DENSE_WIDTH = 112;

    /** Layer l's shared expert, {@link #SHARED_WIDTH} wide. */
    private static void sharedExpert(java.util.List<gptfast4j.io.GGUFWriter.TensorSpec> tensors, int l) {
        sharedExpert(tensors, l, SHARED_WIDTH);
    }

    private static void sharedExpert(java.util.List<gptfast4j.io.GGUFWriter.TensorSpec> tensors, int l, int width) {
        String p = "blk." + l + ".";
        int dim = MOE.dim();
        FamilyFiles.matrix(tensors, p + "ffn_gate_shexp.weight", new long[]{dim, width}, 100 * l + 1);
        FamilyFiles.matrix(tensors, p + "ffn_up_shexp.weight", new long[]{dim, width}, 100 * l + 2);
        FamilyFiles.matrix(tensors, p + "ffn_down_shexp.weight", new long[]{width, dim}, 100 * l + 3);
    }

    /**
     * A model of {@code arch} whose first layer is dense ({@link #DENSE_WIDTH} wide, {@code leading_dense_block_count}
     * 1) and whose others are mixtures with a shared expert {@code sharedWidth} wide, where {@code selectionBias} with
     * ERNIE's and DeepSeek V3's bias on the choice, where {@code headNorms} with each head's query and key norms;
     * {@code edit} adds the family's keys.
     */
    static void writeDenseFirst(String arch, Path scratch, Path out, int sharedWidth, boolean selectionBias, boolean headNorms,
                                        java.util.function.Consumer<java.util.Map<String, Metadata.Value>> edit) {
        writeDenseFirst(MOE, arch, scratch, out, sharedWidth, selectionBias, headNorms, false, edit);
    }

    /** {@link #writeDenseFirst(String, Path, Path, int, boolean, boolean, java.util.function.Consumer)} of {@code shape} (MOE's but for its heads). */
    private static void writeDenseFirst(gptfast4j.bench.ModelShape shape, String arch, Path scratch, Path out, int sharedWidth, boolean selectionBias,
                                        boolean headNorms, boolean postAttentionNorm, java.util.function.Consumer<java.util.Map<String, Metadata.Value>> edit) {
        FamilyFiles.write(shape, arch, scratch, out, md -> {
            md.put(arch + ".feed_forward_length", Metadata.Value.uint32(DENSE_WIDTH));
            md.put(arch + ".expert_feed_forward_length", Metadata.Value.uint32(MOE.hiddenDim()));
            md.put(arch + ".leading_dense_block_count", Metadata.Value.uint32(1));
            edit.accept(md);
        }, name -> (!name.startsWith("blk.0.ffn_") || name.equals("blk.0.ffn_norm.weight")) && !(postAttentionNorm && name.endsWith("ffn_norm.weight")),
                (llama, tensors) -> {
            int dim = MOE.dim();
            for (int l = 0; l < MOE.layers() && postAttentionNorm; l++) {
                TensorData norm = llama.get("blk." + l + ".ffn_norm.weight");
                tensors.add(new gptfast4j.io.GGUFWriter.TensorSpec("blk." + l + ".post_attention_norm.weight", norm.type(), norm.shape(), target -> target.copyFrom(norm.data())));
            }
            FamilyFiles.matrix(tensors, "blk.0.ffn_gate.weight", new long[]{dim, DENSE_WIDTH}, 7);
            FamilyFiles.matrix(tensors, "blk.0.ffn_up.weight", new long[]{dim, DENSE_WIDTH}, 8);
            FamilyFiles.matrix(tensors, "blk.0.ffn_down.weight", new long[]{DENSE_WIDTH, dim}, 9);
            for (int l = 0; l < MOE.layers() && headNorms; l++) {
                FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", MOE.headDim(), 2 * l);
                FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", MOE.headDim(), 2 * l + 1);
            }
            for (int l = 1; l < MOE.layers(); l++) {
                if (selectionBias) FamilyFiles.bias(tensors, "blk." + l + ".exp_probs_b.bias", new long[]{MOE.experts()}, l);
                sharedExpert(tensors, l, sharedWidth);
            }
        });
    }

    /** Qwen1.5-MoE's and Qwen2-57B-A14B's blocks: Qwen2's query, key and value biases, a gated shared expert. */
    public static void writeQwen2Moe(Path scratch, Path out) {
        writeQwen2Moe(scratch, out, true);
    }

    /** {@link #writeQwen2Moe(Path, Path)}, its shared experts' gates left out unless {@code gated}. */
    private static void writeQwen2Moe(Path scratch, Path out, boolean gated) {
        int qDim = MOE.heads() * MOE.headDim(), kvDim = MOE.kvHeads() * MOE.headDim();
        FamilyFiles.write(MOE, "qwen2moe", scratch, out, md -> {
            md.put("qwen2moe.expert_feed_forward_length", Metadata.Value.uint32(MOE.hiddenDim()));
            md.put("qwen2moe.expert_shared_feed_forward_length", Metadata.Value.uint32(SHARED_WIDTH));
        }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < MOE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.qkvBiases(tensors, p, qDim, kvDim, 10 * l);
                if (gated) FamilyFiles.bias(tensors, p + "ffn_gate_inp_shexp.weight", new long[]{MOE.dim()}, 10 * l + 3);
                sharedExpert(tensors, l);
            }
        });
    }

    /**
     * llama-perplexity's figure, ours 2e-8 from it. The chosen experts' probabilities are not renormalized (57113.72
     * with them renormalized), the shared expert's output times sigmoid(gate · x) (56286.26 without the gate; a file
     * without it is refused, as llama.cpp refuses it).
     */
    @Test
    void qwen2MoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("qwen2moe-mini.gguf");
        writeQwen2Moe(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        FeedForward.MoE moe = (FeedForward.MoE) c.model().weights().layers()[0].feedForward();
        assertEquals(SHARED_WIDTH, moe.shared().ffn().width());
        assertNotNull(moe.shared().gate());
        assertEquals(56210.3905, perplexity(c), 1e-6 * 56210.3905);
        Path ungated = dir.resolve("qwen2moe-ungated.gguf");
        writeQwen2Moe(dir.resolve("mixtral.gguf"), ungated, false);
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(ungated, null));
        assertEquals(ungated + ": missing tensor blk.0.ffn_gate_inp_shexp.weight", e.getMessage());
    }

    /**
     * ERNIE 4.5 21B-A3B's blocks: its first layer dense ({@code leading_dense_block_count}, {@link #DENSE_WIDTH} wide),
     * the others a mixture whose experts are chosen by their probabilities plus a bias ({@code exp_probs_b}) and
     * weighed by their probabilities renormalized, and a shared expert without a gate.
     */
    public static void writeErnieMoe(Path scratch, Path out) {
        writeDenseFirst("ernie4_5-moe", scratch, out, SHARED_WIDTH, true, false, md -> {
            md.put("ernie4_5-moe.expert_shared_feed_forward_length", Metadata.Value.uint32(SHARED_WIDTH));
            md.put("ernie4_5-moe.interleave_moe_layer_step", Metadata.Value.uint32(1));
        });
    }

    /** llama-perplexity's figure, ours 2e-8 from it (49943.29 without the selection bias, 49519.78 without the shared expert). */
    @Test
    void ernieMoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("ernie-moe-mini.gguf");
        writeErnieMoe(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Layer[] layers = c.model().weights().layers();
        assertEquals(DENSE_WIDTH, ((FeedForward.Dense) layers[0].feedForward()).width());
        FeedForward.MoE moe = (FeedForward.MoE) layers[1].feedForward();
        assertNotNull(moe.selectionBias());
        assertNull(moe.shared().gate());
        assertEquals(49392.3529, perplexity(c), 1e-6 * 49392.3529);
    }

    /** Granite's shared expert: its output added to the chosen experts', both times the residual scale. */
    static void writeGraniteMoeShared(Path scratch, Path out) {
        FamilyFiles.write(MOE, "granitemoe", scratch, out, md -> {
            LlamaLikeTest.graniteScales("granitemoe", md);
            md.put("granitemoe.expert_shared_feed_forward_length", Metadata.Value.uint32(SHARED_WIDTH));
        }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < MOE.layers(); l++) sharedExpert(tensors, l);
        });
    }

    /** llama-perplexity's figure, ours 1e-8 from it (203539.54 with the shared expert's output unscaled). */
    @Test
    void graniteMoeSharedGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("granitemoe-shared.gguf");
        writeGraniteMoeShared(dir.resolve("mixtral.gguf"), file);
        assertEquals(203311.1095, perplexity(Checkpoint.load(file, null)), 1e-6 * 203311.1095);
    }

    /**
     * DeepSeek-MoE 16B's blocks ({@code deepseek}): Llama's attention, a dense first layer, then mixtures whose chosen
     * experts weigh their probabilities as they are, times {@code expert_weights_scale} (1.5 here), beside a shared
     * expert as wide as {@code expert_shared_count} experts (2). llama-perplexity's figure, ours 2e-8 from it (49751.01
     * with the weights unscaled).
     */
    @Test
    void deepSeekMoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("deepseek-mini.gguf");
        writeDenseFirst("deepseek", dir.resolve("mixtral.gguf"), file, 2 * MOE.hiddenDim(), false, false, md -> {
            md.put("deepseek.expert_shared_count", Metadata.Value.uint32(2));
            md.put("deepseek.expert_weights_scale", Metadata.Value.float32(1.5f));
        });
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(1.5f, ((FeedForward.MoE) c.model().weights().layers()[1].feedForward()).scale());
        assertEquals(50448.6824, perplexity(c), 1e-6 * 50448.6824);
    }

    /**
     * dots.llm1's blocks ({@code dots1}): Qwen3's attention (each head's query and key normalized, RoPE on halves), a
     * dense first layer, then mixtures gated as the file says ({@code expert_gating_func} 2: each expert's sigmoid,
     * chosen with a bias; {@code expert_weights_norm}: renormalized; times {@code expert_weights_scale}, 2.5 here)
     * beside a shared expert. llama-perplexity's figures, ours 6e-9 from them, with the sigmoid and with a softmax
     * ({@code expert_gating_func} 1); another function is refused.
     */
    @Test
    void dots1GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("dots1-mini.gguf");
        writeDots1(dir.resolve("mixtral.gguf"), file, 2);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(FeedForward.Routing.SIGMOID_RENORMALIZED, ((FeedForward.MoE) c.model().weights().layers()[1].feedForward()).routing());
        assertEquals(47868.4604, perplexity(c), 1e-6 * 47868.4604);
        Path softmax = dir.resolve("dots1-softmax.gguf");
        writeDots1(dir.resolve("mixtral.gguf"), softmax, 1);
        assertEquals(48620.4586, perplexity(Checkpoint.load(softmax, null)), 1e-6 * 48620.4586);
        Path other = dir.resolve("dots1-other.gguf");
        writeDots1(dir.resolve("mixtral.gguf"), other, 4);
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(other, null));
        assertEquals(other + ": dots1.expert_gating_func 4 is not supported (1: softmax, 2: sigmoid)", e.getMessage());
    }

    /** {@link #dots1GivesLlamaCppsPerplexity}'s model, its gating function {@code gating}: {@link #MOE}'s, each head its own kv head (as dots1's loader has them). */
    static void writeDots1(Path scratch, Path out, int gating) {
        gptfast4j.bench.ModelShape heads = new gptfast4j.bench.ModelShape("moe-mini-mha", 64, 96, 2, 4, 4, 32000, 256, 10000, 1e-5f, false, 0, 4, 2);
        writeDenseFirst(heads, "dots1", scratch, out, 2 * MOE.hiddenDim(), true, true, false, md -> {
            md.put("dots1.expert_shared_count", Metadata.Value.uint32(2));
            md.put("dots1.expert_gating_func", Metadata.Value.uint32(gating));
            md.put("dots1.expert_weights_norm", Metadata.Value.bool(true));
            md.put("dots1.expert_weights_scale", Metadata.Value.float32(2.5f));
        });
    }

    /**
     * Ling's blocks ({@code bailingmoe}: Ling-lite, Ling-Coder-lite): Llama's attention, every layer a mixture whose
     * chosen experts' probabilities are renormalized where {@code expert_weights_norm} says, times {@code
     * expert_weights_scale} (1.5 here), beside a shared expert one expert wide. llama-perplexity's figure, ours 2e-8
     * from it (51083.75, llama.cpp's too, with {@code expert_weights_norm} false).
     */
    @Test
    void lingGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("ling-mini.gguf");
        writeLing(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(FeedForward.Routing.SOFTMAX_RENORMALIZED, ((FeedForward.MoE) c.model().weights().layers()[0].feedForward()).routing());
        assertEquals(51423.0854, perplexity(c), 1e-6 * 51423.0854);
    }

    /** {@link #lingGivesLlamaCppsPerplexity}'s model. */
    static void writeLing(Path scratch, Path out) {
        FamilyFiles.write(MOE, "bailingmoe", scratch, out, md -> {
            md.put("bailingmoe.expert_feed_forward_length", Metadata.Value.uint32(MOE.hiddenDim()));
            md.put("bailingmoe.expert_shared_count", Metadata.Value.uint32(1));
            md.put("bailingmoe.expert_weights_norm", Metadata.Value.bool(true));
            md.put("bailingmoe.expert_weights_scale", Metadata.Value.float32(1.5f));
        }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < MOE.layers(); l++) sharedExpert(tensors, l, MOE.hiddenDim());
        });
    }

    /**
     * Ling 2.0's blocks ({@code bailingmoe2}: Ling-mini-2.0, Ling-flash-2.0, Ring-2.0): the query, key and value
     * projections in one {@code attn_qkv}, each head's query and key normalized, RoPE on half of each head's elements (as
     * pairs of halves), a dense first layer, then mixtures gated as the file says ({@code expert_gating_func} 2:
     * sigmoids chosen with a bias, in groups: 2 of 2 experts here, 1 used), renormalized and scaled (2.5), beside a shared
     * expert. llama-perplexity's figure, ours 5e-10 from it (51925.39 without the groups).
     */
    @Test
    void ling2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("ling2-mini.gguf");
        writeLing2(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().weights().layers()[1].feedForward() instanceof FeedForward.MoE moe && moe.routing() == FeedForward.Routing.SIGMOID_RENORMALIZED
                && moe.scale() == 2.5f && moe.selectionBias() != null && c.model().weights().layers()[1].qNorm() != null);
        assertEquals(52742.0667, perplexity(c), 1e-6 * 52742.0667);
    }

    /** {@link #ling2GivesLlamaCppsPerplexity}'s model: writeDenseFirst's, its attention's projections fused. */
    public static void writeLing2(Path scratch, Path out) {
        Path blocks = out.resolveSibling(out.getFileName() + ".blocks");
        writeDenseFirst("bailingmoe2", scratch, blocks, MOE.hiddenDim(), true, true, md -> {
            md.put("bailingmoe2.rope.dimension_count", Metadata.Value.uint32(MOE.headDim() / 2));
            md.put("bailingmoe2.expert_shared_count", Metadata.Value.uint32(1));
            md.put("bailingmoe2.expert_gating_func", Metadata.Value.uint32(2));
            md.put("bailingmoe2.expert_weights_norm", Metadata.Value.bool(true));
            md.put("bailingmoe2.expert_weights_scale", Metadata.Value.float32(2.5f));
            md.put("bailingmoe2.expert_group_count", Metadata.Value.uint32(2));
            md.put("bailingmoe2.expert_group_used_count", Metadata.Value.uint32(1));
        });
        FamilyFiles.rewrite(blocks, out, md -> { }, name -> !name.matches("blk\\.\\d+\\.attn_[qkv]\\.weight"), (all, tensors) -> {
            for (int l = 0; l < MOE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.fused(tensors, p + "attn_qkv.weight", all.get(p + "attn_q.weight"), all.get(p + "attn_k.weight"), all.get(p + "attn_v.weight"));
            }
        });
    }

    /**
     * GLM-4.5's blocks ({@code glm4moe}: GLM-4.5, -4.5-Air, -4.6): query, key and value biases, RoPE on half of each
     * head's elements (as pairs of halves), the FFN's norm named as a post-attention norm, a dense first layer, then
     * mixtures of sigmoids chosen with a bias, renormalized and scaled (1.5) beside a shared expert; its next-token
     * prediction layer (block_count 3, nextn_predict_layers 1) not run. llama-perplexity's figure of the file without
     * that layer's tensors (llama.cpp reads such a file as the trunk alone), ours 1e-8 from it; with them, ours the
     * same to the rounding of a run's compiled kernels (llama.cpp wants the whole layer there).
     */
    @Test
    void glm45GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path trunk = dir.resolve("glm4moe-mini.gguf"), withNextn = dir.resolve("glm4moe-nextn.gguf");
        writeGlm45(dir.resolve("mixtral.gguf"), trunk, false);
        writeGlm45(dir.resolve("mixtral.gguf"), withNextn, true);
        Checkpoint c = Checkpoint.load(trunk, null);
        assertEquals(2, c.model().config.nLayers());
        assertEquals(FeedForward.Routing.SIGMOID_RENORMALIZED, ((FeedForward.MoE) c.model().weights().layers()[1].feedForward()).routing());
        assertEquals(53137.8068, perplexity(c), 1e-6 * 53137.8068);
        assertEquals(53137.8068, perplexity(Checkpoint.load(withNextn, null)), 1e-6 * 53137.8068);
    }

    /**
     * K-EXAONE's blocks ({@code exaone-moe}): Llama's norms, each head's query and key normalized, three sliding
     * layers with RoPE to each one without either, a dense first layer then mixtures of sigmoids chosen with a bias,
     * renormalized and scaled (2.5) beside a shared expert; its next-token prediction layer not run.
     * llama-perplexity's figure, ours 6e-9 from it.
     */
    @Test
    void exaoneMoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("exaone-moe-mini.gguf");
        writeExaoneMoe(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Config.Variant v = c.model().config.variant();
        assertEquals(4, c.model().config.nLayers());
        assertEquals(java.util.List.of(true, true, true, false), java.util.stream.IntStream.range(0, 4).mapToObj(l -> v.slides(l) && v.ropes(l)).toList());
        assertEquals(FeedForward.Routing.SIGMOID_RENORMALIZED, ((FeedForward.MoE) c.model().weights().layers()[1].feedForward()).routing());
        assertNotNull(c.model().weights().layers()[0].qNorm());
        assertEquals(50617.7413, perplexity(c), 1e-6 * 50617.7413);
    }

    /**
     * Hunyuan-A13B ({@code hunyuan-moe}): Hunyuan's attention (each head's query and key normalized after RoPE),
     * Mixtral's routing beside a shared expert in every layer: llama-perplexity's figure, ours 1.4e-8 from it.
     */
    @Test
    void hunyuanMoeGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("hunyuan-moe-mini.gguf");
        writeHunyuanMoe(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().config.variant().headNormsAfterRope());
        assertNotNull(((FeedForward.MoE) c.model().weights().layers()[1].feedForward()).shared());
        assertEquals(51576.4844, perplexity(c), 1e-6 * 51576.4844);
    }

    /** {@link #glm45GivesLlamaCppsPerplexity}'s model, with an extra layer's tensors where {@code nextn}. */
    public static void writeGlm45(Path scratch, Path out, boolean nextn) {
        int qDim = MOE.heads() * MOE.headDim(), kvDim = MOE.kvHeads() * MOE.headDim();
        Path blocks = out.resolveSibling(out.getFileName() + ".blocks");
        writeDenseFirst(MOE, "glm4moe", scratch, blocks, MOE.hiddenDim(), true, false, true, md -> {
            md.put("glm4moe.block_count", Metadata.Value.uint32(MOE.layers() + 1));
            md.put("glm4moe.nextn_predict_layers", Metadata.Value.uint32(1));
            md.put("glm4moe.rope.dimension_count", Metadata.Value.uint32(MOE.headDim() / 2));
            md.put("glm4moe.expert_shared_count", Metadata.Value.uint32(1));
            md.put("glm4moe.expert_weights_norm", Metadata.Value.bool(true));
            md.put("glm4moe.expert_weights_scale", Metadata.Value.float32(1.5f));
        });
        // biases on every layer's projections; where nextn, an extra layer's tensors after them
        gptfast4j.io.GGUF t = gptfast4j.io.GGUF.read(blocks);
        java.util.List<gptfast4j.io.GGUFWriter.TensorSpec> tensors = new java.util.ArrayList<>();
        for (TensorData d : t.tensors().values()) tensors.add(new gptfast4j.io.GGUFWriter.TensorSpec(d.name(), d.type(), d.shape(), target -> target.copyFrom(d.data())));
        for (int l = 0; l < MOE.layers(); l++) {
            FamilyFiles.qkvBiases(tensors, "blk." + l + ".", qDim, kvDim, 3 * l);
        }
        if (nextn) {
            FamilyFiles.matrix(tensors, "blk." + MOE.layers() + ".nextn.eh_proj.weight", new long[]{2L * MOE.dim(), MOE.dim()}, 99);
            FamilyFiles.norm(tensors, "blk." + MOE.layers() + ".attn_norm.weight", MOE.dim(), 99);
        }
        gptfast4j.io.GGUFWriter.write(out, t.metadata().asMap(), tensors, n -> { });
    }

    /**
     * K-EXAONE's mini: {@link LlamaLikeTest#MOE}'s mixture in 4 layers, so that its fourth attends without a window
     * and without RoPE, and a fifth, its next-token prediction layer.
     */
    static final gptfast4j.bench.ModelShape EXAONE_MOE = new gptfast4j.bench.ModelShape("exaone-moe-mini", 64, 96, 5, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 4, 2);

    /**
     * Writes the K-EXAONE mini model ({@code exaone-moe}) to {@code out}: its first layer dense ({@link #DENSE_WIDTH}
     * wide), the next three mixtures chosen by sigmoids with a selection bias, renormalized and scaled by 2.5, beside a
     * shared expert 48 wide; each head's query and key normalized; layers 0 to 2 sliding over 16 positions with RoPE,
     * layer 3 over all without; the fifth a dense next-token prediction layer (not run).
     */
    public static void writeExaoneMoe(Path scratch, Path out) {
        gptfast4j.bench.ModelShape s = EXAONE_MOE;
        int layers = s.layers() - 1, dim = s.dim();
        FamilyFiles.write(s, "exaone-moe", scratch, out, md -> {
            md.put("exaone-moe.nextn_predict_layers", Metadata.Value.uint32(1));
            md.put("exaone-moe.feed_forward_length", Metadata.Value.uint32(DENSE_WIDTH));
            md.put("exaone-moe.expert_feed_forward_length", Metadata.Value.uint32(s.hiddenDim()));
            md.put("exaone-moe.expert_shared_feed_forward_length", Metadata.Value.uint32(48));
            md.put("exaone-moe.leading_dense_block_count", Metadata.Value.uint32(1));
            md.put("exaone-moe.expert_gating_func", Metadata.Value.uint32(2));
            md.put("exaone-moe.expert_weights_norm", Metadata.Value.bool(true));
            md.put("exaone-moe.expert_weights_scale", Metadata.Value.float32(2.5f));
            md.put("exaone-moe.attention.sliding_window", Metadata.Value.uint32(16));
        }, name -> !name.matches("blk\\.[04]\\.ffn_.*") || name.endsWith("ffn_norm.weight"), (llama, tensors) -> {
            for (int l : new int[]{0, layers}) {
                FamilyFiles.matrix(tensors, "blk." + l + ".ffn_gate.weight", new long[]{dim, DENSE_WIDTH}, 7 + l);
                FamilyFiles.matrix(tensors, "blk." + l + ".ffn_up.weight", new long[]{dim, DENSE_WIDTH}, 8 + l);
                FamilyFiles.matrix(tensors, "blk." + l + ".ffn_down.weight", new long[]{DENSE_WIDTH, dim}, 9 + l);
            }
            for (int l = 0; l <= layers; l++) {
                FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", s.headDim(), 2 * l);
                FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", s.headDim(), 2 * l + 1);
                if (l == 0 || l == layers) continue;
                FamilyFiles.bias(tensors, "blk." + l + ".exp_probs_b.bias", new long[]{s.experts()}, l);
                sharedExpert(tensors, l, 48);
            }
            String p = "blk." + layers + ".";
            FamilyFiles.matrix(tensors, p + "nextn.eh_proj.weight", new long[]{2L * dim, dim}, 99);
            FamilyFiles.norm(tensors, p + "nextn.enorm.weight", dim, 97);
            FamilyFiles.norm(tensors, p + "nextn.hnorm.weight", dim, 96);
        });
    }

    /**
     * Writes the Hunyuan-A13B mini model ({@code hunyuan-moe}) to {@code out}: {@link LlamaLikeTest#MOE}'s mixtures
     * (Mixtral's routing) beside a shared expert 48 wide in every layer, each head's query and key normalized.
     */
    public static void writeHunyuanMoe(Path scratch, Path out) {
        FamilyFiles.write(MOE, "hunyuan-moe", scratch, out, md -> {
            md.put("hunyuan-moe.expert_feed_forward_length", Metadata.Value.uint32(MOE.hiddenDim()));
            md.put("hunyuan-moe.expert_shared_feed_forward_length", Metadata.Value.uint32(48));
        }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < MOE.layers(); l++) {
                FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", MOE.headDim(), 60 + l);
                FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", MOE.headDim(), 70 + l);
                sharedExpert(tensors, l, 48);
            }
        });
    }
}
