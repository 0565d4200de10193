package gptfast4j.model;

import gptfast4j.bench.ModelShape;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mamba ({@code mamba}: state-spaces' Mamba, Falcon-Mamba): every block a norm and a Mamba mixer ({@link Mamba1}) with
 * its residual. A random-weight model written here (width 64, 4 blocks; mixers of 128 channels with rows of 16 states,
 * dt of rank 4, convolutions of 4 taps), and Falcon-Mamba's kind of it (dt's input, B and C RMS-normalized), against
 * llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1} on the files this test writes.
 */
public class MambaTest {
    static final int INNER = 128, STATES = 16, RANK = 4;

    /** Writes the mini Mamba model to {@code out} ({@code scratch} for the Llama file it is made from); Falcon-Mamba's kind where {@code normed}. */
    public static void write(Path scratch, Path out, boolean normed) {
        ModelShape shape = new ModelShape("mamba-mini", 64, 160, 4, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);
        FamilyFiles.write(shape, "mamba", scratch, out, md -> {
            // as the converter writes them: no heads, no feed-forward, a context of 2^20
            md.keySet().removeIf(k -> k.startsWith("mamba.attention.head_count_kv") || k.startsWith("mamba.rope."));
            md.put("mamba.attention.head_count", Metadata.Value.uint32(0));
            md.put("mamba.feed_forward_length", Metadata.Value.uint32(0));
            md.put("mamba.context_length", Metadata.Value.uint32(1 << 20));
            md.put("mamba.ssm.conv_kernel", Metadata.Value.uint32(4));
            md.put("mamba.ssm.inner_size", Metadata.Value.uint32(INNER));
            md.put("mamba.ssm.state_size", Metadata.Value.uint32(STATES));
            md.put("mamba.ssm.time_step_rank", Metadata.Value.uint32(RANK));
            md.put("mamba.ssm.dt_b_c_rms", Metadata.Value.bool(normed));
        }, name -> !name.startsWith("blk.") || name.contains("attn_norm"), (llama, tensors) -> {
            for (int l = 0; l < shape.layers(); l++) mixer(tensors, l, shape.dim());
        });
    }

    /**
     * Layer {@code l}'s mini Mamba mixer: ssm_in (x, z), the convolution and its bias, ssm_x, ssm_dt and its bias, A =
     * -exp(A_log) as the converter writes it (negative: each state decaying), D and ssm_out, seeded by the layer.
     */
    static void mixer(List<GGUFWriter.TensorSpec> tensors, int l, int dim) {
        String p = "blk." + l + ".";
        FamilyFiles.matrix(tensors, p + "ssm_in.weight", new long[]{dim, 2 * INNER}, 100 + l);
        FamilyFiles.matrix(tensors, p + "ssm_conv1d.weight", new long[]{4, INNER}, 300 + l);
        FamilyFiles.bias(tensors, p + "ssm_conv1d.bias", new long[]{INNER}, 350 + l);
        FamilyFiles.matrix(tensors, p + "ssm_x.weight", new long[]{INNER, RANK + 2 * STATES}, 450 + l);
        FamilyFiles.matrix(tensors, p + "ssm_dt.weight", new long[]{RANK, INNER}, 470 + l);
        FamilyFiles.bias(tensors, p + "ssm_dt.bias", new long[]{INNER}, 400 + l);
        int seed = 500 + l;
        tensors.add(new GGUFWriter.TensorSpec(p + "ssm_a", GGMLType.F32, new long[]{STATES, INNER}, target -> {
            for (int i = 0; i < STATES * INNER; i++) target.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, -(0.5f + ((i * 37 + seed * 11) % 101) / 50f));
        }));
        FamilyFiles.bias(tensors, p + "ssm_d", new long[]{INNER}, 600 + l);
        FamilyFiles.matrix(tensors, p + "ssm_out.weight", new long[]{INNER, dim}, 900 + l);
    }

    @TempDir
    static Path dir;
    static Checkpoint mamba;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("llama.gguf"), dir.resolve("mamba-mini.gguf"), false);
        mamba = Checkpoint.load(dir.resolve("mamba-mini.gguf"), null);
    }

    /** llama-perplexity's figure (49617.9186); ours 6e-9 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        for (Layer layer : mamba.model().weights().layers()) assertTrue(layer.recurrent() instanceof Mamba1 m && !m.normed() && layer.feedForward() == null);
        assertEquals(49617.9186, LlamaLikeTest.perplexity(mamba), 1e-6 * 49617.9186);
    }

    /** Falcon-Mamba's kind ({@code ssm.dt_b_c_rms}: dt's input, B and C RMS-normalized): llama-perplexity's 48326.2126, ours 9e-9 from it. */
    @Test
    void falconMambaGivesLlamaCppsPerplexity() throws IOException {
        Path file = dir.resolve("falcon-mamba-mini.gguf");
        write(dir.resolve("llama.gguf"), file, true);
        Checkpoint falcon = Checkpoint.load(file, null);
        assertTrue(falcon.model().weights().layers()[0].recurrent() instanceof Mamba1 m && m.normed());
        assertEquals(48326.2126, LlamaLikeTest.perplexity(falcon), 1e-6 * 48326.2126);
    }

    /** A split across processes is refused in one line. */
    @Test
    void refusesASplit() {
        assertEquals("this model's Mamba layers (mamba) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(mamba.model().config, 2)).getMessage());
    }

    /** A state too large to hold (corrupt metadata's: 2^16 channels of 2^16 states) is refused in one line, not allocated. */
    @Test
    void refusesAStateTooLargeToHold() {
        Path huge = dir.resolve("huge-state.gguf");
        FamilyFiles.rewrite(dir.resolve("mamba-mini.gguf"), huge, md -> {
            md.put("mamba.ssm.inner_size", Metadata.Value.uint32(1 << 16));
            md.put("mamba.ssm.state_size", Metadata.Value.uint32(1 << 16));
        }, name -> true, (all, tensors) -> { });
        assertEquals(huge + ": mamba.ssm.* gives each layer a state of 4294967296 floats, more than the 2^28 this engine holds",
                assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(huge, null)).getMessage());
    }
}
