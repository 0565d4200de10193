package gptfast4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import gptfast4j.tokenizer.TokenizerVectorsTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** BERT encoders ({@link Encoder}) against llama.cpp's llama-embedding on a random model of BERT's layout. */
public class EncoderTest {
    public static final int DIM = 64, HEADS = 4, LAYERS = 2, HIDDEN = 128, CONTEXT = 128;

    /**
     * A random BERT (bge's layout: every projection and LayerNorm with a bias, learned positions, two token types) of
     * {@link #DIM} wide, on the uncased WordPiece vocabulary made of ../shared's Llama-2 one ({@link
     * TokenizerVectorsTest#wordPieceVocab}), its pooling mean; with {@code reranker} a reranker's head ({@code cls},
     * {@code cls.output} of one label) and rank pooling.
     */
    public static void writeBert(Path out, boolean reranker) {
        write(out, "bert", reranker);
    }

    /**
     * A random nomic-bert (nomic-embed-text's layout: RoPE with base 1000 on halves of each head instead of learned
     * positions, the query, key and value projections one attn_qkv, SwiGLU feed-forwards, no biases but the norms'),
     * otherwise as {@link #writeBert}'s.
     */
    public static void writeNomicBert(Path out) {
        write(out, "nomic-bert", false);
    }

    /**
     * A random jina-bert-v2 (jina-embeddings-v2's layout: ALiBi instead of positions, LayerNorms of the queries and keys,
     * a second norm after the attention, GeGLU with its gate and up in one ffn_up of twice the width, biases), otherwise
     * as {@link #writeBert}'s.
     */
    public static void writeJinaBert(Path out) {
        write(out, "jina-bert-v2", false);
    }

    /**
     * A random ModernBERT ({@code modern-bert}: pre-norm blocks of unbiased LayerNorms, none before the first layer's
     * attention, a fused attn_qkv, RoPE in every layer with base 160000, the second layer sliding over a window of 8
     * with base 10000, GeGLU of a fused ffn_up, an output norm; no biases, no token types) on ../shared's Llama-3
     * vocabulary marked {@code modern-bert} (GPT-2's split), each text {@code <|begin_of_text|> text <|end_of_text|>}.
     */
    public static void writeModernBert(Path out) {
        String arch = "modern-bert";
        Map<String, Metadata.Value> md = new java.util.LinkedHashMap<>();
        gptfast4j.io.Metadata vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf")).metadata();
        vocab.asMap().forEach((k, v) -> { if (k.startsWith("tokenizer.")) md.put(k, v); });
        int vocabSize = ((String[]) md.get("tokenizer.ggml.tokens").value()).length;
        md.put("general.architecture", Metadata.Value.string(arch));
        md.put("general.name", Metadata.Value.string("modern-bert-mini"));
        md.put(arch + ".block_count", Metadata.Value.uint32(LAYERS));
        md.put(arch + ".context_length", Metadata.Value.uint32(CONTEXT));
        md.put(arch + ".embedding_length", Metadata.Value.uint32(DIM));
        md.put(arch + ".feed_forward_length", Metadata.Value.uint32(HIDDEN));
        md.put(arch + ".attention.head_count", Metadata.Value.uint32(HEADS));
        md.put(arch + ".attention.layer_norm_epsilon", Metadata.Value.float32(1e-5f));
        md.put(arch + ".attention.sliding_window", Metadata.Value.uint32(8));
        md.put(arch + ".rope.freq_base", Metadata.Value.float32(160000f));
        md.put(arch + ".rope.freq_base_swa", Metadata.Value.float32(10000f));
        md.put(arch + ".pooling_type", Metadata.Value.uint32(1));
        md.put("tokenizer.ggml.pre", Metadata.Value.string("modern-bert"));
        md.put("tokenizer.ggml.add_bos_token", Metadata.Value.bool(true));
        md.put("tokenizer.ggml.add_eos_token", Metadata.Value.bool(true));
        md.put("tokenizer.ggml.add_sep_token", Metadata.Value.bool(true));
        md.put("tokenizer.ggml.seperator_token_id", Metadata.Value.uint32(128001));
        List<GGUFWriter.TensorSpec> t = new ArrayList<>();
        FamilyFiles.matrix(t, "token_embd.weight", new long[]{DIM, vocabSize}, 1);
        FamilyFiles.norm(t, "token_embd_norm.weight", DIM, 4);
        for (int l = 0; l < LAYERS; l++) {
            String p = "blk." + l + ".";
            int seed = 100 * (l + 1);
            if (l > 0) FamilyFiles.norm(t, p + "attn_norm.weight", DIM, seed + 1);
            FamilyFiles.matrix(t, p + "attn_qkv.weight", new long[]{DIM, 3 * DIM}, seed + 2);
            FamilyFiles.matrix(t, p + "attn_output.weight", new long[]{DIM, DIM}, seed + 3);
            FamilyFiles.norm(t, p + "ffn_norm.weight", DIM, seed + 4);
            FamilyFiles.matrix(t, p + "ffn_up.weight", new long[]{DIM, 2 * HIDDEN}, seed + 5);
            FamilyFiles.matrix(t, p + "ffn_down.weight", new long[]{HIDDEN, DIM}, seed + 6);
        }
        FamilyFiles.norm(t, "output_norm.weight", DIM, 5);
        GGUFWriter.write(out, md, t, n -> { });
    }

