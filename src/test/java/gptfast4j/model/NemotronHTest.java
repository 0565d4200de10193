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
 * Nemotron-H ({@code nemotron_h}): each block one norm and one part with its residual, a Mamba-2 mixer ({@link Mamba2}),
 * attention without RoPE, or a feed-forward (ReLU² of its up projection, no gate). A random-weight model written here
 * (width 64, 4 heads of 16 sharing 2 kv heads; blocks {@link #PATTERN} as the converter writes the model's
 * {@code hybrid_override_pattern}: M Mamba-2 of 8 heads of 16 in 2 groups, states of 16; * attention; - feed-forward
 * 160 wide) against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off
 * -ctk f32 -ctv f32} on the file this test writes.
 */
public class NemotronHTest {
    /** The blocks: a mixer followed by a feed-forward, one by another mixer, a feed-forward last. */
    static final String PATTERN = "M-M*-M-";

    /** Writes the mini Nemotron-H model to {@code out} ({@code scratch} for the Llama file it is made from). */
    public static void write(Path scratch, Path out) {
        write(PATTERN, scratch, out);
    }

    /** Writes the mini Nemotron-H mixture ({@link #PATTERN}: 8 experts 32 wide, 2 used) to {@code out} ({@code scratch}: the Mixtral file it is made from). */
    public static void writeMixture(Path scratch, Path out) {
        write(PATTERN, new ModelShape("nemotron-h-moe-mini", 64, 32, PATTERN.length(), 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 8, 2), scratch, out);
    }

    /** Writes to {@code out} a mini Nemotron-H model of blocks {@code pattern} (M, * or -). */
    public static void write(String pattern, Path scratch, Path out) {
        write(pattern, new ModelShape("nemotron-h-mini", 64, 160, pattern.length(), 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0), scratch, out);
    }

    /**
     * Writes to {@code out} a mini Nemotron-H model of blocks {@code pattern} and {@code shape}: with experts, its
     * mixture ({@code nemotron_h_moe}): the feed-forward blocks' experts without a gate, chosen by sigmoids with a
     * selection bias, renormalized and scaled by 2.5, beside a shared expert 48 wide, also without a gate.
     */
    static void write(String pattern, ModelShape shape, Path scratch, Path out) {
        boolean moe = shape.experts() > 0;
        String arch = moe ? "nemotron_h_moe" : "nemotron_h";
        int dim = shape.dim(), layers = shape.layers(), headDim = dim / shape.heads();
        int[] kvHeads = new int[layers], ffn = new int[layers];
        for (int l = 0; l < layers; l++) {
            kvHeads[l] = pattern.charAt(l) == '*' ? shape.kvHeads() : 0;
            ffn[l] = pattern.charAt(l) == '-' ? shape.hiddenDim() : 0;
        }
        FamilyFiles.write(shape, arch, scratch, out, md -> {
            String a = arch + ".";
            md.put(a + "attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, kvHeads));
            md.put(a + "feed_forward_length", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, ffn));
            md.put(a + "attention.key_length", Metadata.Value.uint32(headDim));
            md.put(a + "attention.value_length", Metadata.Value.uint32(headDim));
            md.put(a + "attention.layer_norm_epsilon", Metadata.Value.float32(1e-5f));
            md.put(a + "rope.scaling.finetuned", Metadata.Value.bool(false));
            FamilyFiles.mamba2Metadata(md, arch);
            if (moe) {
                md.put(a + "expert_feed_forward_length", Metadata.Value.uint32(shape.hiddenDim()));
                md.put(a + "expert_shared_feed_forward_length", Metadata.Value.uint32(48));
                md.put(a + "expert_weights_norm", Metadata.Value.bool(true));
                md.put(a + "expert_weights_scale", Metadata.Value.float32(2.5f));
            }
        }, name -> !name.startsWith("blk.") || name.contains("attn_norm") || kept(pattern, name), (Map<String, TensorData> llama, List<GGUFWriter.TensorSpec> tensors) -> {
            for (int l = 0; l < layers; l++) {
                if (pattern.charAt(l) == 'M') FamilyFiles.mamba2(tensors, l, dim);
                if (pattern.charAt(l) != '-' || !moe) continue;
                String p = "blk." + l + ".";
                FamilyFiles.bias(tensors, p + "exp_probs_b.bias", new long[]{shape.experts()}, 1500 + l);
                FamilyFiles.matrix(tensors, p + "ffn_up_shexp.weight", new long[]{dim, 48}, 1800 + l);
                FamilyFiles.matrix(tensors, p + "ffn_down_shexp.weight", new long[]{48, dim}, 1900 + l);
            }
        });
    }

