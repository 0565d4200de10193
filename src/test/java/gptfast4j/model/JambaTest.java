package gptfast4j.model;

import gptfast4j.bench.ModelShape;
import gptfast4j.io.Metadata;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Jamba ({@code jamba}): Mamba mixers ({@link Mamba1}, dt's input, B and C RMS-normalized by weights of their own) in
 * place of attention in the layers whose {@code head_count_kv} is 0, attention without RoPE in the others, each layer
 * with a feed-forward, every other one a mixture of experts weighed by their softmax probabilities as they are. A
 * random-weight model written here (width 64, 4 layers: {@link #PATTERN}, M Mamba, A attention of 4 heads of 16
 * sharing 2; the odd layers' feed-forwards 8 experts 32 wide, 2 used, the even ones' dense, 32 wide; MambaTest's mixers)
 * against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32}
 * on the file this test writes.
 */
public class JambaTest {
    static final String PATTERN = "MMAM";

    /** Writes the mini Jamba model to {@code out} ({@code scratch} for the Mixtral file it is made from). */
    public static void write(Path scratch, Path out) {
        ModelShape shape = new ModelShape("jamba-mini", 64, 32, PATTERN.length(), 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 8, 2);
        int dim = shape.dim(), layers = shape.layers();
        int[] kvHeads = new int[layers];
        for (int l = 0; l < layers; l++) kvHeads[l] = PATTERN.charAt(l) == 'A' ? shape.kvHeads() : 0;
        FamilyFiles.write(shape, "jamba", scratch, out, md -> {
            md.put("jamba.attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, kvHeads));
            md.put("jamba.ssm.conv_kernel", Metadata.Value.uint32(4));
            md.put("jamba.ssm.inner_size", Metadata.Value.uint32(MambaTest.INNER));
            md.put("jamba.ssm.state_size", Metadata.Value.uint32(MambaTest.STATES));
            md.put("jamba.ssm.time_step_rank", Metadata.Value.uint32(MambaTest.RANK));
        }, name -> {
            if (!name.startsWith("blk.")) return true;
            int l = Integer.parseInt(name.split("\\.")[1]);
            // attention's matrices in the attention layer alone, experts in the odd layers alone
            return name.contains("_norm") || name.contains(".attn_") && PATTERN.charAt(l) == 'A' || name.contains(".ffn_") && l % 2 == 1;
        }, (mixtral, tensors) -> {
            for (int l = 0; l < layers; l++) {
                String p = "blk." + l + ".";
                if (PATTERN.charAt(l) == 'M') {
                    MambaTest.mixer(tensors, l, dim);
                    FamilyFiles.norm(tensors, p + "ssm_dt_norm.weight", MambaTest.RANK, 1100 + l);
                    FamilyFiles.norm(tensors, p + "ssm_b_norm.weight", MambaTest.STATES, 1200 + l);
                    FamilyFiles.norm(tensors, p + "ssm_c_norm.weight", MambaTest.STATES, 1300 + l);
                }
                if (l % 2 == 0) {
                    FamilyFiles.matrix(tensors, p + "ffn_gate.weight", new long[]{dim, shape.hiddenDim()}, 1400 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_up.weight", new long[]{dim, shape.hiddenDim()}, 1500 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_down.weight", new long[]{shape.hiddenDim(), dim}, 1600 + l);
                }
            }
        });
    }

    @TempDir
    static Path dir;
    static Checkpoint jamba;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("mixtral.gguf"), dir.resolve("jamba-mini.gguf"));
        jamba = Checkpoint.load(dir.resolve("jamba-mini.gguf"), null);
    }

    /** llama-perplexity's figure (52185.9174); ours 2.1e-8 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        Layer[] layers = jamba.model().weights().layers();
        for (int l = 0; l < layers.length; l++) {
            assertEquals(PATTERN.charAt(l) == 'M', layers[l].recurrent() instanceof Mamba1 m && m.dtNorm() != null, "layer " + l);
            assertEquals(l % 2 == 1, layers[l].feedForward() instanceof FeedForward.MoE moe && moe.routing() == FeedForward.Routing.SOFTMAX, "layer " + l);
        }
        assertTrue(!jamba.model().config.variant().ropes(2));
        assertEquals(52185.9174, LlamaLikeTest.perplexity(jamba), 1e-6 * 52185.9174);
    }

    /** A split across processes is refused in one line; the KV cache is the attention layer's alone (1 of 4). */
    @Test
    void refusesASplitAndCachesTheAttentionLayerAlone() {
        assertEquals("this model's Mamba layers (jamba) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(jamba.model().config, 2)).getMessage());
        Config c = jamba.model().config;
        assertEquals(KvCache.of(KvCache.Type.F32, c, c.nKvHeads(), 256).bytes() / c.nLayers(), jamba.model().newState(256, 8, 8, KvCache.Type.F32).kvBytes());
    }
}