    /**
     * A random nomic-bert-moe (nomic-embed-text v2's layout: nomic-bert's RoPE and fused attn_qkv with biases, BERT's
     * ungated GELU with biases in its first layer, a mixture of 4 experts, 2 used, in its second) on the unigram
     * vocabulary (XLM-RoBERTa's kind).
     */
    public static void writeNomicBertMoe(Path out) {
        Map<String, Metadata.Value> vocab = new java.util.LinkedHashMap<>(gptfast4j.io.GGUF.read(Path.of("src/test/resources/tokenizer/unigram-mini.gguf")).metadata().asMap());
        write(out, "nomic-bert-moe", false, vocab);
    }

    /**
     * A random task adapter of {@link #writeJinaBertV3}'s model, as llama.cpp's converter writes jina-embeddings-v3's
     * (rank 4, alpha 8): its fused attn_qkv's, attn_output's, ffn_up's and ffn_down's pairs, the embeddings' (lora_a
     * [4, vocab], lora_b [4, dim]) and token_types' (which llama.cpp reads and does not apply).
     */
    public static void writeJinaBertV3Adapter(Path out, int vocab) {
        Map<String, Metadata.Value> md = LoraTest.adapterMetadata("jina-bert-v3");
        md.put("adapter.lora.task_name", Metadata.Value.string("retrieval.query"));
        List<GGUFWriter.TensorSpec> t = new ArrayList<>();
        int seed = 500;
        for (int l = 0; l < LAYERS; l++) {
            String p = "blk." + l + ".";
            long[][] shapes = {{DIM, 3 * DIM}, {DIM, DIM}, {DIM, HIDDEN}, {HIDDEN, DIM}};
            String[] names = {"attn_qkv", "attn_output", "ffn_up", "ffn_down"};
            for (int m = 0; m < names.length; m++) {
                FamilyFiles.matrix(t, p + names[m] + ".weight.lora_a", new long[]{shapes[m][0], 4}, seed++);
                FamilyFiles.matrix(t, p + names[m] + ".weight.lora_b", new long[]{4, shapes[m][1]}, seed++);
            }
        }
        FamilyFiles.matrix(t, "token_embd.weight.lora_a", new long[]{4, vocab}, seed++);
        FamilyFiles.matrix(t, "token_embd.weight.lora_b", new long[]{4, DIM}, seed++);
        FamilyFiles.matrix(t, "token_types.weight.lora_a", new long[]{DIM, 4}, seed++);
        FamilyFiles.matrix(t, "token_types.weight.lora_b", new long[]{4, 2}, seed);
        GGUFWriter.write(out, md, t, n -> { });
    }

    /**
     * A random jina-bert-v3 (jina-embeddings-v3's layout without its task adapters: BERT's blocks with RoPE, base 10000,
     * instead of positions, a fused attn_qkv, biases) on the unigram vocabulary (XLM-RoBERTa's kind).
     */
    public static void writeJinaBertV3(Path out) {
        Map<String, Metadata.Value> vocab = new java.util.LinkedHashMap<>(gptfast4j.io.GGUF.read(Path.of("src/test/resources/tokenizer/unigram-mini.gguf")).metadata().asMap());
        write(out, "jina-bert-v3", false, vocab);
    }

