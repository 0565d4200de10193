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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen3.5 ({@code qwen35}): three of every four layers a gated delta net ({@link DeltaNet}) in place of attention, the
 * fourth attention whose queries come with a gate (sigmoid, on the heads' outputs) and RoPE on the first quarter of
 * each head (M-RoPE as text turns it). A random-weight model written here (LlamaLikeTest's shape: width 64, heads of
 * 16, 4 layers, the last attention; delta nets of 2 key heads and 6 value heads of 16, convolutions of 4 taps: 160
 * channels, not the 128 of the attention's fused projections, which a file of Phi-3's would have)
 * against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv
 * f32} on the file this test writes.
 */
public class Qwen35Test {

    /** Writes the mini Qwen3.5 model to {@code out} ({@code scratch} for the Llama file it is made from). */
    public static void write(Path scratch, Path out) {
        write(LlamaLikeTest.SHAPE, "qwen35", scratch, out);
    }

    /**
     * Writes to {@code out} an {@code arch} model of {@code shape} made from its Llama (or Mixtral) file at {@code scratch}:
     * every fourth layer attention, the others delta nets; a mixture's layers with a gated shared expert 48 wide.
     */
    static void write(ModelShape shape, String arch, Path scratch, Path out) {
        int dim = shape.dim(), headDim = dim / shape.heads(), layers = shape.layers(), kHeads = 2, vHeads = 6, state = 16;
        int conv = 2 * kHeads * state + vHeads * state;
        FamilyFiles.write(shape, arch, scratch, out, md -> {
            String a = arch + ".";
            md.put(a + "attention.key_length", Metadata.Value.uint32(headDim));
            md.put(a + "attention.value_length", Metadata.Value.uint32(headDim));
            md.put(a + "rope.dimension_count", Metadata.Value.uint32(headDim / 2));
            // M-RoPE's sections (Qwen3-Next's RoPE plain)
            if (!arch.equals("qwen3next")) md.put(a + "rope.dimension_sections", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, new int[]{2, 1, 1, 0}));
            md.put(a + "ssm.conv_kernel", Metadata.Value.uint32(4));
            md.put(a + "ssm.state_size", Metadata.Value.uint32(state));
            md.put(a + "ssm.group_count", Metadata.Value.uint32(kHeads));
            md.put(a + "ssm.time_step_rank", Metadata.Value.uint32(vHeads));
            md.put(a + "ssm.inner_size", Metadata.Value.uint32(vHeads * state));
            md.put(a + "full_attention_interval", Metadata.Value.uint32(4));
            if (shape.experts() > 0) {
                md.put(a + "expert_feed_forward_length", Metadata.Value.uint32(shape.hiddenDim()));
                md.put(a + "expert_shared_feed_forward_length", Metadata.Value.uint32(48));
            }
        }, name -> !name.contains("ffn_norm") && !(name.startsWith("blk.") && name.contains(".attn_") && !name.contains("attn_norm")),
                (Map<String, TensorData> llama, List<GGUFWriter.TensorSpec> tensors) -> {
            for (int l = 0; l < layers; l++) {
                String p = "blk." + l + ".";
                FamilyFiles.norm(tensors, p + "post_attention_norm.weight", dim, 10 + l);
                if (shape.experts() > 0) {
                    FamilyFiles.matrix(tensors, p + "ffn_gate_inp_shexp.weight", new long[]{dim}, 1600 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_gate_shexp.weight", new long[]{dim, 48}, 1700 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_up_shexp.weight", new long[]{dim, 48}, 1800 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_down_shexp.weight", new long[]{48, dim}, 1900 + l);
                }
                if ((l + 1) % 4 != 0) {
                    FamilyFiles.matrix(tensors, p + "attn_qkv.weight", new long[]{dim, conv}, 100 + l);
                    FamilyFiles.matrix(tensors, p + "attn_gate.weight", new long[]{dim, vHeads * state}, 200 + l);
                    FamilyFiles.matrix(tensors, p + "ssm_conv1d.weight", new long[]{4, conv}, 300 + l);
                    FamilyFiles.bias(tensors, p + "ssm_dt.bias", new long[]{vHeads}, 400 + l);
                    FamilyFiles.bias(tensors, p + "ssm_a", new long[]{vHeads}, 500 + l);
                    if (arch.equals("qwen3next")) {
                        // Qwen3-Next's beta and alpha in one, grouped by key head
                        FamilyFiles.matrix(tensors, p + "ssm_ba.weight", new long[]{dim, 2 * vHeads}, 600 + l);
                    } else {
                        FamilyFiles.matrix(tensors, p + "ssm_beta.weight", new long[]{dim, vHeads}, 600 + l);
                        FamilyFiles.matrix(tensors, p + "ssm_alpha.weight", new long[]{dim, vHeads}, 700 + l);
                    }
                    FamilyFiles.norm(tensors, p + "ssm_norm.weight", state, 800 + l);
                    FamilyFiles.matrix(tensors, p + "ssm_out.weight", new long[]{vHeads * state, dim}, 900 + l);
                } else {
                    FamilyFiles.matrix(tensors, p + "attn_q.weight", new long[]{dim, 2L * dim}, 1000 + l);
                    FamilyFiles.matrix(tensors, p + "attn_k.weight", new long[]{dim, (long) shape.kvHeads() * headDim}, 1100 + l);
                    FamilyFiles.matrix(tensors, p + "attn_v.weight", new long[]{dim, (long) shape.kvHeads() * headDim}, 1200 + l);
                    FamilyFiles.matrix(tensors, p + "attn_output.weight", new long[]{dim, dim}, 1300 + l);
                    FamilyFiles.norm(tensors, p + "attn_q_norm.weight", headDim, 1400 + l);
                    FamilyFiles.norm(tensors, p + "attn_k_norm.weight", headDim, 1500 + l);
                }
            }
        });
    }

