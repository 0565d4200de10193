package gptfast4j.model;

import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static gptfast4j.model.LlamaLikeTest.SHAPE;
import static gptfast4j.model.LlamaLikeTest.perplexity;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Families whose blocks are normalized by LayerNorm with biases and whose feed-forwards have no gate, GELU of the up
 * projection, with biases on every projection: StarCoder2 ({@code starcoder2}) and Phi-2 ({@code phi2}, its attention
 * and FFN in parallel on one normalized input, a bias on the logits). Random-weight models written here from {@link
 * LlamaLikeTest#SHAPE}'s Llama file (64 wide, 4 heads of 16 sharing 2 kv heads, 4 layers), their gates dropped and
 * biases added, against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off
 * -ctk f32 -ctv f32} on the files this test writes (every run writes the same bytes). llama.cpp's CPU GELU looks its
 * value up in a table of half floats, ours computes it in floats (GemmaTest), so the figures lie up to 1e-5 apart.
 */
public class LayerNormFamiliesTest {

    /** The biases of every projection and norm of a layer named {@code p} ("blk.N."), seeded from {@code seed}; the q/k/v ones apart or fused. */
    private static void layerBiases(List<GGUFWriter.TensorSpec> tensors, String p, int seed, boolean fusedQkv, boolean ffnNorm) {
        int dim = SHAPE.dim(), kvDim = SHAPE.kvHeads() * SHAPE.headDim();
        FamilyFiles.bias(tensors, p + "attn_norm.bias", new long[]{dim}, seed);
        if (fusedQkv) FamilyFiles.bias(tensors, p + "attn_qkv.bias", new long[]{dim + 2L * kvDim}, seed + 1);
        else FamilyFiles.qkvBiases(tensors, p, dim, kvDim, seed + 1);
        FamilyFiles.bias(tensors, p + "attn_output.bias", new long[]{dim}, seed + 4);
        if (ffnNorm) FamilyFiles.bias(tensors, p + "ffn_norm.bias", new long[]{dim}, seed + 5);
        FamilyFiles.bias(tensors, p + "ffn_up.bias", new long[]{SHAPE.hiddenDim()}, seed + 6);
        FamilyFiles.bias(tensors, p + "ffn_down.bias", new long[]{dim}, seed + 7);
    }

    /** LayerNorm's epsilon under the key llama.cpp reads for these families, in place of RMSNorm's. */
    private static void layerNormEpsilon(String arch, Map<String, Metadata.Value> md) {
        md.put(arch + ".attention.layer_norm_epsilon", md.remove(arch + ".attention.layer_norm_rms_epsilon"));
    }

    /** Writes the StarCoder2 mini model to {@code out} ({@code scratch}: the Llama file it is made from). */
    public static void writeStarCoder2(Path scratch, Path out) {
        FamilyFiles.write(SHAPE, "starcoder2", scratch, out, md -> layerNormEpsilon("starcoder2", md), name -> !name.endsWith("ffn_gate.weight"), (llama, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) layerBiases(tensors, "blk." + l + ".", 10 * l, false, true);
            FamilyFiles.bias(tensors, "output_norm.bias", new long[]{SHAPE.dim()}, 99);
        });
    }

    /**
     * Writes the Phi-2 mini model to {@code out}: its query, key and value projections fused as its converter writes
     * them (their bias too), no FFN norm, RoPE on the first 8 of each head's 16 elements, a bias on the logits.
     */
    public static void writePhi2(Path scratch, Path out) {
        FamilyFiles.write(SHAPE, "phi2", scratch, out, md -> {
            layerNormEpsilon("phi2", md);
            md.put("phi2.rope.dimension_count", Metadata.Value.uint32(8));
        }, name -> !name.matches("blk\\.\\d+\\.(attn_[qkv]|ffn_gate|ffn_norm)\\.weight"), (llama, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.fused(tensors, p + "attn_qkv.weight", llama.get(p + "attn_q.weight"), llama.get(p + "attn_k.weight"), llama.get(p + "attn_v.weight"));
                layerBiases(tensors, p, 10 * l, true, false);
            }
            FamilyFiles.bias(tensors, "output_norm.bias", new long[]{SHAPE.dim()}, 99);
            FamilyFiles.bias(tensors, "output.bias", new long[]{SHAPE.vocab()}, 98);
        });
    }

    /** StarCoder2 (StarCoder2-3B, 7B, 15B): llama-perplexity's figure, ours 7e-7 from it. */
    @Test
    void starCoder2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("starcoder2-mini.gguf");
        writeStarCoder2(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Config.Variant v = c.model().config.variant();
        assertTrue(v.layerNorm() && !v.parallelBlocks());
        assertEquals(Config.Activation.GELU_UP, v.activation());
        Layer layer = c.model().weights().layers()[1];
        FeedForward.Dense ffn = (FeedForward.Dense) layer.feedForward();
        assertNull(ffn.w1());
        assertEquals(List.of(SHAPE.hiddenDim(), SHAPE.dim(), SHAPE.dim()), List.of(ffn.upBias().length, ffn.downBias().length, layer.ffnNormBias().length));
        assertEquals(55944.0457, perplexity(c), 1e-5 * 55944.0457);
    }

    /**
     * Phi-2 (Phi-2, Phi-1.5): llama-perplexity's figure, ours 7e-6 from it (1.5e-7 with GELU looked up in half floats
     * as llama.cpp does: tried, not kept).
     */
    @Test
    void phi2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("phi2-mini.gguf");
        writePhi2(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Config.Variant v = c.model().config.variant();
        assertTrue(v.layerNorm() && v.parallelBlocks());
        assertEquals(8, c.model().config.rotaryDim());
        assertEquals(SHAPE.vocab(), c.model().weights().outputBias().length);
        assertEquals(52233.1700, perplexity(c), 1e-5 * 52233.1700);
    }
}