    /**
     * A random BERT of XLM-RoBERTa's kind (bge-m3's, multilingual-e5's): {@link #writeBert}'s layout on
     * TokenizerVectorsTest's unigram vocabulary ({@code <s> text </s>}).
     */
    public static void writeXlmRoberta(Path out) {
        Map<String, Metadata.Value> vocab = new java.util.LinkedHashMap<>(gptfast4j.io.GGUF.read(Path.of("src/test/resources/tokenizer/unigram-mini.gguf")).metadata().asMap());
        write(out, "bert", false, vocab);
    }

    private static void write(Path out, String arch, boolean reranker) {
        write(out, arch, reranker, TokenizerVectorsTest.wordPieceVocab(true, true));
    }

    private static void write(Path out, String arch, boolean reranker, Map<String, Metadata.Value> vocabulary) {
        // nomic-bert's SwiGLU without biases; nomic-bert-moe's and jina-bert-v3's BERT feed-forwards and biases; all three fused and rotated
        boolean moe = arch.equals("nomic-bert-moe"), swiglu = arch.equals("nomic-bert"), rotary = swiglu || moe || arch.equals("jina-bert-v3"),
                jina = arch.equals("jina-bert-v2");
        Map<String, Metadata.Value> md = new java.util.LinkedHashMap<>();
        vocabulary.forEach((k, v) -> md.put(k.startsWith("bert.") ? arch + k.substring(4) : k, v));
        md.put("general.architecture", Metadata.Value.string(arch));
        int vocab = ((String[]) md.get("tokenizer.ggml.tokens").value()).length;
        md.put("general.name", Metadata.Value.string(arch + "-mini"));
        md.put(arch + ".block_count", Metadata.Value.uint32(LAYERS));
        md.put(arch + ".context_length", Metadata.Value.uint32(CONTEXT));
        md.put(arch + ".embedding_length", Metadata.Value.uint32(DIM));
        md.put(arch + ".feed_forward_length", Metadata.Value.uint32(HIDDEN));
        md.put(arch + ".attention.head_count", Metadata.Value.uint32(HEADS));
        md.put(arch + ".pooling_type", Metadata.Value.uint32(reranker ? 4 : 1));
        md.put("tokenizer.ggml.token_type_count", Metadata.Value.uint32(2)); // token_types' rows, which llama.cpp requires
        if (rotary) md.put(arch + ".rope.freq_base", Metadata.Value.float32(swiglu ? 1000f : 10000f));
        if (moe) {
            md.put(arch + ".expert_count", Metadata.Value.uint32(4));
            md.put(arch + ".expert_used_count", Metadata.Value.uint32(2));
            md.put(arch + ".moe_every_n_layers", Metadata.Value.uint32(2));
        }
        List<GGUFWriter.TensorSpec> t = new ArrayList<>();
        FamilyFiles.matrix(t, "token_embd.weight", new long[]{DIM, vocab}, 1);
        FamilyFiles.matrix(t, "token_types.weight", new long[]{DIM, 2}, 2);
        if (!rotary && !jina) FamilyFiles.matrix(t, "position_embd.weight", new long[]{DIM, CONTEXT}, 3);
        FamilyFiles.norm(t, "token_embd_norm.weight", DIM, 4);
        FamilyFiles.bias(t, "token_embd_norm.bias", new long[]{DIM}, 5);
        for (int l = 0; l < LAYERS; l++) {
            String p = "blk." + l + ".";
            int seed = 100 * (l + 1);
            if (rotary) {
                FamilyFiles.matrix(t, p + "attn_qkv.weight", new long[]{DIM, 3 * DIM}, seed);
                FamilyFiles.matrix(t, p + "attn_output.weight", new long[]{DIM, DIM}, seed + 3);
                if (!swiglu) FamilyFiles.bias(t, p + "attn_qkv.bias", new long[]{3 * DIM}, seed + 7);
                if (!swiglu) FamilyFiles.bias(t, p + "attn_output.bias", new long[]{DIM}, seed + 8);
            } else {
                String[] square = {"attn_q", "attn_k", "attn_v", "attn_output"};
                for (int i = 0; i < square.length; i++) {
                    FamilyFiles.matrix(t, p + square[i] + ".weight", new long[]{DIM, DIM}, seed + i);
                    FamilyFiles.bias(t, p + square[i] + ".bias", new long[]{DIM}, seed + 10 + i);
                }
            }
            FamilyFiles.norm(t, p + "attn_output_norm.weight", DIM, seed + 20);
            FamilyFiles.bias(t, p + "attn_output_norm.bias", new long[]{DIM}, seed + 21);
            if (jina) {
                for (String norm : new String[]{"attn_q_norm", "attn_k_norm", "attn_norm_2"}) {
                    FamilyFiles.norm(t, p + norm + ".weight", DIM, seed + 50 + norm.length());
                    FamilyFiles.bias(t, p + norm + ".bias", new long[]{DIM}, seed + 60 + norm.length());
                }
            }
            if (moe && l == 1) {
                FamilyFiles.matrix(t, p + "ffn_gate_inp.weight", new long[]{DIM, 4}, seed + 35);
                FamilyFiles.matrix(t, p + "ffn_up_exps.weight", new long[]{DIM, HIDDEN, 4}, seed + 36);
                FamilyFiles.matrix(t, p + "ffn_down_exps.weight", new long[]{HIDDEN, DIM, 4}, seed + 37);
            } else {
                if (swiglu) FamilyFiles.matrix(t, p + "ffn_gate.weight", new long[]{DIM, HIDDEN}, seed + 34);
                FamilyFiles.matrix(t, p + "ffn_up.weight", new long[]{DIM, jina ? 2 * HIDDEN : HIDDEN}, seed + 30);
                if (!swiglu) FamilyFiles.bias(t, p + "ffn_up.bias", new long[]{jina ? 2 * HIDDEN : HIDDEN}, seed + 31);
                FamilyFiles.matrix(t, p + "ffn_down.weight", new long[]{HIDDEN, DIM}, seed + 32);
                if (!swiglu) FamilyFiles.bias(t, p + "ffn_down.bias", new long[]{DIM}, seed + 33);
            }
            FamilyFiles.norm(t, p + "layer_output_norm.weight", DIM, seed + 40);
            FamilyFiles.bias(t, p + "layer_output_norm.bias", new long[]{DIM}, seed + 41);
        }
        if (reranker) {
            FamilyFiles.matrix(t, "cls.weight", new long[]{DIM, DIM}, 7);
            FamilyFiles.bias(t, "cls.bias", new long[]{DIM}, 8);
            FamilyFiles.matrix(t, "cls.output.weight", new long[]{DIM, 1}, 9);
            FamilyFiles.bias(t, "cls.output.bias", new long[]{1}, 10);
        }
        GGUFWriter.write(out, md, t, n -> { });
    }

