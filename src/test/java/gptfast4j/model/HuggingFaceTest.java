package gptfast4j.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Hugging Face directory written here from stories260K's weights, the way transformers' conversion script writes
 * Llama checkpoints: PyTorch names, {@code [out, in]} shapes, and q/k rows permuted for the "rotate half" RoPE. It
 * must give the GGUF's logits, both as one safetensors file and as shards with an index.
 */
class HuggingFaceTest {
    private static final Path GGUF_FILE = Shared.MODELS.resolve("stories260K.gguf");

    @Test
    void mixtralGivesTheGGUFLogits(@TempDir Path dir) throws IOException {
        Path gguf = Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf");
        writeHuggingFace(gguf, dir, false);
        Checkpoint hf = Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin"));
        assertTrue(hf.model().config.isMoE());
        compare(Checkpoint.load(gguf, null), hf);
    }

    /**
     * What a config.json leaves out takes transformers' default for its class: LlamaConfig's RMS norm epsilon is 1e-6
     * (it was taken as 1e-5 here), its context 2048; MixtralConfig's are 1e-5, a rope base of 1e6 and 131072.
     */
    @Test
    void whatAConfigLeavesOutTakesTransformersDefaults(@TempDir Path dir) throws IOException {
        Path tok = Shared.MODELS.resolve("tok512.bin");
        String[][] cases = {{"llama", GGUF_FILE.toString()}, {"mixtral", Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf").toString()}};
        for (String[] c : cases) {
            Path d = dir.resolve(c[0]);
            Files.createDirectories(d);
            writeHuggingFace(Path.of(c[1]), d, false);
            ObjectNode config = (ObjectNode) new ObjectMapper().readTree(d.resolve("config.json").toFile());
            config.remove(List.of("rms_norm_eps", "rope_theta", "max_position_embeddings"));
            new ObjectMapper().writeValue(d.resolve("config.json").toFile(), config);
            Config loaded = Checkpoint.load(d, tok).model().config;
            boolean mixtral = c[0].equals("mixtral");
            assertEquals(mixtral ? 1e-5f : 1e-6f, loaded.rmsNormEps());
            assertEquals(mixtral ? 1e6f : 10000f, loaded.ropeTheta());
            assertEquals(mixtral ? 131072 : 2048, loaded.contextLength());
        }
    }

    /**
     * quantize from a Hugging Face Mixtral writes llama.cpp's expert keys and its merged expert tensors
     * ({@code ffn_gate_exps} [in, out, experts], the only form llama.cpp reads now), so the GGUF is a mixture again.
     */
    @Test
    void quantizedMixtralFromHuggingFaceStaysAMixture(@TempDir Path dir) throws IOException {
        Path gguf = Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf");
        Checkpoint hf = huggingFaceMixtral(dir);
        Path out = dir.resolve("q8.gguf");
        gptfast4j.quant.QuantizeModel.plan(hf, gptfast4j.quant.QuantizeMode.INT8, gptfast4j.quant.QuantizeModel.Options.NONE).write(out, b -> { });
        Map<String, TensorData> written = GGUF.read(out).tensors();
        assertEquals(List.of(256L, 256L, 4L), java.util.Arrays.stream(written.get("blk.1.ffn_gate_exps.weight").shape()).boxed().toList());
        assertTrue(written.keySet().stream().noneMatch(n -> n.matches("blk\\.\\d+\\.ffn_(gate|up|down)\\.\\d+\\.weight")), written.keySet().toString());
        Checkpoint q = Checkpoint.load(out, null);
        assertEquals(4, q.model().config.expertCount());
        assertEquals(2, q.model().config.expertsUsed());
        assertEquals(Config.RopeStyle.INTERLEAVED, q.model().config.ropeStyle()); // q/k rows permuted back
        Checkpoint reference = Checkpoint.load(gguf, null, gptfast4j.tensor.GGMLType.Q8_0);
        compare(reference, q);
    }

    /**
     * A Hugging Face Mixtral quantized to Q4_K_M with llama-imatrix's matrix of its GGUF is, tensor for tensor, what
     * llama-quantize --imatrix writes from the GGUF (the imatrix fixture's SHA-256s): its experts merged, each with its
     * importance; and {@code gptfast imatrix} names the directory's experts as llama-imatrix names the GGUF's, with
     * the same sums.
     */
    @Test
    void mixtralFromHuggingFaceIsLlamaQuantizesOfItsGguf(@TempDir Path dir) throws Exception {
        Path gguf = Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf");
        Checkpoint hf = huggingFaceMixtral(dir);
        Path fixture = Path.of("src/test/resources/imatrix");
        gptfast4j.quant.ImportanceMatrix llamas = gptfast4j.quant.ImportanceMatrix.read(fixture.resolve("mini-mixtral.imatrix.gguf"));
        Path out = dir.resolve("q4_k_m.gguf");
        gptfast4j.quant.QuantizeModel.plan(hf, gptfast4j.quant.QuantizeMode.Q4_K_M,
                new gptfast4j.quant.QuantizeModel.Options(false, false, null, null, List.of(), llamas)).write(out, b -> { });
        Map<String, String> expected = new java.util.TreeMap<>();
        for (String line : Files.readAllLines(fixture.resolve("quantized.sha256"))) {
            String[] f = line.split(" ", 3);
            if (f[0].equals("mini-mixtral-q4_k_m") && !f[1].equals("key")) expected.put(f[1], f[2]);
        }
        Map<String, String> ours = new java.util.TreeMap<>();
        for (TensorData t : GGUF.read(out).tensors().values()) {
            ours.put(t.name(), t.type().id + " " + java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(t.data().toArray(ValueLayout.JAVA_BYTE))));
        }
        assertEquals(expected, ours);
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"));
        var fromHf = gptfast4j.quant.ImportanceCollector.collect(hf, text, "t", 128, 2, false, KvCache.Type.F32, (d, m) -> { }).matrix();
        var fromGguf = gptfast4j.quant.ImportanceCollector.collect(Checkpoint.load(gguf, null), text, "t", 128, 2, false, KvCache.Type.F32, (d, m) -> { }).matrix();
        assertEquals(new java.util.TreeSet<>(fromGguf.entries().keySet()), new java.util.TreeSet<>(fromHf.entries().keySet()));
        for (var e : fromGguf.entries().entrySet()) {
            var h = fromHf.entries().get(e.getKey());
            assertEquals(java.util.Arrays.toString(e.getValue().counts()), java.util.Arrays.toString(h.counts()), e.getKey());
            for (int i = 0; i < h.sums().length; i++) assertEquals(e.getValue().sums()[i], h.sums()[i], 1e-4 * Math.abs(e.getValue().sums()[i]) + 1e-6, e.getKey());
        }
    }

    /** mini-mixtral written as a Hugging Face directory in {@code dir}, loaded (its experts one tensor each). */
    private static Checkpoint huggingFaceMixtral(Path dir) throws IOException {
        Path hfDir = Files.createDirectory(dir.resolve("hf"));
        writeHuggingFace(Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf"), hfDir, false);
        return Checkpoint.load(hfDir, Shared.MODELS.resolve("tok512.bin"));
    }

    /**
     * A Hugging Face model (q/k rows in the "rotate half" order) quantized to llama.cpp's Q4_K_M mix is its GGUF's
     * Q4_K_M, tensor for tensor: the rows are put back in GGUF's order before they are rounded.
     */
    @Test
    void kQuantMixFromHuggingFaceIsTheGGUFs(@TempDir Path dir) throws IOException {
        Path gguf = Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf");
        Path hfDir = Files.createDirectory(dir.resolve("hf"));
        writeHuggingFace(gguf, hfDir, false);
        Path fromHf = dir.resolve("hf.gguf"), fromGguf = dir.resolve("gguf.gguf");
        Checkpoint hf = Checkpoint.load(hfDir, Shared.MODELS.resolve("tok512.bin"));
        assertEquals(Config.RopeStyle.HALVES, hf.model().config.ropeStyle());
        gptfast4j.quant.QuantizeModel.plan(hf, gptfast4j.quant.QuantizeMode.Q4_K_M, gptfast4j.quant.QuantizeModel.Options.NONE).write(fromHf, b -> { });
        gptfast4j.quant.QuantizeModel.plan(Checkpoint.load(gguf, null), gptfast4j.quant.QuantizeMode.Q4_K_M, gptfast4j.quant.QuantizeModel.Options.NONE).write(fromGguf, b -> { });
        var expected = gptfast4j.io.GGUF.read(fromGguf).tensors();
        int compared = 0;
        for (var t : gptfast4j.io.GGUF.read(fromHf).tensors().values()) {
            assertEquals(expected.get(t.name()).type(), t.type(), t.name());
            assertEquals(-1L, t.data().mismatch(expected.get(t.name()).data()), t.name());
            compared++;
        }
        assertEquals(expected.size(), compared);
    }

    @Test
    void singleFileGivesTheGGUFLogits(@TempDir Path dir) throws IOException {
        writeHuggingFace(dir, false);
        compare(Checkpoint.load(GGUF_FILE, null), Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin")));
    }

    /** A config's {@code head_dim} (Mistral Nemo's): the GGUF's logits, whose file gives the width as {@code key_length}. */
    @Test
    void headsOfTheirOwnWidthGiveTheGGUFLogits(@TempDir Path dir) throws IOException {
        Path gguf = dir.resolve("wide-heads.gguf"), hf = Files.createDirectory(dir.resolve("hf"));
        gptfast4j.bench.RandomModel.write(HeadWidthTest.WIDE_HEADS, gptfast4j.tensor.GGMLType.F32, gguf, Shared.TOKENIZERS, b -> { });
        writeHuggingFace(gguf, hf, false);
        Checkpoint fromConfig = Checkpoint.load(hf, Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        assertEquals(HeadWidthTest.WIDE_HEADS.headDim(), fromConfig.model().config.headDim());
        compare(Checkpoint.load(gguf, null), fromConfig);
    }

    @Test
    void shardedGivesTheGGUFLogits(@TempDir Path dir) throws IOException {
        writeHuggingFace(dir, true);
        Checkpoint hf = Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin"));
        assertEquals("huggingface", hf.format());
        assertEquals(Config.RopeStyle.HALVES, hf.model().config.ropeStyle());
        assertEquals(List.of(2), java.util.Arrays.stream(hf.eos()).boxed().toList());
        compare(Checkpoint.load(GGUF_FILE, null), hf);
    }

    /** Loaded in a shared arena, every shard's mapping is in it, and closing it leaves a model that fails cleanly. */
    @Test
    void shardsLoadedInAnArenaCloseWithIt(@TempDir Path dir) throws IOException {
        writeHuggingFace(dir, true);
        Arena arena = Arena.ofShared();
        Checkpoint hf = Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin"), null, arena);
        compare(Checkpoint.load(GGUF_FILE, null), hf);
        for (TensorData t : hf.tensors().values()) assertEquals(arena.scope(), t.data().scope(), t.name());
        arena.close();
        Llama.State state = hf.model().newState(8, 1);
        assertThrows(IllegalStateException.class, () -> hf.model().forward(state, 1, 0));
    }

    /** A negative dimension (whose product still matched the offsets) and impossible config values are named. */
    @Test
    void badShapesAndConfigsAreNamed(@TempDir Path dir) throws IOException {
        byte[] head = """
                {"w": {"dtype": "F32", "shape": [-2, -3], "data_offsets": [0, 24]}}""".getBytes(StandardCharsets.UTF_8);
        Path file = dir.resolve("bad.safetensors");
        Files.write(file, ByteBuffer.allocate(8 + head.length + 24).order(ByteOrder.LITTLE_ENDIAN).putLong(head.length).put(head).array());
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> gptfast4j.io.Safetensors.read(file, java.lang.foreign.Arena.ofAuto()));
        assertTrue(e.getMessage().contains("tensor w has a bad shape [-2,-3]"), e.getMessage());
        // a header that is JSON but not an object of tensors, and an entry without a dtype
        for (String bad : new String[]{"[1, 2]", "{\"w\": null}"}) {
            byte[] json = bad.getBytes(StandardCharsets.UTF_8);
            Files.write(file, ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).put(json).array());
            e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> gptfast4j.io.Safetensors.read(file, java.lang.foreign.Arena.ofAuto()));
            assertTrue(e.getMessage().contains(bad.startsWith("[") ? "not a safetensors file (its header is not a JSON object)" : "tensor w has no dtype"), e.getMessage());
        }

        writeHuggingFace(dir, false);
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        config.put("num_attention_heads", 0);
        new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), config);
        e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin")));
        assertEquals(dir + ": head count 0 is not positive", e.getMessage());
        // values that are no integer an int holds: Jackson's asInt read 2^31 as -2^31, 1.5 as 1, true as 1
        Path cfgFile = dir.resolve("config.json");
        for (var bad : java.util.List.<java.util.function.Consumer<ObjectNode>>of(c -> c.put("num_key_value_heads", 1L << 31),
                c -> c.put("hidden_size", 1.5), c -> c.put("max_position_embeddings", true), c -> c.put("num_key_value_heads", "4"))) {
            ObjectNode broken = config.deepCopy();
            broken.put("num_attention_heads", 8);
            bad.accept(broken);
            new ObjectMapper().writeValue(cfgFile.toFile(), broken);
            e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin")));
            assertTrue(e.getMessage().startsWith(cfgFile + ": ") && e.getMessage().contains(" must be an integer, got "), e.getMessage());
        }
        // a value of the wrong kind, and an activation the forward pass does not have: each named in full
        Map<String, java.util.function.Consumer<ObjectNode>> named = Map.of(
                "rms_norm_eps must be a number, got \"tiny\"", c -> c.put("rms_norm_eps", "tiny"),
                "hidden_act 'gelu' is not supported (Llama's feed-forward is SwiGLU: silu)", c -> c.put("hidden_act", "gelu"));
        for (var bad : named.entrySet()) {
            ObjectNode broken = config.deepCopy();
            broken.put("num_attention_heads", 8);
            bad.getValue().accept(broken);
            new ObjectMapper().writeValue(cfgFile.toFile(), broken);
            e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin")));
            assertEquals(cfgFile + ": " + bad.getKey(), e.getMessage());
        }
        // an integer written as a float is taken (4096.0)
        ObjectNode floatInt = config.deepCopy();
        floatInt.put("num_attention_heads", 8.0);
        new ObjectMapper().writeValue(cfgFile.toFile(), floatInt);
        assertEquals(8, Checkpoint.load(dir, Shared.MODELS.resolve("tok512.bin")).model().config.nHeads());
    }

    /**
     * Tensors the Llama forward pass would not read are refused by name (a model with biases, or a dense model's
     * file holding a router, would run as another model without a word), and the buffers llama.cpp's converter skips
     * (a rotary cache) are skipped here too.
     */
    @Test
    void tensorsTheModelWouldNotReadAreRefused(@TempDir Path dir) throws IOException {
        Path tok = Shared.MODELS.resolve("tok512.bin");
        for (String d : new String[]{"bias", "router", "cache", "plain"}) Files.createDirectories(dir.resolve(d));
        float[][] bias = new float[1][64];
        writeHuggingFace(GGUF_FILE, dir.resolve("bias"), false, Map.of("model.layers.0.self_attn.q_proj.bias", bias));
        var e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(dir.resolve("bias"), tok));
        assertEquals(dir.resolve("bias") + ": 1 tensor that a Llama model does not have, such as model.layers.0.self_attn.q_proj.bias (biases are not"
                + " supported): not a model this engine runs", e.getMessage());
        // a name the reader maps (a Mixtral router) that the dense model's build never asks for
        writeHuggingFace(GGUF_FILE, dir.resolve("router"), false, Map.of("model.layers.1.block_sparse_moe.gate.weight", new float[8][64]));
        e = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(dir.resolve("router"), tok));
        assertTrue(e.getMessage().contains("1 tensor that a Llama model does not have, such as blk.1.ffn_gate_inp.weight: not a model"), e.getMessage());
        writeHuggingFace(GGUF_FILE, dir.resolve("cache"), false, Map.of("model.layers.0.self_attn.rotary_emb.inv_freq", new float[1][4]));
        writeHuggingFace(GGUF_FILE, dir.resolve("plain"), false);
        compare(Checkpoint.load(dir.resolve("plain"), tok), Checkpoint.load(dir.resolve("cache"), tok));
    }

    /**
     * A vocabulary with Llama-3's {@code <|eot_id|>} ends generation there, as it does for GGUF files, whatever
     * config.json's EOS (a Llama-3 base model's names only {@code <|end_of_text|>}, and a chat turn ends at the other).
     */
    @Test
    void eotEndsGenerationLikeEos(@TempDir Path dir) throws IOException {
        writeHuggingFace(dir, false);
        ObjectMapper json = new ObjectMapper();
        ObjectNode tokenizer = json.createObjectNode();
        ObjectNode model = tokenizer.putObject("model");
        model.put("type", "BPE");
        ObjectNode vocab = model.putObject("vocab");
        for (int b = 0; b < 256; b++) vocab.put(gptfast4j.tokenizer.ByteLevelBpeTokenizer.toMapped(new byte[]{(byte) b}), b);
        model.putArray("merges");
        tokenizer.putArray("added_tokens").addObject().put("id", 300).put("content", "<|eot_id|>").put("special", true);
        json.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizer);
        int[] eos = Checkpoint.load(dir, null).eos();
        assertTrue(java.util.Arrays.stream(eos).anyMatch(id -> id == 300) && java.util.Arrays.stream(eos).anyMatch(id -> id == 2),
                java.util.Arrays.toString(eos));
    }

    /**
     * A model's chat template from tokenizer_config.json, a text or transformers' named templates (the "default"
     * one), or from chat_template.jinja, which wins where both are.
     */
    @Test
    void theChatTemplateIsTransformers(@TempDir Path dir) throws IOException {
        writeHuggingFace(dir, false);
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = json.createObjectNode();
        config.putArray("chat_template").add(json.createObjectNode().put("name", "tool_use").put("template", "{{ tools }}"))
                .add(json.createObjectNode().put("name", "default").put("template", "{{ messages[0].content }}"));
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        Path tokenizer = Shared.MODELS.resolve("tok512.bin");
        Checkpoint named = Checkpoint.load(dir, tokenizer);
        assertEquals("{{ messages[0].content }}", named.chatTemplate());
        assertEquals("{{ tools }}", named.chatTemplate("tool_use"));
        assertEquals(null, named.chatTemplate("rag"));
        config.put("chat_template", "{{ bos_token }}");
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        assertEquals("{{ bos_token }}", Checkpoint.load(dir, tokenizer).chatTemplate());
        Files.writeString(dir.resolve("chat_template.jinja"), "{{ eos_token }}");
        assertEquals("{{ eos_token }}", Checkpoint.load(dir, tokenizer).chatTemplate());
    }

    private static void compare(Checkpoint gguf, Checkpoint hf) {
        int[] ids = gguf.tokenizer().encode("Once upon a time, there was a little dog named Max who liked to run");
        int vocab = gguf.model().config.vocabSize();
        float[][] expected = new float[ids.length][];
        gguf.model().forward(gguf.model().newState(64, 64), ids, 0, ids.length, 0,
                (p, l, o) -> expected[p] = java.util.Arrays.copyOfRange(l, o, o + vocab));
        int[] checked = {0};
        hf.model().forward(hf.model().newState(64, 64), ids, 0, ids.length, 0, (p, l, o) -> {
            for (int i = 0; i < vocab; i++) {
                assertEquals(expected[p][i], l[o + i], 1e-4 + 1e-5 * Math.abs(expected[p][i]), "position " + p + " logit " + i);
            }
            checked[0]++;
        });
        assertEquals(ids.length, checked[0]);
    }

    /** GGUF name to Hugging Face name, and whether the rows are q/k rows to permute (with the head count). */
    private static void writeHuggingFace(Path dir, boolean sharded) throws IOException {
        writeHuggingFace(GGUF_FILE, dir, sharded);
    }

    private static void writeHuggingFace(Path source, Path dir, boolean sharded) throws IOException {
        writeHuggingFace(source, dir, sharded, Map.of());
    }

    /** {@code extra}: tensors written beside the model's, by their Hugging Face names. */
    private static void writeHuggingFace(Path source, Path dir, boolean sharded, Map<String, float[][]> extra) throws IOException {
        GGUF gguf = GGUF.read(source);
        var md = gguf.metadata();
        int heads = md.getInt("llama.attention.head_count", 0), kvHeads = md.getInt("llama.attention.head_count_kv", 0);
        Map<String, float[][]> tensors = new LinkedHashMap<>(); // name -> [out][in]
        int experts = md.getInt("llama.expert_count", 0);
        for (TensorData t : gguf.tensors().values()) {
            float[] flat = t.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
            int cols = (int) t.shape()[0], rows = flat.length / cols;
            if (t.name().endsWith("_exps.weight")) {
                // [in, out, experts] -> one [out, in] matrix per expert, named as MixtralForCausalLM does
                String[] p = t.name().split("\\.");
                String w = switch (p[2]) {
                    case "ffn_gate_exps" -> "w1";
                    case "ffn_down_exps" -> "w2";
                    default -> "w3";
                };
                int perExpert = rows / experts;
                for (int e = 0; e < experts; e++) {
                    float[][] m = new float[perExpert][];
                    for (int r = 0; r < perExpert; r++) m[r] = java.util.Arrays.copyOfRange(flat, (e * perExpert + r) * cols, (e * perExpert + r + 1) * cols);
                    tensors.put("model.layers." + p[1] + ".block_sparse_moe.experts." + e + "." + w + ".weight", m);
                }
                continue;
            }
            String hfName = hfName(t.name());
            float[][] m = new float[rows][];
            for (int r = 0; r < rows; r++) m[r] = java.util.Arrays.copyOfRange(flat, r * cols, (r + 1) * cols);
            if (t.name().endsWith("attn_q.weight")) m = permuteForRotateHalf(m, heads);
            if (t.name().endsWith("attn_k.weight")) m = permuteForRotateHalf(m, kvHeads);
            tensors.put(hfName, m);
        }
        if (!tensors.containsKey("lm_head.weight")) tensors.put("lm_head.weight", tensors.get("model.embed_tokens.weight"));
        tensors.putAll(extra);
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = json.createObjectNode();
        config.putArray("architectures").add(experts > 0 ? "MixtralForCausalLM" : "LlamaForCausalLM");
        if (experts > 0) {
            config.put("num_local_experts", experts);
            config.put("num_experts_per_tok", md.getInt("llama.expert_used_count", 0));
        }
        config.put("hidden_size", md.getInt("llama.embedding_length", 0));
        config.put("intermediate_size", md.getInt("llama.feed_forward_length", 0));
        config.put("num_hidden_layers", md.getInt("llama.block_count", 0));
        config.put("num_attention_heads", heads);
        config.put("num_key_value_heads", kvHeads);
        config.put("vocab_size", md.getInt("llama.vocab_size", 512));
        if (md.has("llama.attention.key_length")) config.put("head_dim", md.getInt("llama.attention.key_length", 0));
        config.put("max_position_embeddings", 512);
        config.put("rms_norm_eps", md.getFloat("llama.attention.layer_norm_rms_epsilon", 0));
        config.put("rope_theta", md.getFloat("llama.rope.freq_base", 10000));
        config.put("bos_token_id", 1);
        config.put("eos_token_id", 2);
        config.put("tie_word_embeddings", false);
        json.writeValue(dir.resolve("config.json").toFile(), config);
        if (!sharded) {
            writeSafetensors(dir.resolve("model.safetensors"), tensors);
            return;
        }
        Map<String, float[][]> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
        ObjectNode weightMap = json.createObjectNode();
        int i = 0;
        for (var e : tensors.entrySet()) {
            boolean one = i++ % 2 == 0;
            (one ? first : second).put(e.getKey(), e.getValue());
            weightMap.put(e.getKey(), one ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
        }
        writeSafetensors(dir.resolve("model-00001-of-00002.safetensors"), first);
        writeSafetensors(dir.resolve("model-00002-of-00002.safetensors"), second);
        ObjectNode index = json.createObjectNode();
        index.putObject("metadata");
        index.set("weight_map", weightMap);
        json.writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
        ObjectNode gen = json.createObjectNode();
        gen.putArray("eos_token_id").add(2);
        json.writeValue(dir.resolve("generation_config.json").toFile(), gen);
    }

    /** transformers' permute: within each head, row 2i+j of Meta's interleaved layout goes to row j*half + i. */
    private static float[][] permuteForRotateHalf(float[][] m, int heads) {
        int headDim = m.length / heads, half = headDim / 2;
        float[][] out = new float[m.length][];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < 2; j++) out[h * headDim + j * half + i] = m[h * headDim + 2 * i + j];
            }
        }
        return out;
    }

    private static String hfName(String gguf) {
        return switch (gguf) {
            case "token_embd.weight" -> "model.embed_tokens.weight";
            case "output_norm.weight" -> "model.norm.weight";
            case "output.weight" -> "lm_head.weight";
            default -> {
                String[] p = gguf.split("\\.");
                String layer = "model.layers." + p[1] + ".";
                yield layer + switch (p[2]) {
                    case "attn_norm" -> "input_layernorm";
                    case "attn_q" -> "self_attn.q_proj";
                    case "attn_k" -> "self_attn.k_proj";
                    case "attn_v" -> "self_attn.v_proj";
                    case "attn_output" -> "self_attn.o_proj";
                    case "ffn_norm" -> "post_attention_layernorm";
                    case "ffn_gate" -> "mlp.gate_proj";
                    case "ffn_up" -> "mlp.up_proj";
                    case "ffn_down" -> "mlp.down_proj";
                    case "ffn_gate_inp" -> "block_sparse_moe.gate";
                    default -> throw new IllegalArgumentException(gguf);
                } + ".weight";
            }
        };
    }

    private static void writeSafetensors(Path file, Map<String, float[][]> tensors) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (var e : tensors.entrySet()) {
            float[][] m = e.getValue();
            long bytes = 4L * m.length * m[0].length;
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", "F32");
            if (m.length == 1) t.putArray("shape").add(m[0].length);
            else t.putArray("shape").add(m.length).add(m[0].length);
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] head = json.writeValueAsBytes(header);
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(head.length).array());
            out.write(head);
            for (float[][] m : tensors.values()) {
                ByteBuffer b = ByteBuffer.allocate(4 * m.length * m[0].length).order(ByteOrder.LITTLE_ENDIAN);
                for (float[] row : m) for (float v : row) b.putFloat(v);
                out.write(b.array());
            }
        }
        assertTrue(Files.size(file) > 0);
        assertEquals(head.length, new String(head, StandardCharsets.UTF_8).getBytes(StandardCharsets.UTF_8).length);
    }
}
