package gptfast4j.model;

import gptfast4j.io.Metadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static gptfast4j.model.LlamaLikeTest.MOE;
import static gptfast4j.model.LlamaLikeTest.perplexity;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Mixtures with a shared expert, one every token runs beside the ones it chooses: Qwen2-MoE ({@code qwen2moe}, its
 * output gated by a sigmoid), ERNIE 4.5's ({@code ernie4_5-moe}: a dense first layer, experts chosen with a bias),
 * Granite's ({@code granitemoe} with {@code expert_shared_feed_forward_length}). Random models of {@link
 * LlamaLikeTest#MOE} (a Mixtral file renamed, its shared experts 80 wide against its experts' 96) against llama.cpp
 * de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the
 * files this test writes.
 */
public class SharedExpertTest {
    private static final int SHARED_WIDTH = 80, DENSE_WIDTH = 112;

    /** Layer l's shared expert, {@link #SHARED_WIDTH} wide. */
    private static void sharedExpert(java.util.List<gptfast4j.io.GGUFWriter.TensorSpec> tensors, int l) {
        String p = "blk." + l + ".";
        int dim = MOE.dim();
        FamilyFiles.matrix(tensors, p + "ffn_gate_shexp.weight", new long[]{dim, SHARED_WIDTH}, 100 * l + 1);
        FamilyFiles.matrix(tensors, p + "ffn_up_shexp.weight", new long[]{dim, SHARED_WIDTH}, 100 * l + 2);
        FamilyFiles.matrix(tensors, p + "ffn_down_shexp.weight", new long[]{SHARED_WIDTH, dim}, 100 * l + 3);
    }

    /** Qwen1.5-MoE's and Qwen2-57B-A14B's blocks: Qwen2's query, key and value biases, a gated shared expert. */
    public static void writeQwen2Moe(Path scratch, Path out) {
        int qDim = MOE.heads() * MOE.headDim(), kvDim = MOE.kvHeads() * MOE.headDim();
        FamilyFiles.write(MOE, "qwen2moe", scratch, out, md -> {
            md.put("qwen2moe.expert_feed_forward_length", Metadata.Value.uint32(MOE.hiddenDim()));
            md.put("qwen2moe.expert_shared_feed_forward_length", Metadata.Value.uint32(SHARED_WIDTH));
        }, name -> true, (llama, tensors) -> {
            for (int l = 0; l < MOE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.bias(tensors, p + "attn_q.bias", new long[]{qDim}, 10 * l);
                FamilyFiles.bias(tensors, p + "attn_k.bias", new long[]{kvDim}, 10 * l + 1);
                FamilyFiles.bias(tensors, p + "attn_v.bias", new long[]{kvDim}, 10 * l + 2);
                FamilyFiles.bias(tensors, p + "ffn_gate_inp_shexp.weight", new long[]{MOE.dim()}, 10 * l + 3);
                sharedExpert(tensors, l);
            }
        });
    }

    /**
     * llama-perplexity's figure, ours 2e-8 from it. The chosen experts' probabilities are not renormalized (57113.72
     * with them renormalized), the shared expert's output times sigmoid(gate · x) (56286.26 without the gate).
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
    }

    /**
     * ERNIE 4.5 21B-A3B's blocks: its first layer dense ({@code leading_dense_block_count}, {@link #DENSE_WIDTH} wide),
     * the others a mixture whose experts are chosen by their probabilities plus a bias ({@code exp_probs_b}) and
     * weighed by their probabilities renormalized, and a shared expert without a gate.
     */
    public static void writeErnieMoe(Path scratch, Path out) {
        FamilyFiles.write(MOE, "ernie4_5-moe", scratch, out, md -> {
            md.put("ernie4_5-moe.feed_forward_length", Metadata.Value.uint32(DENSE_WIDTH));
            md.put("ernie4_5-moe.expert_feed_forward_length", Metadata.Value.uint32(MOE.hiddenDim()));
            md.put("ernie4_5-moe.expert_shared_feed_forward_length", Metadata.Value.uint32(SHARED_WIDTH));
            md.put("ernie4_5-moe.leading_dense_block_count", Metadata.Value.uint32(1));
            md.put("ernie4_5-moe.interleave_moe_layer_step", Metadata.Value.uint32(1));
        }, name -> !name.startsWith("blk.0.ffn_") || name.equals("blk.0.ffn_norm.weight"), (llama, tensors) -> {
            int dim = MOE.dim();
            FamilyFiles.matrix(tensors, "blk.0.ffn_gate.weight", new long[]{dim, DENSE_WIDTH}, 7);
            FamilyFiles.matrix(tensors, "blk.0.ffn_up.weight", new long[]{dim, DENSE_WIDTH}, 8);
            FamilyFiles.matrix(tensors, "blk.0.ffn_down.weight", new long[]{DENSE_WIDTH, dim}, 9);
            for (int l = 1; l < MOE.layers(); l++) {
                FamilyFiles.bias(tensors, "blk." + l + ".exp_probs_b.bias", new long[]{MOE.experts()}, l);
                sharedExpert(tensors, l);
            }
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
}