    /**
     * llama.cpp's CPU backend looks GELU up in a table of half floats (its input and its result rounded to F16), where
     * ours computes it in floats: the embeddings differ by up to 4e-5 for that alone (with GELU rounded so, ours were
     * within 1.3e-7 of llama-embedding's seven printed decimals, checked by hand).
     */
    public static final double TOLERANCE = 1e-4;

    private static final JsonNode REFS = Shared.json(Path.of("src/test/resources/embeddings/bert-mini-embeddings.json"));

    /** Mean, first-token (cls) and last-token pooling of four texts: llama-embedding's vectors, and its token count. */
    @Test
    void poolingsAreLlamaEmbeddingsOutput(@TempDir Path dir) {
        Path file = dir.resolve("bert-mini.gguf");
        writeBert(file, false);
        Encoder bert = Encoder.load(file);
        assertEquals(Pooling.MEAN, Pooling.of(bert.metadata()));
        int tokens = 0;
        for (JsonNode text : REFS.path("texts")) tokens += bert.tokens(text.asText()).length;
        assertEquals(REFS.path("n_tokens").asInt(), tokens);
        for (Pooling pooling : new Pooling[]{Pooling.MEAN, Pooling.CLS, Pooling.LAST}) {
            for (int i = 0; i < REFS.path("texts").size(); i++) {
                float[] embedding = pooling.embed(bert, bert.tokens(REFS.path("texts").get(i).asText()), Pooling.EUCLIDEAN);
                JsonNode expected = REFS.path(pooling.option()).get(i);
                assertEquals(expected.size(), embedding.length);
                for (int j = 0; j < embedding.length; j++) assertEquals(expected.get(j).asDouble(), embedding[j], TOLERANCE, pooling + ", text " + i + ", value " + j);
            }
        }
    }