    /**
     * Whether the Llama (or Mixtral) file's tensor {@code name} belongs to its block's part: an attention block's
     * attn_q/k/v/output, a feed-forward's ffn_up/down (a mixture's router and its experts' up and down).
     */
    private static boolean kept(String pattern, String name) {
        char kind = pattern.charAt(Integer.parseInt(name.split("\\.")[1]));
        return kind == '*' && name.contains(".attn_") || kind == '-' && (name.contains(".ffn_up") || name.contains(".ffn_down") || name.contains(".ffn_gate_inp"));
    }

    @TempDir
    static Path dir;
    static Checkpoint nemotron;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("llama.gguf"), dir.resolve("nemotron-h-mini.gguf"));
        nemotron = Checkpoint.load(dir.resolve("nemotron-h-mini.gguf"), null);
    }

    /** llama-perplexity's figure; ours 2.4e-8 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        Layer[] layers = nemotron.model().weights().layers();
        for (int l = 0; l < layers.length; l++) {
            char kind = PATTERN.charAt(l);
            assertEquals(kind == 'M', layers[l].recurrent() instanceof Mamba2, "layer " + l);
            assertEquals(kind == '-', layers[l].wo() == null, "layer " + l);
            assertEquals(kind != '-', layers[l].feedForward() == null, "layer " + l);
        }
        assertTrue(!nemotron.model().config.variant().ropes(3));
        assertEquals(55368.2177, LlamaLikeTest.perplexity(nemotron), 1e-6 * 55368.2177);
    }

    /**
     * Its mixture ({@code nemotron_h_moe}, Nemotron 3 Nano's kind): the feed-forward blocks' experts without a gate
     * (ReLU² of up), chosen by sigmoids with a selection bias, renormalized and scaled by 2.5, beside a shared expert
     * without a gate: llama-perplexity's figure, ours 1.4e-8 from it (the scale left out moved it by 0.45%); a split
     * across processes refused in one line.
     */
    @Test
    void mixtureGivesLlamaCppsPerplexity() throws IOException {
        Path file = dir.resolve("nemotron-h-moe-mini.gguf");
        writeMixture(dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().weights().layers()[1].feedForward() instanceof FeedForward.MoE moe && moe.w1() == null && moe.shared().ffn().w1() == null
                && moe.routing() == FeedForward.Routing.SIGMOID_RENORMALIZED && moe.scale() == 2.5f && moe.selectionBias() != null);
        assertEquals(60924.2566, LlamaLikeTest.perplexity(c), 1e-6 * 60924.2566);
        assertEquals("this model's Mamba-2 layers (nemotron_h_moe) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(c.model().config, 2)).getMessage());
    }

    /** A split across processes is refused in one line; so are feed-forwards of two widths. */
    @Test
    void refusesWhatItCannotRun() {
        assertEquals("this model's Mamba-2 layers (nemotron_h) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(nemotron.model().config, 2)).getMessage());
        Path widths = dir.resolve("two-widths.gguf");
        FamilyFiles.rewrite(dir.resolve("nemotron-h-mini.gguf"), widths,
                md -> md.put("nemotron_h.feed_forward_length", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, new int[]{0, 160, 0, 0, 96, 0, 160})), name -> true, (all, tensors) -> { });
        assertEquals(widths + ": nemotron_h.feed_forward_length gives feed-forwards [160, 96] wide; one width is supported",
                assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(widths, null)).getMessage());
    }
}
