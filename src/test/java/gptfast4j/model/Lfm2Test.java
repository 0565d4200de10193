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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LFM2 ({@code lfm2}): Llama's blocks with most layers' attention replaced by a short convolution ({@link ShortConv}),
 * each attention head's query and key RMS-normalized, RoPE on halves. A random-weight model written here (LlamaLikeTest's
 * shape, layers 0, 1 and 3 convolutions of 3 taps, layer 2 attention) against llama.cpp de3ff81's {@code
 * llama-perplexity -m FILE -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the file this test writes.
 */
public class Lfm2Test {

    /** The convolution layers of the test model. */
    static final boolean[] CONVOLUTIONS = {true, true, false, true};

    /** Writes the mini LFM2 model to {@code out} ({@code scratch} for the Llama file it is made from). */
    public static void write(Path scratch, Path out) {
        write(LlamaLikeTest.SHAPE, "lfm2", CONVOLUTIONS, 0, scratch, out);
    }

    /**
     * Writes to {@code out} an {@code arch} model of {@code shape} whose layers {@code convolutions} flags are
     * convolutions of 3 taps (random kernels and projections), the others attention with query and key norms; of a
     * mixture's shape, its first {@code dense} layers dense (random matrices) and the others' routers given a selection
     * bias, as LFM2-MoE's.
     */
    static void write(ModelShape shape, String arch, boolean[] convolutions, int dense, Path scratch, Path out) {
        int dim = shape.dim(), headDim = dim / shape.heads(), layers = convolutions.length;
        int[] kvHeads = new int[layers];
        for (int l = 0; l < layers; l++) kvHeads[l] = convolutions[l] ? 0 : shape.kvHeads();
        FamilyFiles.write(shape, arch, scratch, out, md -> {
            md.put(arch + ".attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, kvHeads));
            md.put(arch + ".shortconv.l_cache", Metadata.Value.uint32(3));
            if (shape.experts() > 0) {
                md.put(arch + ".leading_dense_block_count", Metadata.Value.uint32(dense));
                md.put(arch + ".expert_feed_forward_length", Metadata.Value.uint32(shape.hiddenDim()));
                md.put(arch + ".expert_gating_func", Metadata.Value.uint32(2));
            }
        }, name -> !name.equals("output_norm.weight") && !(layer(name) >= 0 && (convolutions[layer(name)] && name.contains(".attn_") && !name.contains("attn_norm")
                        || layer(name) < dense && (name.contains("_exps.") || name.contains("gate_inp")))),
                (Map<String, TensorData> llama, List<GGUFWriter.TensorSpec> tensors) -> {
            FamilyFiles.norm(tensors, "token_embd_norm.weight", dim, 99);
            for (int l = 0; l < layers; l++) {
                String p = "blk." + l + ".";
                if (convolutions[l]) {
                    FamilyFiles.matrix(tensors, p + "shortconv.in_proj.weight", new long[]{dim, 3L * dim}, 100 + l);
                    FamilyFiles.matrix(tensors, p + "shortconv.conv.weight", new long[]{3, dim}, 200 + l);
                    FamilyFiles.matrix(tensors, p + "shortconv.out_proj.weight", new long[]{dim, dim}, 300 + l);
                } else {
                    FamilyFiles.norm(tensors, p + "attn_q_norm.weight", headDim, 400 + l);
                    FamilyFiles.norm(tensors, p + "attn_k_norm.weight", headDim, 500 + l);
                }
                if (shape.experts() > 0 && l < dense) {
                    FamilyFiles.matrix(tensors, p + "ffn_gate.weight", new long[]{dim, shape.hiddenDim()}, 600 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_up.weight", new long[]{dim, shape.hiddenDim()}, 700 + l);
                    FamilyFiles.matrix(tensors, p + "ffn_down.weight", new long[]{shape.hiddenDim(), dim}, 800 + l);
                } else if (shape.experts() > 0) {
                    FamilyFiles.bias(tensors, p + "exp_probs_b.bias", new long[]{shape.experts()}, 900 + l);
                }
            }
        });
    }

    /** The layer of tensor {@code name}, or -1 for none. */
    private static int layer(String name) {
        return name.startsWith("blk.") ? Integer.parseInt(name.substring(4, name.indexOf('.', 4))) : -1;
    }

    @TempDir
    static Path dir;
    static Checkpoint lfm2;

    @BeforeAll
    static void writeModel() {
        write(dir.resolve("llama.gguf"), dir.resolve("lfm2-mini.gguf"));
        lfm2 = Checkpoint.load(dir.resolve("lfm2-mini.gguf"), null);
        DecodeEachTest.warmUp(lfm2.model()); // the tests below compare logits bit for bit
    }

    /** llama-perplexity's figure; ours 1e-10 from it. */
    @Test
    void givesLlamaCppsPerplexity() throws IOException {
        Layer[] layers = lfm2.model().weights().layers();
        for (int l = 0; l < layers.length; l++) assertEquals(CONVOLUTIONS[l], layers[l].shortConv() != null, "layer " + l);
        assertEquals(Config.RopeStyle.HALVES, lfm2.model().config.ropeStyle());
        assertEquals(50188.3103, LlamaLikeTest.perplexity(lfm2), 1e-6 * 50188.3103);
    }

    /**
     * LFM2-MoE ({@code lfm2moe}): the same blocks, the first layer's feed-forward dense and the others' a mixture of
     * experts chosen by sigmoids plus a selection bias, their weights renormalized. A random model of 3 layers
     * (convolution, attention, convolution), 8 experts, 3 used: llama-perplexity's figure, ours 8e-9 from it.
     */
    @Test
    void mixtureGivesLlamaCppsPerplexity() throws IOException {
        ModelShape shape = new ModelShape("lfm2moe-mini", 64, 96, 3, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 8, 3);
        Path file = dir.resolve("lfm2moe-mini.gguf");
        write(shape, "lfm2moe", new boolean[]{true, false, true}, 1, dir.resolve("mixtral.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Layer[] layers = c.model().weights().layers();
        assertTrue(layers[0].feedForward() instanceof FeedForward.Dense && layers[2].shortConv() != null
                && layers[2].feedForward() instanceof FeedForward.MoE moe && moe.selectionBias() != null);
        assertEquals(49508.1491, LlamaLikeTest.perplexity(c), 1e-6 * 49508.1491);
    }

    /** The first 48 tokens of ppl-text.txt. */
    private static int[] text() throws IOException {
        return LlamaLikeTest.pplTokens(lfm2, 48);
    }

    /**
     * The convolutions' inputs are kept by position as keys and values are: decode steps give a batch's logits, a
     * rewind to an earlier position (another text run past it first) gives them again, and a cache written to a file
     * and read into a fresh state goes on as the state it was written from, bit for bit. A shift moves a convolution
     * layer's rows as it moves keys and values.
     */
    @Test
    void convolutionInputsAreKeptByPosition() throws IOException {
        Llama m = lfm2.model();
        int[] text = text();
        int n = text.length, vocab = m.config.vocabSize();
        Llama.State batch = m.newState(128, 64, 1, KvCache.Type.F32);
        float[] whole = m.forward(batch, text, 0, n, 0, null).clone();
        Llama.State steps = m.newState(128, 64, 1, KvCache.Type.F32);
        float[] last = null;
        for (int p = 0; p < n; p++) last = m.forward(steps, text[p], p).clone();
        assertArrayEquals(whole, java.util.Arrays.copyOf(last, vocab), 2e-4f);
        int[] other = new int[12];
        java.util.Arrays.fill(other, text[3]);
        m.forward(steps, other, 0, other.length, 20, null);
        float[] again = m.forward(steps, text, 20, n - 20, 20, null);
        assertArrayEquals(whole, java.util.Arrays.copyOf(again, vocab), 2e-4f);

        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        batch.writeCache(java.nio.channels.Channels.newChannel(bytes), n);
        assertEquals(n * batch.cacheBytesPerPosition(), bytes.size());
        Llama.State read = m.newState(128, 64, 1, KvCache.Type.F32);
        read.readCache(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(bytes.toByteArray())), n);
        assertArrayEquals(m.forward(batch, text[5], n).clone(), m.forward(read, text[5], n).clone());

        float[] before = new float[m.config.dim()];
        for (int i = 0; i < before.length; i++) before[i] = batch.kv.conv(0, 30, i);
        m.shift(batch, 4, 10, n + 1);
        for (int i = 0; i < before.length; i++) assertEquals(before[i], batch.kv.conv(0, 20, i));
    }

    /** What is not run is refused in one line: a split across processes, bidirectional and sliding-window files. */
    @Test
    void refusesWhatItDoesNotRun() {
        IllegalArgumentException split = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> TensorParallel.check(lfm2.model().config, 2));
        assertEquals("this model's convolution layers (lfm2) cannot be split across processes yet", split.getMessage());
        Path file = dir.resolve("lfm2-mini.gguf");
        for (String[] key : new String[][]{{"lfm2.attention.causal", "a bidirectional lfm2 model (an embedding model) is not supported"},
                {"lfm2.attention.sliding_window", "an lfm2 model with sliding-window attention is not supported"}}) {
            Path changed = dir.resolve("changed.gguf");
            FamilyFiles.rewrite(file, changed, md -> md.put(key[0], key[0].endsWith("causal") ? Metadata.Value.bool(false) : Metadata.Value.uint32(512)), name -> true, (all, tensors) -> { });
            var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(changed, null));
            assertEquals(changed + ": " + key[1], e.getMessage());
        }
    }

}