    /**
     * The other BERT families, each a random model of its layout: nomic-bert (RoPE instead of positions, a fused
     * attn_qkv, SwiGLU; no GELU, so within llama-embedding's seven printed decimals), jina-bert-v2 (ALiBi, query and key
     * LayerNorms, a second norm after the attention, GeGLU of a fused ffn_up), nomic-bert-moe (a mixture of 4 experts,
     * 2 used, in its second layer, on a unigram vocabulary) and jina-bert-v3 (BERT's blocks with RoPE, on a unigram
     * vocabulary): each pooling's vectors are llama-embedding's, the others within the F16 GELU's difference.
     */
    @ParameterizedTest
    @CsvSource({"nomic-bert, 3e-7", "jina-bert-v2, 1e-4", "nomic-bert-moe, 1e-4", "jina-bert-v3, 1e-4"})
    void familiesPoolAsLlamaEmbeddingPools(String arch, double tolerance, @TempDir Path dir) {
        Path file = dir.resolve(arch + "-mini.gguf");
        switch (arch) {
            case "nomic-bert" -> writeNomicBert(file);
            case "jina-bert-v2" -> writeJinaBert(file);
            case "nomic-bert-moe" -> writeNomicBertMoe(file);
            default -> writeJinaBertV3(file);
        }
        Encoder encoder = Encoder.load(file);
        assertEquals(arch, encoder.config.architecture());
        assertEquals(arch.equals("jina-bert-v2") ? 8f : 0f, encoder.config.maxAlibiBias());
        assertEquals(arch.equals("nomic-bert-moe") ? 2 : 0, encoder.config.expertsUsed());
        assertPoolings(encoder, REFS.path(arch), tolerance);
    }

    /**
     * jina-embeddings-v3's task adapters: a random one of jina-bert-v3's layout ({@link #writeJinaBertV3Adapter}: the
     * fused attn_qkv's pair split over the queries, keys and values, the embeddings', and token_types' left out as
     * llama.cpp leaves it) changes every pooling's vectors to llama-embedding --lora's, within the F16 GELU's
     * difference (they move by 0.2 to 0.33 from the model's own).
     */
    @Test
    void jinaV3TaskAdapterAsLlamaEmbeddingApplies(@TempDir Path dir) {
        Path file = dir.resolve("jina-bert-v3-mini.gguf"), adapter = dir.resolve("jina-bert-v3-lora.gguf");
        writeJinaBertV3(file);
        Encoder encoder = Encoder.load(file);
        writeJinaBertV3Adapter(adapter, encoder.config.vocabSize());
        assertEquals("jina-bert-v3-lora.gguf (10 matrices)", encoder.adapt(List.of(adapter), List.of(1f)).description());
        assertPoolings(encoder, REFS.path("jina-bert-v3-lora"), 1e-4);
        encoder.adapt(List.of(), List.of());
        assertPoolings(encoder, REFS.path("jina-bert-v3"), 1e-4);
    }

    /**
     * ModernBERT (pre-norm blocks, RoPE of two bases, a symmetric sliding window in its second layer, GeGLU, a byte-level
     * vocabulary): the four texts' 65 tokens and each pooling's vectors are llama-embedding's, within the F16 GELU's
     * difference.
     */
    @Test
    void modernBertPoolingsAreLlamaEmbeddingsOutput(@TempDir Path dir) {
        Path file = dir.resolve("modern-bert-mini.gguf");
        writeModernBert(file);
        Encoder modern = Encoder.load(file);
        assertTrue(modern.config.preNorm() && !modern.config.sliding(0) && modern.config.sliding(1));
        assertEquals("<|begin_of_text|> text <|end_of_text|>", modern.frame());
        JsonNode refs = REFS.path("modern-bert");
        assertEquals(refs.path("n_tokens").asInt(), java.util.stream.StreamSupport.stream(REFS.path("texts").spliterator(), false)
                .mapToInt(t -> modern.tokens(t.asText()).length).sum());
        assertPoolings(modern, refs, TOLERANCE);
    }