    /** Writes the mini Qwen3-Next model ({@code qwen3next}: the mixture's shape, beta and alpha fused, value heads grouped by key head, RoPE plain) to {@code out}. */
    public static void writeNext(Path scratch, Path out) {
        write(new ModelShape("qwen3next-mini", 64, 32, 4, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 8, 2), "qwen3next", scratch, out);
    }

    @TempDir
    static Path dir;
    static Checkpoint qwen35;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("llama.gguf"), dir.resolve("qwen35-mini.gguf"));
        qwen35 = Checkpoint.load(dir.resolve("qwen35-mini.gguf"), null);
    }

    /** llama-perplexity's figure; ours 3e-8 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        Layer[] layers = qwen35.model().weights().layers();
        for (int l = 0; l < layers.length; l++) assertEquals(l != 3, layers[l].recurrent() instanceof DeltaNet, "layer " + l);
        assertTrue(layers[3].queryGates());
        assertEquals(8, qwen35.model().config.rotaryDim());
        assertEquals(47883.8626, LlamaLikeTest.perplexity(qwen35), 1e-6 * 47883.8626);
    }

    /**
     * Qwen3.5's mixtures ({@code qwen35moe}): the same layers, each feed-forward experts chosen by a softmax,
     * renormalized, beside a shared expert whose sigmoid gate weighs it. A random model of 8 experts 32 wide, 2 used, a
     * shared expert 48 wide: llama-perplexity's figure, ours 1e-8 from it.
     */
    @Test
    void mixtureGivesLlamaCppsPerplexity() throws IOException {
        ModelShape shape = new ModelShape("qwen35moe-mini", 64, 32, 4, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 8, 2);
        Path file = dir.resolve("qwen35moe-mini.gguf");
        write(shape, "qwen35moe", dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Layer[] layers = c.model().weights().layers();
        assertTrue(layers[0].recurrent() instanceof DeltaNet && layers[0].feedForward() instanceof FeedForward.MoE moe && moe.shared().gate() != null && layers[3].queryGates());
        assertEquals(53978.0706, LlamaLikeTest.perplexity(c), 1e-6 * 53978.0706);
    }

    /**
     * Qwen3-Next ({@code qwen3next}): Qwen3.5's mixture but for its delta nets' beta and alpha in one projection grouped
     * by key head ({@code ssm_ba}), each key head's value heads in a row (repeat-interleaved, where Qwen3.5's take the key
     * heads in turn) and RoPE without M-RoPE's sections: llama-perplexity's figure (52128.1843), ours 1.2e-8 from it;
     * an early conversion's queries, keys, values and z in one {@code ssm_in} grouped by key head (made here from the
     * file's attn_qkv and attn_gate rows) give the same figure, as llama-perplexity does on that file.
     */
    @Test
    void nextGivesLlamaCppsPerplexity() throws IOException {
        Path file = dir.resolve("qwen3next-mini.gguf");
        writeNext(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().weights().layers()[0].recurrent() instanceof DeltaNet d && d.betaAlpha() != null && d.interleaved() && d.keyHead(2) == 0 && d.keyHead(3) == 1);
        assertEquals(52128.1843, LlamaLikeTest.perplexity(c), 1e-6 * 52128.1843);
        Path fused = dir.resolve("qwen3next-fused.gguf");
        writeNextFused(file, fused);
        Checkpoint f = Checkpoint.load(fused, null);
        assertTrue(f.model().weights().layers()[0].wk() == null && f.model().weights().layers()[0].wq().rows == 160 + 96);
        assertEquals(52128.1843, LlamaLikeTest.perplexity(f), 1e-6 * 52128.1843);
        // its experts' gates and ups in one tensor (llama.cpp's --fuse-gate-up-exps): the same figure, llama-perplexity's on that file too
        Path gateUp = dir.resolve("qwen3next-gate-up.gguf");
        ReferenceLogitsTest.writeGateUpFused(file, gateUp);
        assertEquals(52128.1843, LlamaLikeTest.perplexity(Checkpoint.load(gateUp, null)), 1e-6 * 52128.1843);
    }

    /**
     * Writes {@code next} (writeNext's file) to {@code out} as an early Qwen3-Next conversion has it: each delta net's
     * attn_qkv and attn_gate rows in one ssm_in, per key head its query, key, value heads' values and their z.
     */
    static void writeNextFused(Path next, Path out) {
        int keyHeads = 2, width = 16, group = 3 * width;
        FamilyFiles.rewrite(next, out, md -> { }, name -> !name.contains("attn_qkv") && !name.contains("attn_gate"), (all, tensors) -> {
            for (int l = 0; l < 3; l++) {
                TensorData qkv = all.get("blk." + l + ".attn_qkv.weight"), z = all.get("blk." + l + ".attn_gate.weight");
                long dim = qkv.shape()[0], row = 4 * dim;
                tensors.add(new GGUFWriter.TensorSpec("blk." + l + ".ssm_in.weight", gptfast4j.tensor.GGMLType.F32, new long[]{dim, qkv.shape()[1] + z.shape()[1]}, target -> {
                    long at = 0;
                    for (int g = 0; g < keyHeads; g++) {
                        long[][] parts = {{g * width, width}, {(keyHeads + g) * width, width}, {2 * keyHeads * width + g * group, group}};
                        for (long[] part : parts) {
                            java.lang.foreign.MemorySegment.copy(qkv.data(), part[0] * row, target, at, part[1] * row);
                            at += part[1] * row;
                        }
                        java.lang.foreign.MemorySegment.copy(z.data(), (long) g * group * row, target, at, group * row);
                        at += group * row;
                    }
                }));
            }
        });
    }

    /**
     * Which layers are delta nets: {@code attention.recurrent_layers}, a flag per layer (the converter's, from the
     * model's layer types, with its next-token prediction layers' after them), over {@code full_attention_interval};
     * the interval where the file has no flags.
     */
    @Test
    void recurrentLayersAsTheFileFlagsThem() throws IOException {
        Path flagged = dir.resolve("flagged.gguf");
        FamilyFiles.rewrite(dir.resolve("qwen35-mini.gguf"), flagged, md -> {
            md.put("qwen35.attention.recurrent_layers", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.BOOL, new boolean[]{true, true, true, false, false}));
            md.put("qwen35.full_attention_interval", Metadata.Value.uint32(2)); // which would make layer 1 attention, whose tensors the file lacks
        }, name -> true, (all, tensors) -> { });
        assertEquals(47883.8626, LlamaLikeTest.perplexity(Checkpoint.load(flagged, null)), 1e-6 * 47883.8626);
        Path interval = dir.resolve("interval.gguf");
        FamilyFiles.rewrite(dir.resolve("qwen35-mini.gguf"), interval, md -> md.put("qwen35.full_attention_interval", Metadata.Value.uint32(2)), name -> true, (all, tensors) -> { });
        var e = assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(interval, null));
        assertTrue(e.getMessage().startsWith(interval + ": tensor blk.1."), e.getMessage()); // layer 1 read as attention
    }

    /** What cannot be done with recurrent layers is refused in one line: a context shift, a cache file of another position than the state's, a split across processes. */
    @Test
    void refusesWhatItCannotDo() {
        Llama m = qwen35.model();
        Llama.State s = m.newState(64, 8, 1, KvCache.Type.F16);
        m.forward(s, new int[]{1, 2, 3, 4}, 0, 4, 0, null);
        assertEquals("a context shift cannot be made in this model's recurrent layers (qwen35)", assertThrows(IllegalStateException.class, () -> m.shift(s, 1, 1, 4)).getMessage());
        assertEquals("this model's recurrent layers hold position 4, not 3: a cache file holds their state where it ends",
                assertThrows(IllegalStateException.class, () -> s.writeCache(java.nio.channels.Channels.newChannel(new java.io.ByteArrayOutputStream()), 3)).getMessage());
        assertEquals("this model's gated delta net layers (qwen35) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(m.config, 2)).getMessage());
    }
}
