package gptfast4j.model;

import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static gptfast4j.model.LlamaLikeTest.MOE;
import static gptfast4j.model.LlamaLikeTest.perplexity;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepSeek-V2's and V3's multi-head latent attention ({@code deepseek2}, {@link LatentAttention}): random models of
 * {@link LlamaLikeTest#MOE}'s mixtures (a dense first layer, then experts beside a shared expert as wide as two),
 * their attention replaced by a latent one of {@link #RANK}, heads of {@link #NOPE} non-rotated and {@link #ROPE}
 * rotated elements and values {@link #VALUE} wide, against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f
 * ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the files this test writes.
 */
public class LatentAttentionTest {
    static final int RANK = 32, ROPE = 16, NOPE = 24, VALUE = 20, Q_RANK = 48;

    /**
     * Writes a deepseek2 model to {@code out} (scratch files beside it): DeepSeek-V3's way ({@code v3}: queries through
     * a low-rank projection and its norm, the up-projection split into attn_k_b and attn_v_b, experts chosen by
     * sigmoid with a bias, renormalized, times 2.5) or DeepSeek-V2-Lite's as files converted before llama.cpp split
     * the up-projection have it (queries straight from attn_q, attn_kv_b, a softmax's probabilities as they are); both
     * with YaRN x4 of 64 positions and its log multiplier 0.707.
     */
    public static void write(Path dir, Path out, boolean v3) {
        write(dir, out, v3, 0);
    }

    /** {@link #write(Path, Path, boolean)}, its experts in {@code groups} groups of which one is chosen from where more than 1. */
    static void write(Path dir, Path out, boolean v3, int groups) {
        write(dir, out, v3, groups, MOE.heads(), RANK);
    }

    /** {@link #write(Path, Path, boolean, int)} with {@code heads} heads and latents of {@code rank}. */
    static void write(Path dir, Path out, boolean v3, int groups, int heads, int rank) {
        String a = "deepseek2.";
        Path mixture = dir.resolve("deepseek2-dense-first.gguf");
        SharedExpertTest.writeDenseFirst("deepseek2", dir.resolve("mixtral.gguf"), mixture, 2 * MOE.hiddenDim(), v3, false, md -> {
            md.put(a + "expert_shared_count", Metadata.Value.uint32(2));
            md.put(a + "expert_gating_func", Metadata.Value.uint32(v3 ? 2 : 1));
            md.put(a + "expert_weights_norm", Metadata.Value.bool(v3));
            if (v3) md.put(a + "expert_weights_scale", Metadata.Value.float32(2.5f));
        });
        int dim = MOE.dim();
        FamilyFiles.rewrite(mixture, out, md -> {
            md.put(a + "attention.head_count", Metadata.Value.uint32(heads));
            md.put(a + "attention.head_count_kv", Metadata.Value.uint32(v3 ? 1 : heads));
            md.put(a + "attention.kv_lora_rank", Metadata.Value.uint32(rank));
            md.put(a + "attention.q_lora_rank", Metadata.Value.uint32(v3 ? Q_RANK : 0));
            md.put(a + "rope.dimension_count", Metadata.Value.uint32(ROPE));
            // the widths the converter writes: the latent's where the up-projection is split, a head's where not
            md.put(a + "attention.key_length", Metadata.Value.uint32(v3 ? rank + ROPE : NOPE + ROPE));
            md.put(a + "attention.value_length", Metadata.Value.uint32(v3 ? rank : VALUE));
            if (v3) {
                md.put(a + "attention.key_length_mla", Metadata.Value.uint32(NOPE + ROPE));
                md.put(a + "attention.value_length_mla", Metadata.Value.uint32(VALUE));
            }
            md.put(a + "rope.scaling.type", Metadata.Value.string("yarn"));
            md.put(a + "rope.scaling.factor", Metadata.Value.float32(4f));
            md.put(a + "rope.scaling.original_context_length", Metadata.Value.uint32(64));
            md.put(a + "rope.scaling.yarn_log_multiplier", Metadata.Value.float32(0.0707f));
            if (groups > 1) {
                md.put(a + "expert_group_count", Metadata.Value.uint32(groups));
                md.put(a + "expert_group_used_count", Metadata.Value.uint32(1));
            }
        }, name -> !name.matches("blk\\.\\d+\\.attn_(q|k|v|output)\\.weight"), (file, tensors) -> {
            for (int l = 0; l < MOE.layers(); l++) {
                String p = "blk." + l + ".";
                int seed = 1000 + 10 * l;
                if (v3) {
                    FamilyFiles.matrix(tensors, p + "attn_q_a.weight", new long[]{dim, Q_RANK}, seed);
                    FamilyFiles.norm(tensors, p + "attn_q_a_norm.weight", Q_RANK, seed);
                    FamilyFiles.matrix(tensors, p + "attn_q_b.weight", new long[]{Q_RANK, heads * (NOPE + ROPE)}, seed + 1);
                } else {
                    FamilyFiles.matrix(tensors, p + "attn_q.weight", new long[]{dim, heads * (NOPE + ROPE)}, seed + 1);
                }
                FamilyFiles.matrix(tensors, p + "attn_kv_a_mqa.weight", new long[]{dim, rank + ROPE}, seed + 2);
                FamilyFiles.norm(tensors, p + "attn_kv_a_norm.weight", rank, seed + 2);
                if (v3) {
                    FamilyFiles.matrix(tensors, p + "attn_k_b.weight", new long[]{NOPE, rank, heads}, seed + 3);
                    FamilyFiles.matrix(tensors, p + "attn_v_b.weight", new long[]{rank, VALUE, heads}, seed + 4);
                } else {
                    FamilyFiles.matrix(tensors, p + "attn_kv_b.weight", new long[]{rank, heads * (NOPE + VALUE)}, seed + 3);
                }
                FamilyFiles.matrix(tensors, p + "attn_output.weight", new long[]{heads * VALUE, dim}, seed + 5);
            }
        });
    }

    /** DeepSeek-V3's layout: llama-perplexity's figure, ours 1.2e-8 from it; a split across processes is refused, in words. */
    @Test
    void splitUpProjectionGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("deepseek2-v3-mini.gguf");
        write(dir, file, true);
        Checkpoint c = Checkpoint.load(file, null);
        LatentAttention latent = c.model().weights().layers()[0].latent();
        assertEquals(List.of(RANK, NOPE, ROPE, VALUE, Q_RANK), List.of(latent.rank(), latent.nope(), latent.rope(), latent.valueWidth(), (int) latent.qA().rows));
        assertNull(c.model().weights().layers()[0].wv());
        assertEquals(49862.4295, perplexity(c), 1e-6 * 49862.4295);
        IllegalArgumentException split = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> c.model().checkSplit(2));
        assertEquals("this model's multi-head latent attention (deepseek2) cannot be split across processes yet", split.getMessage());
    }

    /**
     * The cache holds keys only, as llama.cpp's V-less cache ({@link KvCache#keysOnly}: a value is its key's latent
     * part), half the bytes of one that held the values too; in every cache type a prompt's decode steps, which sum the
     * latents from the key blocks four query heads at a time (4 heads) or one (2 heads), end on the logits of its
     * batch, whose sums over blocks of four tokens llama-perplexity's figures check (above, in an F32 cache); the
     * cache written out and read back goes on as it would have. Latents of 48, so that heads of 64 make blocks of 32.
     */
    @Test
    void theCacheHoldsKeysOnly(@TempDir Path dir) throws IOException {
        for (int heads : new int[]{4, 2}) {
            Path file = dir.resolve("deepseek2-" + heads + "-heads.gguf");
            write(dir, file, true, 0, heads, 48);
            Checkpoint c = Checkpoint.load(file, null);
            Llama m = c.model();
            int vocab = m.config.vocabSize(), layers = m.config.nLayers(), kvDim = m.config.kvDim();
            assertEquals(64, kvDim);
            int[] prompt = c.promptTokens("Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends");
            assertTrue(prompt.length > 2 * Llama.EXACT_BATCH, "" + prompt.length);
            for (String option : List.of("f32", "f16", "q8_0", "q4_0", "bf16", "q5_1")) {
                KvCache.Type type = KvCache.Type.parse(option);
                String what = heads + " heads, " + option;
                Llama.State batch = m.newState(128, 64, 1, type), steps = m.newState(128, 64, 1, type);
                assertEquals(KvCache.of(type, m.config, 1, 128).bytes(), 2 * steps.kvBytes(), what);
                float[] expected = java.util.Arrays.copyOf(m.forward(batch, prompt, 0, prompt.length, 0, null), vocab), logits = null;
                for (int p = 0; p < prompt.length; p++) logits = m.forward(steps, prompt[p], p);
                for (int i = 0; i < vocab; i++) assertEquals(expected[i], logits[i], 1e-4 * Math.max(1, Math.abs(expected[i])), what + ": logit " + i);

                java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
                steps.writeCache(java.nio.channels.Channels.newChannel(bytes), prompt.length);
                assertEquals(prompt.length * layers * gptfast4j.tensor.GGMLType.valueOf(type.keys().name()).bytesFor(kvDim), bytes.size(), what);
                Llama.State read = m.newState(128, 64, 1, type);
                read.readCache(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(bytes.toByteArray())), prompt.length);
                float[] next = m.forward(steps, 7, prompt.length).clone();
                // to RecurrentStates.SAME: the same step run again, but where the JIT compiled a kernel between (1 ulp seen once)
                org.junit.jupiter.api.Assertions.assertArrayEquals(next, m.forward(read, 7, prompt.length), RecurrentStates.SAME, what + ": after the cache read back");
            }
        }
    }

    /**
     * DeepSeek-V3's group-limited routing: its 4 experts in 2 groups, the 2 chosen from the group whose two scores
     * sum higher. llama-perplexity's figure (49862.4295 without the groups), ours 3e-8 from it.
     */
    @Test
    void expertGroupsGiveLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("deepseek2-v3-groups-mini.gguf");
        write(dir, file, true, 2);
        Checkpoint c = Checkpoint.load(file, null);
        FeedForward.MoE moe = (FeedForward.MoE) c.model().weights().layers()[1].feedForward();
        assertEquals(List.of(2, 1), List.of(moe.groups(), moe.groupsUsed()));
        assertEquals(50074.4994, perplexity(c), 1e-6 * 50074.4994);
    }

    /**
     * A next-token prediction layer after the others (GLM-4.7-Flash's, a deepseek2 file) is left out, as llama.cpp
     * leaves it out of its graph: the V3 layout's file with a copy of its last layer and the layer's projections of
     * llama.cpp's MTP block after it gives the same figure (llama-perplexity's too, on that file).
     */
    @Test
    void nextTokenPredictionLayerIsLeftOut(@TempDir Path dir) throws IOException {
        Path trunk = dir.resolve("deepseek2-v3-mini.gguf"), file = dir.resolve("deepseek2-v3-nextn.gguf");
        write(dir, trunk, true);
        writeWithNextn(trunk, file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(MOE.layers(), c.model().config.nLayers());
        assertEquals(49862.4295, perplexity(c), 1e-6 * 49862.4295);
    }

    /** {@code trunk}'s model with a next-token prediction layer after its layers: its last layer's tensors again, and the MTP block's own. */
    static void writeWithNextn(Path trunk, Path out) {
        int last = MOE.layers() - 1, dim = MOE.dim();
        String next = "blk." + MOE.layers() + ".";
        FamilyFiles.rewrite(trunk, out, md -> {
            md.put("deepseek2.block_count", Metadata.Value.uint32(MOE.layers() + 1));
            md.put("deepseek2.nextn_predict_layers", Metadata.Value.uint32(1));
        }, name -> true, (file, tensors) -> {
            for (var t : file.values()) {
                if (t.name().startsWith("blk." + last + ".")) {
                    tensors.add(new GGUFWriter.TensorSpec(next + t.name().substring(("blk." + last + ".").length()), t.type(), t.shape(), target -> target.copyFrom(t.data())));
                }
            }
            FamilyFiles.matrix(tensors, next + "nextn.eh_proj.weight", new long[]{2L * dim, dim}, 99);
            FamilyFiles.norm(tensors, next + "nextn.enorm.weight", dim, 97);
            FamilyFiles.norm(tensors, next + "nextn.hnorm.weight", dim, 98);
        });
    }

    /**
     * Files before the split (DeepSeek-V2-Lite's as most were converted), which llama.cpp runs as multi-head attention
     * on the keys and values the latents expand to, and ours in the latent space: llama-perplexity's figure, ours 4e-9
     * from it.
     */
    @Test
    void fusedUpProjectionGivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("deepseek2-lite-mini.gguf");
        write(dir, file, false);
        Checkpoint c = Checkpoint.load(file, null);
        assertTrue(c.model().weights().layers()[1].latent().fused());
        assertEquals(51065.8309, perplexity(c), 1e-6 * 51065.8309);
    }

    /**
     * Mistral 4 ({@code mistral4}): DeepSeek-V2's blocks under their own name, which llama.cpp runs as deepseek2's but
     * for YaRN's mscale (1, where DeepSeek-V2's is its log multiplier: the context's attention factor differs, so the
     * scores' scale does). The DeepSeek-V3 file above under that name: llama-perplexity's figure 49852.9644 (the same
     * file as deepseek2 49862.4295), ours 8e-9 from it; a split refused, naming it.
     */
    @Test
    void mistral4GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path v3 = dir.resolve("deepseek2-v3-mini.gguf"), file = dir.resolve("mistral4-mini.gguf");
        write(dir, v3, true);
        FamilyFiles.rewrite(v3, file, md -> {
            java.util.Map<String, Metadata.Value> renamed = new java.util.LinkedHashMap<>();
            md.forEach((k, v) -> renamed.put(k.startsWith("deepseek2.") ? "mistral4." + k.substring(10) : k, v));
            renamed.put("general.architecture", Metadata.Value.string("mistral4"));
            md.clear();
            md.putAll(renamed);
        }, name -> true, (tensors, added) -> { });
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals("mistral4", c.model().config.architecture());
        assertEquals(RANK, c.model().weights().layers()[0].latent().rank());
        assertEquals(49852.9644, perplexity(c), 1e-6 * 49852.9644);
        IllegalArgumentException split = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> c.model().checkSplit(2));
        assertEquals("this model's multi-head latent attention (mistral4) cannot be split across processes yet", split.getMessage());
    }

    /**
     * Mistral Large 3's attention temperature (deepseek2 as Mistral's converter writes it: {@code
     * attention.temperature_scale} 0.1 over {@code attention.temperature_length} 16 positions, so that it grows within
     * the 128-position chunks): the queries at position p times {@code 0.1 ln(floor(p / 16) + 1) + 1}.
     * llama-perplexity's figure 49850.2145, ours 1.6e-8 from it; a scale without a length is refused in one line
     * (llama.cpp's graph asserts it).
     */
    @Test
    void attentionTemperatureAsLlamaCppAppliesIt(@TempDir Path dir) throws IOException {
        Path v3 = dir.resolve("deepseek2-v3-mini.gguf"), file = dir.resolve("large3-mini.gguf"), noLength = dir.resolve("no-length.gguf");
        write(dir, v3, true);
        FamilyFiles.rewrite(v3, file, md -> {
            md.put("deepseek2.attention.temperature_scale", Metadata.Value.float32(0.1f));
            md.put("deepseek2.attention.temperature_length", Metadata.Value.uint32(16));
        }, name -> true, (tensors, added) -> { });
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(new Config.Temperature(0.1f, 16), c.model().config.variant().temperature());
        assertEquals(49850.2145, perplexity(c), 1e-6 * 49850.2145);
        FamilyFiles.rewrite(v3, noLength, md -> md.put("deepseek2.attention.temperature_scale", Metadata.Value.float32(0.1f)), name -> true, (tensors, added) -> { });
        gptfast4j.io.ModelFormatException e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(noLength, null));
        assertEquals(noLength + ": deepseek2.attention.temperature_scale without a positive deepseek2.attention.temperature_length", e.getMessage());
    }

    /**
     * MiniCPM3 ({@code minicpm3}: MiniCPM3-4B): latent attention with MiniCPM's scales and LongRoPE's factors:
     * llama-perplexity's figures with a context of 128 (the short factors, ours 2e-8 from it) and of 384, past its 256
     * training positions (the long ones, ours 1.4e-7 from it).
     */
    @Test
    void miniCpm3GivesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("minicpm3-mini.gguf");
        writeMiniCpm3(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(Config.RopeStyle.HALVES, c.model().config.ropeStyle());
        assertEquals(List.of(12f, 256f / 64), List.of(c.model().config.variant().embeddingScale(), c.model().config.variant().logitFactor()));
        assertEquals(40355135.0910, perplexity(c), 1e-6 * 40355135.0910);
        double longContext = gptfast4j.quant.Perplexity.compute(c, null, java.nio.file.Files.readString(gptfast4j.Shared.REFERENCE.resolve("ppl-text.txt")), 384, KvCache.Type.F32, chunk -> { }).ppl();
        assertEquals(35898591.7667, longContext, 1e-6 * 35898591.7667);
    }

    /**
     * Writes a MiniCPM3 mini model ({@code minicpm3}) to {@code out}: {@link LlamaLikeTest#SHAPE}'s dense blocks, their
     * attention a latent one of {@link #RANK} with queries through a low-rank projection and its norm, one attn_kv_b
     * (as MiniCPM3's converter writes it), heads of {@link #NOPE} + {@link #ROPE}, values of dim / heads (llama.cpp's
     * width where the file gives none), LongRoPE's short and long factors.
     */
    public static void writeMiniCpm3(Path scratch, Path out) {
        gptfast4j.bench.ModelShape s = LlamaLikeTest.SHAPE;
        int dim = s.dim(), heads = s.heads(), value = dim / heads;
        FamilyFiles.write(s, "minicpm3", scratch, out, md -> {
            md.put("minicpm3.attention.kv_lora_rank", Metadata.Value.uint32(RANK));
            md.put("minicpm3.attention.q_lora_rank", Metadata.Value.uint32(Q_RANK));
            md.put("minicpm3.attention.key_length", Metadata.Value.uint32(NOPE + ROPE));
            md.put("minicpm3.attention.head_count_kv", Metadata.Value.uint32(heads));
            md.put("minicpm3.rope.dimension_count", Metadata.Value.uint32(ROPE));
        }, name -> !name.matches("blk\\.\\d+\\.attn_(q|k|v|output)\\.weight"), (llama, tensors) -> {
            for (int l = 0; l < s.layers(); l++) {
                String p = "blk." + l + ".";
                int seed = 2000 + 10 * l;
                FamilyFiles.matrix(tensors, p + "attn_q_a.weight", new long[]{dim, Q_RANK}, seed);
                FamilyFiles.norm(tensors, p + "attn_q_a_norm.weight", Q_RANK, seed);
                FamilyFiles.matrix(tensors, p + "attn_q_b.weight", new long[]{Q_RANK, heads * (NOPE + ROPE)}, seed + 1);
                FamilyFiles.matrix(tensors, p + "attn_kv_a_mqa.weight", new long[]{dim, RANK + ROPE}, seed + 2);
                FamilyFiles.norm(tensors, p + "attn_kv_a_norm.weight", RANK, seed + 2);
                FamilyFiles.matrix(tensors, p + "attn_kv_b.weight", new long[]{RANK, heads * (NOPE + value)}, seed + 3);
                FamilyFiles.matrix(tensors, p + "attn_output.weight", new long[]{heads * value, dim}, seed + 5);
            }
            FamilyFiles.norm(tensors, "rope_factors_short.weight", ROPE / 2, 7);
            FamilyFiles.norm(tensors, "rope_factors_long.weight", ROPE / 2, 8);
        });
    }
}