    /**
     * A BERT on a unigram vocabulary (XLM-RoBERTa's kind: bge-m3, multilingual-e5), each text {@code <s> text </s>} as
     * its file adds BOS and EOS: the four texts' 141 tokens and each pooling's vectors are llama-embedding's, within
     * the F16 GELU's difference.
     */
    @Test
    void xlmRobertaPoolingsAreLlamaEmbeddingsOutput(@TempDir Path dir) {
        Path file = dir.resolve("xlm-roberta-mini.gguf");
        writeXlmRoberta(file);
        Encoder xlmr = Encoder.load(file);
        assertEquals("<s> text </s>", xlmr.frame());
        JsonNode refs = REFS.path("xlm-roberta");
        assertEquals(refs.path("n_tokens").asInt(), java.util.stream.StreamSupport.stream(REFS.path("texts").spliterator(), false)
                .mapToInt(t -> xlmr.tokens(t.asText()).length).sum());
        assertPoolings(xlmr, refs, TOLERANCE);
    }

    /** The four texts' mean, cls and last pooling by {@code encoder}, embedded together, against {@code refs}' vectors. */
    private static void assertPoolings(Encoder encoder, JsonNode refs, double tolerance) {
        List<int[]> texts = new ArrayList<>();
        REFS.path("texts").forEach(t -> texts.add(encoder.tokens(t.asText())));
        for (Pooling pooling : new Pooling[]{Pooling.MEAN, Pooling.CLS, Pooling.LAST}) {
            List<float[]> embeddings = pooling.embed(encoder, texts, Pooling.EUCLIDEAN);
            for (int i = 0; i < texts.size(); i++) {
                JsonNode expected = refs.path(pooling.option()).get(i);
                assertEquals(expected.size(), embeddings.get(i).length);
                for (int j = 0; j < expected.size(); j++) assertEquals(expected.get(j).asDouble(), embeddings.get(i)[j], tolerance, pooling + ", text " + i + ", value " + j);
            }
        }
    }

    /**
     * Encoders quantized as llama-quantize de3ff81 quantizes them (a head-less model's token embedding by a head's
     * rules, a reranker's dense layer with the layers, its one-label output left as it is): each file's tensors, names,
     * types and bytes, hash to what llama-quantize's file of the same model and mode hashes to (SHA-256 over the
     * tensors by name: name, type, bytes); a Q8_0 encoder's embeddings stay within 2e-3 of the F32 one's (1.4e-3 measured).
     */
    @ParameterizedTest
    @CsvSource({"bert-reranker, q4_k_m, 0d03d251499b45da1b37c641eea9152bf89968564ee2d2fba904be0bef98631f",
            "nomic-bert, q8_0, af7a0c262b027ebb049d4ca6e182ad1feefcd3f0f544113a532a5817e686472d",
            "xlm-roberta, q6_k, dd8b2ad291b669798d8076be2ede6cf0f890c05c3156dbe709d9d4bcc2956dd6"})
    void quantizedAsLlamaQuantizeQuantizesThem(String model, String mode, String llamaQuantizes, @TempDir Path dir) throws Exception {
        Path file = dir.resolve(model + ".gguf"), out = dir.resolve(model + "-" + mode + ".gguf");
        switch (model) {
            case "bert-reranker" -> writeBert(file, true);
            case "nomic-bert" -> writeNomicBert(file);
            default -> writeXlmRoberta(file);
        }
        Encoder f32 = Encoder.load(file);
        gptfast4j.quant.QuantizeModel.plan(f32, gptfast4j.quant.QuantizeMode.of(mode, "--mode"), gptfast4j.quant.QuantizeModel.Options.NONE).write(out, b -> { });
        assertEquals(llamaQuantizes, tensorsDigest(out));
        if (!mode.equals("q8_0")) return;
        Encoder q8 = Encoder.load(out);
        List<int[]> texts = new ArrayList<>();
        REFS.path("texts").forEach(t -> texts.add(f32.tokens(t.asText())));
        List<float[]> exact = Pooling.MEAN.embed(f32, texts, Pooling.EUCLIDEAN), quantized = Pooling.MEAN.embed(q8, texts, Pooling.EUCLIDEAN);
        for (int i = 0; i < texts.size(); i++) org.junit.jupiter.api.Assertions.assertArrayEquals(exact.get(i), quantized.get(i), 2e-3f, "text " + i);
    }

