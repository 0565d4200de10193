package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.bench.ModelShape;
import gptfast4j.bench.RandomModel;
import gptfast4j.io.GGUF;
import gptfast4j.io.Metadata;
import gptfast4j.quant.Perplexity;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Gemma 3 (GGUF architecture {@code gemma3}): embeddings times sqrt(dim), Qwen3's per-head query and key norms, the
 * attention's and the FFN's outputs normalized before their residuals ({@code post_attention_norm}, {@code
 * post_ffw_norm}), GeGLU, queries scaled by 1/sqrt(headDim), RoPE on halves, and sliding-window layers with their own
 * RoPE base among global ones whose RoPE is linearly scaled. A random-weight model written here (RandomModel's shape
 * of width 64, 4 query heads of 32 sharing one kv head as Gemma 3 1B's do, 3 layers with a window of 24 positions on
 * layers 0 and 1, global RoPE base 1e6 scaled by 8, the sliding layers' base the default 10000, norms of weights 0.5
 * to 1.5, tied output head, a final logit softcap of 5 so that the figures stay finite) against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1
 * -tb 1 -fa off} with {@code -ctk f32 -ctv f32} and with {@code -ctk f16 -ctv f16} on the file this test writes
 * (every run writes the same bytes). llama.cpp's CPU GELU looks its value up in a table of half floats (the input
 * rounded to F16, the result too); ours computes it in floats, as PyTorch's {@code gelu_pytorch_tanh} does, so the
 * figures lie up to 2e-5 apart (ours 7e-6 from llama.cpp's with an F32 cache, 1e-5 with F16) rather than 1e-8. What
 * the parts are worth there: without the window the figure moves by 2.7% (in both engines), with the sliding layers'
 * RoPE base the global one by 0.6%, with every other layer sliding by 1.5%.
 */
class GemmaTest {

    static final ModelShape SHAPE = new ModelShape("gemma3-mini", 64, 160, 3, 4, 1, 32000, 256, 1e6f, 1e-6f, true, 0, 0, 0, 32);

    /** Writes the Gemma 3 model to {@code out} (a Llama file of {@link #SHAPE} at {@code scratch} made first), {@code edit} changing its metadata last. */
    static void write(Path scratch, Path out, Consumer<Map<String, Metadata.Value>> edit) {
        write(SHAPE, "gemma3", scratch, out, md -> {
            md.put("gemma3.attention.sliding_window", Metadata.Value.uint32(24));
            md.put("gemma3.attention.sliding_window_pattern", Metadata.Value.uint32(3));
            md.put("gemma3.rope.scaling.type", Metadata.Value.string("linear"));
            md.put("gemma3.rope.scaling.factor", Metadata.Value.float32(8f));
            md.put("gemma3.final_logit_softcapping", Metadata.Value.float32(5f));
            edit.accept(md);
        });
    }

    /**
     * Writes a model of {@code arch} (gemma, gemma2 or gemma3) to {@code out}: a Llama file of {@code shape} at {@code
     * scratch}, its keys renamed, {@code edit} changing its metadata, the norms added (Gemma 3's per-head ones too,
     * Gemma 1's none).
     */
    static void write(ModelShape shape, String arch, Path scratch, Path out, Consumer<Map<String, Metadata.Value>> edit) {
        FamilyFiles.write(shape, arch, scratch, out, edit, name -> true, (llama, tensors) -> {
            for (int l = 0; l < shape.layers() && !arch.equals("gemma"); l++) {
                if (arch.equals("gemma3")) {
                    FamilyFiles.norm(tensors, "blk." + l + ".attn_q_norm.weight", shape.headDim(), l * 4);
                    FamilyFiles.norm(tensors, "blk." + l + ".attn_k_norm.weight", shape.headDim(), l * 4 + 1);
                }
                FamilyFiles.norm(tensors, "blk." + l + ".post_attention_norm.weight", shape.dim(), l * 4 + 2);
                FamilyFiles.norm(tensors, "blk." + l + ".post_ffw_norm.weight", shape.dim(), l * 4 + 3);
            }
        });
    }

    private static double perplexity(Checkpoint c, KvCache.Type kv) throws IOException {
        return Perplexity.compute(c, null, Files.readString(Shared.REFERENCE.resolve("ppl-text.txt")), 128, kv, chunk -> { }).ppl();
    }

    @Test
    void gemma3GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("gemma3-mini.gguf");
        write(dir.resolve("llama.gguf"), file, md -> { });
        Checkpoint c = Checkpoint.load(file, null);
        Config config = c.model().config;
        assertEquals("gemma3", config.architecture());
        assertEquals(Config.RopeStyle.HALVES, config.ropeStyle());
        assertArrayEquals(new boolean[]{true, true, false}, config.variant().slidingLayers());
        assertEquals(8f, config.variant().embeddingScale());
        assertEquals(1f / (float) Math.sqrt(32), config.variant().queryScale());
        assertEquals(10000f, config.variant().slidingRopeTheta());
        assertEquals(5f, config.variant().logitSoftcap());
        assertEquals(943503.7866, perplexity(c, KvCache.Type.F32), 5e-5 * 943503.7866);
        // the F16 cache's sliding layers convert only their windows' blocks of keys and values (KvCache#head)
        assertEquals(943494.1232, perplexity(c, KvCache.Type.F16), 5e-5 * 943494.1232);
    }

    /** Another period of sliding layers ({@code sliding_window_pattern} 2: layers 0 and 2 slide): llama.cpp's figure too. */
    @Test
    void slidingPatternAsLlamaCppReadsIt(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("gemma3-mini.gguf");
        write(dir.resolve("llama.gguf"), file, md -> md.put("gemma3.attention.sliding_window_pattern", Metadata.Value.uint32(2)));
        Checkpoint c = Checkpoint.load(file, null);
        assertArrayEquals(new boolean[]{true, false, true}, c.model().config.variant().slidingLayers());
        assertEquals(957938.3205, perplexity(c, KvCache.Type.F32), 5e-5 * 957938.3205);
    }

    /**
     * Decode steps (one query at a time: four heads sharing their kv head together, or two kv heads' heads one by one)
     * see the window and the scores' cap as a prompt's batch (four queries at a time) does: the logits of 100 tokens
     * decoded one by one are the batch's within rounding, and a model whose window is wider than the context gives
     * other logits from position 24 on, the same before.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gemma3 1", "gemma2 1", "gemma2 2"})
    void decodeStepsSeeTheWindowAsABatchDoes(String archAndKvHeads, @TempDir Path dir) {
        String arch = archAndKvHeads.split(" ")[0];
        int kvHeads = Integer.parseInt(archAndKvHeads.split(" ")[1]);
        ModelShape shape = new ModelShape("gemma-mini", SHAPE.dim(), SHAPE.hiddenDim(), SHAPE.layers(), SHAPE.heads(), kvHeads, SHAPE.vocab(), SHAPE.context(),
                10000f, SHAPE.rmsEps(), true, 0, 0, 0, SHAPE.headDim());
        Path file = dir.resolve("gemma-mini.gguf"), unwindowed = dir.resolve("unwindowed.gguf");
        for (int window : new int[]{24, 1000}) {
            write(shape, arch, dir.resolve("llama.gguf"), window == 24 ? file : unwindowed, md -> {
                md.put(arch + ".attention.sliding_window", Metadata.Value.uint32(window));
                md.put(arch + ".final_logit_softcapping", Metadata.Value.float32(5f));
                if (arch.equals("gemma2")) md.put(arch + ".attn_logit_softcapping", Metadata.Value.float32(3f));
            });
        }
        Llama model = Checkpoint.load(file, null).model(), plain = Checkpoint.load(unwindowed, null).model();
        int n = 100, vocab = SHAPE.vocab();
        int[] tokens = java.util.stream.IntStream.range(0, n).map(i -> 1 + i * 7919 % (vocab - 1)).toArray();
        float[][] batch = new float[n][];
        model.forward(model.newState(128, n), tokens, 0, n, 0, (pos, logits, offset) -> batch[pos] = java.util.Arrays.copyOfRange(logits, offset, offset + vocab));
        Llama.State steps = model.newState(128, 1), plainSteps = plain.newState(128, 1);
        for (int p = 0; p < n; p++) {
            float[] logits = model.forward(steps, tokens[p], p), other = plain.forward(plainSteps, tokens[p], p);
            float most = 0, apart = 0;
            for (int i = 0; i < vocab; i++) {
                most = Math.max(most, Math.abs(logits[i] - batch[p][i]));
                apart = Math.max(apart, Math.abs(logits[i] - other[i]));
            }
            assertTrue(most < 1e-4f, "position " + p + ": " + most);
            if (p < 24) assertTrue(apart < 1e-4f, "position " + p + ": " + apart);
            else assertFalse(apart < 1e-2f, "position " + p + ": " + apart);
        }
    }

    /**
     * Gemma 2 (GGUF architecture {@code gemma2}): Gemma 3's blocks without the per-head norms, every other layer
     * sliding from the first (a window of 4096 unless the file says), one RoPE base for all, the attention's scores
     * capped at 50 and the logits at 30 unless the file says. Written as above with RoPE base 10000, it gives
     * llama-perplexity's figures (the same command, F32 cache): with those defaults (no window within 128 positions;
     * ours 3e-6 from it), and with a window of 24, the scores capped at 3 and the logits at 5 (ours 3e-5 from it; the
     * scores capped at 1000 instead, the figure moves by 0.4%).
     */
    @Test
    void gemma2GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("gemma2-mini.gguf"), defaults = dir.resolve("gemma2-defaults.gguf");
        write(SHAPE, "gemma2", dir.resolve("llama.gguf"), defaults, md -> md.put("gemma2.rope.freq_base", Metadata.Value.float32(10000f)));
        Checkpoint d = Checkpoint.load(defaults, null);
        Config.Variant v = d.model().config.variant();
        assertEquals(4096, v.slidingWindow());
        assertArrayEquals(new boolean[]{true, false, true}, v.slidingLayers());
        assertEquals(10000f, v.slidingRopeTheta());
        assertEquals(50f, v.attentionSoftcap());
        assertEquals(30f, v.logitSoftcap());
        assertEquals(2419219704764.1826, perplexity(d, KvCache.Type.F32), 5e-5 * 2419219704764.1826);
        write(SHAPE, "gemma2", dir.resolve("llama.gguf"), file, md -> {
            md.put("gemma2.rope.freq_base", Metadata.Value.float32(10000f));
            md.put("gemma2.attention.sliding_window", Metadata.Value.uint32(24));
            md.put("gemma2.attn_logit_softcapping", Metadata.Value.float32(3f));
            md.put("gemma2.final_logit_softcapping", Metadata.Value.float32(5f));
        });
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(null, c.model().weights().layers()[0].qNorm());
        assertEquals(887609.5184, perplexity(c, KvCache.Type.F32), 5e-5 * 887609.5184);
    }

    /**
     * Gemma 1 (GGUF architecture {@code gemma}: Gemma-2B/7B, CodeGemma): Gemma 2's blocks without their norms after
     * the attention and the FFN, without windows and without caps (llama.cpp reads none of those keys for it). Written
     * as above (no post norms, RoPE base 10000), llama-perplexity's figure (the same command, F32 cache; ours 4e-6 from
     * it: GELU's half-float table); its Q4_K_M was llama-quantize's byte for byte (29 tensors).
     */
    @Test
    void gemma1GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("gemma-mini.gguf");
        write(SHAPE, "gemma", dir.resolve("llama.gguf"), file, md -> md.put("gemma.rope.freq_base", Metadata.Value.float32(10000f)));
        Checkpoint c = Checkpoint.load(file, null);
        Config.Variant v = c.model().config.variant();
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertEquals(8f, v.embeddingScale());
        assertEquals(1f / (float) Math.sqrt(32), v.queryScale());
        assertEquals(null, v.slidingLayers());
        assertEquals(0f, v.logitSoftcap());
        assertEquals(0f, v.attentionSoftcap());
        assertEquals(null, c.model().weights().layers()[0].postAttentionNorm());
        assertEquals(1.554828918287191e27, perplexity(c, KvCache.Type.F32), 5e-5 * 1.554828918287191e27);
    }

    /**
     * Quantizing a GGUF whose RoPE turns halves (Gemma's, as Qwen's and Phi's) keeps its query and key rows where they
     * are and adds no tensor: each quantized row is its source row within Q8_0's rounding (the rows of a Hugging Face
     * model, written under llama's keys, were being permuted here too, and a rope_freqs tensor llama.cpp's gemma3
     * refuses, "wrong number of tensors", was added for the linear scaling). With the fix, {@code gptfast quantize
     * --mode q8_0} of this file wrote the 41 tensors of {@code llama-quantize FILE OUT Q8_0} (de3ff81) byte for byte.
     */
    @Test
    void quantizingKeepsTheRowsOfAHalvesModel(@TempDir Path dir) {
        Path file = dir.resolve("gemma3-mini.gguf"), out = dir.resolve("gemma3-q8_0.gguf");
        write(dir.resolve("llama.gguf"), file, md -> { });
        Checkpoint src = Checkpoint.load(file, null);
        gptfast4j.quant.QuantizeModel.plan(src, gptfast4j.quant.QuantizeMode.of("q8_0", "--mode"), gptfast4j.quant.QuantizeModel.Options.NONE).write(out, b -> { });
        GGUF q = GGUF.read(out);
        assertEquals(src.tensors().keySet(), q.tensors().keySet());
        for (String name : new String[]{"blk.0.attn_q.weight", "blk.2.attn_k.weight"}) {
            gptfast4j.tensor.Tensor a = gptfast4j.tensor.Tensor.of(src.tensors().get(name)), b = gptfast4j.tensor.Tensor.of(q.tensors().get(name));
            assertEquals(GGMLType.Q8_0, b.type);
            float[] x = new float[(int) a.cols], y = new float[(int) a.cols];
            for (int r = 0; r < a.rows; r++) {
                a.dequantizeRow(r, x, 0);
                b.dequantizeRow(r, y, 0);
                float most = 0, step = 0;
                for (int i = 0; i < x.length; i++) {
                    most = Math.max(most, Math.abs(x[i] - y[i]));
                    step = Math.max(step, Math.abs(x[i]) / 127);
                }
                assertTrue(most <= step, name + " row " + r + ": " + most + " > " + step);
            }
        }
    }
}
