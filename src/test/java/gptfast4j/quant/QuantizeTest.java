package gptfast4j.quant;

import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Quantizer;
import gptfast4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code gptfast quantize} on the F32 reference models gives, for every tensor it quantizes, exactly the bytes of
 * llama.cpp's {@code llama-quantize --pure} files in ../shared/reference (the published rounding rules). The
 * difference by design: llama.cpp's --pure also quantizes the token embedding, ours keeps it in F32 (gpt-fast
 * quantizes linear layers only) and, for the tied mini-llama3, writes the quantized head as output.weight, which must
 * equal llama.cpp's quantized token_embd.
 */
class QuantizeTest {
    @ParameterizedTest
    @CsvSource({"mini-llama2, int8", "mini-llama2, int4", "mini-llama2, int4-asym", "mini-llama3, int8", "mini-llama3, int4", "mini-llama3, int4-asym",
            "mini-mixtral, int8", "mini-mixtral, int4"})
    void quantizedTensorsAreBitIdenticalToLlamaCpp(String family, String modeName, @TempDir Path dir) {
        QuantizeMode mode = QuantizeMode.of(modeName, "--mode");
        GGMLType type = mode.base;
        Path out = dir.resolve(family + "-" + modeName + ".gguf");
        Checkpoint src = Checkpoint.load(Shared.REFERENCE.resolve("models/" + family + "-F32.gguf"), null);
        QuantizeModel.Plan plan = QuantizeModel.plan(src, mode, QuantizeModel.Options.NONE);
        assertTrue(plan.notes().isEmpty());
        plan.write(out, b -> { });
        GGUF ours = GGUF.read(out);
        GGUF theirs = GGUF.read(Shared.REFERENCE.resolve("models/" + family + "-" + type + ".gguf"));
        int quantized = 0;
        for (TensorData t : ours.tensors().values()) {
            if (t.name().endsWith("_norm.weight") || t.name().equals("rope_freqs.weight") || t.name().equals("token_embd.weight")
                    || t.name().endsWith("ffn_gate_inp.weight")) {
                assertEquals(GGMLType.F32, t.type(), t.name());
                continue;
            }
            String theirName = t.name().equals("output.weight") && !theirs.tensors().containsKey("output.weight") ? "token_embd.weight" : t.name();
            TensorData r = theirs.tensors().get(theirName);
            assertEquals(type, t.type(), t.name());
            assertEquals(r.type(), t.type(), t.name());
            assertEquals(-1L, t.data().mismatch(r.data()), t.name() + " differs from llama.cpp's " + theirName);
            quantized++;
        }
        assertEquals(2 * 7 + 1, quantized); // per layer: q, k, v, output and three FFN (or expert) tensors; and the head
        assertEquals(type.fileType(), ours.metadata().getInt("general.file_type", -1));
        // the metadata and tokenizer came along: the file runs and tokenizes like its source
        Checkpoint q = Checkpoint.load(out, null);
        assertEquals(src.tokenizer().vocabSize(), q.tokenizer().vocabSize());
        assertEquals(src.model().config, q.model().config);
    }

