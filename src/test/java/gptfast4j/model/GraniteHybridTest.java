package gptfast4j.model;

import gptfast4j.bench.ModelShape;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Granite 4.0-H ({@code granitehybrid}): Mamba-2 mixers ({@link Mamba2}) in the layers whose kv heads are 0, attention
 * without RoPE in the others, Granite's multipliers (embeddings, attention scores, residuals, logits). A random-weight
 * model written here (LlamaLikeTest's shape: width 64, 4 layers, 4 heads of 16, 2 kv heads; layer 1 attention, the
 * others Mamba-2 of 8 heads of 16 in 2 groups, states of 16, convolutions of 4 taps with a bias: 192 channels) against
 * llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on
 * the file this test writes.
 */
public class GraniteHybridTest {

    /** Writes the mini Granite 4.0-H model to {@code out} ({@code scratch} for the Llama file it is made from). */
    public static void write(Path scratch, Path out) {
        write(LlamaLikeTest.SHAPE, scratch, out);
    }

    /** Layer 1 is attention, the others Mamba-2. */
    private static boolean attention(int layer) {
        return layer == 1;
    }

    /**
     * Writes to {@code out} a {@code granitehybrid} model of {@code shape} made from its Llama (or Mixtral) file at
     * {@code scratch}; a mixture's layers with a shared expert 48 wide, as Granite 4.0-H-Tiny's.
     */
    static void write(ModelShape shape, Path scratch, Path out) {
        int dim = shape.dim(), layers = shape.layers();
        int[] kvHeads = new int[layers];
        for (int l = 0; l < layers; l++) kvHeads[l] = attention(l) ? shape.kvHeads() : 0;
        FamilyFiles.write(shape, "granitehybrid", scratch, out, md -> {
            String a = "granitehybrid.";
            md.put(a + "attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, kvHeads));
            md.put(a + "embedding_scale", Metadata.Value.float32(12f));
            md.put(a + "residual_scale", Metadata.Value.float32(0.22f));
            md.put(a + "attention.scale", Metadata.Value.float32(0.0078125f));
            md.put(a + "logit_scale", Metadata.Value.float32(0.25f)); // logits x4: a less even distribution than 8 (a real model's) makes of random weights
            md.put(a + "rope.scaling.finetuned", Metadata.Value.bool(false));
            FamilyFiles.mamba2Metadata(md, "granitehybrid");
            if (shape.experts() > 0) md.put(a + "expert_shared_feed_forward_length", Metadata.Value.uint32(48));
        }, name -> !(name.startsWith("blk.") && name.contains(".attn_") && !name.contains("attn_norm") && !attention(Integer.parseInt(name.split("\\.")[1]))),
                (Map<String, TensorData> llama, List<GGUFWriter.TensorSpec> tensors) -> {
            for (int l = 0; l < layers; l++) {
                String p = "blk." + l + ".";
                if (shape.experts() > 0) {
                    FamilyFiles.matrix(tensors, p + "ffn_gate_shexp.weight", new long[]{dim, 48}, 1700 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_up_shexp.weight", new long[]{dim, 48}, 1800 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_down_shexp.weight", new long[]{48, dim}, 1900 + l);
                }
                if (!attention(l)) FamilyFiles.mamba2(tensors, l, dim);
            }
        });
    }

    @TempDir
    static Path dir;
    static Checkpoint granite;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("llama.gguf"), dir.resolve("granite-hybrid-mini.gguf"));
        granite = Checkpoint.load(dir.resolve("granite-hybrid-mini.gguf"), null);
    }

    /** llama-perplexity's figure (logits four times Granite's own, a less even distribution, whose figure a wrong step moves more); ours 1.2e-7 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        Layer[] layers = granite.model().weights().layers();
        for (int l = 0; l < layers.length; l++) assertEquals(!attention(l), layers[l].recurrent() instanceof Mamba2, "layer " + l);
        for (int l = 0; l < layers.length; l++) assertTrue(!granite.model().config.variant().ropes(l), "layer " + l);
        assertEquals(40123246.6069, LlamaLikeTest.perplexity(granite), 1e-6 * 40123246.6069);
    }

    /**
     * Granite 4.0-H-Tiny's kind: each feed-forward experts chosen by a softmax, renormalized, beside a shared expert
     * added as it is. A random model of 8 experts 32 wide, 2 used, a shared expert 48 wide: llama-perplexity's figure,
     * ours 3e-8 from it.
     */
    @Test
    void mixtureGivesLlamaCppsPerplexity() throws IOException {
        ModelShape shape = new ModelShape("granitehybrid-moe-mini", 64, 32, 4, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 8, 2);
        Path file = dir.resolve("granitehybrid-moe-mini.gguf");
        write(shape, dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Layer[] layers = c.model().weights().layers();
        assertTrue(layers[0].recurrent() instanceof Mamba2 && layers[0].feedForward() instanceof FeedForward.MoE moe && moe.shared().gate() == null);
        assertEquals(40176702.4140, LlamaLikeTest.perplexity(c), 1e-6 * 40176702.4140);
    }

    /** A split across processes is refused in one line; so is a file whose inner size is not whole heads. */
    @Test
    void refusesWhatItCannotRun() {
        assertEquals("this model's Mamba-2 layers (granitehybrid) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(granite.model().config, 2)).getMessage());
        Path odd = dir.resolve("odd-heads.gguf");
        FamilyFiles.rewrite(dir.resolve("granite-hybrid-mini.gguf"), odd, md -> md.put("granitehybrid.ssm.time_step_rank", Metadata.Value.uint32(7)), name -> true, (all, tensors) -> { });
        assertEquals(odd + ": granitehybrid.ssm.inner_size 128 is not whole heads of its 7, or they are not whole groups of its 2",
                assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(odd, null)).getMessage());
    }

    /**
     * The KV cache holds the attention layers' keys and values alone (layer 1 of 4 here), in the cache types its heads
     * of 16 allow (the quantized ones need 32: Mamba2Test): the Mamba-2 layers share nothing of it (they had taken a
     * whole layer's each, on the heap for F32).
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "bf16", "f16/bf16"})
    void theKvCacheHoldsTheAttentionLayersAlone(String type) {
        Config c = granite.model().config;
        KvCache.Type t = KvCache.Type.parse(type);
        long everyLayer = KvCache.of(t, c, c.nKvHeads(), 256).bytes();
        assertEquals(everyLayer / c.nLayers(), granite.model().newState(256, 8, 8, t).kvBytes(), type);
    }
}
