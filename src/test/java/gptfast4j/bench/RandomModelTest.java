package gptfast4j.bench;

import gptfast4j.Shared;
import gptfast4j.generate.Generator;
import gptfast4j.generate.Sampler;
import gptfast4j.io.GGUF;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** make-model writes a GGUF of the shape asked for, with llama.cpp's keys and a real tokenizer, that runs. */
class RandomModelTest {
    @Test
    void stories15MRoundTrips(@TempDir Path dir) throws IOException {
        ModelShape shape = ModelShape.named("stories15M");
        Path out = dir.resolve("s15.gguf");
        RandomModel.write(shape, GGMLType.Q8_0, out, Shared.TOKENIZERS, b -> { });
        GGUF gguf = GGUF.read(out);
        assertEquals(7, gguf.metadata().getInt("general.file_type", -1));
        assertEquals(RandomModel.dataBytes(shape, GGMLType.Q8_0), gguf.tensors().values().stream().mapToLong(t -> t.data().byteSize()).sum());
        Checkpoint c = Checkpoint.load(out, null);
        Config config = c.model().config;
        assertEquals(new Config("llama", 288, 768, 6, 6, 6, 32000, 256, 1e-5f, 10000f, null, Config.RopeStyle.INTERLEAVED, 0, 0), config);
        assertEquals(32000, c.tokenizer().vocabSize());
        assertEquals("▁Hello", c.tokenizer().piece(c.tokenizer().encode("Hello")[0]));
        int[] tokens = new Generator(c.model(), c.model().newState(16, 8), c.eos())
                .generate(new int[]{1, 15043}, 0, 8, new Sampler(32000, 0, 0, 1, 0), t -> true).tokens();
        assertTrue(tokens.length > 0);
        assertEquals(0, dir.toFile().list((d, name) -> name.endsWith(".partial")).length, "no temporary file left");
        assertTrue(Files.exists(out));
        // the file's permissions are those of any file created here, not a temporary file's owner-only ones
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) assertEquals(Files.getPosixFilePermissions(Files.createFile(dir.resolve("plain"))), Files.getPosixFilePermissions(out));
    }

    /**
     * A Gemma 3 shape: its keys under {@code gemma3.}, Gemma 3 1B's window of 512 on five layers of six, its four
     * extra norms per layer, and Gemma's vocabulary size as Llama-2's tokenizer padded with unused tokens, which text
     * never becomes (llama-tokenize de3ff81 splits "<unused0>" as we do; llama-bench runs make-model's gemma3-1b file as "gemma3 1B Q8_0", 999.89 M parameters).
     */
    @Test
    void gemma3ShapeIsGemmas(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("gemma3-tiny", 64, 128, 6, 4, 1, 262144, 1024, 1e6f, 1e-6f, true, 0, 0, 0, 32, "gemma3"), GGMLType.Q8_0, dir);
        Config config = c.model().config;
        assertEquals("gemma3", config.architecture());
        assertEquals(512, config.variant().slidingWindow());
        assertEquals("[true, true, true, true, true, false]", java.util.Arrays.toString(config.variant().slidingLayers()));
        assertEquals(32, config.headDim());
        assertTrue(c.model().weights().layers()[5].postFfnNorm() != null);
        assertEquals(262144, c.tokenizer().vocabSize());
        assertEquals("<unused0>", c.tokenizer().piece(32000));
        assertEquals("[15043, 3186]", java.util.Arrays.toString(c.tokenizer().encode("Hello world")));
        assertEquals("[529, 348, 3880, 29900, 29958]", java.util.Arrays.toString(c.tokenizer().encode("<unused0>")));
        assertGenerates(c, 1, 15043);
    }

    /** A model of {@code shape} in {@code type} written in {@code dir}, loaded. */
    private static Checkpoint written(ModelShape shape, GGMLType type, Path dir) {
        Path out = dir.resolve(shape.name() + ".gguf");
        RandomModel.write(shape, type, out, Shared.TOKENIZERS, b -> { });
        return Checkpoint.load(out, null);
    }

    /** Fails unless {@code c} generates greedily from {@code prompt}. */
    private static void assertGenerates(Checkpoint c, int... prompt) {
        int[] tokens = new Generator(c.model(), c.model().newState(16, 8), c.eos())
                .generate(prompt, 0, 8, new Sampler(c.model().config.vocabSize(), 0, 0, 1, 0), t -> true).tokens();
        assertTrue(tokens.length > 0);
    }

    /**
     * A Phi-3 shape: its keys under {@code phi3.}, its fused projections read as Llama's matrices, and Phi-3's
     * vocabulary (its added tokens after Llama-2's, {@code <|end|>} an end of turn; the model's name says Phi-3, so the
     * whitespace after a special token goes, as llama.cpp drops it: llama-tokenize de3ff81 gives these ids on
     * make-model's phi-3-mini file, which llama-bench runs as "phi3 3B Q4_0", 3.82 B parameters).
     */
    @Test
    void phi3ShapeIsPhi3s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("phi3-tiny", 64, 128, 2, 4, 4, 32064, 256, 10000, 1e-5f, false, 0, 0, 0, 16, "phi3"), GGMLType.Q8_0, dir);
        assertEquals("phi3", c.model().config.architecture());
        assertEquals(64, c.model().weights().layers()[1].wq().rows);
        assertEquals(128, c.model().weights().layers()[1].feedForward() instanceof gptfast4j.model.FeedForward.Dense d ? d.w3().rows : -1);
        assertEquals(32064, c.tokenizer().vocabSize());
        assertTrue(java.util.Arrays.stream(c.eos()).anyMatch(id -> id == 32007), java.util.Arrays.toString(c.eos()));
        assertEquals("[32010, 6324, 32007]", java.util.Arrays.toString(c.tokenizer().encodeWithSpecials("<|user|>\nHi<|end|>\n")));
        assertGenerates(c, 1, 15043);
    }

    /**
     * A gpt-oss shape in mxfp4: its experts MXFP4, its other matrices Q8_0, its biases, sinks, window and YaRN, and
     * o200k's vocabulary size as Llama-3's padded; it loads as gpt-oss and generates (make-model's gpt-oss-20b file
     * runs in llama-bench de3ff81 as "gpt-oss 20B MXFP4 MoE", 20.91 B parameters); mxfp4 for a dense shape is refused.
     */
    @Test
    void gptOssShapeIsGptOsss(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("gpt-oss-tiny", 64, 64, 2, 4, 2, 201088, 256, 150000, 1e-5f, false, 0, 4, 2, 16, "gpt-oss"), GGMLType.MXFP4, dir);
        assertEquals("gpt-oss", c.model().config.architecture());
        assertEquals(128, c.model().config.variant().slidingWindow());
        assertEquals(32f, c.model().config.variant().yarn().factor());
        gptfast4j.model.Layer layer = c.model().weights().layers()[1];
        assertEquals(GGMLType.Q8_0, layer.wq().type);
        assertEquals(GGMLType.MXFP4, ((gptfast4j.model.FeedForward.MoE) layer.feedForward()).w1()[3].type);
        assertEquals(4, layer.sinks().length);
        assertEquals(201088, c.tokenizer().vocabSize());
        assertGenerates(c, 128000, 9906);
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> RandomModel.write(ModelShape.named("stories15M"), GGMLType.MXFP4, dir.resolve("s.gguf"), Shared.TOKENIZERS, b -> { }));
        assertEquals("mxfp4 is for the experts of a mixture (llama.cpp's MXFP4_MOE); stories15M has none", e.getMessage());
    }

    /**
     * A Qwen3 mixture's shape: its keys under {@code qwen3moe.}, its experts' width as {@code expert_feed_forward_length},
     * each head's query and key norms, and Qwen's vocabulary size as Llama-3's padded; it loads and generates
     * (make-model's qwen3-30b-a3b file runs in llama-bench de3ff81 as "qwen3moe 30B.A3B Q4_0", 30.53 B parameters).
     */
    @Test
    void qwen3MoeShapeIsQwen3s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("qwen3moe-tiny", 64, 32, 2, 4, 2, 151936, 256, 1e6f, 1e-6f, false, 0, 8, 2, 32, "qwen3moe"), GGMLType.Q8_0, dir);
        assertEquals("qwen3moe", c.model().config.architecture());
        assertEquals(32, c.model().config.hiddenDim());
        assertEquals(32, c.model().weights().layers()[1].qNorm().length);
        assertEquals(151936, c.tokenizer().vocabSize());
        assertGenerates(c, 128000, 9906);
    }

    /**
     * A Qwen2 mixture's shape: its query, key and value biases, and a gated shared expert four experts wide; it loads
     * and generates (make-model's qwen1.5-moe-a2.7b file runs in llama-bench de3ff81 as "qwen2moe A2.7B Q4_0", 14.32 B
     * parameters, as the real model's).
     */
    @Test
    void qwen2MoeShapeIsQwen2s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("qwen2moe-tiny", 64, 32, 2, 4, 2, 151936, 256, 1e6f, 1e-6f, false, 0, 8, 2, 32, "qwen2moe"), GGMLType.Q8_0, dir);
        assertEquals("qwen2moe", c.model().config.architecture());
        assertEquals(4 * 32, c.model().weights().layers()[1].qBias().length);
        var moe = (gptfast4j.model.FeedForward.MoE) c.model().weights().layers()[1].feedForward();
        assertEquals(128, moe.shared().ffn().width());
        assertEquals(64, moe.shared().gate().cols);
        assertGenerates(c, 128000, 9906);
    }

    /**
     * DeepSeek-V2-Lite's shape: latent attention of 512 (heads of the shape's width plus 64 rotated), a dense first
     * layer, two shared experts, YaRN; it loads and generates (make-model's deepseek-v2-lite file runs in llama-bench
     * de3ff81 as DeepSeek-V2-Lite's 15.70 B parameters).
     */
    @Test
    void deepSeekV2LiteShapeIsDeepSeekV2s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("deepseek2-tiny", 64, 32, 2, 4, 1, 102400, 256, 1e4f, 1e-6f, false, 0, 8, 2, 32, "deepseek2"), GGMLType.Q8_0, dir);
        assertEquals("deepseek2", c.model().config.architecture());
        gptfast4j.model.LatentAttention latent = c.model().weights().layers()[1].latent();
        assertEquals(java.util.List.of(512, 32, 64, 32), java.util.List.of(latent.rank(), latent.nope(), latent.rope(), latent.valueWidth()));
        assertTrue(c.model().weights().layers()[0].feedForward() instanceof gptfast4j.model.FeedForward.Dense);
        assertEquals(64, ((gptfast4j.model.FeedForward.MoE) c.model().weights().layers()[1].feedForward()).shared().ffn().width());
        assertEquals(40f, c.model().config.variant().yarn().factor());
        assertGenerates(c, 1, 450);
    }

    /**
     * LFM2-1.2B's shape: convolution layers but at LFM2-1.2B's attention layers (here 2 and 5 of 6), those with query and
     * key norms, tied embeddings of 65536 tokens; it loads and generates (make-model's lfm2-1.2b file runs in
     * llama-bench de3ff81 as "lfm2 1.2B Q8_0", 1.17 B parameters, as the real model's).
     */
    @Test
    void lfm2ShapeIsLfm2s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("lfm2-tiny", 64, 32, 6, 4, 2, 65536, 256, 1e6f, 1e-5f, true, 0, 0, 0, 16, "lfm2"), GGMLType.Q8_0, dir);
        gptfast4j.model.Layer[] layers = c.model().weights().layers();
        for (int l = 0; l < layers.length; l++) assertEquals(l != 2 && l != 5, layers[l].shortConv() != null, "layer " + l);
        assertEquals(16, layers[2].qNorm().length);
        assertEquals(65536, c.tokenizer().vocabSize());
        assertGenerates(c, 1, 450);
    }

    /**
     * Qwen3.5-4B's shape: gated delta nets (16 key and 32 value heads of 128) in three layers of four, the fourth
     * attention with gated queries and RoPE on a quarter of each head, Qwen3.5's vocabulary size as Llama-3's padded; it
     * loads and generates (make-model's qwen3.5-4b file runs in llama-bench de3ff81 as "qwen35 4B Q4_0").
     */
    @Test
    void qwen35ShapeIsQwen35s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("qwen35-tiny", 64, 32, 4, 4, 2, 248320, 256, 1e7f, 1e-6f, true, 0, 0, 0, 32, "qwen35"), GGMLType.Q8_0, dir);
        gptfast4j.model.Layer[] layers = c.model().weights().layers();
        for (int l = 0; l < layers.length; l++) assertEquals(l != 3, layers[l].recurrent() instanceof gptfast4j.model.DeltaNet, "layer " + l);
        gptfast4j.model.DeltaNet d = (gptfast4j.model.DeltaNet) layers[0].recurrent();
        assertEquals(java.util.List.of(16, 32, 128, 4), java.util.List.of(d.keyHeads(), d.valueHeads(), d.headWidth(), d.taps()));
        assertTrue(layers[3].queryGates());
        assertEquals(8, c.model().config.rotaryDim());
        assertEquals(248320, c.tokenizer().vocabSize());
        assertGenerates(c, 128000, 9906);
    }

    /**
     * Granite 4.0-H-Micro's shape: Mamba-2 mixers (twice the width in heads of 64, states of 128, one group) but in its attention layers
     * (here 9 and 19 of 20), attention without RoPE, Granite's multipliers, its vocabulary size as Llama-2's padded, and
     * -Tiny's experts beside a shared expert; they load and generate.
     */
    @Test
    void graniteHybridShapeIsGranite4s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("granite-tiny", 64, 32, 20, 4, 2, 100352, 256, 10000, 1e-5f, true, 0, 0, 0, 16, "granitehybrid"), GGMLType.Q8_0, dir);
        gptfast4j.model.Layer[] layers = c.model().weights().layers();
        for (int l = 0; l < layers.length; l++) assertEquals(l != 9 && l != 19, layers[l].recurrent() instanceof gptfast4j.model.Mamba2, "layer " + l);
        gptfast4j.model.Mamba2 m = (gptfast4j.model.Mamba2) layers[0].recurrent();
        // twice the width in heads of 64 (Granite-4.0-H-Micro's 64 at 2048)
        assertEquals(java.util.List.of(2, 64, 128, 1, 4), java.util.List.of(m.heads(), m.headWidth(), m.stateSize(), m.groups(), m.taps()));
        assertTrue(!c.model().config.variant().ropes(0));
        assertEquals(100352, c.tokenizer().vocabSize());
        assertGenerates(c, 1, 450);
        // -Tiny's: experts beside a shared expert 1024 wide
        Checkpoint tiny = written(new ModelShape("granite-tiny-moe", 64, 32, 20, 4, 2, 100352, 256, 10000, 1e-5f, true, 0, 4, 2, 16, "granitehybrid"), GGMLType.Q8_0, dir);
        assertTrue(tiny.model().weights().layers()[0].feedForward() instanceof gptfast4j.model.FeedForward.MoE moe && moe.shared().ffn().width() == 1024);
        assertGenerates(tiny, 1, 450);
    }

    /**
     * Nemotron-H-8B's shape: blocks of a Mamba-2 mixer (128 heads of 64, states of 128, 8 groups), attention or a
     * feed-forward alone (here its first 13: M-M-M-M-M-M*-), its vocabulary size as Llama-3's padded; it loads and
     * generates (make-model's nemotron-h-8b file runs in llama-bench de3ff81).
     */
    @Test
    void nemotronHShapeIsNemotronHs(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("nemotron-tiny", 64, 32, 13, 4, 2, 131072, 256, 10000, 1e-5f, false, 0, 0, 0, 16, "nemotron_h"), GGMLType.Q8_0, dir);
        gptfast4j.model.Layer[] layers = c.model().weights().layers();
        for (int l = 0; l < layers.length; l++) {
            char kind = "M-M-M-M-M-M*-".charAt(l);
            assertEquals(kind == 'M', layers[l].recurrent() instanceof gptfast4j.model.Mamba2, "layer " + l);
            assertEquals(kind == '-', layers[l].feedForward() != null, "layer " + l);
        }
        gptfast4j.model.Mamba2 m = (gptfast4j.model.Mamba2) layers[0].recurrent();
        assertEquals(java.util.List.of(128, 64, 128, 8, 4), java.util.List.of(m.heads(), m.headWidth(), m.stateSize(), m.groups(), m.taps()));
        assertEquals(131072, c.tokenizer().vocabSize());
        assertGenerates(c, 128000, 9906);
    }

    /**
     * Mamba-Codestral-7B's shape: blocks of a Mamba-2 mixer alone (128 heads of 64, states of 128, 8 groups), no head
     * and no feed-forward in its metadata, its vocabulary size as Llama-2's padded; it loads and generates (make-model's
     * mamba-codestral-7b file runs in llama-bench de3ff81).
     */
    @Test
    void mambaCodestralShapeIsMambaCodestrals(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("mamba-tiny", 64, 1, 3, 1, 1, 32768, 1 << 20, 10000, 1e-5f, false, 0, 0, 0, 64, "mamba2"), GGMLType.Q8_0, dir);
        for (gptfast4j.model.Layer layer : c.model().weights().layers()) assertTrue(layer.recurrent() instanceof gptfast4j.model.Mamba2 && layer.feedForward() == null);
        gptfast4j.model.Mamba2 m = (gptfast4j.model.Mamba2) c.model().weights().layers()[0].recurrent();
        assertEquals(java.util.List.of(128, 64, 128, 8, 4), java.util.List.of(m.heads(), m.headWidth(), m.stateSize(), m.groups(), m.taps()));
        assertEquals(0, c.metadata().getInt("mamba2.attention.head_count", -1));
        assertEquals(32768, c.tokenizer().vocabSize());
        assertGenerates(c, 1, 15043);
    }

    /**
     * Falcon-Mamba-7B's shape: blocks of a Mamba mixer alone (channels twice the width, rows of 16 states, dt of rank
     * 256, its input, B and C normalized), its vocabulary size as Llama-2's padded; it loads and generates (make-model's
     * falcon-mamba-7b file runs in llama-bench de3ff81).
     */
    @Test
    void falconMambaShapeIsFalconMambas(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("falcon-mamba-tiny", 64, 1, 3, 1, 1, 65024, 1 << 20, 10000, 1e-5f, false, 0, 0, 0, 64, "mamba"), GGMLType.Q8_0, dir);
        for (gptfast4j.model.Layer layer : c.model().weights().layers()) assertTrue(layer.recurrent() instanceof gptfast4j.model.Mamba1 && layer.feedForward() == null);
        gptfast4j.model.Mamba1 m = (gptfast4j.model.Mamba1) c.model().weights().layers()[0].recurrent();
        assertEquals(java.util.List.of(128, 16, 256, 4), java.util.List.of(m.innerWidth(), m.stateSize(), m.dtRank(), m.taps()));
        assertTrue(m.normed());
        assertEquals(65024, c.tokenizer().vocabSize());
        assertGenerates(c, 1, 15043);
    }

    /**
     * A Phi-2 shape: LayerNorm with biases, fused projections with their bias, no gate, parallel blocks, RoPE on part
     * of each head, a bias on the logits, Phi-2's vocabulary size as Llama-2's padded; it loads as phi2 and generates
     * (make-model's phi-2 file runs in llama-bench de3ff81 as "phi2 3B").
     */
    @Test
    void phi2ShapeIsPhi2s(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("phi2-tiny", 64, 128, 2, 4, 4, 51200, 2048, 10000, 1e-5f, false, 0, 0, 0, 16, "phi2"), GGMLType.Q8_0, dir);
        gptfast4j.model.Config config = c.model().config;
        assertTrue(config.variant().layerNorm() && config.variant().parallelBlocks());
        assertEquals(6, config.rotaryDim()); // 2/5 of 16, even
        gptfast4j.model.Layer layer = c.model().weights().layers()[1];
        assertTrue(layer.attentionNormBias() != null && layer.qBias() != null && layer.outputBias() != null && layer.ffnNorm() == null);
        assertTrue(layer.feedForward() instanceof gptfast4j.model.FeedForward.Dense d && d.w1() == null && d.upBias() != null && d.downBias() != null);
        assertEquals(51200, c.model().weights().outputBias().length);
        assertEquals(51200, c.tokenizer().vocabSize());
        assertGenerates(c, 1, 15043);
    }

    /**
     * A Falcon shape: heads sharing one kv head, LayerNorm with biases, fused projections, no gate, parallel blocks with
     * one norm, tied embeddings, Falcon's vocabulary size as Llama-2's padded; it loads as falcon and generates
     * (make-model's falcon-7b file runs in llama-bench de3ff81 as "falcon 7B").
     */
    @Test
    void falconShapeIsFalcons(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("falcon-tiny", 96, 384, 2, 6, 1, 65024, 2048, 10000, 1e-5f, true, 0, 0, 0, 16, "falcon"), GGMLType.Q8_0, dir);
        gptfast4j.model.Config config = c.model().config;
        assertTrue(config.variant().layerNorm() && config.variant().parallelBlocks());
        assertEquals(java.util.List.of(6, 1), java.util.List.of(config.nHeads(), config.nKvHeads()));
        gptfast4j.model.Layer layer = c.model().weights().layers()[1];
        assertTrue(layer.attentionNormBias() != null && layer.ffnNorm() == null && layer.feedForward() instanceof gptfast4j.model.FeedForward.Dense d && d.w1() == null);
        assertTrue(c.model().weights().output() == c.model().weights().tokEmbeddings());
        assertGenerates(c, 1, 15043);
    }

    /**
     * A BitNet shape: norms of wo's and w2's inputs, tied embeddings; it loads as bitnet and generates, and its F16 file
     * quantizes to TQ2_0 (make-model's bitnet-large file, so quantized, runs in llama-bench de3ff81 as "bitnet").
     */
    @Test
    void bitnetShapeIsBitnets(@TempDir Path dir) {
        Checkpoint c = written(new ModelShape("bitnet-tiny", 256, 512, 2, 4, 4, 32000, 2048, 10000, 1e-5f, true, 0, 0, 0, 64, "bitnet"), GGMLType.F16, dir);
        gptfast4j.model.Layer layer = c.model().weights().layers()[1];
        assertTrue(layer.attendedNorm().length == 256 && layer.feedForward() instanceof gptfast4j.model.FeedForward.Dense d && d.hiddenNorm().length == 512);
        assertTrue(c.model().weights().output() == c.model().weights().tokEmbeddings());
        assertGenerates(c, 1, 15043);
        Path tq = dir.resolve("bitnet-tq2_0.gguf");
        gptfast4j.quant.QuantizeModel.plan(c, gptfast4j.quant.QuantizeMode.of("tq2_0", "--mode"), gptfast4j.quant.QuantizeModel.Options.NONE).write(tq, b -> { });
        assertEquals(GGMLType.TQ2_0, gptfast4j.io.GGUF.read(tq).tensors().get("blk.1.ffn_up.weight").type());
        assertGenerates(Checkpoint.load(tq, null), 1, 15043);
    }

    /** K-quant files: random blocks with super-block scales that keep the weights near the asked spread, and they run. */
    @ParameterizedTest
    @ValueSource(strings = {"Q4_K", "Q5_K", "Q6_K"})
    void kQuantWeightsHaveTheAskedSpread(String typeName, @TempDir Path dir) {
        GGMLType type = GGMLType.valueOf(typeName);
        Path out = dir.resolve("s15.gguf");
        RandomModel.write(ModelShape.named("stories15M"), type, out, Shared.TOKENIZERS, b -> { });
        Checkpoint c = Checkpoint.load(out, null);
        // stories15M is 288 wide, not a multiple of 256: those rows fall back to Q8_0; ffn_down's rows are 768 wide
        assertEquals(GGMLType.Q8_0, c.tensors().get("blk.0.attn_q.weight").type());
        Tensor down = Tensor.of(c.tensors().get("blk.0.ffn_down.weight"));
        assertEquals(type, down.type);
        float[] row = new float[down.cols];
        double sumSquares = 0;
        for (long r = 0; r < down.rows; r++) {
            down.dequantizeRow(r, row, 0);
            for (float w : row) sumSquares += w * w;
        }
        double std = Math.sqrt(sumSquares / (down.rows * down.cols)), asked = 1 / Math.sqrt(768);
        assertTrue(std > asked / 3 && std < asked * 3, "weight spread " + std + " for " + asked);
        float[] logits = c.model().forward(c.model().newState(8, 1), 1, 0);
        for (float l : logits) assertTrue(Float.isFinite(l));
    }
}