    /**
     * {@code --pure}: the whole file llama.cpp's {@code llama-quantize --pure} wrote in ../shared, every tensor (token
     * embedding, head, norms, rope factors) and general.file_type, for gpt-fast's modes and llama.cpp's mixes alike
     * (q4_k_m --pure is llama-quantize's "Q4_K", q5_k_m's its "Q5_K").
     */
    @ParameterizedTest
    @CsvSource({"mini-llama2, int8", "mini-llama2, int4", "mini-llama2, int4-asym", "mini-llama2, q4_k_m", "mini-llama2, q5_k_m", "mini-llama2, q6_k",
            "mini-llama3, q8_0", "mini-llama3, q4_0", "mini-llama3, q4_1", "mini-llama3, q4_k_m", "mini-llama3, q5_k_m", "mini-llama3, q6_k",
            "mini-mixtral, q8_0", "mini-mixtral, int4", "mini-mixtral, q4_k_m", "mini-mixtral, q6_k"})
    void pureFilesAreLlamaQuantizes(String family, String modeName, @TempDir Path dir) {
        QuantizeMode mode = QuantizeMode.of(modeName, "--mode");
        Path out = dir.resolve(family + "-" + modeName + ".gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/" + family + "-F32.gguf"), null), mode, new QuantizeModel.Options(false, true, null, null, List.of(), null)).write(out, b -> { });
        GGUF ours = GGUF.read(out), theirs = GGUF.read(Shared.REFERENCE.resolve("models/" + family + "-" + mode.base + ".gguf"));
        assertEquals(theirs.tensors().keySet(), ours.tensors().keySet());
        for (TensorData t : ours.tensors().values()) {
            TensorData r = theirs.tensors().get(t.name());
            assertEquals(r.type(), t.type(), t.name());
            assertEquals(-1L, t.data().mismatch(r.data()), t.name() + " differs from llama.cpp's");
        }
        assertEquals(theirs.metadata().getInt("general.file_type", -1), ours.metadata().getInt("general.file_type", -2));
    }

    /**
     * {@code --leave-output-tensor} and {@code --override-kv} (llama-quantize's; its file with both, checked here, is
     * ours tensor for tensor and key for key): the head copied as the source has it, every other tensor as without the
     * flag; the keys set last, over the source's and the mode's; a tied model stays tied in gpt-fast's modes.
     */
    @Test
    void leaveOutputAndOverrideKeys(@TempDir Path dir) {
        Path src = Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), plain = dir.resolve("plain.gguf"), left = dir.resolve("left.gguf");
        QuantizeModel.plan(Checkpoint.load(src, null), QuantizeMode.Q4_K_M, QuantizeModel.Options.NONE).write(plain, b -> { });
        Map<String, gptfast4j.io.Metadata.Value> keys = Map.of("general.name", gptfast4j.io.Metadata.Value.string("renamed"),
                "general.file_type", gptfast4j.io.Metadata.Value.uint32(99), "tokenizer.ggml.add_bos_token", gptfast4j.io.Metadata.Value.bool(false));
        QuantizeModel.plan(Checkpoint.load(src, null), QuantizeMode.Q4_K_M, new QuantizeModel.Options(false, false, null, null, List.of(), null, true, keys, new java.util.TreeSet<>()))
                .write(left, b -> { });
        GGUF a = GGUF.read(plain), b = GGUF.read(left), f32 = GGUF.read(src);
        assertEquals(GGMLType.F32, b.tensors().get("output.weight").type());
        assertEquals(-1L, b.tensors().get("output.weight").data().mismatch(f32.tensors().get("output.weight").data()));
        for (TensorData t : a.tensors().values()) {
            if (!t.name().equals("output.weight")) assertEquals(-1L, t.data().mismatch(b.tensors().get(t.name()).data()), t.name());
        }
        assertEquals("renamed", b.metadata().getString("general.name", null));
        assertEquals(99, b.metadata().getInt("general.file_type", 0));
        assertFalse(b.metadata().getBool("tokenizer.ggml.add_bos_token", true));
        Path tied = dir.resolve("tied.gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama3-F32.gguf"), null), QuantizeMode.INT4,
                new QuantizeModel.Options(false, false, null, null, List.of(), null, true, Map.of(), new java.util.TreeSet<>())).write(tied, b2 -> { });
        assertFalse(GGUF.read(tied).tensors().containsKey("output.weight"));
    }

    /**
     * {@code --output-tensor-type} and {@code --token-embedding-type}: those tensors in the types named whatever the mode
     * says, as llama-quantize's flags (the rest as the mode has them): their bytes those of llama.cpp's --pure file of
     * that type; a tied model's table, also its head, takes the embedding's type; gpt-fast's int4 quantizes the table
     * too when asked.
     */
    @Test
    void typeOverridesAreLlamaQuantizes(@TempDir Path dir) {
        Path out = dir.resolve("q4_k_m.gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null), QuantizeMode.Q4_K_M,
                new QuantizeModel.Options(false, false, GGMLType.Q8_0, GGMLType.Q8_0, List.of(), null)).write(out, b -> { });
        GGUF ours = GGUF.read(out), q8_0 = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama2-Q8_0.gguf"));
        for (String name : new String[]{"output.weight", "token_embd.weight"}) {
            assertEquals(GGMLType.Q8_0, ours.tensors().get(name).type(), name);
            assertEquals(-1L, ours.tensors().get(name).data().mismatch(q8_0.tensors().get(name).data()), name);
        }
        assertEquals(GGMLType.Q6_K, ours.tensors().get("blk.1.attn_v.weight").type());
        assertEquals(GGMLType.Q4_K, ours.tensors().get("blk.0.attn_v.weight").type());

        Path tied = dir.resolve("q3_k_m.gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama3-F32.gguf"), null), QuantizeMode.Q3_K_M,
                new QuantizeModel.Options(false, false, null, GGMLType.Q8_0, List.of(), null)).write(tied, b -> { });
        GGUF llama3 = GGUF.read(tied);
        assertFalse(llama3.tensors().containsKey("output.weight"));
        assertEquals(-1L, llama3.tensors().get("token_embd.weight").data().mismatch(
                GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-Q8_0.gguf")).tensors().get("token_embd.weight").data()));

        Path int4 = dir.resolve("int4.gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null), QuantizeMode.INT4,
                new QuantizeModel.Options(false, false, null, GGMLType.Q8_0, List.of(), null)).write(int4, b -> { });
        assertEquals(-1L, GGUF.read(int4).tensors().get("token_embd.weight").data().mismatch(q8_0.tensors().get("token_embd.weight").data()));
        assertEquals(GGMLType.Q4_0, GGUF.read(int4).tensors().get("output.weight").type());
    }

    /**
     * Tensors written in a float type ({@code --tensor-type .=bf16} and the head's and embedding's flags) are
     * llama-quantize's: BF16 rounded to nearest even, as ggml's {@code GGML_FP32_TO_BF16} (they were cut short of it
     * before, which changed half the weights by a unit in the last place), F16 likewise; every tensor the bytes of its
     * --pure file (mini-llama3's table, tied, also its head).
     */
    @ParameterizedTest
    @CsvSource({"mini-llama2, BF16", "mini-llama3, BF16", "mini-llama2, F16", "mini-llama3, F16"})
    void floatTypesAreLlamaQuantizes(String family, GGMLType type, @TempDir Path dir) {
        Path out = dir.resolve(type + ".gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/" + family + "-F32.gguf"), null), QuantizeMode.Q8_0,
                new QuantizeModel.Options(false, false, type, type, List.of(Map.entry(java.util.regex.Pattern.compile("."), type)), null)).write(out, b -> { });
        GGUF ours = GGUF.read(out), llama = GGUF.read(Shared.REFERENCE.resolve("models/" + family + "-" + type + ".gguf"));
        assertEquals(llama.tensors().keySet(), ours.tensors().keySet());
        for (TensorData t : llama.tensors().values()) {
            assertEquals(t.type(), ours.tensors().get(t.name()).type(), t.name());
            assertEquals(-1L, ours.tensors().get(t.name()).data().mismatch(t.data()), t.name());
        }
    }

    /**
     * llama.cpp's mixes give each tensor the type llama-quantize's file of that mix has (made with llama.cpp's
     * llama-quantize, no --pure; {@code changed}: the tensors not in the mix's own type, "kind=TYPE" in every layer or
     * "layer.kind=TYPE"; the output head is Q6_K (Q8_0 in q8_0), the token embedding the mix's type, or the head's where,
     * as in mini-llama3, it is the head too), and each tensor the bytes of llama.cpp's --pure file of its type where
     * ../shared has one.
     */
    @ParameterizedTest
    @CsvSource({"mini-llama2, q2_k, attn_v=Q3_K ffn_down=Q3_K attn_output=Q3_K", "mini-llama3, q2_k, attn_v=Q4_K ffn_down=Q3_K attn_output=Q3_K",
            "mini-mixtral, q2_k, attn_v=Q4_K ffn_down_exps=Q3_K attn_output=Q3_K", "mini-llama2, q3_k_s, ''",
            "mini-llama2, q3_k_m, attn_v=Q5_K ffn_down=Q4_K attn_output=Q4_K", "mini-mixtral, q3_k_m, attn_v=Q5_K ffn_down_exps=Q4_K attn_output=Q4_K",
            "mini-llama3, q3_k_l, attn_v=Q5_K ffn_down=Q5_K attn_output=Q5_K", "mini-llama2, q4_k_s, attn_v=Q5_K",
            "mini-llama2, q4_k_m, 1.attn_v=Q6_K 1.ffn_down=Q6_K", "mini-llama3, q4_k_m, 1.attn_v=Q6_K 1.ffn_down=Q6_K",
            "mini-mixtral, q4_k_m, 1.attn_v=Q6_K 1.ffn_down_exps=Q6_K", "mini-llama3, q5_k_s, ''", "mini-llama2, q5_k_m, 1.attn_v=Q6_K 1.ffn_down=Q6_K",
            "mini-llama3, q5_k_m, 1.attn_v=Q6_K 1.ffn_down=Q6_K", "mini-llama2, q6_k, ''", "mini-mixtral, q6_k, ''",
            "mini-llama2, iq4_nl, ''", "mini-llama3, iq4_xs, attn_v=Q5_K", "mini-mixtral, iq4_xs, attn_v=Q5_K",
            "mini-llama2, q4_0, ''", "mini-llama3, q4_1, ''", "mini-mixtral, q8_0, ''", "mini-llama3, q8_0, ''", "mini-llama2, q5_1, ''",
            "mini-llama2, tq1_0, token_embd=Q4_K", "mini-llama3, tq2_0, ''", "mini-mixtral, tq2_0, token_embd=Q4_K"})
    void mixesAreLlamaQuantizes(String family, String modeName, String changed, @TempDir Path dir) {
        QuantizeMode mode = QuantizeMode.of(modeName, "--mode");
        Map<String, GGMLType> types = new java.util.HashMap<>();
        for (String change : changed.split(" ")) {
            if (!change.isEmpty()) types.put(change.split("=")[0], GGMLType.valueOf(change.split("=")[1]));
        }
        Path out = dir.resolve(family + "-" + modeName + ".gguf");
        Checkpoint src = Checkpoint.load(Shared.REFERENCE.resolve("models/" + family + "-F32.gguf"), null);
        QuantizeModel.Plan plan = QuantizeModel.plan(src, mode, QuantizeModel.Options.NONE);
        assertTrue(plan.notes().isEmpty());
        plan.write(out, b -> { });
        GGUF ours = GGUF.read(out);
        boolean tied = family.equals("mini-llama3");
        int quantized = 0, compared = 0;
        for (TensorData t : ours.tensors().values()) {
            if (t.name().endsWith("_norm.weight") || t.name().equals("rope_freqs.weight") || t.name().endsWith("ffn_gate_inp.weight")) {
                assertEquals(GGMLType.F32, t.type(), t.name());
                continue;
            }
            String kind = t.name().replaceFirst("^blk\\.\\d+\\.", "").replace(".weight", "");
            String inLayer = t.name().replaceFirst("^blk\\.", "").replace(".weight", "");
            GGMLType head = mode.base == GGMLType.Q8_0 ? GGMLType.Q8_0 : GGMLType.Q6_K;
            GGMLType expected = t.name().equals("output.weight") || tied && t.name().equals("token_embd.weight") ? head
                    : types.getOrDefault(inLayer, types.getOrDefault(kind, mode.base));
            assertEquals(expected, t.type(), t.name());
            quantized++;
            Path pure = Shared.REFERENCE.resolve("models/" + family + "-" + expected + ".gguf");
            if (Files.exists(pure)) {
                TensorData r = GGUF.read(pure).tensors().get(t.name());
                assertEquals(-1L, t.data().mismatch(r.data()), t.name() + " differs from llama.cpp's " + expected);
                compared++;
            }
        }
        assertEquals(2 * 7 + (tied ? 1 : 2), quantized); // the layers' seven, the token embedding, and an untied head
        assertTrue(compared >= (Files.exists(Shared.REFERENCE.resolve("models/" + family + "-" + mode.base + ".gguf")) ? quantized / 2 : 1), compared + " compared");
        assertFalse(tied && ours.tensors().containsKey("output.weight"), "a tied model's head is its token embedding");
        assertEquals(mode.fileType, ours.metadata().getInt("general.file_type", -1));
        assertEquals(src.model().config, Checkpoint.load(out, null).model().config);
    }

    /**
     * Phi-3's fused attn_qkv is quantized, by attn_v's rules, as llama-quantize quantizes it: an 8-layer phi3 model
     * (make-model's blocks at width 256) in Q4_K_M and Q3_K_M. llama-quantize de3ff81 chose these types for its
     * attn_qkv tensors, and the whole files, Q8_0's too, were ours byte for byte (51 of 51 tensors each).
     */
    @Test
    void phi3sFusedProjectionsAreQuantizedAsLlamaQuantize(@TempDir Path dir) {
        Path file = dir.resolve("phi3.gguf");
        gptfast4j.bench.RandomModel.write(new gptfast4j.bench.ModelShape("phi3-q", 256, 512, 8, 4, 4, 32064, 256, 10000, 1e-5f, false, 0, 0, 0, 64, "phi3"),
                GGMLType.F32, file, Shared.TOKENIZERS, b -> { });
        Checkpoint src = Checkpoint.load(file, null);
        Map<String, String> expected = Map.of("q4_k_m", "Q6_K Q4_K Q4_K Q6_K Q4_K Q4_K Q6_K Q6_K", "q3_k_m", "Q5_K Q5_K Q4_K Q4_K Q4_K Q4_K Q4_K Q4_K");
        for (var e : expected.entrySet()) {
            Path out = dir.resolve(e.getKey() + ".gguf");
            QuantizeModel.plan(src, QuantizeMode.of(e.getKey(), "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
            GGUF q = GGUF.read(out);
            String types = IntStream.range(0, 8).mapToObj(l -> q.tensors().get("blk." + l + ".attn_qkv.weight").type().toString()).collect(java.util.stream.Collectors.joining(" "));
            assertEquals(e.getValue(), types, e.getKey());
        }
    }

    /**
     * gpt-oss's biases stay F32 where its matrices are quantized (its experts' are [width, experts], 2-D as a matrix
     * is): the GptOssTest model in Q8_0, Q4_0 and Q4_K_M, whose files llama-quantize de3ff81 wrote byte for byte as ours.
     */
    @Test
    void gptOssBiasesAreKept(@TempDir Path dir) {
        Path file = dir.resolve("gpt-oss.gguf");
        gptfast4j.model.GptOssTest.write(dir.resolve("mixtral.gguf"), file, md -> { });
        Checkpoint src = Checkpoint.load(file, null);
        for (String mode : new String[]{"q8_0", "q4_0", "q4_k_m"}) {
            Path out = dir.resolve(mode + ".gguf");
            QuantizeModel.plan(src, QuantizeMode.of(mode, "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
            GGUF q = GGUF.read(out);
            for (String bias : new String[]{"attn_q.bias", "attn_output.bias", "attn_sinks.weight", "ffn_gate_inp.bias", "ffn_gate_exps.bias", "ffn_down_exps.bias"}) {
                assertEquals(GGMLType.F32, q.tensors().get("blk.1." + bias).type(), mode + " " + bias);
            }
            assertNotEquals(GGMLType.F32, q.tensors().get("blk.1.ffn_gate_exps.weight").type(), mode);
        }
    }

    /**
     * A shared expert's matrices are quantized as the others (its down projection by ffn_down's rules), Qwen2-MoE's
     * gate [dim] and ERNIE's selection bias kept F32: SharedExpertTest's models in Q8_0, Q4_0, Q4_K_M and Q3_K_M, whose
     * files llama-quantize de3ff81 wrote byte for byte as ours (checked by hand). At this model's width of 64 Q4_K_M's
     * Q4_K falls back to Q5_0; the shared experts are 80 wide, which no block of 32 divides: their down projections F16
     * (llama-quantize's fallbacks).
     */
    @Test
    void sharedExpertsAreQuantized(@TempDir Path dir) {
        Path qwen = dir.resolve("qwen2moe.gguf"), ernie = dir.resolve("ernie.gguf");
        gptfast4j.model.SharedExpertTest.writeQwen2Moe(dir.resolve("mixtral.gguf"), qwen);
        gptfast4j.model.SharedExpertTest.writeErnieMoe(dir.resolve("mixtral.gguf"), ernie);
        for (Path file : new Path[]{qwen, ernie}) {
            Checkpoint src = Checkpoint.load(file, null);
            for (String mode : new String[]{"q8_0", "q4_k_m"}) {
                Path out = dir.resolve(mode + ".gguf");
                QuantizeModel.plan(src, QuantizeMode.of(mode, "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
                GGUF q = GGUF.read(out);
                GGMLType base = mode.equals("q8_0") ? GGMLType.Q8_0 : GGMLType.Q5_0;
                assertEquals(base, q.tensors().get("blk.1.ffn_gate_shexp.weight").type(), mode);
                assertEquals(base, q.tensors().get("blk.1.ffn_up_shexp.weight").type(), mode);
                assertEquals(GGMLType.F16, q.tensors().get("blk.1.ffn_down_shexp.weight").type(), mode);
                String kept = file == qwen ? "ffn_gate_inp_shexp.weight" : "exp_probs_b.bias";
                assertEquals(GGMLType.F32, q.tensors().get("blk.1." + kept).type(), mode);
            }
        }
    }

    /**
     * DeepSeek-V2's latent attention's projections are quantized, attn_kv_b by attn_v's rules (Q4_K_M's more bits in
     * the last layer of 2: Q6_K's fallback Q8_0 against Q4_K's Q5_0), its norms kept: LatentAttentionTest's models in
     * Q4_K_M, whose files llama-quantize de3ff81 wrote byte for byte as ours (checked by hand, as in Q8_0, Q4_0, Q3_K_M,
     * Q2_K, IQ4_XS and Q5_K_S).
     */
    @Test
    void latentAttentionIsQuantized(@TempDir Path dir) {
        Path v3 = dir.resolve("v3.gguf"), lite = dir.resolve("lite.gguf");
        gptfast4j.model.LatentAttentionTest.write(dir, v3, true);
        gptfast4j.model.LatentAttentionTest.write(dir, lite, false);
        Map<String, GGMLType> expected = new java.util.LinkedHashMap<>();
        expected.put("blk.0.attn_q_a.weight", GGMLType.Q5_0);
        expected.put("blk.0.attn_q_b.weight", GGMLType.F16); // rows of 48
        expected.put("blk.0.attn_kv_a_mqa.weight", GGMLType.Q5_0);
        expected.put("blk.0.attn_k_b.weight", GGMLType.F16); // rows of 24
        expected.put("blk.0.attn_v_b.weight", GGMLType.Q5_0);
        expected.put("blk.0.attn_kv_a_norm.weight", GGMLType.F32);
        expected.put("blk.0.attn_q_a_norm.weight", GGMLType.F32);
        for (Path file : new Path[]{v3, lite}) {
            Path out = dir.resolve("q4_k_m.gguf");
            QuantizeModel.plan(Checkpoint.load(file, null), QuantizeMode.of("q4_k_m", "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
            GGUF q = GGUF.read(out);
            if (file == lite) {
                expected.clear();
                expected.put("blk.0.attn_q.weight", GGMLType.Q5_0);
                expected.put("blk.0.attn_kv_b.weight", GGMLType.Q5_0);
                expected.put("blk.1.attn_kv_b.weight", GGMLType.Q8_0);
            }
            expected.forEach((name, type) -> assertEquals(type, q.tensors().get(name).type(), name));
        }
    }

    /**
     * Session 83's kinds of projection are quantized as llama-quantize quantizes them (its Q8_0, Q4_K_M, Q3_K_M and
     * Q2_K files of these minis ours byte for byte, checked by a script): Mamba's {@code ssm_x} and {@code ssm_dt} (the
     * mini's dt of rank 4 too narrow for a block: F16, llama-quantize's fallback), Qwen3-Next's fused {@code ssm_ba}, experts' gates and ups in one
     * {@code ffn_gate_up_exps} (the mini Mixtral so fused); convolution kernels, A, D and biases kept.
     */
    @Test
    void newKindsOfProjectionAreQuantized(@TempDir Path dir) {
        Path mamba = dir.resolve("mamba.gguf"), next = dir.resolve("qwen3next.gguf"), fused = dir.resolve("mixtral-gate-up.gguf");
        gptfast4j.model.MambaTest.write(dir.resolve("llama.gguf"), mamba, true);
        gptfast4j.model.Qwen35Test.writeNext(dir.resolve("mixtral.gguf"), next);
        gptfast4j.model.ReferenceLogitsTest.writeGateUpFused(gptfast4j.Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf"), fused);
        Map<Path, List<String>> quantized = Map.of(mamba, List.of("ssm_in.weight", "ssm_x.weight", "ssm_out.weight"), next, List.of("ssm_ba.weight", "attn_qkv.weight"),
                fused, List.of("ffn_gate_up_exps.weight", "ffn_down_exps.weight"));
        Map<Path, List<String>> kept = Map.of(mamba, List.of("ssm_conv1d.weight", "ssm_conv1d.bias", "ssm_a", "ssm_d", "ssm_dt.bias"),
                next, List.of("ssm_conv1d.weight", "ssm_a"), fused, List.of("ffn_gate_inp.weight"));
        for (Path file : List.of(mamba, next, fused)) {
            GGUF q = assertQ8_0Layer0(file, dir.resolve("q8_0.gguf"), quantized.get(file), kept.get(file));
            if (file == mamba) assertEquals(GGMLType.F16, q.tensors().get("blk.0.ssm_dt.weight").type());
        }
    }

    /** {@code file} quantized to Q8_0 at {@code out}: its layer 0's {@code quantized} tensors Q8_0, its {@code kept} F32; the file read back. */
    private static GGUF assertQ8_0Layer0(Path file, Path out, List<String> quantized, List<String> kept) {
        QuantizeModel.plan(Checkpoint.load(file, null), QuantizeMode.of("q8_0", "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
        GGUF q = GGUF.read(out);
        for (String name : quantized) assertEquals(GGMLType.Q8_0, q.tensors().get("blk.0." + name).type(), file + " " + name);
        for (String name : kept) assertEquals(GGMLType.F32, q.tensors().get("blk.0." + name).type(), file + " " + name);
        return q;
    }

    /**
     * Recurrent and convolution layers' projections are quantized as llama-quantize quantizes any weight matrix, their
     * convolutions' kernels and the Mamba-2 and delta nets' vectors kept: Granite 4.0-H's ssm_in and ssm_out, Qwen3.5's
     * attn_gate, ssm_beta, ssm_alpha and ssm_out, LFM2's shortconv.in_proj and out_proj (GraniteHybridTest's,
     * Qwen35Test's and Lfm2Test's models in Q8_0, whose files, and their mixtures' and their Q4_K_M files,
     * llama-quantize de3ff81 wrote byte for byte as ours, checked by hand; before, these projections were left in F32).
     * attn_v's rules count the attn_v tensors, not the layers: a Granite 4.0-H shape of 20 layers whose 9th and 19th
     * attend, in Q4_K_M, has llama-quantize's Q4_K in the first (the first of 2 attn_v tensors) and Q6_K in the second
     * (counting layers gave both Q6_K).
     */
    @Test
    void recurrentLayersProjectionsAreQuantized(@TempDir Path dir) {
        Path granite = dir.resolve("granite.gguf"), qwen35 = dir.resolve("qwen35.gguf"), lfm2 = dir.resolve("lfm2.gguf");
        gptfast4j.model.GraniteHybridTest.write(dir.resolve("llama.gguf"), granite);
        gptfast4j.model.Qwen35Test.write(dir.resolve("llama.gguf"), qwen35);
        gptfast4j.model.Lfm2Test.write(dir.resolve("llama.gguf"), lfm2);
        Map<Path, List<String>> quantized = Map.of(granite, List.of("ssm_in.weight", "ssm_out.weight", "ffn_down.weight"),
                qwen35, List.of("attn_qkv.weight", "attn_gate.weight", "ssm_beta.weight", "ssm_alpha.weight", "ssm_out.weight"),
                lfm2, List.of("shortconv.in_proj.weight", "shortconv.out_proj.weight"));
        Map<Path, List<String>> kept = Map.of(granite, List.of("ssm_conv1d.weight", "ssm_conv1d.bias", "ssm_a", "ssm_d", "ssm_dt.bias", "ssm_norm.weight"),
                qwen35, List.of("ssm_conv1d.weight", "ssm_a", "ssm_dt.bias", "ssm_norm.weight"),
                lfm2, List.of("shortconv.conv.weight"));
        for (Path file : List.of(granite, qwen35, lfm2)) assertQ8_0Layer0(file, dir.resolve("q8_0.gguf"), quantized.get(file), kept.get(file));
        Path twenty = dir.resolve("granite-20.gguf"), out = dir.resolve("q4_k_m.gguf");
        gptfast4j.bench.RandomModel.write(new gptfast4j.bench.ModelShape("granite-20", 256, 256, 20, 4, 2, 32000, 256, 10000, 1e-5f, true, 0, 0, 0, 64, "granitehybrid"),
                GGMLType.F32, twenty, gptfast4j.Shared.TOKENIZERS, b -> { });
        QuantizeModel.plan(Checkpoint.load(twenty, null), QuantizeMode.of("q4_k_m", "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
        GGUF q = GGUF.read(out);
        assertEquals(GGMLType.Q4_K, q.tensors().get("blk.9.attn_v.weight").type());
        assertEquals(GGMLType.Q6_K, q.tensors().get("blk.19.attn_v.weight").type());
        assertEquals(GGMLType.Q4_K, q.tensors().get("blk.8.ssm_in.weight").type());
        assertEquals(GGMLType.Q4_K, q.tensors().get("blk.8.ssm_out.weight").type());
    }

    /**
     * ffn_down's rules count the ffn_down tensors in a model without experts, not the layers: a Nemotron-H of 16 blocks
     * (NemotronHTest's, blocks M-M-M*-MM-M-M*M-), whose feed-forwards are blocks 1, 3, 6, 9, 11 and 15, in Q4_K_M has
     * llama-quantize de3ff81's types (Q6_K's fallback Q8_0 for the 1st, 2nd and 5th of the 6, Q4_K's Q5_0 for the
     * others; counting layers gave the last one Q8_0), its whole file byte for byte (checked by hand, also in Q3_K_M).
     */
    @Test
    void feedForwardBlocksAloneCountAsLlamaQuantizeCountsThem(@TempDir Path dir) {
        Path file = dir.resolve("nemotron16.gguf"), out = dir.resolve("q4_k_m.gguf");
        gptfast4j.model.NemotronHTest.write("M-M-M*-MM-M-M*M-", dir.resolve("llama.gguf"), file);
        QuantizeModel.plan(Checkpoint.load(file, null), QuantizeMode.of("q4_k_m", "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
        GGUF q = GGUF.read(out);
        Map<Integer, GGMLType> expected = Map.of(1, GGMLType.Q8_0, 3, GGMLType.Q8_0, 6, GGMLType.Q5_0, 9, GGMLType.Q5_0, 11, GGMLType.Q8_0, 15, GGMLType.Q5_0);
        expected.forEach((layer, type) -> assertEquals(type, q.tensors().get("blk." + layer + ".ffn_down.weight").type(), "layer " + layer));
        assertEquals(GGMLType.Q5_0, q.tensors().get("blk.5.attn_v.weight").type());
        assertEquals(GGMLType.Q8_0, q.tensors().get("blk.13.attn_v.weight").type());
    }

    /**
     * GLM-4.5's next-token prediction layer, which is not run, stays in the file, its projections quantized, and its
     * layers count as llama-quantize counts them: SharedExpertTest's model with that layer's tensors in Q8_0 and Q4_K_M,
     * whose files llama-quantize de3ff81 wrote byte for byte as ours (checked by hand; its ffn_down in Q4_K_M is Q4_K's
     * fallback Q5_0 in layer 1 of 3, where counting 2 layers gave Q6_K's).
     */
    @Test
    void nextTokenPredictionLayersAreKept(@TempDir Path dir) {
        Path file = dir.resolve("glm45.gguf");
        gptfast4j.model.SharedExpertTest.writeGlm45(dir.resolve("mixtral.gguf"), file, true);
        Checkpoint src = Checkpoint.load(file, null);
        for (String mode : new String[]{"q8_0", "q4_k_m"}) {
            Path out = dir.resolve(mode + ".gguf");
            QuantizeModel.plan(src, QuantizeMode.of(mode, "--mode"), QuantizeModel.Options.NONE).write(out, b -> { });
            GGUF q = GGUF.read(out);
            assertEquals(mode.equals("q8_0") ? GGMLType.Q8_0 : GGMLType.Q5_0, q.tensors().get("blk.2.nextn.eh_proj.weight").type(), mode);
            assertEquals(3, q.metadata().getInt("glm4moe.block_count", 0), mode);
            if (mode.equals("q4_k_m")) assertEquals(GGMLType.Q5_0, q.tensors().get("blk.1.ffn_down_exps.weight").type());
        }
    }

    /**
     * The mixes at real shapes, as llama.cpp's quantize documents and chooses them: Q4_K_M "uses Q6_K for half of the
     * attention.wv and feed_forward.w2 tensors" (Llama-2-7B: 16 of 32 layers, the first and last four and every third
     * between); Q3_K_M Q5_K for the first two attn_v and the first 1/16 of ffn_down, Q4_K for the others and for
     * attn_output; Q2_K's attn_v Q4_K where four or more heads share a kv head; a 70B's other attn_v in Q5_K; an
     * 8-expert model's attn_v and attn_k in Q8_0, its attn_output in Q5_K.
     */
    @Test
    void mixesAtRealShapes() {
        Config llama2 = new Config("llama", 4096, 11008, 32, 32, 32, 32000, 4096, 1e-5f, 10000f, null, Config.RopeStyle.INTERLEAVED, 0, 0);
        int[] q6 = IntStream.range(0, 32).filter(l -> QuantizeMode.Q4_K_M.typeOf("attn_v", l, 32, QuantizeMode.Shape.of(llama2), false, false) == GGMLType.Q6_K).toArray();
        assertEquals("[0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]", java.util.Arrays.toString(q6));
        for (int l = 0; l < 32; l++) {
            assertEquals(QuantizeMode.Q4_K_M.typeOf("attn_v", l, 32, QuantizeMode.Shape.of(llama2), false, false), QuantizeMode.Q4_K_M.typeOf("ffn_down", l, 32, QuantizeMode.Shape.of(llama2), false, false));
            assertEquals(GGMLType.Q4_K, QuantizeMode.Q4_K_M.typeOf("ffn_up", l, 32, QuantizeMode.Shape.of(llama2), false, false));
            assertEquals(l < 2 ? GGMLType.Q5_K : GGMLType.Q4_K, QuantizeMode.Q3_K_M.typeOf("attn_v", l, 32, QuantizeMode.Shape.of(llama2), false, false));
            assertEquals(l < 2 ? GGMLType.Q5_K : GGMLType.Q4_K, QuantizeMode.Q3_K_M.typeOf("ffn_down", l, 32, QuantizeMode.Shape.of(llama2), false, false));
            assertEquals(GGMLType.Q4_K, QuantizeMode.Q3_K_M.typeOf("attn_output", l, 32, QuantizeMode.Shape.of(llama2), false, false));
            assertEquals(GGMLType.Q3_K, QuantizeMode.Q3_K_M.typeOf("attn_q", l, 32, QuantizeMode.Shape.of(llama2), false, false));
            assertEquals(GGMLType.Q3_K, QuantizeMode.Q2_K.typeOf("attn_v", l, 32, QuantizeMode.Shape.of(llama2), false, false));
        }
        Config llama3 = new Config("llama", 4096, 14336, 32, 32, 8, 128256, 8192, 1e-5f, 500000f, null, Config.RopeStyle.INTERLEAVED, 0, 0);
        assertEquals(GGMLType.Q4_K, QuantizeMode.Q2_K.typeOf("attn_v", 7, llama3.nLayers(), QuantizeMode.Shape.of(llama3), false, false));
        Config llama70 = new Config("llama", 8192, 28672, 80, 64, 8, 32000, 4096, 1e-5f, 10000f, null, Config.RopeStyle.INTERLEAVED, 0, 0);
        assertEquals(Map.of(GGMLType.Q6_K, 40L, GGMLType.Q5_K, 40L), IntStream.range(0, 80).mapToObj(l -> QuantizeMode.Q4_K_M.typeOf("attn_v", l, 80, QuantizeMode.Shape.of(llama70), false, false))
                .collect(java.util.stream.Collectors.groupingBy(t -> t, java.util.stream.Collectors.counting())));
        assertEquals(GGMLType.Q5_K, QuantizeMode.Q3_K_S.typeOf("attn_v", 40, llama70.nLayers(), QuantizeMode.Shape.of(llama70), false, false));
        Config mixtral = new Config("llama", 4096, 14336, 32, 32, 8, 32000, 32768, 1e-5f, 1e6f, null, Config.RopeStyle.INTERLEAVED, 8, 2);
        assertEquals(GGMLType.Q8_0, QuantizeMode.Q4_K_M.typeOf("attn_v", 0, mixtral.nLayers(), QuantizeMode.Shape.of(mixtral), false, false));
        assertEquals(GGMLType.Q8_0, QuantizeMode.Q5_K_M.typeOf("attn_k", 5, mixtral.nLayers(), QuantizeMode.Shape.of(mixtral), false, false));
        assertEquals(GGMLType.Q5_K, QuantizeMode.Q4_K_M.typeOf("attn_output", 5, mixtral.nLayers(), QuantizeMode.Shape.of(mixtral), false, false));
        assertEquals(GGMLType.Q5_K, QuantizeMode.Q2_K.typeOf("attn_output", 5, mixtral.nLayers(), QuantizeMode.Shape.of(mixtral), false, false));
        assertEquals(GGMLType.Q3_K, QuantizeMode.Q3_K_L.typeOf("attn_output", 5, mixtral.nLayers(), QuantizeMode.Shape.of(mixtral), false, false));
        assertEquals(GGMLType.Q6_K, QuantizeMode.Q4_K_M.typeOf("ffn_down_exps", 31, mixtral.nLayers(), QuantizeMode.Shape.of(mixtral), false, false));
        assertEquals(GGMLType.Q4_K, QuantizeMode.Q4_K_M.typeOf("ffn_gate_exps", 31, mixtral.nLayers(), QuantizeMode.Shape.of(mixtral), false, false));
    }

    /**
     * Q2_K and Q3_K (the K-quant mixes' lowest types), IQ4_NL and IQ4_XS, and Q5_0 and Q5_1 (where the mixes put rows
     * the K-quants' 256 do not divide), as llama-quantize rounds them, and its --pure, --output-tensor-type,
     * --token-embedding-type and --tensor-type as it takes them: BlockFormatsTest's fixture, which llama-quantize made
     * from mini-llama2-F32 with those flags (scripts/make-block-fixture.sh: Q3_K_M --pure, the head and attn_q in Q2_K,
     * the token embedding and ffn_down in Q3_K, attn_k in IQ4_NL, ffn_gate in IQ4_XS, attn_v and attn_output in Q5_0,
     * ffn_up in Q5_1), made again here with the same: every tensor bit for bit, and general.file_type.
     */
    @Test
    void blockFormatsFixtureIsMadeAgain(@TempDir Path dir) {
        List<Map.Entry<java.util.regex.Pattern, GGMLType>> tensorTypes = new java.util.ArrayList<>();
        for (String pair : new String[]{"attn_q=Q2_K", "attn_k=IQ4_NL", "attn_v=Q5_0", "attn_output=Q5_0", "ffn_up=Q5_1", "ffn_gate=IQ4_XS", "ffn_down=Q3_K"}) {
            tensorTypes.add(Map.entry(java.util.regex.Pattern.compile(pair.split("=")[0]), GGMLType.valueOf(pair.split("=")[1])));
        }
        Path out = dir.resolve("mixed.gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null), QuantizeMode.Q3_K_M,
                new QuantizeModel.Options(false, true, GGMLType.Q2_K, GGMLType.Q3_K, tensorTypes, null)).write(out, b -> { });
        GGUF ours = GGUF.read(out), theirs = GGUF.read(Path.of("src/test/resources/block-formats/mini-llama2-mixed.gguf"));
        assertEquals(theirs.tensors().keySet(), ours.tensors().keySet());
        int blockFormats = 0;
        for (TensorData r : theirs.tensors().values()) {
            TensorData t = ours.tensors().get(r.name());
            assertEquals(r.type(), t.type(), r.name());
            assertEquals(-1L, t.data().mismatch(r.data()), r.name() + " differs from llama.cpp's " + r.type());
            if (r.type() != GGMLType.F32) blockFormats++;
        }
        assertEquals(16, blockFormats); // the head, the token embedding, and two layers' seven
        assertEquals(theirs.metadata().getInt("general.file_type", -1), ours.metadata().getInt("general.file_type", -2));
    }

    /**
     * TQ1_0 and TQ2_0 as llama-quantize rounds them: TernaryTest's fixture, which llama-quantize made from
     * mini-llama2-F32 (scripts/make-ternary-fixture.sh: TQ1_0 --pure, the head in TQ1_0, the token embedding, attn_q,
     * attn_v and ffn_up in TQ2_0), made again here with the same: every tensor bit for bit, and general.file_type.
     */
    @Test
    void ternaryFixtureIsMadeAgain(@TempDir Path dir) {
        List<Map.Entry<java.util.regex.Pattern, GGMLType>> tensorTypes = new java.util.ArrayList<>();
        for (String kind : new String[]{"attn_q", "attn_v", "ffn_up"}) tensorTypes.add(Map.entry(java.util.regex.Pattern.compile(kind), GGMLType.TQ2_0));
        Path out = dir.resolve("tq.gguf");
        QuantizeModel.plan(Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null), QuantizeMode.TQ1_0,
                new QuantizeModel.Options(false, true, GGMLType.TQ1_0, GGMLType.TQ2_0, tensorTypes, null)).write(out, b -> { });
        GGUF ours = GGUF.read(out), theirs = GGUF.read(Path.of("src/test/resources/ternary/mini-llama2-tq.gguf"));
        assertEquals(theirs.tensors().keySet(), ours.tensors().keySet());
        Map<GGMLType, Integer> ternary = new java.util.EnumMap<>(GGMLType.class);
        for (TensorData r : theirs.tensors().values()) {
            TensorData t = ours.tensors().get(r.name());
            assertEquals(r.type(), t.type(), r.name());
            assertEquals(-1L, t.data().mismatch(r.data()), r.name() + " differs from llama.cpp's " + r.type());
            if (r.type() != GGMLType.F32) ternary.merge(r.type(), 1, Integer::sum);
        }
        assertEquals(Map.of(GGMLType.TQ1_0, 9, GGMLType.TQ2_0, 7), ternary); // the head and two layers' four; the token embedding and two layers' three
        assertEquals(theirs.metadata().getInt("general.file_type", -1), ours.metadata().getInt("general.file_type", -2));
    }

    /**
     * Rows that the K-quants' super-blocks of 256 do not divide take llama-quantize's fallback types: stories260K (rows
     * of 64, and ffn_down's of 172, which no block divides) in q4_k_m as llama-quantize writes it (its file's types:
     * Q5_0 for Q4_K, Q8_0 for Q6_K, so the head and the attn_v of layers 2 and 4 of 5; F16 for ffn_down), and noted;
     * and in tq1_0 as llama-quantize writes that (Q4_0 for TQ1_0).
     */
    @Test
    void kQuantModesFallBackAsLlamaQuantize(@TempDir Path dir) {
        Checkpoint src = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        QuantizeModel.Plan plan = QuantizeModel.plan(src, QuantizeMode.Q4_K_M, QuantizeModel.Options.NONE);
        Path out = dir.resolve("q4_k_m.gguf");
        plan.write(out, b -> { });
        GGUF ours = GGUF.read(out);
        for (TensorData t : ours.tensors().values()) {
            GGMLType expected = t.name().endsWith("_norm.weight") ? GGMLType.F32
                    : t.name().equals("output.weight") || t.name().matches("blk\\.[24]\\.attn_v\\.weight") ? GGMLType.Q8_0
                    : t.name().endsWith("ffn_down.weight") ? GGMLType.F16 : GGMLType.Q5_0;
            assertEquals(expected, t.type(), t.name());
        }
        assertEquals(src.tensors().size(), ours.tensors().size());
        assertTrue(plan.notes().contains("blk.0.ffn_down.weight: rows of 172, where Q4_K takes multiples of 256; F16 instead"), plan.notes().toString());
        assertTrue(plan.notes().contains("output.weight: rows of 64, where Q6_K takes multiples of 256; Q8_0 instead"), plan.notes().toString());
        assertEquals(src.tensors().size() - 5 * 2 - 1, plan.notes().size()); // every weight tensor, none of the norms
        // the ternary mixes: the layers in Q4_0, the token embedding's Q4_K as Q5_0 (llama-quantize's tq1_0 file of stories260K)
        Path tq1 = dir.resolve("tq1_0.gguf");
        QuantizeModel.plan(src, QuantizeMode.TQ1_0, QuantizeModel.Options.NONE).write(tq1, b -> { });
        for (TensorData t : GGUF.read(tq1).tensors().values()) {
            GGMLType expected = t.name().endsWith("_norm.weight") ? GGMLType.F32 : t.name().equals("output.weight") ? GGMLType.Q8_0
                    : t.name().equals("token_embd.weight") ? GGMLType.Q5_0 : t.name().endsWith("ffn_down.weight") ? GGMLType.F16 : GGMLType.Q4_0;
            assertEquals(expected, t.type(), t.name());
        }
        // gpt-fast's modes keep such rows in their float type, as issue #4 asks
        QuantizeModel.Plan int4 = QuantizeModel.plan(src, QuantizeMode.INT4, QuantizeModel.Options.NONE);
        assertEquals(List.of("blk.0.ffn_down.weight: rows of 172, where Q4_0 takes multiples of 32; kept in its float type"), int4.notes().subList(0, 1));
        assertEquals(5, int4.notes().size());
    }

    /**
     * A quantized file: tensors already in the mode's type are copied as they are (llama.cpp's Q6_K file in q6_k is its
     * own tensors again, no flag needed); tensors of another type are refused, or with {@code allowRequantize} rounded
     * again from their dequantized weights (llama.cpp's Q8_0 file in q4_k_m: each tensor the mix's type, from the Q8_0
     * weights, as llama-quantize --allow-requantize makes it).
     */
    @Test
    void quantizedSourcesAreCopiedOrRequantized(@TempDir Path dir) {
        Path q6_k = Shared.REFERENCE.resolve("models/mini-llama2-Q6_K.gguf");
        Path same = dir.resolve("same.gguf");
        QuantizeModel.plan(Checkpoint.load(q6_k, null), QuantizeMode.Q6_K, QuantizeModel.Options.NONE).write(same, b -> { });
        GGUF source = GGUF.read(q6_k);
        for (TensorData t : GGUF.read(same).tensors().values()) assertEquals(-1L, t.data().mismatch(source.tensors().get(t.name()).data()), t.name());

        Checkpoint q8_0 = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-Q8_0.gguf"), null);
        IllegalArgumentException refused = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> QuantizeModel.plan(q8_0, QuantizeMode.Q4_K_M, QuantizeModel.Options.NONE));
        assertTrue(refused.getMessage().contains("is already quantized (Q8_0)"), refused.getMessage());
        Path again = dir.resolve("again.gguf");
        QuantizeModel.plan(q8_0, QuantizeMode.Q4_K_M, new QuantizeModel.Options(true, false, null, null, List.of(), null)).write(again, b -> { });
        int compared = 0;
        for (TensorData t : GGUF.read(again).tensors().values()) {
            if (t.type() == GGMLType.F32) continue;
            Tensor from = Tensor.of(q8_0.tensors().get(t.name()));
            MemorySegment expected = Arena.ofAuto().allocate(t.data().byteSize());
            float[] row = new float[from.cols];
            for (int i = 0; i < from.rows; i++) {
                from.dequantizeRow(i, row, 0);
                Quantizer.quantizeRow(t.type(), row, 0, from.cols, null, expected, i * t.type().bytesFor(from.cols));
            }
            assertEquals(-1L, t.data().mismatch(expected), t.name());
            compared++;
        }
        assertEquals(2 * 7 + 2, compared);
    }

    /**
     * Quantizing at load ({@code --quantize}) takes the float linear layers only: a Q4_0 file asked for int8 keeps its
     * Q4_0 layers (requantizing them would round twice and double the bytes read).
     */
    @Test
    void quantizingAtLoadKeepsQuantizedLayers() {
        Checkpoint q = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf"), null, GGMLType.Q8_0);
        var layer = q.model().weights().layers()[0];
        assertEquals(GGMLType.Q4_0, layer.wq().type);
        assertEquals(GGMLType.Q4_0, q.model().weights().output().type);
    }
}