    /** SHA-256 over a GGUF file's tensors in name order: each one's name, its type's name and its bytes. */
    static String tensorsDigest(Path file) throws Exception {
        java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
        for (var t : new java.util.TreeMap<>(gptfast4j.io.GGUF.read(file).tensors()).values()) {
            sha.update(t.name().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            sha.update(t.type().name().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            sha.update(t.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        }
        return java.util.HexFormat.of().formatHex(sha.digest());
    }

    /**
     * Texts embedded together, in passes of several texts (each attending to itself only) and across passes ({@link
     * Encoder#BATCH_TOKENS}), give each text's embedding alone (to the float sums of other batch sizes).
     */
    @Test
    void textsTogetherAreEachTextAlone(@TempDir Path dir) {
        Path file = dir.resolve("bert-mini.gguf");
        writeBert(file, false);
        Encoder bert = Encoder.load(file);
        List<int[]> texts = new ArrayList<>();
        for (int r = 0; r < 20; r++) REFS.path("texts").forEach(t -> texts.add(bert.tokens(t.asText())));
        assertTrue(texts.stream().mapToInt(t -> t.length).sum() > 2 * Encoder.BATCH_TOKENS);
        List<float[]> together = Pooling.MEAN.embed(bert, texts, Pooling.EUCLIDEAN);
        for (int i = 0; i < texts.size(); i++) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(Pooling.MEAN.embed(bert, texts.get(i), Pooling.EUCLIDEAN), together.get(i), 1e-6f, "text " + i);
        }
    }

    /** A reranker's score of each text (its head over the first token's state, unnormalized): llama-embedding's. */
    @Test
    void rerankerScoresAreLlamaEmbeddingsOutput(@TempDir Path dir) {
        Path file = dir.resolve("bert-mini-reranker.gguf");
        writeBert(file, true);
        Encoder bert = Encoder.load(file);
        assertTrue(bert.ranks());
        assertEquals(Pooling.RANK, Pooling.of(bert.metadata()));
        for (int i = 0; i < REFS.path("texts").size(); i++) {
            float[] scores = Pooling.RANK.embed(bert, bert.tokens(REFS.path("texts").get(i).asText()), Pooling.EUCLIDEAN);
            assertEquals(1, scores.length);
            assertEquals(REFS.path("rank").get(i).asDouble(), scores[0], TOLERANCE, "text " + i);
        }
    }

    /**
     * A decoder's loader refuses an encoder's file, naming the command that runs it; an encoder refuses a text longer
     * than its context, a file with a tensor it would not read, a file without one it needs, and rank pooling without a head.
     */
    @Test
    void refusals(@TempDir Path dir) {
        Path file = dir.resolve("bert-mini.gguf");
        writeBert(file, false);
        ModelFormatException decoder = assertThrows(ModelFormatException.class, () -> Checkpoint.load(file, null));
        assertTrue(decoder.getMessage().endsWith("a bert model is an encoder, which makes embeddings, not text (gptfast embed)"), decoder.getMessage());
        Encoder bert = Encoder.load(file);
        IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class, () -> Pooling.MEAN.embed(bert, bert.tokens("word ".repeat(CONTEXT)), 2));
        assertEquals((CONTEXT + 2) + " tokens exceed the context length " + CONTEXT, tooLong.getMessage());
        IllegalArgumentException noHead = assertThrows(IllegalArgumentException.class, () -> Pooling.RANK.embed(bert, bert.tokens("a"), 2));
        assertTrue(noHead.getMessage().startsWith("rank pooling needs a reranker"), noHead.getMessage());

        Path extra = dir.resolve("extra.gguf");
        FamilyFiles.rewrite(file, extra, md -> { }, name -> true, (all, tensors) -> FamilyFiles.bias(tensors, "blk.0.ffn_norm.weight", new long[]{DIM}, 1));
        ModelFormatException unused = assertThrows(ModelFormatException.class, () -> Encoder.load(extra));
        assertTrue(unused.getMessage().endsWith("unused tensor blk.0.ffn_norm.weight (a layout this version does not know)"), unused.getMessage());

        Path missing = dir.resolve("missing.gguf");
        FamilyFiles.rewrite(file, missing, md -> { }, name -> !name.equals("blk.1.ffn_down.weight"), (all, tensors) -> { });
        ModelFormatException absent = assertThrows(ModelFormatException.class, () -> Encoder.load(missing));
        assertTrue(absent.getMessage().endsWith("missing tensor blk.1.ffn_down.weight"), absent.getMessage());
    }
}
