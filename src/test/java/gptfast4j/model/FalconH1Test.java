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
 * Falcon-H1 ({@code falcon-h1}): in every layer attention (RoPE on halves) and a Mamba-2 mixer side by side on the same
 * normalized input, their outputs added to the residual together, then a SwiGLU feed-forward. A random-weight model
 * written here (width 64, 4 layers, 4 heads of 16 sharing 2 kv heads, FFN 160 wide; FamilyFiles' Mamba-2 mixers, the
 * odd layers' without their grouped norm; the FFN's norm named {@code ffn_norm}, as the converter writes it) against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt
 * -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the file this test writes.
 */
public class FalconH1Test {
    /** Writes the mini Falcon-H1 model to {@code out} ({@code scratch} for the Llama file it is made from). */
    public static void write(Path scratch, Path out) {
        ModelShape shape = new ModelShape("falcon-h1-mini", 64, 160, 4, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);
        FamilyFiles.write(shape, "falcon-h1", scratch, out, md -> {
            md.put("falcon-h1.attention.key_length", Metadata.Value.uint32(16));
            md.put("falcon-h1.attention.value_length", Metadata.Value.uint32(16));
            FamilyFiles.mamba2Metadata(md, "falcon-h1");
        }, name -> !name.endsWith(".ffn_norm.weight"), (llama, tensors) -> {
            for (int l = 0; l < shape.layers(); l++) {
                // the FFN's norm without ".weight", as the converter names it
                gptfast4j.io.TensorData norm = llama.get("blk." + l + ".ffn_norm.weight");
                tensors.add(new gptfast4j.io.GGUFWriter.TensorSpec("blk." + l + ".ffn_norm", norm.type(), norm.shape(), target -> target.copyFrom(norm.data())));
                FamilyFiles.mamba2(tensors, l, shape.dim());
                String ssmNorm = "blk." + l + ".ssm_norm.weight";
                if (l % 2 == 1) tensors.removeIf(t -> t.name().equals(ssmNorm));
            }
        });
    }

    @TempDir
    static Path dir;
    static Checkpoint falcon;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("llama.gguf"), dir.resolve("falcon-h1-mini.gguf"));
        falcon = Checkpoint.load(dir.resolve("falcon-h1-mini.gguf"), null);
    }

    /** llama-perplexity's figure (47239.6413); ours 3e-9 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        Layer[] layers = falcon.model().weights().layers();
        for (int l = 0; l < layers.length; l++) {
            assertTrue(layers[l].recurrent() instanceof Mamba2 m && m.besideAttention() && (m.norm() == null) == (l % 2 == 1) && layers[l].attends(), "layer " + l);
        }
        assertEquals(Config.RopeStyle.HALVES, falcon.model().config.ropeStyle());
        assertEquals(47239.6413, LlamaLikeTest.perplexity(falcon), 1e-6 * 47239.6413);
    }

    /** A split across processes is refused in one line; every layer's keys and values are cached. */
    @Test
    void refusesASplitAndCachesEveryLayer() {
        assertEquals("this model's Mamba-2 layers (falcon-h1) cannot be split across processes yet",
                assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(falcon.model().config, 2)).getMessage());
        Config c = falcon.model().config;
        assertEquals(KvCache.of(KvCache.Type.F32, c, c.nKvHeads(), 256).bytes(), falcon.model().newState(256, 8, 8, KvCache.Type.F32).kvBytes());
    }
}
