package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.bench.ModelShape;
import gptfast4j.bench.RandomModel;
import gptfast4j.io.GGUF;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;
import gptfast4j.quant.Perplexity;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Phi-3 (GGUF architecture {@code phi3}: Phi-3, 3.5, Phi-4-mini, Phi-4): Llama's blocks with the query, key and value
 * projections in one tensor ({@code attn_qkv}) and the gate and up projections in one ({@code ffn_up}, the gate's rows
 * first), RoPE on halves, LongRoPE (the {@code rope_factors_short} frequency factors up to the original context, the
 * {@code rope_factors_long} ones past it, cosines and sines scaled by {@code rope.scaling.attn_factor}), and in
 * Phi-4-mini RoPE on only the first elements of each head. A random-weight model written here (RandomModel's Llama
 * shape of width 64, 4 heads of 16 sharing 2 kv heads, its projections fused, factors of 1 to 4, an attention factor
 * of 1.19, an original context of 64) against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c
 * 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the file this test writes (every run writes the same bytes): at 128
 * positions llama.cpp takes the long factors, as we do; ours lie 3e-8 from its figures. What the parts are worth: the
 * short factors in place of the long move the figure by 4.5%, the attention factor left out by 1.1%.
 */
class PhiTest {

    static final ModelShape SHAPE = new ModelShape("phi3-mini", 64, 160, 2, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);

    /** Writes the model to {@code out} (a Llama file of {@link #SHAPE} at {@code scratch} made first), {@code edit} changing its metadata last. */
    static void write(Path scratch, Path out, int ropeDim, Consumer<Map<String, Metadata.Value>> edit) {
        FamilyFiles.write(SHAPE, "phi3", scratch, out, md -> {
            // not "phi3-mini": llama.cpp gives a model so named Phi-3's stripping of whitespace after special tokens,
            // which wants Phi-3's own vocabulary
            md.put("general.name", Metadata.Value.string("mini (random weights)"));
            md.put("phi3.rope.dimension_count", Metadata.Value.uint32(ropeDim));
            md.put("phi3.rope.scaling.attn_factor", Metadata.Value.float32(1.19f));
            md.put("phi3.rope.scaling.original_context_length", Metadata.Value.uint32(64));
            edit.accept(md);
        }, name -> !name.matches("blk\\.\\d+\\.(attn_[qkv]|ffn_gate|ffn_up)\\.weight"), (t, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                String p = "blk." + l + ".";
                FamilyFiles.fused(tensors, p + "attn_qkv.weight", t.get(p + "attn_q.weight"), t.get(p + "attn_k.weight"), t.get(p + "attn_v.weight"));
                FamilyFiles.fused(tensors, p + "ffn_up.weight", t.get(p + "ffn_gate.weight"), t.get(p + "ffn_up.weight"));
            }
            factors(tensors, "rope_factors_short.weight", ropeDim / 2, 0);
            factors(tensors, "rope_factors_long.weight", ropeDim / 2, 1);
        });
    }

    /** Frequency factors of 1 to 4. */
    private static void factors(List<GGUFWriter.TensorSpec> tensors, String name, int n, int seed) {
        tensors.add(new GGUFWriter.TensorSpec(name, GGMLType.F32, new long[]{n}, target -> {
            for (int i = 0; i < n; i++) target.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, 1f + ((i * 37 + seed * 11) % 31) / 10f);
        }));
    }

    private static double perplexity(Checkpoint c) throws IOException {
        return Perplexity.compute(c, null, Files.readString(Shared.REFERENCE.resolve("ppl-text.txt")), 128, KvCache.Type.F32, chunk -> { }).ppl();
    }

    @Test
    void phi3GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("phi3-mini.gguf");
        write(dir.resolve("llama.gguf"), file, 16, md -> { });
        Checkpoint c = Checkpoint.load(file, null);
        Config config = c.model().config;
        assertEquals(Config.RopeStyle.HALVES, config.ropeStyle());
        assertNotNull(config.variant().longRopeFactors());
        assertEquals(46235.4035, perplexity(c), 1e-6 * 46235.4035);
        // an original context of 256: the short factors at 128 positions, in both engines
        Path shortFactors = dir.resolve("short.gguf");
        write(dir.resolve("llama.gguf"), shortFactors, 16, md -> md.put("phi3.rope.scaling.original_context_length", Metadata.Value.uint32(256)));
        assertEquals(48302.5921, perplexity(Checkpoint.load(shortFactors, null)), 1e-6 * 48302.5921);
    }

    /** Phi-4-mini's RoPE on the first 12 of each head's 16 elements (its 96 of 128): llama.cpp's figure too. */
    @Test
    void partialRotaryAsLlamaCppRotates(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("phi4-mini.gguf");
        write(dir.resolve("llama.gguf"), file, 12, md -> { });
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(12, c.model().config.rotaryDim());
        assertEquals(47668.9704, perplexity(c), 1e-6 * 47668.9704);
    }
}
