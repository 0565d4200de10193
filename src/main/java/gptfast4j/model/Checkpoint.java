package gptfast4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.io.GGUF;
import gptfast4j.io.GGUFShards;
import gptfast4j.io.Llama2cFile;
import gptfast4j.io.Mapped;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import gptfast4j.io.Safetensors;
import gptfast4j.io.TensorData;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.OffHeap;
import gptfast4j.tensor.Quantizer;
import gptfast4j.tensor.Tensor;
import gptfast4j.tokenizer.Tokenizer;
import gptfast4j.tokenizer.Tokenizers;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * A model ready to run, whatever file it came from: a GGUF file, a llama2.c {@code .bin} (with a separate
 * {@code tokenizer.bin}) or a Hugging Face directory. Each reader hands over the hyperparameters and the tensors
 * under GGUF's names; {@link #build} turns them into weights the same way for all of them.
 *
 * @param format     "gguf", "llama2.c" or "huggingface"
 * @param tensors    every tensor of the file, under GGUF names
 * @param metadata   the GGUF metadata (null for other formats)
 * @param eos        token ids that end generation
 * @param chatFormat how {@code --interactive} frames a conversation
 * @param chatTemplate the file's chat template (Jinja), null where it has none
 */
public record Checkpoint(Path path, String format, Llama model, Tokenizer tokenizer, Map<String, TensorData> tensors,
                         Metadata metadata, int bos, int[] eos, boolean addBos, ChatFormat chatFormat, String chatTemplate) {

    /**
     * Refuses a tokenizer that does not belong to the model: one with more tokens than the embedding table has rows
     * (a prompt would reach a token the model has no row for), or special token ids outside the vocabulary.
     */
    public Checkpoint {
        int vocab = model.config.vocabSize();
        if (tokenizer.vocabSize() > vocab) {
            throw new ModelFormatException(path + ": the tokenizer has " + tokenizer.vocabSize() + " tokens but the model's vocabulary has " + vocab
                    + " (a tokenizer of another model?)");
        }
        if (bos < 0 || bos >= vocab) throw new ModelFormatException(path + ": BOS token id " + bos + " is outside the vocabulary (" + vocab + " tokens)");
        for (int id : eos) {
            if (id < 0 || id >= vocab) throw new ModelFormatException(path + ": EOS token id " + id + " is outside the vocabulary (" + vocab + " tokens)");
        }
    }

    /**
     * A named chat template of the file's besides its default, such as {@code tool_use} (Hermes-2-Pro's and
     * Command-R's, for chats with tools): GGUF's {@code tokenizer.chat_template.NAME}, or the template of that name in
     * a Hugging Face model's {@code tokenizer_config.json}; null where there is none.
     */
    public String chatTemplate(String name) {
        if (metadata != null) return metadata.getString("tokenizer.chat_template." + name, null);
        Path tokConfig = path.resolve("tokenizer_config.json");
        if (!format.equals("huggingface") || !Files.exists(tokConfig)) return null;
        for (JsonNode named : readJson(tokConfig).path("chat_template")) {
            if (name.equals(named.path("name").asText())) return named.path("template").textValue();
        }
        return null;
    }

    /** This checkpoint with another model of it (its tensor-parallel share, {@link Llama#split}). */
    public Checkpoint withModel(Llama m) {
        if (!m.config.equals(model.config)) throw new IllegalArgumentException("a model of another shape");
        return new Checkpoint(path, format, m, tokenizer, tensors, metadata, bos, eos, addBos, chatFormat, chatTemplate);
    }

    public static Checkpoint load(Path path, Path tokenizerPath) {
        return load(path, tokenizerPath, null);
    }

    /**
     * A prompt's token ids as the model expects them: BOS first where the model's metadata asks for it (and for an
     * empty text, which has nothing else to start from), then the text's tokens (special-token text stays text).
     */
    public int[] promptTokens(String text) {
        return promptTokens(text, false);
    }

    /**
     * {@link #promptTokens(String)}, with special-token text taken as those tokens where {@code specials} is set
     * ({@link Tokenizer#encodeWithSpecials}); a text that starts with BOS's own text gets no second BOS (llama.cpp adds
     * one and warns of two).
     */
    public int[] promptTokens(String text, boolean specials) {
        int[] ids = specials ? tokenizer.encodeWithSpecials(text) : tokenizer.encode(text);
        if (ids.length > 0 && (!addBos || ids[0] == bos)) return ids;
        int[] withBos = new int[ids.length + 1];
        withBos[0] = bos;
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        return withBos;
    }

    /**
     * @param quantizeTo null, or Q8_0/Q4_0/Q4_1: quantize every linear layer (the output head included, as gpt-fast
     *                   does; embeddings and norms not) in memory while loading
     */
    public static Checkpoint load(Path path, Path tokenizerPath, GGMLType quantizeTo) {
        return load(path, tokenizerPath, quantizeTo, OffHeap.AUTOMATIC);
    }

    /**
     * {@link #load(Path, Path, GGMLType)} with the model's memory in {@code arena}: the file's mapping, the copies of
     * quantizing at load and of the decode layouts. Closing the arena unmaps and frees them at once, where otherwise
     * they go when the garbage collector finds the model unreachable. The model must not be used after that: a call
     * then fails with an {@link IllegalStateException}. The arena must be one whose memory every thread may read
     * (shared), as the worker threads read the weights; states and their KV caches are not in it.
     */
    public static Checkpoint load(Path path, Path tokenizerPath, GGMLType quantizeTo, Arena arena) {
        if (!MemorySegment.NULL.reinterpret(arena, null).isAccessibleBy(new Thread(() -> { }))) {
            throw new IllegalArgumentException("a model's memory is read by worker threads: load it in a shared arena (Arena.ofShared()), not a confined one");
        }
        return load(path, tokenizerPath, quantizeTo, OffHeap.in(arena));
    }

    private static Checkpoint load(Path path, Path tokenizerPath, GGMLType quantizeTo, OffHeap memory) {
        JvmChecks.check();
        Checkpoint c = read(path, tokenizerPath, memory);
        if (quantizeTo == null) return c;
        return c.withModel(c.model().quantize(quantizeTo));
    }

    /** The checkpoint as stored: every tensor a view of the file, nothing copied. */
    private static Checkpoint read(Path path, Path tokenizerPath, OffHeap memory) {
        if (Files.isDirectory(path)) return loadHuggingFace(path, tokenizerPath, memory);
        MemorySegment file = Mapped.map(path, memory.arena());
        if (GGUF.hasMagic(file)) return loadGGUF(GGUFShards.join(GGUF.read(path, file), p -> Mapped.map(p, memory.arena())), tokenizerPath, memory);
        if (GGUF.hasPreGgufMagic(file)) {
            throw new ModelFormatException(path + ": a GGML/GGJT file, llama.cpp's format before GGUF, which is not supported: convert it to GGUF (llama.cpp's convert_llama_ggml_to_gguf.py)");
        }
        if (path.getFileName().toString().endsWith(".bin")) return loadLlama2c(path, file, tokenizerPath, memory);
        throw new ModelFormatException(path + ": not a model file (bad magic: neither GGUF nor a llama2.c .bin)");
    }

    /**
     * Every float linear layer in {@code type}. Layers already quantized, in this type or another, are kept as they
     * are; rows whose length is not a multiple of 32 cannot be quantized and stay in their float type (both reported on
     * stderr: a quantized file's {@code --quantize} would otherwise change nothing without a word).
     */
    static Weights quantized(Weights w, GGMLType type, OffHeap memory) {
        Map<GGMLType, Integer> kept = new java.util.TreeMap<>();
        Weights result = w.map(t -> {
            if (!t.type.isFloat()) { // already quantized: another rounding would lose more and save nothing
                kept.merge(t.type, 1, Integer::sum);
                return t;
            }
            if (t.cols % 32 != 0) {
                System.err.println("note: " + t.name + " rows of " + t.cols + " are not a multiple of 32; kept in " + t.type);
                return t;
            }
            return Quantizer.quantize(t, type, memory);
        });
        if (!kept.isEmpty()) {
            System.err.println("note: " + kept.values().stream().mapToInt(Integer::intValue).sum() + " linear layers are already quantized ("
                    + kept.keySet().stream().map(Enum::name).collect(java.util.stream.Collectors.joining(", ")) + ") and kept as they are, not made " + type);
        }
        return result;
    }

    /** The GGUF architectures whose blocks the forward pass runs (llama.cpp's names). */
    private static final List<String> ARCHITECTURES = List.of("llama", "mistral", "mistral3", "qwen2", "qwen3", "qwen3moe", "gemma", "gemma2", "gemma3", "phi3",
            "granite", "granitemoe", "minicpm", "smollm3", "olmo2", "olmoe", "command-r", "cohere2", "exaone", "exaone4", "ernie4_5", "ernie4_5-moe", "gpt-oss", "qwen2moe", "llama4", "deepseek", "dots1", "glm4", "seed_oss", "arcee", "bailingmoe", "glm4moe", "deepseek2",
            "qwen2vl", "qwen3vl", "qwen3vlmoe", "minimax-m2", "apertus", "lfm2", "lfm2moe", "qwen35", "qwen35moe", "granitehybrid", "nemotron_h", "nemotron_h_moe", "mamba2", "mamba", "jamba", "falcon-h1", "qwen3next", "bailingmoe2", "mistral4", "starcoder2", "phi2", "stablelm", "nemotron", "orion", "internlm2", "falcon", "gptneox", "gpt2", "starcoder", "mpt", "bloom",
            "xverse", "refact", "plamo", "codeshell", "baichuan", "jais", "jais2", "deci", "exaone-moe", "olmo", "bitnet", "chatglm", "minicpm3", "hunyuan-dense", "hunyuan-moe", "maincoder");

    /**
     * Architectures whose converter leaves the query and key rows as Hugging Face has them, for llama.cpp's NEOX RoPE
     * (on halves of each head), beside the families {@code loadGGUF} names by prefix (Qwen's, Gemma's, OLMo's, EXAONE's,
     * LFM2's) and Phi-3; those without RoPE (GPT-2's, MPT's, BLOOM's) among them, their rows never turned.
     */
    private static final Set<String> HALVES = Set.of("gpt-oss", "dots1", "seed_oss", "glm4moe", "minimax-m2", "apertus", "falcon-h1", "bailingmoe2",
            "starcoder2", "phi2", "stablelm", "nemotron", "orion", "falcon", "gptneox", "gpt2", "starcoder", "mpt", "bloom", "plamo", "codeshell", "jais", "jais2", "bitnet", "minicpm3", "hunyuan-dense", "hunyuan-moe");

    /**
     * Baichuan's blocks, which llama.cpp tells apart by their count: 32 layers (Baichuan-7B, Baichuan 2 7B) Llama's
     * with RoPE, 40 (13B) with ALiBi (max bias 8) in place of it. llama.cpp runs any other count with neither, which
     * no Baichuan model is: refused.
     */
    private static Config.Variant baichuan(Path path, Metadata md) {
        int layers = required(md, path, "baichuan.block_count");
        if (layers == 32) return Config.Variant.LLAMA;
        if (layers == 40) return Config.Variant.LLAMA.withoutRope().alibi(8f, 0f);
        throw new ModelFormatException(path + ": a baichuan model of " + layers + " layers is not supported (32 layers: RoPE, 40: ALiBi)");
    }

    /**
     * Adds the vocabulary's tokens that end a turn ({@link #END_OF_TURN}) to {@code eos}, as llama.cpp's end-of-generation
     * tokens; in gpt-oss's harmony vocabulary, which has {@code <|return|>} and {@code <|call|>}, {@code <|end|>} ends
     * a message of the answer (its thinking), not the answer, and is left out, as llama.cpp leaves it out.
     */
    private static void endsOfTurn(Tokenizer tokenizer, Set<Integer> eos) {
        END_OF_TURN.forEach(t -> tokenizer.special(t).ifPresent(eos::add));
        if (tokenizer.special("<|return|>").isPresent() && tokenizer.special("<|call|>").isPresent()) tokenizer.special("<|end|>").ifPresent(eos::remove);
    }

    /**
     * Special tokens that end a turn, so a generation too, besides the file's EOS (and GGUF's EOT): Llama-3's, Llama-3.1's
     * end of a message to a tool, ChatML's, Phi-3's, Gemma's, gpt-oss's answer's and call's ends, and the ends of a
     * fill-in-the-middle (CodeLlama's {@code <EOT>}, Qwen-Coder's {@code <|endoftext|>}); the texts llama.cpp takes as
     * ends of generation.
     */
    private static final List<String> END_OF_TURN = List.of("<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "▁<EOT>",
            "<|return|>", "<|call|>");

    private static Checkpoint loadGGUF(GGUF gguf, Path tokenizerPath, OffHeap memory) {
        Path path = gguf.path();
        Metadata md = gguf.metadata();
        String arch = md.getString("general.architecture", null);
        if (arch == null && "imatrix".equals(md.getString("general.type", null))) {
            throw new ModelFormatException(path + ": an importance matrix, not a model (it is for quantize --imatrix)");
        }
        if (arch == null) throw new ModelFormatException(path + ": missing metadata general.architecture");
        if (Encoder.isEncoder(md)) throw new ModelFormatException(path + ": a " + arch + " model is an encoder, which makes embeddings, not text (gptfast embed)");
        if (!ARCHITECTURES.contains(arch)) {
            throw new ModelFormatException(path + ": unsupported architecture '" + arch + "' (supported: " + String.join(", ", ARCHITECTURES) + ")");
        }
        // ERNIE 4.5's mixtures interleave dense layers with sparse ones, which the forward pass does not run
        if (arch.equals("ernie4_5") && md.getInt("ernie4_5.expert_count", 0) > 0) throw new ModelFormatException(path + ": an ernie4_5 model with experts is not supported");
        // GLM-4.1V's sections of RoPE (M-RoPE) and GLM's next-token prediction layers are not run here
        // GLM-4.5's and GLM-4.7-Flash's (deepseek2) next-token prediction layers, after the others, are not run (as llama.cpp runs them only to draft)
        int nextn = md.getInt(arch + ".nextn_predict_layers", 0);
        if (nextn > 0 && !arch.equals("glm4moe") && !Config.latentAttention(arch) && !arch.startsWith("qwen35") && !arch.equals("qwen3next") && !arch.equals("bailingmoe2") && !arch.equals("exaone-moe")) throw new ModelFormatException(path + ": a model with next-token prediction layers (" + arch + ".nextn_predict_layers) is not supported");
        // llama.cpp's graph then runs dense layers whose tensors its loader did not read: no such model is made
        if (arch.equals("ernie4_5-moe") && md.getInt("ernie4_5-moe.interleave_moe_layer_step", 1) != 1) {
            throw new ModelFormatException(path + ": an ernie4_5-moe model with a mixture every " + md.getInt("ernie4_5-moe.interleave_moe_layer_step", 1) + " layers is not supported");
        }
        boolean gemma = arch.startsWith("gemma"), phi3 = arch.equals("phi3"), olmo2 = arch.equals("olmo2"),
                llamaRows = !arch.startsWith("qwen") && !gemma && !phi3 && !(arch.startsWith("olmo") && !arch.equals("olmo")) && !arch.startsWith("exaone") && !arch.startsWith("lfm2")
                        && !HALVES.contains(arch)
                        && !(arch.equals("glm4") && usesMrope(md, arch)); // GLM-4V's: llama.cpp turns its M-RoPE's pairs as halves
        Map<String, TensorData> tensors = gguf.tensors();
        if (tensors.isEmpty()) throw new ModelFormatException(path + ": a vocabulary-only GGUF (no tensors), not a model");
        // StableLM 2 12B's LayerNorms of each head's queries and keys, each head its own weights: not run here
        if (arch.equals("stablelm") && tensors.containsKey("blk.0.attn_q_norm.weight")) {
            throw new ModelFormatException(path + ": a stablelm model with per-head query and key norms (StableLM 2 12B) is not supported");
        }
        // Mamba-2's and Mamba's blocks (Mamba-Codestral's, Falcon-Mamba's): no attention, no feed-forward; the config's
        // heads and width are a nominal head of 32 (a block of every cache type; its RoPE tables and buffers small) and a
        // width of 1 that no layer reads, so that its checks hold (the file's counts are 0)
        boolean attentionFree = arch.equals("mamba2") || arch.equals("mamba");
        // DeciLM's and Nemotron's NAS-made layers: each its own heads, kv heads and feed-forward width
        LayerShapes shapes = arch.equals("deci") ? layerShapes(path, md, arch) : null;
        int nHeads = attentionFree ? 1 : shapes != null ? oneCount(path, arch + ".attention.head_count", shapes.heads(), "heads")
                : required(md, path, arch + ".attention.head_count");
        int dim = required(md, path, arch + ".embedding_length");
        TensorData embeddings = tensor(tensors, path, "token_embd.weight");
        int vocab = md.getInt(arch + ".vocab_size", (int) embeddings.shape()[embeddings.shape().length - 1]);
        // a head's width where the file gives it (Mistral Nemo's 128 at dim 5120, 32 heads), else dim / heads as llama.cpp's default
        // DeepSeek-V2's latent attention: one kv head of its rotated key and its latent (LatentAttention)
        boolean latent = Config.latentAttention(arch);
        int headDim = attentionFree ? 32 : latent ? required(md, path, arch + ".rope.dimension_count") + required(md, path, arch + ".attention.kv_lora_rank")
                : md.has(arch + ".attention.key_length") ? required(md, path, arch + ".attention.key_length") : derivedHeadDim(path, dim, nHeads);
        int valueDim = md.getInt(arch + ".attention.value_length", headDim);
        if (valueDim != headDim && !latent) throw new ModelFormatException(path + ": value heads of " + valueDim + " against key heads of " + headDim + " are not supported");
        // the elements of a head RoPE rotates: all of them, or the first (Phi-4-mini's 96 of 128)
        int ropeDim = md.getInt(arch + ".rope.dimension_count", headDim);
        Config.Variant blocks = gemma ? gemma(path, md, arch, dim, nHeads, headDim) : phi3 ? phi3(path, md, tensors, headDim)
                : arch.startsWith("granite") || arch.equals("minicpm") ? granite(path, md, arch)
                : arch.equals("smollm3") ? Config.Variant.noRopeEvery(4) // SmolLM3: every fourth layer without RoPE, as llama.cpp has it
                : olmo2 ? olmo2(path, md)
                : arch.equals("olmoe") || arch.equals("minimax-m2") ? Config.Variant.olmo2(0, null, 0f) // OLMoE and MiniMax-M2: Llama's norms, OLMo2's queries and keys normalized whole
                : arch.equals("command-r") ? commandR(path, md)
                : arch.equals("cohere2") ? cohere2(path, md)
                : arch.equals("gpt-oss") ? gptOss(path, md)
                : arch.equals("exaone4") ? exaone4(path, md)
                : arch.equals("exaone-moe") ? exaoneMoe(path, md, nextn)
                : arch.equals("llama4") ? llama4(path, md)
                : arch.equals("arcee") ? Config.Variant.ungated(Config.Activation.RELU_SQUARED) // Arcee: no gate, ReLU² of the up projection
                : arch.equals("apertus") ? Config.Variant.ungated(Config.Activation.XIELU) // Apertus: no gate, xIELU of the up projection
                // Nemotron-H: no gate, ReLU² of the up projection; its attention without RoPE
                : arch.startsWith("nemotron_h") ? Config.Variant.ungated(Config.Activation.RELU_SQUARED).withoutRope()
                : arch.equals("jamba") ? Config.Variant.LLAMA.withoutRope() // Jamba's attention: no RoPE, as llama.cpp's graph has it
                // StarCoder2's and Phi-2's: LayerNorm with biases, no gate, GELU of up; Phi-2's attention and FFN in parallel
                : arch.equals("starcoder2") || arch.equals("phi2") ? Config.Variant.layerNorm(Config.Activation.GELU_UP, arch.equals("phi2"))
                // Falcon's and GPT-NeoX's the same, Falcon's in parallel, GPT-NeoX's where the file says (its key required, as llama.cpp reads it)
                : arch.equals("falcon") ? Config.Variant.layerNorm(Config.Activation.GELU_UP, true)
                // GPT-2's and StarCoder's (gpt_bigcode): the same in sequence, no RoPE but learned positions (Weights.positionEmbeddings)
                : arch.equals("gpt2") || arch.equals("starcoder") ? Config.Variant.layerNorm(Config.Activation.GELU_UP, false).withoutRope()
                // MPT's and BLOOM's: the same with ALiBi (MPT's max bias and q/k/v clamp where its file gives them, BLOOM's
                // max bias 8, as llama.cpp sets it)
                : arch.equals("mpt") ? Config.Variant.layerNorm(Config.Activation.GELU_UP, false).withoutRope()
                        .alibi(md.getFloat("mpt.attention.max_alibi_bias", 0f), md.getFloat("mpt.attention.clamp_kqv", 0f))
                : arch.equals("bloom") ? Config.Variant.layerNorm(Config.Activation.GELU_UP, false).withoutRope().alibi(8f, 0f)
                : arch.equals("gptneox") ? Config.Variant.layerNorm(Config.Activation.GELU_UP, requiredBool(md, path, "gptneox.use_parallel_residual"))
                // Orion's and StableLM's: LayerNorm with biases and SwiGLU, StableLM 2 12B's attention and FFN in
                // parallel (its layers have no FFN norm); Nemotron's: LayerNorm with biases, no gate, ReLU² of up
                : arch.equals("orion") ? Config.Variant.layerNorm(Config.Activation.SILU, false)
                : arch.equals("stablelm") ? Config.Variant.layerNorm(Config.Activation.SILU, !tensors.containsKey("blk.0.ffn_norm.weight"))
                // Nemotron's and JAIS 2's: LayerNorm with biases, no gate, ReLU² of up
                : arch.equals("nemotron") || arch.equals("jais2") ? Config.Variant.layerNorm(Config.Activation.RELU_SQUARED, false)
                // OLMo's (1): LayerNorm without weights or biases, SwiGLU, its q/k/v clamp where its file gives one
                : arch.equals("olmo") ? Config.Variant.layerNorm(Config.Activation.SILU, false).alibi(0f, md.getFloat("olmo.attention.clamp_kqv", 0f))
                // JAIS's: LayerNorm with biases, SwiGLU, ALiBi where its file gives a max bias (llama.cpp's optional key)
                : arch.equals("jais") ? Config.Variant.jais(md.getFloat("jais.attention.max_alibi_bias", 0f), headDim)
                // CodeShell's: StarCoder2's blocks; PLaMo's: Llama's in parallel on one norm; Refact's: Llama's with
                // ALiBi (max bias 8, as llama.cpp sets it) in place of RoPE; Baichuan's by its size
                : arch.equals("codeshell") ? Config.Variant.layerNorm(Config.Activation.GELU_UP, false)
                : arch.equals("plamo") ? Config.Variant.LLAMA.inParallel()
                : arch.equals("refact") ? Config.Variant.LLAMA.withoutRope().alibi(8f, 0f)
                : arch.equals("baichuan") ? baichuan(path, md)
                : arch.equals("minicpm3") ? minicpm3(path, md, tensors)
                // Hunyuan's and Maincoder's: Qwen3's blocks, each head's query and key normalized after RoPE (Hunyuan-A13B's
                // with Mixtral's routing beside a shared expert; Maincoder's RoPE on adjacent pairs)
                : arch.startsWith("hunyuan") || arch.equals("maincoder") ? Config.Variant.LLAMA.normingHeadsAfterRope()
                : latent ? deepseek2(path, md, arch)
                : Config.Variant.LLAMA;
        Config.Variant variant = scaled(path, md, arch, blocks);
        boolean nemotronH = arch.startsWith("nemotron_h"), hybridKvHeads = arch.startsWith("lfm2") || arch.equals("granitehybrid") || nemotronH || arch.equals("jamba");
        Mixers mixers = arch.startsWith("lfm2") ? new Mixers(convolutionLayers(path, md, arch), convolutionWidth(path, md, arch), 0, 0, 0, 0, null, 0, false)
                : arch.startsWith("qwen35") || arch.equals("qwen3next") ? deltaNets(path, md, arch, required(md, path, arch + ".block_count") - nextn)
                : arch.equals("mamba") || arch.equals("jamba") ? mamba(path, md, arch)
                : arch.equals("granitehybrid") || nemotronH || attentionFree || arch.equals("falcon-h1") ? mamba2(path, md, arch) : null;
        Config config = config(path, () -> new Config(arch, dim,
                // Qwen3's mixtures give their experts' width apart from the dense width they would have
                attentionFree ? 1 : nemotronH ? feedForwardWidth(path, md, arch) : shapes != null ? Arrays.stream(shapes.widths()).max().orElse(0)
                        : required(md, path, arch + (arch.equals("qwen3moe") || arch.equals("qwen3vlmoe") || arch.equals("gpt-oss") || arch.equals("qwen35moe") || arch.equals("qwen3next") ? ".expert_feed_forward_length" : ".feed_forward_length")),
                required(md, path, arch + ".block_count") - nextn,
                nHeads,
                latent || attentionFree ? 1 : hybridKvHeads ? attentionKvHeads(path, md, arch)
                        : shapes != null ? oneCount(path, arch + ".attention.head_count_kv", shapes.kvHeads(), "kv heads") : md.getInt(arch + ".attention.head_count_kv", nHeads),
                vocab,
                required(md, path, arch + ".context_length"),
                // Nemotron-H's RMS norms' epsilon where its file gives only LayerNorm's, as llama.cpp falls back
                requiredFloat(md, path, arch + (blocks.layerNorm() || nemotronH && !md.has(arch + ".attention.layer_norm_rms_epsilon") ? ".attention.layer_norm_epsilon" : ".attention.layer_norm_rms_epsilon")),
                ropeBase(path, md, arch, headDim),
                textMrope(path, md, arch, ropeFreqFactors(path, md, arch, tensors, ropeDim / 2), ropeDim / 2),
                // llama.cpp's converter permutes Llama's query and key rows for its NORM rope; Qwen's, Gemma's, Phi's,
                // OLMo's and EXAONE's it leaves as Hugging Face has them, for its NEOX rope (rotate_half)
                llamaRows ? Config.RopeStyle.INTERLEAVED : Config.RopeStyle.HALVES,
                md.getInt(arch + ".expert_count", 0),
                md.getInt(arch + ".expert_used_count", 0),
                headDim,
                ropeDim == headDim ? variant : variant.rotating(ropeDim)));
        // llama.cpp scales these sliding layers' rotations as the others'; ours leaves sliding layers unscaled
        if ((arch.equals("gemma2") || arch.equals("cohere2")) && (config.ropeFreqFactors() != null || config.variant().yarn() != null)) {
            throw new ModelFormatException(path + ": a " + arch + " model with rope scaling is not supported");
        }
        // Llama 4's queries and keys are normalized after RoPE, ours before: the same where RoPE only turns them
        if (arch.equals("llama4") && (config.variant().yarn() != null || config.variant().ropeAttnFactor() != 1f)) {
            throw new ModelFormatException(path + ": a llama4 model with YaRN or a rope attention factor is not supported");
        }
        checkSharedExperts(path, md, arch, tensors, config.nLayers());
        Tokenizer tokenizer = tokenizerPath != null ? Tokenizers.load(tokenizerPath) : Tokenizers.fromGGUF(path, md);
        Set<Integer> eos = new LinkedHashSet<>();
        eos.add(md.getInt("tokenizer.ggml.eos_token_id", 2));
        if (md.has("tokenizer.ggml.eot_token_id")) eos.add(md.getInt("tokenizer.ggml.eot_token_id", 0));
        endsOfTurn(tokenizer, eos);
        boolean addBos = addsBos(md);
        String template = md.getString("tokenizer.chat_template", null);
        return new Checkpoint(path, "gguf", build(path, config, gating(path, md, arch), xielu(path, md, arch, config.nLayers()), mixers, shapes,
                        withoutLayersFrom(tensors, config.nLayers()), memory), tokenizer, tensors, md,
                md.getInt("tokenizer.ggml.bos_token_id", 1), eos.stream().mapToInt(Integer::intValue).toArray(), addBos, ChatFormat.detect(template), template);
    }

    /**
     * LFM2's convolution layers (llama.cpp's recurrent layers in {@code lfm2} and {@code lfm2moe}): those whose count in
     * {@code attention.head_count_kv}, an array of one count per layer, is 0. Refuses what the forward pass does not
     * run: LFM2's bidirectional (embedding) models and sliding-window attention.
     */
    private static boolean[] convolutionLayers(Path path, Metadata md, String arch) {
        if (!md.getBool(arch + ".attention.causal", true)) throw new ModelFormatException(path + ": a bidirectional " + arch + " model (an embedding model) is not supported");
        if (md.getInt(arch + ".attention.sliding_window", 0) > 0) throw new ModelFormatException(path + ": an " + arch + " model with sliding-window attention is not supported");
        int layers = required(md, path, arch + ".block_count");
        int[] kvHeads = layerKvHeads(path, md, arch, layers);
        boolean[] convolution = new boolean[layers];
        for (int l = 0; l < layers; l++) convolution[l] = kvHeads[l] == 0;
        return convolution;
    }

    /** The kv heads of an LFM2, Granite 4.0-H or Nemotron-H model's attention layers: its array's counts other than 0, which must be one count. */
    private static int attentionKvHeads(Path path, Metadata md, String arch) {
        return oneCount(path, arch + ".attention.head_count_kv", layerKvHeads(path, md, arch, required(md, path, arch + ".block_count")), "kv heads");
    }

    /** The one count other than 0 among {@code counts}, {@code key}'s per layer: the attention layers' {@code what}. */
    private static int oneCount(Path path, String key, int[] counts, String what) {
        int[] distinct = Arrays.stream(counts).filter(n -> n != 0).distinct().toArray();
        if (distinct.length != 1) throw new ModelFormatException(path + ": " + key + " gives " + (distinct.length == 0 ? "no layer" : "layers " + Arrays.toString(distinct)) + " " + what + "; one count for the attention layers is supported");
        return distinct[0];
    }

    /**
     * The layers of DeciLM's and Nemotron's NAS-made models ({@code deci}: Llama-3.3-Nemotron-Super-49B,
     * Llama-3.1-Nemotron-Ultra-253B and 51B, Nano 4B), each its own: {@code heads} its query heads (0: no attention),
     * {@code kvHeads} its kv heads (0 where it has heads: 51B's "linear attention", wo of the normalized input alone),
     * {@code widths} its feed-forward's width (0: none).
     */
    record LayerShapes(int[] heads, int[] kvHeads, int[] widths) {
    }

    /** A deci model's {@link LayerShapes}, from its per-layer arrays. */
    private static LayerShapes layerShapes(Path path, Metadata md, String arch) {
        int layers = required(md, path, arch + ".block_count");
        LayerShapes shapes = new LayerShapes(perLayer(path, md, arch + ".attention.head_count", layers), layerKvHeads(path, md, arch, layers),
                perLayer(path, md, arch + ".feed_forward_length", layers));
        if (Arrays.stream(shapes.widths()).allMatch(w -> w == 0)) throw new ModelFormatException(path + ": " + arch + ".feed_forward_length gives no layer a feed-forward");
        return shapes;
    }

    /** The width of a Nemotron-H model's feed-forwards: its {@code feed_forward_length} array's counts other than 0, which must be one. */
    private static int feedForwardWidth(Path path, Metadata md, String arch) {
        String key = arch + ".feed_forward_length";
        int[] widths = java.util.Arrays.stream(perLayer(path, md, key, required(md, path, arch + ".block_count"))).filter(n -> n != 0).distinct().toArray();
        if (widths.length != 1) throw new ModelFormatException(path + ": " + key + " gives " + (widths.length == 0 ? "no layer a feed-forward" : "feed-forwards " + Arrays.toString(widths) + " wide") + "; one width is supported");
        return widths[0];
    }

    /** {@code attention.head_count_kv} as one count per layer, 0 to 2^16 each (a single count: every layer's). */
    private static int[] layerKvHeads(Path path, Metadata md, String arch, int layers) {
        return perLayer(path, md, arch + ".attention.head_count_kv", layers);
    }

    /** The key's counts, one per layer, 0 to 2^16 each (a single count: every layer's). */
    private static int[] perLayer(Path path, Metadata md, String key, int layers) {
        int[] counts;
        Object value = md.get(key);
        if (value != null && value.getClass().isArray()) {
            counts = md.getInts(key);
            if (counts == null) throw new ModelFormatException(path + ": " + key + " is an array of " + value.getClass().getComponentType().getSimpleName() + ", not of counts");
            if (counts.length != layers) throw new ModelFormatException(path + ": " + key + " has " + counts.length + " counts for " + layers + " layers");
        } else {
            counts = new int[layers];
            Arrays.fill(counts, required(md, path, key));
        }
        for (int n : counts) if (n < 0 || n > 1 << 16) throw new ModelFormatException(path + ": " + key + " holds " + n + ", not a count of 0 to 65536");
        return counts;
    }

    /** LFM2's convolution's taps per channel, {@code shortconv.l_cache}: 2 to 64 (its models' 3). */
    private static int convolutionWidth(Path path, Metadata md, String arch) {
        int width = required(md, path, arch + ".shortconv.l_cache");
        if (width < 2 || width > 64) throw new ModelFormatException(path + ": " + arch + ".shortconv.l_cache " + width + " is not 2 to 64");
        return width;
    }

    /**
     * Whether the tokenizer of a file with metadata {@code md} starts a text with BOS: as its {@code add_bos_token}
     * says (default yes), but never for GLM-4's byte-level vocabulary ({@code glm4}, {@code chatglm-bpe}), which has no
     * BOS for llama.cpp whatever the file says (its chat template writes {@code [gMASK]<sop>}).
     */
    static boolean addsBos(Metadata md) {
        String pre = md.getString("tokenizer.ggml.pre", "");
        boolean glm = "gpt2".equals(md.getString("tokenizer.ggml.model", "")) && (pre.equals("glm4") || pre.equals("chatglm-bpe"));
        return md.getBool("tokenizer.ggml.add_bos_token", true) && !glm;
    }

    /** {@code tensors} but those of layers {@code layers} on (GLM-4.5's and GLM-4.7-Flash's next-token prediction layers, which are not run). */
    private static Map<String, TensorData> withoutLayersFrom(Map<String, TensorData> tensors, int layers) {
        Map<String, TensorData> kept = new LinkedHashMap<>();
        for (var e : tensors.entrySet()) {
            String name = e.getKey();
            int dot = name.indexOf('.', 4);
            boolean later = name.startsWith("blk.") && dot > 4 && dot <= 13 && name.substring(4, dot).chars().allMatch(Character::isDigit)
                    && Integer.parseInt(name.substring(4, dot)) >= layers;
            if (!later) kept.put(name, e.getValue());
        }
        return kept;
    }

    /**
     * How a model's mixtures choose and weigh their experts: the routing, the weights' factor (1: none), and the groups
     * of experts and how many of them the experts are chosen from (1 and 1: no groups; {@link FeedForward.MoE}).
     */
    record Gating(FeedForward.Routing routing, float scale, int groups, int groupsUsed) {
        /** Mixtral's: a softmax, the chosen experts' probabilities renormalized. */
        static final Gating MIXTRAL = new Gating(FeedForward.Routing.SOFTMAX_RENORMALIZED, 1f, 1, 1);
    }

    /**
     * {@code arch}'s gating as llama.cpp's graph has it: gpt-oss's softmax of the chosen logits, Llama 4's sigmoid of
     * the chosen logit on the expert's input, OLMoE's, Qwen2-MoE's, DeepSeek-MoE's and Jamba's probabilities as they are,
     * dots.llm1's as its file says ({@code expert_gating_func} 1 softmax or 2 sigmoid, {@code expert_weights_norm}
     * whether renormalized; GLM-4.5's the same, a sigmoid where it says none), Ling's (BailingMoE's) a softmax
     * renormalized where {@code expert_weights_norm} says, the
     * others' Mixtral's; DeepSeek's, dots.llm1's and Ling's weights times {@code expert_weights_scale} where the file
     * gives one.
     */
    private static Gating gating(Path path, Metadata md, String arch) {
        float scale = List.of("deepseek", "dots1", "bailingmoe", "bailingmoe2", "glm4moe", "deepseek2", "mistral4", "nemotron_h_moe", "exaone-moe").contains(arch) ? md.getFloat(arch + ".expert_weights_scale", 0f) : 0f;
        FeedForward.Routing routing = switch (arch) {
            case "gpt-oss" -> FeedForward.Routing.TOP_K_SOFTMAX;
            // Nemotron-H's mixtures: sigmoids, renormalized where the file says so
            case "nemotron_h_moe" -> md.getBool(arch + ".expert_weights_norm", false) ? FeedForward.Routing.SIGMOID_RENORMALIZED : FeedForward.Routing.SIGMOID;
            case "llama4" -> FeedForward.Routing.SIGMOID_INPUT;
            case "olmoe", "qwen2moe", "deepseek", "jamba" -> FeedForward.Routing.SOFTMAX;
            case "bailingmoe" -> md.getBool(arch + ".expert_weights_norm", false) ? FeedForward.Routing.SOFTMAX_RENORMALIZED : FeedForward.Routing.SOFTMAX;
            // MiniMax-M2's and LFM2-MoE's weights always renormalized, by the function the file names (sigmoids, with a selection bias)
            case "minimax-m2", "lfm2moe" -> switch (md.getInt(arch + ".expert_gating_func", 0)) {
                case 1 -> FeedForward.Routing.SOFTMAX_RENORMALIZED;
                case 2 -> FeedForward.Routing.SIGMOID_RENORMALIZED;
                default -> throw new ModelFormatException(path + ": " + arch + ".expert_gating_func " + md.getInt(arch + ".expert_gating_func", 0)
                        + " is not supported (1: softmax, 2: sigmoid)");
            };
            // Ling 2.0's (bailingmoe2) and K-EXAONE's (exaone-moe) as its file says, as dots.llm1's
            case "dots1", "glm4moe", "deepseek2", "mistral4", "bailingmoe2", "exaone-moe" -> {
                // GLM-4.5's default a sigmoid; DeepSeek-V2's a softmax but GLM-4.7-Flash's (47 or 48 layers of its 154880 tokens), as llama.cpp tells them apart
                int layers = md.getInt(arch + ".block_count", 0), vocab = md.getInt(arch + ".vocab_size", md.has("tokenizer.ggml.tokens") ? md.getStrings("tokenizer.ggml.tokens").length : 0);
                boolean sigmoid = arch.equals("glm4moe") || Config.latentAttention(arch) && (layers == 47 || layers == 48) && vocab == 154880;
                int function = md.getInt(arch + ".expert_gating_func", 0);
                if (function == 0) function = sigmoid ? 2 : Config.latentAttention(arch) ? 1 : 0;
                boolean norm = md.getBool(arch + ".expert_weights_norm", false);
                yield switch (function) {
                    case 1 -> norm ? FeedForward.Routing.SOFTMAX_RENORMALIZED : FeedForward.Routing.SOFTMAX;
                    case 2 -> norm ? FeedForward.Routing.SIGMOID_RENORMALIZED : FeedForward.Routing.SIGMOID;
                    default -> throw new ModelFormatException(path + ": " + arch + ".expert_gating_func " + function + " is not supported (1: softmax, 2: sigmoid)");
                };
            }
            default -> FeedForward.Routing.SOFTMAX_RENORMALIZED;
        };
        // DeepSeek-V3's groups of experts, which llama.cpp reads of any architecture
        int experts = md.getInt(arch + ".expert_count", 0), groups = md.getInt(arch + ".expert_group_count", 0), groupsUsed = md.getInt(arch + ".expert_group_used_count", 0);
        if (groups > 1 && (groups > 64 || experts % groups != 0 || experts / groups < 2 || groupsUsed < 1 || groupsUsed >= groups)) {
            throw new ModelFormatException(path + ": " + experts + " experts in " + groups + " groups, " + groupsUsed + " of them used, are not supported"
                    + " (groups of at least 2 experts, at most 64 groups, fewer used than there are)");
        }
        // llama.cpp scales by neither 0 (none given) nor 1
        return new Gating(routing, scale == 0f ? 1f : scale, Math.max(groups, 1), groups > 1 ? groupsUsed : 1);
    }

    /**
     * Refuses a mixture layer without the shared expert its file promises (the build reads one wherever its tensors
     * are): Qwen2-MoE's, Llama 4's and dots.llm1's always, another's where {@code expert_shared_feed_forward_length}
     * (as wide as that) or {@code expert_shared_count} (as wide as that many experts) is given.
     */
    private static void checkSharedExperts(Path path, Metadata md, String arch, Map<String, TensorData> tensors, int layers) {
        int width = md.getInt(arch + ".expert_shared_feed_forward_length", 0), count = md.getInt(arch + ".expert_shared_count", 0);
        boolean always = arch.equals("qwen2moe") || arch.equals("llama4") || arch.equals("dots1");
        if (width <= 0 && count <= 0 && !always) return;
        for (int l = 0; l < layers; l++) {
            if (!tensors.containsKey("blk." + l + ".ffn_gate_inp.weight")) continue;
            // its gate, or its up where the experts have no gate (Nemotron-H's): [dim, width] both
            boolean ungated = tensors.containsKey("blk." + l + ".ffn_up_exps.weight") && !tensors.containsKey("blk." + l + ".ffn_gate_exps.weight");
            TensorData shared = tensor(tensors, path, "blk." + l + (ungated ? ".ffn_up_shexp.weight" : ".ffn_gate_shexp.weight"));
            TensorData experts = tensors.get("blk." + l + (ungated ? ".ffn_up_exps.weight" : ".ffn_gate_exps.weight"));
            // DeepSeek's and dots.llm1's: as wide as that many experts
            if (width <= 0 && count > 0 && experts != null && experts.shape().length == 3) width = (int) (count * experts.shape()[1]);
            if (width > 0 && (shared.shape().length != 2 || shared.shape()[1] != width)) {
                throw new ModelFormatException(path + ": tensor " + shared.name() + " has shape " + shared.shapeString() + ", expected [" + shared.shape()[0] + ", " + width + "]");
            }
        }
    }

    /**
     * Gemma's (Gemma 1, CodeGemma: {@code gemma}) blocks as llama.cpp reads them: embeddings times sqrt(dim), GeGLU,
     * queries scaled by 1/sqrt(headDim), RoPE on halves; no window, no caps, no norms after the attention and the FFN.
     * Gemma 2's and 3's blocks as llama.cpp reads them: embeddings times sqrt(dim), GeGLU, queries scaled by
     * 1/sqrt(headDim) (the 27B's, Gemma 2's 46 layers and Gemma 3's 62, by 1/sqrt(dim / heads): Google's {@code
     * query_pre_attn_scalar}, which the file does not give), layers that slide over a window of {@code
     * sliding_window} positions (Gemma 2's default 4096; Gemma 3's none unless given) in a {@code
     * sliding_window_pattern} (a period, Gemma 2's default every other layer from the first, Gemma 3's five of every
     * six; or one flag per layer) with RoPE base {@code rope.freq_base_swa} (Gemma 2's default the global base, Gemma
     * 3's 10000, unscaled); Gemma 2's attention scores capped at {@code attn_logit_softcapping} (default 50) and its
     * logits at {@code final_logit_softcapping} (default 30), Gemma 3's logits only where the file says.
     */
    private static Config.Variant gemma(Path path, Metadata md, String arch, int dim, int nHeads, int headDim) {
        boolean one = arch.equals("gemma"), two = arch.equals("gemma2");
        int layers = required(md, path, arch + ".block_count");
        int window = one ? 0 : md.getInt(arch + ".attention.sliding_window", two ? 4096 : 0);
        boolean[] sliding = slidingLayers(path, md, arch, window, layers, two ? 2 : 6);
        float queryScale = 1f / (float) Math.sqrt(!one && layers == (two ? 46 : 62) ? dim / nHeads : headDim);
        float slidingTheta = md.getFloat(arch + ".rope.freq_base_swa", two ? md.getFloat(arch + ".rope.freq_base", 10000f) : 10000f);
        try {
            return new Config.Variant((float) Math.sqrt(dim), Config.Activation.GELU, queryScale, Math.max(window, 0), sliding, slidingTheta,
                    one ? 0f : md.getFloat(arch + ".final_logit_softcapping", two ? 30f : 0f), two ? md.getFloat(arch + ".attn_logit_softcapping", 50f) : 0f,
                    0, 1f, null, 0, 0f, 1f, 1f, 0, false, false, false, null, null, false, 0f, 0f);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * Granite's (IBM Granite 3.x, dense) multipliers as llama.cpp reads them: the embeddings times {@code
     * embedding_scale}, the attention scores times {@code attention.scale} (in place of 1/sqrt(headDim)), the
     * attention's and the FFN's outputs times {@code residual_scale} before their residuals, the logits divided by
     * {@code logit_scale} (required); a scale of 0 or none given is none. A Granite without RoPE ({@code
     * rope.scaling.finetuned} false) is refused. MiniCPM ({@code minicpm}) is the same blocks, its scales 12, 1.4 /
     * sqrt(layers) and 256 / dim where the file gives none, its scores scaled as Llama's.
     */
    private static Config.Variant granite(Path path, Metadata md, String arch) {
        boolean minicpm = arch.equals("minicpm"), rope = md.getBool(arch + ".rope.scaling.finetuned", true);
        // Granite 4.0-H's attention has no RoPE (its converter writes rope.scaling.finetuned false; Bamba's true)
        if (!minicpm && !rope && !arch.equals("granitehybrid")) throw new ModelFormatException(path + ": a " + arch + " model without RoPE is not supported");
        // MiniCPM's defaults, as llama.cpp sets them before reading the keys
        float embedding = md.getFloat(arch + ".embedding_scale", minicpm ? 12f : 0f);
        float residual = md.getFloat(arch + ".residual_scale", minicpm ? 1.4f / (float) Math.sqrt(required(md, path, arch + ".block_count")) : 0f);
        float logit = minicpm ? md.getFloat(arch + ".logit_scale", 256f / required(md, path, arch + ".embedding_length")) : requiredFloat(md, path, arch + ".logit_scale");
        try {
            // the logits times the scale's reciprocal, as llama.cpp scales them
            Config.Variant v = Config.Variant.granite(embedding == 0f ? 1f : embedding, minicpm ? 0f : md.getFloat(arch + ".attention.scale", 0f), residual == 0f ? 1f : residual,
                    1f / logit);
            return rope || minicpm ? v : v.withoutRope();
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * Which of {@code layers} layers slide where there is a {@code window} (null where there is none), as llama.cpp
     * reads {@code attention.sliding_window_pattern}: one flag per layer, or a period n (default {@code period}) whose
     * last layer attends to everything, the n - 1 before it sliding (0: all sliding).
     */
    private static boolean[] slidingLayers(Path path, Metadata md, String arch, int window, int layers, int period) {
        if (window <= 0) return null;
        String key = arch + ".attention.sliding_window_pattern";
        if (md.get(key) instanceof boolean[] flags) {
            if (flags.length != layers) throw new ModelFormatException(path + ": " + key + " has " + flags.length + " flags for " + layers + " layers");
            return flags.clone();
        }
        int n = md.getInt(key, period);
        boolean[] sliding = new boolean[layers];
        for (int l = 0; l < layers; l++) sliding[l] = n == 0 || l % n < n - 1;
        return sliding;
    }

    /**
     * Command-R's blocks as llama.cpp reads them: LayerNorm (its epsilon {@code attention.layer_norm_epsilon}), the
     * attention and the FFN in parallel, the logits times {@code logit_scale} where the file gives one (0 or none: 1).
     */
    private static Config.Variant commandR(Path path, Metadata md) {
        float logitScale = md.getFloat("command-r.logit_scale", 0f);
        try {
            return Config.Variant.commandR(logitScale == 0f ? 1f : logitScale);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * gpt-oss's blocks as llama.cpp reads them ({@code gpt-oss}: gpt-oss-20b, -120b): every other layer from the first
     * sliding over {@code attention.sliding_window} positions (required), rotated as the others (their base {@code
     * rope.freq_base_swa} where the file gives one: refused, as the others' scaling would not apply to it), the
     * mixture's gate {@link Config.Activation#SWIGLU_OAI}.
     */
    private static Config.Variant gptOss(Path path, Metadata md) {
        int layers = required(md, path, "gpt-oss.block_count"), window = required(md, path, "gpt-oss.attention.sliding_window");
        if (window <= 0) throw new ModelFormatException(path + ": gpt-oss.attention.sliding_window " + window + " is not positive");
        if (md.has("gpt-oss.rope.freq_base_swa")) throw new ModelFormatException(path + ": a gpt-oss model with a RoPE base of its sliding layers is not supported");
        try {
            return Config.Variant.gptOss(window, slidingLayers(path, md, "gpt-oss", window, layers, 2));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * Llama 4's blocks as llama.cpp reads them ({@code llama4}): three of every four layers (or as {@code
     * sliding_window_pattern} says) attending within chunks of 8192 positions, whatever the file says (llama.cpp sets
     * it), rotated as the model's RoPE rotates; every fourth layer without RoPE, attending to everything, its queries
     * times the temperature {@code ln(floor((p + 1) / 8192) + 1) * 0.1 + 1}. A file without chunks ({@code
     * attention.sliding_window} 0, whose last layer llama.cpp would run without RoPE and with a temperature of scale 0),
     * or with a RoPE base of the chunked layers' own, is refused.
     */
    private static Config.Variant llama4(Path path, Metadata md) {
        int layers = required(md, path, "llama4.block_count"), chunk = 8192;
        if (md.has("llama4.attention.sliding_window") && md.getInt("llama4.attention.sliding_window", 0) == 0) {
            throw new ModelFormatException(path + ": a llama4 model without chunked attention (attention.sliding_window 0) is not supported");
        }
        if (md.has("llama4.rope.freq_base_swa")) throw new ModelFormatException(path + ": a llama4 model with a RoPE base of its chunked layers is not supported");
        try {
            return Config.Variant.llama4(chunk, slidingLayers(path, md, "llama4", chunk, layers, 4), new Config.Temperature(0.1f, chunk, 1f, true));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * EXAONE 4.0's blocks as llama.cpp reads them ({@code exaone4}): OLMo2's norms (after the attention and the FFN
     * only) with Qwen3's per-head query and key norms; its 64-layer model (the 32B) has three of every four layers
     * sliding over {@code attention.sliding_window} positions (default 4096) in a {@code sliding_window_pattern}, rotated
     * as the model's RoPE rotates, the fourth attending to everything without RoPE (as Cohere2's); a sliding RoPE base
     * of its own, or another pattern, is refused.
     */
    private static Config.Variant exaone4(Path path, Metadata md) {
        int layers = required(md, path, "exaone4.block_count");
        if (layers != 64) return Config.Variant.LLAMA; // llama.cpp gives the others no window, whatever the file says
        int window = md.getInt("exaone4.attention.sliding_window", 4096);
        if (window <= 0) throw new ModelFormatException(path + ": exaone4.attention.sliding_window " + window + " is not positive");
        if (md.has("exaone4.rope.freq_base_swa")) throw new ModelFormatException(path + ": an exaone4 model with a RoPE base of its sliding layers is not supported");
        try {
            return everyFourthGlobal(path, Config.Variant.slidingWithoutRopeElsewhere(1f, false, window, slidingLayers(path, md, "exaone4", window, layers, 4), 0f), "exaone4");
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * K-EXAONE's blocks (exaone-moe) as llama.cpp reads them: Llama's norms, each head's query and key normalized,
     * layers sliding over {@code attention.sliding_window} positions (required) in a {@code sliding_window_pattern}
     * (default three of every four) rotated by the model's RoPE base (llama.cpp's graph leaves {@code
     * rope.freq_base_swa} unread), the others attending to everything without RoPE; its {@code nextn} next-token
     * prediction layers after the others, not run.
     */
    private static Config.Variant exaoneMoe(Path path, Metadata md, int nextn) {
        int all = required(md, path, "exaone-moe.block_count"), window = required(md, path, "exaone-moe.attention.sliding_window");
        if (window <= 0) throw new ModelFormatException(path + ": exaone-moe.attention.sliding_window " + window + " is not positive");
        boolean[] sliding = Arrays.copyOf(slidingLayers(path, md, "exaone-moe", window, all, 4), all - nextn);
        try {
            return everyFourthGlobal(path, Config.Variant.slidingWithoutRopeElsewhere(1f, false, window, sliding, 0f), "exaone-moe");
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /** {@code v}, refused ({@code arch}'s) where its global layers, the ones without RoPE, are not every fourth. */
    private static Config.Variant everyFourthGlobal(Path path, Config.Variant v, String arch) {
        for (int l = 0; l < v.slidingLayers().length; l++) {
            if (v.slides(l) != v.ropes(l)) throw new ModelFormatException(path + ": a " + arch + " sliding window pattern whose global layers are not every fourth is not supported");
        }
        return v;
    }

    /**
     * Cohere2's blocks as llama.cpp reads them (Command R7B): Command-R's ({@link #commandR}), layers sliding over
     * {@code attention.sliding_window} positions (required) in a {@code sliding_window_pattern} (default three of every
     * four) rotated as the model's RoPE rotates (its base; llama.cpp's graph leaves {@code rope.freq_base_swa} unread),
     * the others attending to everything without RoPE: llama.cpp rotates only the sliding layers' queries and keys, so a
     * pattern whose global layers are not every fourth, which ours would rotate, is refused.
     */
    private static Config.Variant cohere2(Path path, Metadata md) {
        int layers = required(md, path, "cohere2.block_count"), window = required(md, path, "cohere2.attention.sliding_window");
        if (window <= 0) throw new ModelFormatException(path + ": cohere2.attention.sliding_window " + window + " is not positive");
        boolean[] sliding = slidingLayers(path, md, "cohere2", window, layers, 4);
        float logitScale = md.getFloat("cohere2.logit_scale", 0f);
        try {
            // llama.cpp's graph rotates them by the global base, whatever rope.freq_base_swa says
            return everyFourthGlobal(path, Config.Variant.slidingWithoutRopeElsewhere(logitScale == 0f ? 1f : logitScale, true, window, sliding,
                    md.getFloat("cohere2.rope.freq_base", 10000f)), "cohere2");
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * OLMo2's blocks as llama.cpp reads them (OLMo 2, and OLMo 3 with its window): no norms before the attention and
     * the FFN, their outputs normalized after (Gemma's post norms), all heads' queries and keys normalized together
     * before RoPE, and where the file gives a {@code sliding_window} three of every four layers sliding ({@code
     * sliding_window_pattern}) with RoPE base {@code rope.freq_base_swa} (default the global base) unscaled.
     */
    private static Config.Variant olmo2(Path path, Metadata md) {
        int window = md.getInt("olmo2.attention.sliding_window", 0);
        boolean[] sliding = slidingLayers(path, md, "olmo2", window, required(md, path, "olmo2.block_count"), 4);
        try {
            return Config.Variant.olmo2(Math.max(window, 0), sliding, md.getFloat("olmo2.rope.freq_base_swa", md.getFloat("olmo2.rope.freq_base", 10000f)));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * Phi-3's blocks as llama.cpp reads them (Phi-3, 3.5, Phi-4-mini and Phi-4): Llama's, the queries scaled by
     * 1/sqrt(headDim) as llama.cpp scales them, and LongRoPE: the {@code rope_factors_short} frequency factors
     * ({@link #ropeFreqFactors}) up to {@code rope.scaling.original_context_length} positions, {@code
     * rope_factors_long} past it (the cosines and sines scaled by {@code rope.scaling.attn_factor}, {@link #scaled}). (The files' sliding
     * window llama.cpp does not use, nor does this.)
     */
    private static Config.Variant phi3(Path path, Metadata md, Map<String, TensorData> tensors, int headDim) {
        float[] longFactors = longRopeFactors(tensors);
        int original = md.getInt("phi3.rope.scaling.original_context_length", required(md, path, "phi3.context_length"));
        try {
            return new Config.Variant(1f, Config.Activation.SILU, 1f / (float) Math.sqrt(headDim), 0, null, 0f, 0f, 0f,
                    0, 1f, longFactors, original, 0f, 1f, 1f, 0, false, false, false, null, null, false, 0f, 0f);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * The RoPE base: {@code rope.freq_base} (default 10000), for Hunyuan's models times {@code rope.scaling.alpha}^(d /
     * (d - 2)) of its heads' width d where the file gives an alpha (the NTK-aware scaling llama.cpp applies at load).
     */
    private static float ropeBase(Path path, Metadata md, String arch, int headDim) {
        float base = md.getFloat(arch + ".rope.freq_base", 10000f), alpha = md.getFloat(arch + ".rope.scaling.alpha", 0f);
        if (!arch.equals("hunyuan-dense") || alpha <= 0f) return base;
        return base * (float) Math.pow(alpha, (float) headDim / (float) (headDim - 2));
    }

    /** LongRoPE's factors past the original context ({@code rope_factors_long}), or null where the file has none. */
    private static float[] longRopeFactors(Map<String, TensorData> tensors) {
        if (!tensors.containsKey("rope_factors_long.weight")) return null;
        Tensor f = Tensor.of(tensors.get("rope_factors_long.weight"));
        float[] factors = new float[(int) f.cols];
        f.dequantizeRow(0, factors, 0);
        return factors;
    }

    /**
     * MiniCPM3's blocks (minicpm3) as llama.cpp's graph has them: DeepSeek-V2's latent attention (run absorbed, as
     * llama.cpp runs DeepSeek's; its graph for MiniCPM3 decompresses the keys and values, the same products in another
     * order), MiniCPM's scales (the embeddings times 12, the residual branches times 1.4 / sqrt(layers), the logits
     * times 256 / dim), and LongRoPE's factors, the short ones up to the training context (no original length in its
     * files) and the long ones past it.
     */
    private static Config.Variant minicpm3(Path path, Metadata md, Map<String, TensorData> tensors) {
        int keyWidth = required(md, path, "minicpm3.attention.key_length"), layers = required(md, path, "minicpm3.block_count");
        try {
            return new Config.Variant(12f, Config.Activation.SILU, 0f, 0, null, 0f, 0f, 0f, 0, 1f, longRopeFactors(tensors), required(md, path, "minicpm3.context_length"),
                    1f / (float) Math.sqrt(keyWidth), 1.4f / (float) Math.sqrt((float) layers), 256f / required(md, path, "minicpm3.embedding_length"),
                    0, false, false, false, null, null, false, 0f, 0f);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    private static Checkpoint loadLlama2c(Path path, MemorySegment file, Path tokenizerPath, OffHeap memory) {
        Llama2cFile f = Llama2cFile.read(path, file);
        if (tokenizerPath == null) {
            throw new ModelFormatException(path + ": a llama2.c checkpoint has no tokenizer inside; give one with --tokenizer (e.g. tokenizer.bin)");
        }
        Tokenizer tokenizer = Tokenizers.load(tokenizerPath);
        Config config = config(path, () -> new Config("llama", f.dim(), f.hiddenDim(), f.nLayers(), f.nHeads(), f.nKvHeads(), f.vocabSize(),
                f.seqLen(), 1e-5f, 10000f, null, Config.RopeStyle.INTERLEAVED, 0, 0));
        return new Checkpoint(path, "llama2.c", build(path, config, f.tensors(), memory), tokenizer, f.tensors(), null, 1, new int[]{2}, true,
                ChatFormat.PLAIN, null);
    }

    /**
     * A Hugging Face model directory: {@code config.json}, {@code model.safetensors} or shards listed in
     * {@code model.safetensors.index.json}, a tokenizer and {@code generation_config.json}. HF stores q/k weights for
     * the "rotate half" RoPE layout; rather than permuting (copying) them, the model runs RoPE in that layout.
     */
    private static Checkpoint loadHuggingFace(Path dir, Path tokenizerPath, OffHeap memory) {
        Path cfgFile = dir.resolve("config.json");
        if (!Files.exists(cfgFile)) {
            throw new ModelFormatException(dir + ": a directory, but not a Hugging Face model: it has no config.json (a model file is a GGUF or a llama2.c .bin)");
        }
        JsonNode cfg = readJson(cfgFile);
        if (cfg.path("architectures").isMissingNode()) throw new ModelFormatException(cfgFile + ": missing architectures");
        JsonNode arch = cfg.path("architectures").path(0);
        String archName = arch.isTextual() ? arch.asText() : cfg.path("architectures").toString();
        if (!Set.of("LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM").contains(archName)) {
            throw new ModelFormatException(dir + ": unsupported architecture '" + archName + "' (supported: LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM)");
        }
        Map<String, TensorData> hf = new LinkedHashMap<>();
        Path index = dir.resolve("model.safetensors.index.json");
        if (Files.exists(index)) {
            Set<String> shards = new LinkedHashSet<>();
            readJson(index).path("weight_map").forEach(n -> shards.add(n.asText()));
            for (String shard : shards) hf.putAll(Safetensors.read(dir.resolve(shard), memory.arena()));
        } else {
            hf.putAll(Safetensors.read(dir.resolve("model.safetensors"), memory.arena()));
        }
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        List<String> unknown = new ArrayList<>();
        for (TensorData t : hf.values()) {
            String name = ggufName(t.name());
            if (name != null) tensors.put(name, new TensorData(name, t.type(), t.shape(), t.data()));
            else if (!HF_IGNORED.matcher(t.name()).find()) unknown.add(t.name());
        }
        if (!unknown.isEmpty()) throw unusedTensors(dir, unknown);
        int dim = jsonInt(cfg, cfgFile, "hidden_size", null);
        int nHeads = jsonInt(cfg, cfgFile, "num_attention_heads", null);
        // a head's width where the config gives it (Mistral Nemo's head_dim), else hidden_size / heads
        int headDim = cfg.hasNonNull("head_dim") ? jsonInt(cfg, cfgFile, "head_dim", null) : derivedHeadDim(cfgFile, dim, nHeads);
        // transformers' defaults for what a config.json may leave out, per class (LlamaConfig, MistralConfig, MixtralConfig)
        boolean mixtral = archName.startsWith("Mixtral"), llama = archName.startsWith("Llama");
        float theta = jsonFloat(cfg, cfgFile, "rope_theta", mixtral ? 1e6f : 10000);
        Config config = config(dir, () -> new Config(archName.startsWith("Mistral") ? "mistral" : "llama", dim,
                jsonInt(cfg, cfgFile, "intermediate_size", null),
                jsonInt(cfg, cfgFile, "num_hidden_layers", null),
                nHeads,
                jsonInt(cfg, cfgFile, "num_key_value_heads", nHeads),
                jsonInt(cfg, cfgFile, "vocab_size", null),
                jsonInt(cfg, cfgFile, "max_position_embeddings", llama ? 2048 : 4096 * 32),
                jsonFloat(cfg, cfgFile, "rms_norm_eps", mixtral ? 1e-5f : 1e-6f),
                theta,
                ropeScaling(cfg.path("rope_scaling"), cfgFile, theta, headDim),
                Config.RopeStyle.HALVES, jsonInt(cfg, cfgFile, "num_local_experts", 0), jsonInt(cfg, cfgFile, "num_experts_per_tok", 0), headDim));
        String act = cfg.path("hidden_act").asText("silu");
        if (!act.equals("silu")) throw new ModelFormatException(cfgFile + ": hidden_act '" + act + "' is not supported (Llama's feed-forward is SwiGLU: silu)");
        Tokenizer tokenizer = Tokenizers.load(tokenizerPath != null ? tokenizerPath : findTokenizer(dir));
        Set<Integer> eos = new LinkedHashSet<>();
        Path genConfig = dir.resolve("generation_config.json");
        JsonNode eosIn = Files.exists(genConfig) ? readJson(genConfig) : cfg;
        Path eosFile = Files.exists(genConfig) ? genConfig : cfgFile;
        if (eosIn.path("eos_token_id").isMissingNode() || eosIn.path("eos_token_id").isNull()) {
            eosIn = cfg;
            eosFile = cfgFile;
        }
        JsonNode eosNode = eosIn.path("eos_token_id");
        if (eosNode.isArray()) {
            for (int i = 0; i < eosNode.size(); i++) eos.add(jsonInt(eosNode, eosFile, i));
        } else {
            eos.add(jsonInt(eosIn, eosFile, "eos_token_id", 2));
        }
        endsOfTurn(tokenizer, eos); // as for GGUF files (a Llama-3 base model's config names only <|end_of_text|>)
        // transformers saves the template apart (chat_template.jinja), which wins, or in tokenizer_config.json: a text, or
        // named templates of which "default" is the chat's (Hermes-2-Pro's and Command-R's list a "tool_use" one too)
        String template = null;
        Path tokConfig = dir.resolve("tokenizer_config.json"), templateFile = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(templateFile)) {
            template = readText(templateFile);
        } else if (Files.exists(tokConfig)) {
            JsonNode node = readJson(tokConfig).path("chat_template");
            if (node.isArray()) {
                for (JsonNode named : node) if ("default".equals(named.path("name").asText())) node = named.path("template");
            }
            template = node.textValue();
        }
        return new Checkpoint(dir, "huggingface", build(dir, config, tensors, memory), tokenizer, tensors, null,
                jsonInt(cfg, cfgFile, "bos_token_id", 1), eos.stream().mapToInt(Integer::intValue).toArray(), true,
                ChatFormat.detect(template), template);
    }

    /**
     * Hugging Face tensors that hold nothing a model needs, skipped as llama.cpp's converter skips them: rotary caches
     * ({@code inv_freq}) and attention-mask buffers that older checkpoints saved.
     */
    private static final java.util.regex.Pattern HF_IGNORED = java.util.regex.Pattern.compile("\\.(rotary_emb\\.inv_freq|attention\\.masked_bias|attention\\.bias)$");

    /**
     * Tensors a file holds that the Llama forward pass would not read: running without them would be another model
     * (attention or feed-forward biases, extra norms), so the file is refused rather than run wrong without a word.
     */
    private static ModelFormatException unusedTensors(Path path, List<String> names) {
        boolean biases = names.stream().anyMatch(n -> n.endsWith(".bias"));
        return new ModelFormatException(path + ": " + names.size() + " tensor" + (names.size() == 1 ? "" : "s") + " that a Llama model does not have, such as "
                + names.getFirst() + (biases ? " (biases are not supported)" : "") + ": not a model this engine runs");
    }

    /** Hugging Face tensor names to GGUF's; null for a name it does not know (refused, but for {@link #HF_IGNORED}). */
    static String ggufName(String hf) {
        if (hf.equals("model.embed_tokens.weight")) return "token_embd.weight";
        if (hf.equals("model.norm.weight")) return "output_norm.weight";
        if (hf.equals("lm_head.weight")) return "output.weight";
        if (!hf.startsWith("model.layers.")) return null;
        String rest = hf.substring("model.layers.".length());
        int dot = rest.indexOf('.');
        String layer = rest.substring(0, dot);
        String suffix = switch (rest.substring(dot + 1)) {
            case "input_layernorm.weight" -> "attn_norm";
            case "self_attn.q_proj.weight" -> "attn_q";
            case "self_attn.k_proj.weight" -> "attn_k";
            case "self_attn.v_proj.weight" -> "attn_v";
            case "self_attn.o_proj.weight" -> "attn_output";
            case "post_attention_layernorm.weight" -> "ffn_norm";
            case "mlp.gate_proj.weight" -> "ffn_gate";
            case "mlp.up_proj.weight" -> "ffn_up";
            case "mlp.down_proj.weight" -> "ffn_down";
            case "block_sparse_moe.gate.weight" -> "ffn_gate_inp";
            default -> expertName(rest.substring(dot + 1));
        };
        return suffix == null ? null : "blk." + layer + "." + suffix + ".weight";
    }

    /** Mixtral's {@code block_sparse_moe.experts.E.w1} (gate), {@code w2} (down), {@code w3} (up) as {@code ffn_gate.E}, ... */
    private static String expertName(String hf) {
        String prefix = "block_sparse_moe.experts.";
        if (!hf.startsWith(prefix) || !hf.endsWith(".weight")) return null;
        String[] parts = hf.substring(prefix.length()).split("\\.");
        if (parts.length != 3) return null;
        return switch (parts[1]) {
            case "w1" -> "ffn_gate." + parts[0];
            case "w2" -> "ffn_down." + parts[0];
            case "w3" -> "ffn_up." + parts[0];
            default -> null;
        };
    }

    /**
     * The rope scaling of a config.json {@code rope_scaling} object ({@code file}'s) as per-pair frequency divisors:
     * Llama-3.1's, or a linear one (position interpolation: every frequency divided by the factor); null when there is
     * none.
     */
    static float[] ropeScaling(JsonNode scaling, Path file, float theta, int headDim) {
        if (scaling.isMissingNode() || scaling.isNull()) return null;
        String type = scaling.path("rope_type").asText(scaling.path("type").asText(""));
        if (type.equals("linear")) {
            float factor = jsonFloat(scaling, file, "factor", 1);
            if (!(factor > 0) || Float.isInfinite(factor)) throw new ModelFormatException(file + ": rope_scaling factor " + factor + " is not a positive number");
            float[] factors = new float[headDim / 2];
            Arrays.fill(factors, factor);
            return factors;
        }
        if (!type.equals("llama3")) throw new ModelFormatException(file + ": unsupported rope_scaling type '" + type + "' (supported: llama3, linear)");
        return llama3RopeFactors(jsonFloat(scaling, file, "factor", 8), jsonFloat(scaling, file, "low_freq_factor", 1),
                jsonFloat(scaling, file, "high_freq_factor", 4), jsonInt(scaling, file, "original_max_position_embeddings", 8192),
                theta, headDim);
    }

    /** Llama-3.1 rope scaling as a per-pair frequency divisor, computed as convert_hf_to_gguf.py does. */
    public static float[] llama3RopeFactors(float factor, float low, float high, int original, float theta, int headDim) {
        float lowWavelen = original / low, highWavelen = original / high;
        float[] factors = new float[headDim / 2];
        for (int i = 0; i < factors.length; i++) {
            float freq = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
            float wavelen = (float) (2 * Math.PI / freq);
            if (wavelen < highWavelen) factors[i] = 1;
            else if (wavelen > lowWavelen) factors[i] = factor;
            else {
                float smooth = (original / wavelen - low) / (high - low);
                factors[i] = 1 / ((1 - smooth) / factor + smooth);
            }
        }
        return factors;
    }

    private static Path findTokenizer(Path dir) {
        for (String name : new String[]{"tokenizer.model", "tokenizer.json"}) {
            if (Files.exists(dir.resolve(name))) return dir.resolve(name);
        }
        throw new ModelFormatException(dir + ": no tokenizer.model or tokenizer.json; give one with --tokenizer");
    }

    /**
     * Apertus's xIELU parameters per layer as ggml's {@code xielu} takes them, {@code [beta + softplus(alpha_n),
     * softplus(alpha_p), beta, eps]}, from {@code xielu.alpha_n}, {@code xielu.alpha_p}, {@code xielu.beta} and {@code
     * xielu.eps} (each one value for all layers or one per layer, as llama.cpp reads them); null for other architectures.
     */
    private static float[][] xielu(Path path, Metadata md, String arch, int layers) {
        if (!arch.equals("apertus")) return null;
        float[][] values = new float[4][];
        String[] keys = {"xielu.alpha_n", "xielu.alpha_p", "xielu.beta", "xielu.eps"};
        for (int k = 0; k < 4; k++) {
            float[] array = md.getFloats(keys[k]);
            if (array == null && !(md.get(keys[k]) instanceof Number)) throw new ModelFormatException(path + ": missing metadata key " + keys[k]);
            if (array != null && array.length != layers) throw new ModelFormatException(path + ": " + keys[k] + " has " + array.length + " values for " + layers + " layers");
            values[k] = array != null ? array : filled(layers, md.getFloat(keys[k], 0f));
        }
        float[][] out = new float[layers][];
        for (int l = 0; l < layers; l++) {
            out[l] = new float[]{values[2][l] + softplus(values[0][l]), softplus(values[1][l]), values[2][l], values[3][l]};
        }
        return out;
    }

    private static float[] filled(int n, float value) {
        float[] a = new float[n];
        Arrays.fill(a, value);
        return a;
    }

    /** ggml's {@code softplus}: {@code log(1 + e^x)}, x itself above 20, in floats. */
    private static float softplus(float x) {
        return x > 20f ? x : (float) Math.log(1 + (float) Math.exp(x));
    }

    /** Builds the weights from tensors under GGUF names, checking every shape against the config and that every tensor is read. */
    static Llama build(Path path, Config c, Map<String, TensorData> all, OffHeap memory) {
        return build(path, c, Gating.MIXTRAL, null, null, null, all, memory);
    }

    /**
     * {@link #build(Path, Config, Map, OffHeap)} of a model whose mixtures weigh their experts as {@code gating} says,
     * its layers' xIELU parameters {@code xielu} (Apertus's, {@link #xielu}; null for none), the layers {@code
     * mixers} the layers that are not attention (null: none), {@code shapes} each layer's own shape (a deci model's;
     * null: the config's for all).
     */
    static Llama build(Path path, Config c, Gating gating, float[][] xielu, Mixers mixers, LayerShapes shapes, Map<String, TensorData> all, OffHeap memory) {
        Asked tensors = new Asked(all);
        Llama model = build(path, c, gating, xielu, mixers, shapes, tensors, memory);
        List<String> unused = all.keySet().stream().filter(n -> !tensors.asked.contains(n) && !ROPE_FACTORS.contains(n)).toList();
        if (!unused.isEmpty()) throw unusedTensors(path, unused);
        return model;
    }

    /** The rope's frequency factors, which the config holds (Llama-3.1's; Phi-3's short and long ones). */
    private static final Set<String> ROPE_FACTORS = Set.of("rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight");

    /** A model's tensors by name, noting each name the build looks up: what is left unasked, the model would not read. */
    private static final class Asked extends java.util.AbstractMap<String, TensorData> {
        private final Map<String, TensorData> all;
        final Set<String> asked = new java.util.HashSet<>();

        Asked(Map<String, TensorData> all) {
            this.all = all;
        }

        @Override
        public TensorData get(Object name) {
            asked.add((String) name);
            return all.get(name);
        }

        @Override
        public boolean containsKey(Object name) {
            asked.add((String) name);
            return all.containsKey(name);
        }

        @Override
        public Set<Entry<String, TensorData>> entrySet() {
            return all.entrySet();
        }
    }

    private static Llama build(Path path, Config c, Gating gating, float[][] xielu, Mixers mixers, LayerShapes shapes, Asked tensors, OffHeap memory) {
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim(), vocab = c.vocabSize();
        Tensor embeddings = matrix(path, tensors, "token_embd.weight", dim, vocab);
        // a bias on the logits where llama.cpp's graph adds one (Phi-2's; Phi-3's and Qwen2's where a file has it); its
        // qwen2vl reads one and leaves it out (no file is converted so): refused elsewhere
        boolean logitBias = List.of("phi2", "phi3", "qwen2").contains(c.architecture());
        if (!logitBias && tensors.containsKey("output.bias")) throw new ModelFormatException(path + ": a bias on the logits (output.bias) is not supported");
        // BitNet's logits always the embeddings' (llama.cpp's graph reads no output.weight of it)
        Tensor output = tensors.containsKey("output.weight") && !c.architecture().equals("bitnet") ? matrix(path, tensors, "output.weight", dim, vocab) : embeddings;
        Layer[] layers = new Layer[c.nLayers()];
        // OLMo2's and EXAONE 4's norms after the attention and the FFN only
        boolean parallelBlocks = c.variant().parallelBlocks(), olmo2 = c.architecture().equals("olmo2") || c.architecture().equals("exaone4"),
                postNorms = c.architecture().startsWith("gemma") && !c.architecture().equals("gemma") || olmo2 || c.architecture().equals("glm4"), wholeNorms = c.variant().wholeQkNorms(),
                headNorms = c.architecture().startsWith("qwen3") || c.architecture().equals("gemma3") || c.architecture().equals("exaone4") || c.architecture().equals("exaone-moe") || c.architecture().startsWith("hunyuan") || c.architecture().equals("maincoder") || c.architecture().startsWith("lfm2")
                        || c.architecture().equals("dots1") || c.architecture().equals("apertus") || c.architecture().equals("bailingmoe2") || wholeNorms,
                gptOss = c.architecture().equals("gpt-oss"), seedOss = c.architecture().equals("seed_oss"), glm4moe = c.architecture().equals("glm4moe"), qkvBiases = c.architecture().startsWith("qwen2") || gptOss,
                // Llama 4's layers with RoPE normalize each head's queries and keys, without weights (but Maverick's,
                // 128 experts, as llama.cpp tells them apart)
                unitNorms = c.architecture().equals("llama4") && c.expertCount() != 128, latentAttention = c.latentAttention(),
                // Qwen3.5's attention: each head's query followed by its gate in wq's rows, the FFN's norm named as a post-attention norm
                queryGates = c.architecture().startsWith("qwen35") || c.architecture().equals("qwen3next"),
                // Falcon-H1's: attention and a Mamba-2 mixer side by side in every layer
                falconH1 = c.architecture().equals("falcon-h1"),
                falcon = c.architecture().equals("falcon"), gptNeox = c.architecture().equals("gptneox"), bloom = c.architecture().equals("bloom");
        float[] ones = new float[c.headDim()];
        Arrays.fill(ones, 1f);
        // OLMo's (1) LayerNorms have no weights: ones
        boolean olmo = c.architecture().equals("olmo"), bitnet = c.architecture().equals("bitnet");
        float[] unit = new float[dim];
        Arrays.fill(unit, 1f);
        for (int l = 0; l < layers.length; l++) {
            String p = "blk." + l + ".";
            // a mixture where the layer has a router (ERNIE 4.5's first layer is dense)
            boolean mixture = c.isMoE() && tensors.containsKey(p + "ffn_gate_inp.weight");
            if (shapes != null) {
                layers[l] = deciLayer(path, c, tensors, p, shapes, l);
                continue;
            }
            if (mixers != null && mixers.feedForwardsAlone() != null) {
                layers[l] = nemotronBlock(path, c, gating, tensors, p, mixers, l);
                continue;
            }
            if (mixers != null && mixers.layers()[l]) {
                // a convolution's, delta net's or Mamba-2's layer: its feed-forward a plain SwiGLU or its experts
                FeedForward ffn = mixture ? mixture(path, c, gating, tensors, p) : new FeedForward.Dense(matrix(path, tensors, p + "ffn_gate.weight", dim, hidden),
                        matrix(path, tensors, p + "ffn_down.weight", hidden, dim), matrix(path, tensors, p + "ffn_up.weight", dim, hidden));
                layers[l] = c.architecture().startsWith("lfm2") ? convolution(path, c, tensors, p, mixers.taps(), ffn)
                        : c.architecture().equals("granitehybrid") ? mamba2(path, c, tensors, p, mixers, ffn)
                        : c.architecture().equals("jamba") ? mamba(path, c, tensors, p, mixers, ffn) : deltaNet(path, c, tensors, p, mixers, ffn);
                continue;
            }
            // Phi-3's query, key and value projections in one tensor, and its gate and up projections: views of their rows
            Tensor qkv = tensors.containsKey(p + "attn_qkv.weight") ? matrix(path, tensors, p + "attn_qkv.weight", dim, qDim + 2L * kvDim) : null;
            // Phi-2's fused projections' bias, split as they are
            float[] qkvBias = qkv != null && tensors.containsKey(p + "attn_qkv.bias") ? vector(path, tensors, p + "attn_qkv.bias", qDim + 2 * kvDim) : null;
            boolean ungated = c.variant().activation().ungated();
            // GLM-4.5 355B's per-head query and key norms (its Air has none)
            boolean layerHeadNorms = headNorms || glm4moe && tensors.containsKey(p + "attn_q_norm.weight");
            Tensor gateUp = !mixture && !ungated && !tensors.containsKey(p + "ffn_gate.weight") ? matrix(path, tensors, p + "ffn_up.weight", dim, 2L * hidden) : null;
            LatentAttention latent = latentAttention ? latent(path, c, tensors, p) : null;
            // the attention's norm, and in parallel blocks the FFN's own norm of the same input where it has one:
            // Falcon-40B's attention normalized by attn_norm_2 and its FFN by attn_norm, GPT-NeoX's FFN by ffn_norm
            boolean falconTwoNorms = falcon && tensors.containsKey(p + "attn_norm_2.weight");
            String attentionNorm = falconTwoNorms ? "attn_norm_2" : "attn_norm", parallelFfnNorm = falconTwoNorms ? "attn_norm" : gptNeox ? "ffn_norm" : null;
            layers[l] = new Layer(
                    olmo2 ? null : olmo ? unit : vector(path, tensors, p + attentionNorm + ".weight", dim), // OLMo2: no norms before, only after
                    latent != null ? matrix(path, tensors, p + (latent.qA() == null ? "attn_q.weight" : "attn_q_b.weight"),
                            latent.qA() == null ? dim : latent.qA().rows, (long) c.nHeads() * latent.queryWidth())
                            : qkv != null ? qkv.rows(0, qDim) : matrix(path, tensors, p + "attn_q.weight", dim, queryGates ? 2L * qDim : qDim),
                    latent != null ? matrix(path, tensors, p + "attn_kv_a_mqa.weight", dim, kvDim)
                            : qkv != null ? qkv.rows(qDim, kvDim) : matrix(path, tensors, p + "attn_k.weight", dim, kvDim),
                    latent != null ? null : qkv != null ? qkv.rows(qDim + kvDim, kvDim) : matrix(path, tensors, p + "attn_v.weight", dim, kvDim),
                    matrix(path, tensors, p + "attn_output.weight", latent != null ? (long) c.nHeads() * latent.valueWidth() : qDim, dim),
                    // parallel: the attention's norm; gpt-oss's, Seed-OSS's and GLM-4.5's under the name of a "post-attention" norm
                    // (Falcon-H1's named without ".weight", as its converter writes it and llama.cpp reads it)
                    olmo2 || parallelBlocks && parallelFfnNorm == null ? null : olmo ? unit : parallelBlocks ? vector(path, tensors, p + parallelFfnNorm + ".weight", dim)
                            : vector(path, tensors, p + (gptOss || seedOss || glm4moe || queryGates ? "post_attention_norm.weight" : falconH1 ? "ffn_norm" : "ffn_norm.weight"), dim),
                    mixture ? mixture(path, c, gating, tensors, p) : new FeedForward.Dense(
                            ungated ? null : gateUp != null ? gateUp.rows(0, hidden) : matrix(path, tensors, p + "ffn_gate.weight", dim, hidden),
                            matrix(path, tensors, p + "ffn_down.weight", hidden, dim),
                            gateUp != null ? gateUp.rows(hidden, hidden) : matrix(path, tensors, p + "ffn_up.weight", dim, hidden),
                            // StarCoder2's, Phi-2's and JAIS's biases; any other's where its file has them
                            ungated ? null : optionalVector(path, tensors, p + "ffn_gate.bias", hidden),
                            optionalVector(path, tensors, p + "ffn_up.bias", hidden), optionalVector(path, tensors, p + "ffn_down.bias", dim),
                            bitnet ? vector(path, tensors, p + "ffn_sub_norm.weight", hidden) : null),
                    layerHeadNorms ? vector(path, tensors, p + "attn_q_norm.weight", wholeNorms ? qDim : c.headDim()) : unitNorms && c.variant().ropes(l) ? ones : null,
                    layerHeadNorms ? vector(path, tensors, p + "attn_k_norm.weight", wholeNorms ? kvDim : c.headDim()) : unitNorms && c.variant().ropes(l) ? ones : null,
                    // Qwen2's and gpt-oss's biases; any other's where its file has them (llama.cpp reads them so)
                    qkvBias != null ? Arrays.copyOfRange(qkvBias, 0, qDim) : qkvBiases || tensors.containsKey(p + "attn_q.bias") ? vector(path, tensors, p + "attn_q.bias", qDim) : null,
                    qkvBias != null ? Arrays.copyOfRange(qkvBias, qDim, qDim + kvDim) : qkvBiases || tensors.containsKey(p + "attn_k.bias") ? vector(path, tensors, p + "attn_k.bias", kvDim) : null,
                    qkvBias != null ? Arrays.copyOfRange(qkvBias, qDim + kvDim, qDim + 2 * kvDim) : qkvBiases || tensors.containsKey(p + "attn_v.bias") ? vector(path, tensors, p + "attn_v.bias", kvDim) : null,
                    postNorms ? vector(path, tensors, p + "post_attention_norm.weight", dim) : null,
                    postNorms ? vector(path, tensors, p + "post_ffw_norm.weight", dim) : null,
                    // gpt-oss's wo bias; any other's where its file has one (Apertus's; llama.cpp reads it so, as the q/k/v biases)
                    gptOss || tensors.containsKey(p + "attn_output.bias") ? vector(path, tensors, p + "attn_output.bias", dim) : null,
                    gptOss ? vector(path, tensors, p + "attn_sinks.weight", c.nHeads()) : null,
                    latent,
                    xielu == null ? null : xielu[l], null, falconH1 ? mamba2Beside(path, c, tensors, p, mixers) : null, queryGates,
                    // a LayerNorm's biases (StarCoder2's, Phi-2's) where the file has them
                    optionalVector(path, tensors, p + attentionNorm + ".bias", dim),
                    optionalVector(path, tensors, p + (parallelBlocks && parallelFfnNorm != null ? parallelFfnNorm : "ffn_norm") + ".bias", dim),
                    // BitNet's norm of the heads' outputs before wo
                    bitnet ? vector(path, tensors, p + "attn_sub_norm.weight", qDim) : null);
            // Apertus's query and key norms' biases, which llama.cpp reads and leaves out of its norms: asked for, so not unused
            if (c.architecture().equals("apertus")) List.of("attn_q_norm.bias", "attn_k_norm.bias").forEach(n -> tensors.containsKey(p + n));
        }
        // a reranker's classifier head (Qwen3-Reranker's: the output head's rows of "yes" and "no", as llama.cpp's converter writes them)
        Weights.Classifier classifier = null;
        if (tensors.containsKey("cls.output.weight")) {
            TensorData head = tensors.get("cls.output.weight");
            long labels = head.shape().length == 2 ? head.shape()[1] : 0;
            if (labels < 1 || labels > 1 << 16) throw new ModelFormatException(path + ": tensor cls.output.weight has shape " + head.shapeString() + ", expected [" + dim + ", labels]");
            classifier = new Weights.Classifier(matrix(path, tensors, "cls.output.weight", dim, labels),
                    tensors.containsKey("cls.output.bias") ? vector(path, tensors, "cls.output.bias", (int) labels) : null);
        }
        // LFM2's output norm under the name its converter gives it
        return new Llama(c, new Weights(embeddings, layers, olmo ? unit : vector(path, tensors, c.architecture().startsWith("lfm2") ? "token_embd_norm.weight" : "output_norm.weight", dim), output, classifier,
                optionalVector(path, tensors, "output_norm.bias", dim), logitBias ? optionalVector(path, tensors, "output.bias", vocab) : null,
                // GPT-2's and StarCoder's learned positions, as many as its context
                c.architecture().equals("gpt2") || c.architecture().equals("starcoder") || c.architecture().equals("mpt") && tensors.containsKey("position_embd.weight")
                        ? matrix(path, tensors, "position_embd.weight", dim, c.contextLength()) : null,
                // BLOOM's norm of the embeddings
                bloom ? vector(path, tensors, "token_embd_norm.weight", dim) : null, bloom ? vector(path, tensors, "token_embd_norm.bias", dim) : null), memory);
    }

    /**
     * A hybrid model's layers that are not attention (flagged in {@code layers}): LFM2's short convolutions of {@code taps},
     * Qwen3.5's gated delta nets, their convolutions of {@code taps}, their {@code keyHeads} and {@code valueHeads} of
     * {@code headWidth}, or Granite 4.0-H's and Nemotron-H's Mamba-2 mixers, their convolutions of {@code taps}, their {@code keyHeads}
     * groups, {@code valueHeads} heads of {@code headWidth} and rows of {@code stateSize}, or Mamba's mixers, their
     * convolutions of {@code taps}, as llama.cpp counts them {@code valueHeads} heads (channels) of 1 in 1 group, rows of
     * {@code stateSize}, dt's rank {@code dtRank} and whether dt's input, B and C are normalized ({@code dtBCNorms});
     * {@code feedForwardsAlone}: Nemotron-H's blocks of a feed-forward alone (its other blocks a mixer alone, as every
     * block of Mamba-2's and Mamba's), null in the others.
     */
    record Mixers(boolean[] layers, int taps, int keyHeads, int valueHeads, int headWidth, int stateSize, boolean[] feedForwardsAlone, int dtRank,
                  boolean dtBCNorms) {
    }

    /**
     * Qwen3.5's delta nets as llama.cpp reads them: {@code ssm.conv_kernel} taps, {@code ssm.state_size} wide heads,
     * {@code ssm.group_count} key heads and {@code ssm.time_step_rank} value heads ({@code ssm.inner_size} their width
     * together), in the layers {@code attention.recurrent_layers} flags, or all but every {@code full_attention_interval}-th
     * (default 4).
     */
    private static Mixers deltaNets(Path path, Metadata md, String arch, int layers) {
        int taps = required(md, path, arch + ".ssm.conv_kernel"), width = required(md, path, arch + ".ssm.state_size"),
                keyHeads = required(md, path, arch + ".ssm.group_count"), valueHeads = required(md, path, arch + ".ssm.time_step_rank"),
                inner = required(md, path, arch + ".ssm.inner_size");
        if (taps < 2 || taps > 64) throw new ModelFormatException(path + ": " + arch + ".ssm.conv_kernel " + taps + " is not 2 to 64");
        for (int n : new int[]{width, keyHeads, valueHeads}) {
            if (n < 1 || n > 1 << 12) throw new ModelFormatException(path + ": " + arch + ".ssm.* gives " + width + "-wide heads, " + keyHeads + " key and " + valueHeads + " value heads: not counts of 1 to 4096");
        }
        if (valueHeads % keyHeads != 0 || (long) valueHeads * width != inner) {
            throw new ModelFormatException(path + ": " + arch + ".ssm.inner_size " + inner + " is not " + valueHeads + " value heads of " + width + ", or they are not whole groups of its " + keyHeads + " key heads");
        }
        checkStateSize(path, arch, (long) valueHeads * width * width);
        boolean[] recurrent = new boolean[layers];
        String key = arch + ".attention.recurrent_layers";
        if (md.get(key) instanceof boolean[] flags) {
            if (flags.length < layers) throw new ModelFormatException(path + ": " + key + " has " + flags.length + " flags for " + layers + " layers");
            System.arraycopy(flags, 0, recurrent, 0, layers);
        } else {
            int interval = md.getInt(arch + ".full_attention_interval", 4);
            if (interval < 1) throw new ModelFormatException(path + ": " + arch + ".full_attention_interval " + interval + " is not a count of layers");
            for (int l = 0; l < layers; l++) recurrent[l] = (l + 1) % interval != 0;
        }
        return new Mixers(recurrent, taps, keyHeads, valueHeads, width, 0, null, 0, false);
    }

    /**
     * A Qwen3.5 delta net layer ({@link DeltaNet}): its norms (the FFN's named as a post-attention norm), {@code attn_qkv}
     * as wq, {@code attn_gate} (z) as wk, no wv, {@code ssm_out} as wo, its convolution's kernel {@code ssm_conv1d}
     * [taps, channels], beta's and alpha's projections, the decay's bias and factor ({@code ssm_dt.bias}, {@code
     * ssm_a}), the heads' norm, and its feed-forward {@code ffn}.
     */
    private static Layer deltaNet(Path path, Config c, Map<String, TensorData> tensors, String p, Mixers m, FeedForward ffn) {
        int dim = c.dim(), width = m.headWidth(), heads = m.valueHeads(), taps = m.taps();
        int channels = (2 * m.keyHeads() + heads) * width, values = heads * width;
        // Qwen3-Next's: beta and alpha in one ssm_ba grouped by key head, each key head's values its value heads in a row;
        // an early conversion's queries, keys, values and z in one ssm_in grouped so too (the layer's wq, no wk)
        boolean next = c.architecture().equals("qwen3next"), fused = next && tensors.containsKey(p + "ssm_in.weight");
        DeltaNet d = new DeltaNet(next ? null : matrix(path, tensors, p + "ssm_beta.weight", dim, heads), next ? null : matrix(path, tensors, p + "ssm_alpha.weight", dim, heads),
                next ? matrix(path, tensors, p + "ssm_ba.weight", dim, 2L * heads) : null, convolutionKernel(path, tensors, p, taps, channels), taps,
                vector(path, tensors, p + "ssm_dt.bias", heads), vector(path, tensors, p + "ssm_a", heads), vector(path, tensors, p + "ssm_norm.weight", width),
                m.keyHeads(), heads, width, next);
        return new Layer(vector(path, tensors, p + "attn_norm.weight", dim),
                fused ? matrix(path, tensors, p + "ssm_in.weight", dim, (long) channels + values) : matrix(path, tensors, p + "attn_qkv.weight", dim, channels),
                fused ? null : matrix(path, tensors, p + "attn_gate.weight", dim, values), null, matrix(path, tensors, p + "ssm_out.weight", values, dim),
                vector(path, tensors, p + "post_attention_norm.weight", dim), ffn, null, null, null, null, null, null, null, null, null, null, null, null, d, false, null, null);
    }

    /** A recurrent layer's convolution's kernel {@code ssm_conv1d} [taps, channels], by tap ({@link RecurrentMixer#kernel}). */
    private static float[] convolutionKernel(Path path, Map<String, TensorData> tensors, String p, int taps, int channels) {
        Tensor conv = matrix(path, tensors, p + "ssm_conv1d.weight", taps, channels);
        // by tap, [taps][channels]: a tap's weights of consecutive channels side by side, for the convolution's vector lanes
        float[] row = new float[taps], kernel = new float[channels * taps];
        for (int i = 0; i < channels; i++) {
            conv.dequantizeRow(i, row, 0);
            for (int j = 0; j < taps; j++) kernel[j * channels + i] = row[j];
        }
        return kernel;
    }

    /**
     * Granite 4.0-H's, Nemotron-H's and Mamba-2's Mamba-2 mixers as llama.cpp reads them: {@code ssm.conv_kernel} taps,
     * {@code ssm.time_step_rank} heads of {@code ssm.inner_size / heads}, {@code ssm.group_count} groups of B and C, rows
     * of {@code ssm.state_size}, in the layers whose {@code attention.head_count_kv} is 0 (Nemotron-H's: whose {@code
     * feed_forward_length} is 0 too; those with a width are its feed-forwards' blocks; Mamba-2's: every layer; Falcon-H1's:
     * none, its mixers beside attention in every layer).
     */
    private static Mixers mamba2(Path path, Metadata md, String arch) {
        int taps = required(md, path, arch + ".ssm.conv_kernel"), inner = required(md, path, arch + ".ssm.inner_size"), states = required(md, path, arch + ".ssm.state_size"),
                heads = required(md, path, arch + ".ssm.time_step_rank"), groups = required(md, path, arch + ".ssm.group_count");
        if (taps < 2 || taps > 64) throw new ModelFormatException(path + ": " + arch + ".ssm.conv_kernel " + taps + " is not 2 to 64");
        for (int n : new int[]{inner, states, heads, groups}) {
            if (n < 1 || n > 1 << 16) throw new ModelFormatException(path + ": " + arch + ".ssm.* gives an inner size of " + inner + ", " + heads + " heads, " + groups + " groups, states of " + states + ": not counts of 1 to 65536");
        }
        if (inner % heads != 0 || heads % groups != 0) {
            throw new ModelFormatException(path + ": " + arch + ".ssm.inner_size " + inner + " is not whole heads of its " + heads + ", or they are not whole groups of its " + groups);
        }
        checkStateSize(path, arch, (long) inner * states);
        int layers = required(md, path, arch + ".block_count");
        boolean alone = arch.equals("mamba2"), nemotronH = arch.startsWith("nemotron_h");
        int[] kvHeads = alone ? new int[layers] : layerKvHeads(path, md, arch, layers);
        int[] widths = nemotronH ? perLayer(path, md, arch + ".feed_forward_length", layers) : new int[layers];
        // blocks of one part each (Nemotron-H's, Mamba-2's alone): which are feed-forwards alone
        boolean[] recurrent = new boolean[layers], feedForwards = nemotronH || alone ? new boolean[layers] : null;
        for (int l = 0; l < layers; l++) {
            recurrent[l] = kvHeads[l] == 0 && widths[l] == 0;
            if (nemotronH) feedForwards[l] = widths[l] != 0;
        }
        return new Mixers(recurrent, taps, groups, heads, inner / heads, states, feedForwards, 0, false);
    }

    /**
     * A Granite 4.0-H Mamba-2 layer ({@link Mamba2}): its norms, {@code ssm_in}'s rows as wk (z) and wq (x, B, C, dt), no
     * wv, {@code ssm_out} as wo, its convolution's kernel and bias, dt's bias, a ({@code ssm_a} [1, heads]: -exp(A_log)),
     * d, the grouped norm ({@code ssm_norm} [innerWidth / groups, groups]), and its feed-forward {@code ffn} (null: none,
     * a Nemotron-H block).
     */
    private static Layer mamba2(Path path, Config c, Map<String, TensorData> tensors, String p, Mixers m, FeedForward ffn) {
        int dim = c.dim(), inner = m.valueHeads() * m.headWidth();
        Tensor in = matrix(path, tensors, p + "ssm_in.weight", dim, (long) m.valueHeads() + inner + mamba2Channels(m));
        return new Layer(vector(path, tensors, p + "attn_norm.weight", dim), in.rows(inner, mamba2Channels(m) + m.valueHeads()), in.rows(0, inner), null,
                matrix(path, tensors, p + "ssm_out.weight", inner, dim), ffn == null ? null : vector(path, tensors, p + "ffn_norm.weight", dim), ffn,
                null, null, null, null, null, null, null, null, null, null, null, null, mamba2Mixer(path, tensors, p, m, null, null, null), false, null, null);
    }

    /** A Mamba-2 mixer's convolution's channels: x, then B and C of every group. */
    private static int mamba2Channels(Mixers m) {
        return m.valueHeads() * m.headWidth() + 2 * m.keyHeads() * m.stateSize();
    }

    /**
     * Layer {@code p}'s Mamba-2 mixer ({@link Mamba2}): its convolution's kernel and bias, dt's bias, a ({@code ssm_a} [1,
     * heads]: -exp(A_log)), d, the grouped norm ({@code ssm_norm} [innerWidth / groups, groups]; Falcon-H1's may have
     * none), and beside attention its projections {@code in}, {@code gate} and {@code out} (null: the layer's wq, wk and wo).
     */
    private static Mamba2 mamba2Mixer(Path path, Map<String, TensorData> tensors, String p, Mixers m, Tensor in, Tensor gate, Tensor out) {
        int heads = m.valueHeads(), groups = m.keyHeads(), inner = heads * m.headWidth(), channels = mamba2Channels(m);
        boolean normed = in == null || tensors.containsKey(p + "ssm_norm.weight");
        return new Mamba2(convolutionKernel(path, tensors, p, m.taps(), channels),
                tensors.containsKey(p + "ssm_conv1d.bias") ? vector(path, tensors, p + "ssm_conv1d.bias", channels) : null, m.taps(),
                vector(path, tensors, p + "ssm_dt.bias", heads), values(path, tensors, p + "ssm_a", 1, heads), values(path, tensors, p + "ssm_d", 1, heads),
                normed ? values(path, tensors, p + "ssm_norm.weight", inner / groups, groups) : null, heads, m.headWidth(), groups, m.stateSize(), in, gate, out);
    }

    /** Falcon-H1's Mamba-2 mixer of layer {@code p}, beside its attention: ssm_in's rows (x, B, C, dt and z) and ssm_out its own. */
    private static Mamba2 mamba2Beside(Path path, Config c, Map<String, TensorData> tensors, String p, Mixers m) {
        int dim = c.dim(), inner = m.valueHeads() * m.headWidth();
        Tensor in = matrix(path, tensors, p + "ssm_in.weight", dim, (long) m.valueHeads() + inner + mamba2Channels(m));
        return mamba2Mixer(path, tensors, p, m, in.rows(inner, mamba2Channels(m) + m.valueHeads()), in.rows(0, inner), matrix(path, tensors, p + "ssm_out.weight", inner, dim));
    }

    /** Refuses a recurrent layer whose state would be more than 2^28 floats (1 GB; Mamba-Codestral's is 2^20): corrupt metadata's. */
    private static void checkStateSize(Path path, String arch, long floats) {
        if (floats > 1 << 28) throw new ModelFormatException(path + ": " + arch + ".ssm.* gives each layer a state of " + floats + " floats, more than the 2^28 this engine holds");
    }

    /**
     * Mamba's mixers (Falcon-Mamba's, state-spaces' Mamba, Jamba's) as llama.cpp reads them: {@code ssm.conv_kernel}
     * taps over {@code ssm.inner_size} channels, each with a row of {@code ssm.state_size} states, dt of rank {@code
     * ssm.time_step_rank}, its input, B and C normalized where {@code ssm.dt_b_c_rms} says (Jamba's always, by weights
     * of their own); in every block, alone, or Jamba's in the layers whose {@code attention.head_count_kv} is 0, each
     * with a feed-forward.
     */
    private static Mixers mamba(Path path, Metadata md, String arch) {
        int taps = required(md, path, arch + ".ssm.conv_kernel"), inner = required(md, path, arch + ".ssm.inner_size"), states = required(md, path, arch + ".ssm.state_size"),
                rank = required(md, path, arch + ".ssm.time_step_rank"), layers = required(md, path, arch + ".block_count");
        if (taps < 2 || taps > 64) throw new ModelFormatException(path + ": " + arch + ".ssm.conv_kernel " + taps + " is not 2 to 64");
        for (int n : new int[]{inner, states, rank}) {
            if (n < 1 || n > 1 << 16) throw new ModelFormatException(path + ": " + arch + ".ssm.* gives an inner size of " + inner + ", states of " + states + ", dt's rank " + rank + ": not counts of 1 to 65536");
        }
        checkStateSize(path, arch, (long) inner * states);
        boolean jamba = arch.equals("jamba");
        boolean[] recurrent = new boolean[layers];
        int[] kvHeads = jamba ? layerKvHeads(path, md, arch, layers) : new int[layers];
        for (int l = 0; l < layers; l++) recurrent[l] = kvHeads[l] == 0;
        return new Mixers(recurrent, taps, 1, inner, 1, states, jamba ? null : new boolean[layers], rank, jamba || md.getBool(arch + ".ssm.dt_b_c_rms", false));
    }

    /**
     * A Mamba layer ({@link Mamba1}): its norm, {@code ssm_in}'s rows as wq (x) and wk (z), no wv, {@code ssm_out} as
     * wo, its convolution's kernel and bias, {@code ssm_x} and {@code ssm_dt} with dt's bias, a ({@code ssm_a} [states,
     * inner]: -exp(A_log), transposed to [states][inner]) and d, Jamba's norms of dt's input, B and C ({@code
     * ssm_dt_norm}, {@code ssm_b_norm}, {@code ssm_c_norm}) and its feed-forward {@code ffn} under {@code ffn_norm}
     * (null: none, a Mamba block alone).
     */
    private static Layer mamba(Path path, Config c, Map<String, TensorData> tensors, String p, Mixers m, FeedForward ffn) {
        int dim = c.dim(), inner = m.valueHeads(), states = m.stateSize(), rank = m.dtRank(), taps = m.taps();
        boolean jamba = c.architecture().equals("jamba");
        Tensor in = matrix(path, tensors, p + "ssm_in.weight", dim, 2L * inner);
        float[] byChannel = values(path, tensors, p + "ssm_a", states, inner), a = new float[states * inner];
        for (int ch = 0; ch < inner; ch++) for (int k = 0; k < states; k++) a[k * inner + ch] = byChannel[ch * states + k];
        Mamba1 mamba = new Mamba1(matrix(path, tensors, p + "ssm_x.weight", inner, rank + 2L * states), matrix(path, tensors, p + "ssm_dt.weight", rank, inner),
                convolutionKernel(path, tensors, p, taps, inner), vector(path, tensors, p + "ssm_conv1d.bias", inner), taps,
                vector(path, tensors, p + "ssm_dt.bias", inner), a, vector(path, tensors, p + "ssm_d", inner), inner, rank, states,
                norm(path, tensors, p + "ssm_dt_norm.weight", rank, jamba, m.dtBCNorms()), norm(path, tensors, p + "ssm_b_norm.weight", states, jamba, m.dtBCNorms()),
                norm(path, tensors, p + "ssm_c_norm.weight", states, jamba, m.dtBCNorms()));
        return new Layer(vector(path, tensors, p + "attn_norm.weight", dim), in.rows(0, inner), in.rows(inner, inner), null,
                matrix(path, tensors, p + "ssm_out.weight", inner, dim), ffn == null ? null : vector(path, tensors, p + "ffn_norm.weight", dim), ffn,
                null, null, null, null, null, null, null, null, null, null, null, null, mamba, false, null, null);
    }

    /** A Mamba mixer's norm's weights: Jamba's {@code name}, ones where the file asks for norms without weights (Falcon-Mamba's), null for none. */
    private static float[] norm(Path path, Map<String, TensorData> tensors, String name, int n, boolean weighted, boolean normed) {
        if (weighted) return vector(path, tensors, name, n);
        if (!normed) return null;
        float[] ones = new float[n];
        Arrays.fill(ones, 1f);
        return ones;
    }

    /**
     * Nemotron-H's block {@code l}, under its one norm ({@code attn_norm}): a Mamba-2 mixer alone, attention alone
     * (without RoPE), or a feed-forward alone (ReLU² of {@code ffn_up}, through {@code ffn_down}; its mixtures' experts
     * so, chosen by sigmoids with a selection bias, beside a shared expert so), each with its residual.
     */
    private static Layer nemotronBlock(Path path, Config c, Gating gating, Map<String, TensorData> tensors, String p, Mixers m, int l) {
        int dim = c.dim();
        if (m.layers()[l]) return c.architecture().equals("mamba") ? mamba(path, c, tensors, p, m, null) : mamba2(path, c, tensors, p, m, null);
        float[] norm = vector(path, tensors, p + "attn_norm.weight", dim);
        if (m.feedForwardsAlone()[l]) {
            FeedForward ffn = c.isMoE() ? mixture(path, c, gating, tensors, p)
                    : new FeedForward.Dense(null, matrix(path, tensors, p + "ffn_down.weight", c.hiddenDim(), dim), matrix(path, tensors, p + "ffn_up.weight", dim, c.hiddenDim()));
            return new Layer(null, null, null, null, null, norm, ffn, null, null, null, null, null, null, null, null, null, null, null, null, null, false, null, null);
        }
        return new Layer(norm, matrix(path, tensors, p + "attn_q.weight", dim, c.qDim()), matrix(path, tensors, p + "attn_k.weight", dim, c.kvDim()),
                matrix(path, tensors, p + "attn_v.weight", dim, c.kvDim()), matrix(path, tensors, p + "attn_output.weight", c.qDim(), dim),
                null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, false, null, null);
    }

    /**
     * Layer {@code l} of a deci model, of its {@link LayerShapes}: Llama's attention (its biases where the file has
     * them, as llama.cpp reads them), or wo alone, or neither (wo null); a SwiGLU of its own width, or none.
     */
    private static Layer deciLayer(Path path, Config c, Map<String, TensorData> tensors, String p, LayerShapes shapes, int l) {
        int dim = c.dim(), width = shapes.widths()[l];
        FeedForward ffn = width == 0 ? null : new FeedForward.Dense(matrix(path, tensors, p + "ffn_gate.weight", dim, width), matrix(path, tensors, p + "ffn_down.weight", width, dim),
                matrix(path, tensors, p + "ffn_up.weight", dim, width), optionalVector(path, tensors, p + "ffn_gate.bias", width),
                optionalVector(path, tensors, p + "ffn_up.bias", width), optionalVector(path, tensors, p + "ffn_down.bias", dim), null);
        float[] ffnNorm = width == 0 ? null : vector(path, tensors, p + "ffn_norm.weight", dim);
        if (shapes.heads()[l] == 0) return new Layer(null, null, null, null, null, ffnNorm, ffn, null, null, null, null, null, null, null, null, null, null, null, null, null, false, null, null);
        float[] norm = vector(path, tensors, p + "attn_norm.weight", dim), outputBias = optionalVector(path, tensors, p + "attn_output.bias", dim);
        boolean linear = shapes.kvHeads()[l] == 0;
        Tensor wo = matrix(path, tensors, p + "attn_output.weight", linear ? dim : c.qDim(), dim);
        if (linear) return new Layer(norm, null, null, null, wo, ffnNorm, ffn, null, null, null, null, null, null, null, outputBias, null, null, null, null, null, false, null, null);
        return new Layer(norm, matrix(path, tensors, p + "attn_q.weight", dim, c.qDim()), matrix(path, tensors, p + "attn_k.weight", dim, c.kvDim()),
                matrix(path, tensors, p + "attn_v.weight", dim, c.kvDim()), wo, ffnNorm, ffn, null, null,
                optionalVector(path, tensors, p + "attn_q.bias", c.qDim()), optionalVector(path, tensors, p + "attn_k.bias", c.kvDim()), optionalVector(path, tensors, p + "attn_v.bias", c.kvDim()),
                null, null, outputBias, null, null, null, null, null, false, null, null);
    }

    /**
     * An LFM2 convolution layer ({@link ShortConv}): its norms, {@code shortconv.in_proj}'s three parts as wq, wk and wv,
     * {@code shortconv.out_proj} as wo, the kernel {@code shortconv.conv} [width, dim], and its feed-forward {@code ffn}.
     */
    private static Layer convolution(Path path, Config c, Map<String, TensorData> tensors, String p, int width, FeedForward ffn) {
        int dim = c.dim();
        Tensor in = matrix(path, tensors, p + "shortconv.in_proj.weight", dim, 3L * dim), taps = matrix(path, tensors, p + "shortconv.conv.weight", width, dim);
        float[] kernel = new float[dim * width];
        for (int i = 0; i < dim; i++) taps.dequantizeRow(i, kernel, i * width);
        return new Layer(vector(path, tensors, p + "attn_norm.weight", dim), in.rows(0, dim), in.rows(dim, dim), in.rows(2L * dim, dim),
                matrix(path, tensors, p + "shortconv.out_proj.weight", dim, dim), vector(path, tensors, p + "ffn_norm.weight", dim), ffn,
                null, null, null, null, null, null, null, null, null, null, null, new ShortConv(kernel, width), null, false, null, null);
    }

    /**
     * A layer's multi-head latent attention ({@link LatentAttention}) but for the matrices its {@link Layer} holds: the
     * queries' low-rank projection and its norm where the layer has them ({@code attn_q_a}, {@code attn_q_a_norm}), the
     * latent's norm, and the up-projections, split ({@code attn_k_b} [nope, rank, heads], {@code attn_v_b} [rank,
     * valueWidth, heads]) or in one ({@code attn_kv_b}); each head's widths read from the tensors' shapes.
     */
    private static LatentAttention latent(Path path, Config c, Map<String, TensorData> tensors, String p) {
        int dim = c.dim(), heads = c.nHeads(), rope = c.rotaryDim(), rank = c.headDim() - rope;
        Tensor qA = null;
        float[] qANorm = null;
        if (tensors.containsKey(p + "attn_q_a.weight")) {
            TensorData t = tensor(tensors, path, p + "attn_q_a.weight");
            int qRank = (int) Math.min(t.shape().length == 2 ? t.shape()[1] : 0, Integer.MAX_VALUE);
            qA = matrix(path, tensors, t.name(), dim, qRank);
            qANorm = vector(path, tensors, p + "attn_q_a_norm.weight", qRank);
        }
        TensorData q = tensor(tensors, path, p + (qA == null ? "attn_q.weight" : "attn_q_b.weight"));
        long qRows = q.shape().length == 2 ? q.shape()[1] : 0;
        if (qRows % heads != 0 || qRows / heads <= rope) {
            throw new ModelFormatException(path + ": tensor " + q.name() + " has shape " + q.shapeString() + ": not " + heads + " heads of more than the " + rope + " rotated elements");
        }
        int nope = (int) (qRows / heads - rope);
        float[] kvNorm = vector(path, tensors, p + "attn_kv_a_norm.weight", rank);
        if (tensors.containsKey(p + "attn_kv_b.weight")) {
            TensorData kv = tensor(tensors, path, p + "attn_kv_b.weight");
            long rows = kv.shape().length == 2 ? kv.shape()[1] : 0;
            if (rows % heads != 0 || rows / heads <= nope) {
                throw new ModelFormatException(path + ": tensor " + kv.name() + " has shape " + kv.shapeString() + ": not " + heads + " heads of " + nope + " key rows and their value rows");
            }
            Tensor kvB = matrix(path, tensors, kv.name(), rank, rows);
            return new LatentAttention(qA, qANorm, kvNorm, kvB, kvB, nope, rope, (int) (rows / heads - nope));
        }
        TensorData v = tensor(tensors, path, p + "attn_v_b.weight");
        int valueWidth = (int) Math.min(v.shape().length == 3 ? v.shape()[1] : 0, Integer.MAX_VALUE);
        return new LatentAttention(qA, qANorm, kvNorm, heads(path, tensors, p + "attn_k_b.weight", nope, rank, heads), heads(path, tensors, v.name(), rank, valueWidth, heads),
                nope, rope, valueWidth);
    }

    /** A 3-D tensor [in, out, heads] of one matrix per head, viewed as one matrix [in, out * heads] (head h's rows from h * out). */
    private static Tensor heads(Path path, Map<String, TensorData> tensors, String name, long in, long out, int heads) {
        TensorData t = tensor(tensors, path, name);
        if (!Arrays.equals(t.shape(), new long[]{in, out, heads})) {
            throw new ModelFormatException(path + ": tensor " + name + " has shape " + t.shapeString() + ", expected [" + in + ", " + out + ", " + heads + "]");
        }
        return Tensor.of(new TensorData(name, t.type(), new long[]{in, out * heads}, t.data()));
    }

    /**
     * A layer's experts: llama.cpp's merged {@code ffn_{gate,up,down}_exps} tensors ([in, out, experts], expert e is
     * the e-th slab, viewed in place) or one tensor per expert ({@code ffn_gate.E.weight}, as older GGUF files and
     * the Hugging Face reader name them); their width read from their gate's shape (what a file's {@code
     * expert_feed_forward_length} says, which ERNIE 4.5 may give per layer), the others' shapes checked against it. Where
     * the layer has them, ERNIE 4.5's selection bias ({@code exp_probs_b.bias}) and a shared expert ({@code
     * ffn_{gate,up,down}_shexp}, its width its gate's; Qwen2-MoE's with its gate {@code ffn_gate_inp_shexp}).
     */
    private static FeedForward.MoE mixture(Path path, Config c, Gating gating, Map<String, TensorData> tensors, String p) {
        int dim = c.dim(), n = c.expertCount();
        // experts without a gate where the blocks' activation takes none (Nemotron-H's ReLU² of up)
        boolean gated = !c.variant().activation().ungated();
        // gates and ups in one tensor (Granite's conversions', --fuse-gate-up-exps'): [dim, 2 * width, experts], each
        // expert's gate rows then its up rows
        TensorData gateUp = gated && tensors.containsKey(p + "ffn_gate_up_exps.weight") ? tensor(tensors, path, p + "ffn_gate_up_exps.weight") : null;
        String widthFrom = gated ? "ffn_gate" : "ffn_up";
        TensorData gate = gateUp != null ? gateUp : tensors.containsKey(p + widthFrom + "_exps.weight") ? tensor(tensors, path, p + widthFrom + "_exps.weight")
                : tensor(tensors, path, p + widthFrom + ".0.weight");
        int hidden = (int) Math.min(gate.shape().length > 1 ? gate.shape()[1] / (gateUp != null ? 2 : 1) : 0, Integer.MAX_VALUE);
        Tensor router = matrix(path, tensors, p + "ffn_gate_inp.weight", dim, n);
        Tensor[][] w = new Tensor[3][n];
        String[] names = {"ffn_gate", "ffn_down", "ffn_up"};
        if (gateUp != null) {
            if (!Arrays.equals(gateUp.shape(), new long[]{dim, 2L * hidden, n})) {
                throw new ModelFormatException(path + ": tensor " + gateUp.name() + " has shape " + gateUp.shapeString() + ", expected [" + dim + ", 2 * width, " + n + "]");
            }
            long half = gateUp.data().byteSize() / n / 2;
            for (int e = 0; e < n; e++) {
                // both named as the expert's slab, as a row view is named as its tensor (imatrix sees their input once)
                w[0][e] = Tensor.of(new TensorData(gateUp.name() + "[" + e + "]", gateUp.type(), new long[]{dim, hidden}, gateUp.data().asSlice(2 * e * half, half)));
                w[2][e] = Tensor.of(new TensorData(gateUp.name() + "[" + e + "]", gateUp.type(), new long[]{dim, hidden}, gateUp.data().asSlice((2 * e + 1) * half, half)));
            }
        }
        for (int m = gated ? 0 : 1; m < 3; m++) {
            if (gateUp != null && m != 1) continue;
            long in = m == 1 ? hidden : dim, out = m == 1 ? dim : hidden;
            TensorData merged = tensors.get(p + names[m] + "_exps.weight");
            if (merged != null) {
                if (!Arrays.equals(merged.shape(), new long[]{in, out, n})) {
                    throw new ModelFormatException(path + ": tensor " + merged.name() + " has shape " + merged.shapeString() + ", expected [" + in + ", " + out + ", " + n + "]");
                }
                long bytes = merged.data().byteSize() / n;
                for (int e = 0; e < n; e++) {
                    w[m][e] = Tensor.of(new TensorData(merged.name() + "[" + e + "]", merged.type(), new long[]{in, out}, merged.data().asSlice(e * bytes, bytes)));
                }
            } else {
                for (int e = 0; e < n; e++) w[m][e] = matrix(path, tensors, p + names[m] + "." + e + ".weight", in, out);
            }
        }
        boolean gptOss = c.architecture().equals("gpt-oss");
        FeedForward.Biases biases = null;
        if (gptOss) {
            float[][][] b = new float[3][n][];
            for (int m = 0; m < 3; m++) {
                // [width, experts]: expert e's bias is row e
                Tensor all = matrix(path, tensors, p + names[m] + "_exps.bias", m == 1 ? dim : hidden, n);
                for (int e = 0; e < n; e++) all.dequantizeRow(e, b[m][e] = new float[(int) all.cols], 0);
            }
            biases = new FeedForward.Biases(vector(path, tensors, p + "ffn_gate_inp.bias", n), b[0], b[1], b[2]);
        }
        float[] selectionBias = tensors.containsKey(p + "exp_probs_b.bias") ? vector(path, tensors, p + "exp_probs_b.bias", n) : null;
        FeedForward.Shared shared = null;
        if (tensors.containsKey(p + (gated ? "ffn_gate_shexp.weight" : "ffn_up_shexp.weight"))) {
            TensorData sharedUp = tensor(tensors, path, p + "ffn_up_shexp.weight");
            int width = (int) Math.min(sharedUp.shape().length > 1 ? sharedUp.shape()[1] : 0, Integer.MAX_VALUE);
            shared = new FeedForward.Shared(new FeedForward.Dense(gated ? matrix(path, tensors, p + "ffn_gate_shexp.weight", dim, width) : null,
                    matrix(path, tensors, p + "ffn_down_shexp.weight", width, dim), matrix(path, tensors, p + "ffn_up_shexp.weight", dim, width)),
                    // Qwen2-MoE's gate is required, as llama.cpp requires it
                    tensors.containsKey(p + "ffn_gate_inp_shexp.weight") || c.architecture().equals("qwen2moe")
                            ? sharedGate(path, tensors, p + "ffn_gate_inp_shexp.weight", dim) : null);
        }
        // Nemotron 3 Super's latent projections around its experts
        if (tensors.containsKey(p + "ffn_latent_down.weight")) throw new ModelFormatException(path + ": experts in a latent space (" + p + "ffn_latent_down.weight) are not supported");
        return new FeedForward.MoE(router, gated ? w[0] : null, w[1], w[2], c.expertsUsed(), gating.routing(), gating.scale(), biases, selectionBias,
                gating.groups(), gating.groupsUsed(), shared);
    }

    /**
     * {@code blocks} with what every architecture's file may add to its RoPE and attention, as llama.cpp reads it: the
     * cosines' and sines' factor {@code rope.scaling.attn_factor}; YaRN where {@code rope.scaling.type} is "yarn" (its
     * {@code rope.scaling.factor}, 1 where none, over {@code rope.scaling.original_context_length}, default the
     * context length; ramped between llama.cpp's default betas 32 and 1, but for mistral3, whose own {@code
     * yarn_beta_fast}, {@code yarn_beta_slow} and {@code yarn_log_multiplier} llama.cpp reads, and deepseek2, whose
     * log multiplier is also its mscale: {@link #yarnLogMultiplier}); and Ministral 3's
     * attention temperature ({@code mistral3.attention.temperature_scale}, over the same original context), and Mistral
     * Large 3's ({@code deepseek2.attention.temperature_scale} over {@code attention.temperature_length} positions,
     * required with it, as llama.cpp's graph asserts it).
     */
    private static Config.Variant scaled(Path path, Metadata md, String arch, Config.Variant blocks) {
        boolean mistral3 = arch.equals("mistral3"), deepseek2 = Config.latentAttention(arch);
        String rope = arch + ".rope.scaling.";
        int original = md.getInt(rope + "original_context_length", required(md, path, arch + ".context_length"));
        try {
            Config.Yarn yarn = null;
            if ("yarn".equals(md.getString(rope + "type", null))) {
                float factor = ropeScale(md, arch);
                float logMultiplier = deepseek2 ? yarnLogMultiplier(md, arch) : mistral3 ? md.getFloat(rope + "yarn_log_multiplier", 0f) : 0f;
                yarn = new Config.Yarn(factor == 0f ? 1f : factor, original, mistral3 ? md.getFloat(rope + "yarn_beta_fast", 32f) : 32f,
                        mistral3 ? md.getFloat(rope + "yarn_beta_slow", 1f) : 1f, logMultiplier, yarnMscale(arch, logMultiplier));
            }
            // Ministral 3's over the original context, Mistral Large 3's (deepseek2) over attention.temperature_length
            float temperature = mistral3 || deepseek2 ? md.getFloat(arch + ".attention.temperature_scale", 0f) : 0f;
            int floor = deepseek2 ? md.getInt(arch + ".attention.temperature_length", 0) : original;
            if (temperature != 0f && deepseek2 && floor <= 0) {
                throw new ModelFormatException(path + ": " + arch + ".attention.temperature_scale without a positive " + arch + ".attention.temperature_length");
            }
            return blocks.scaled(md.getFloat(rope + "attn_factor", 1f), yarn, temperature == 0f ? blocks.temperature() : new Config.Temperature(temperature, floor));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /** The rope scaling's factor: {@code rope.scaling.factor}, or the older {@code rope.scale_linear}; 0 where neither is given. */
    private static float ropeScale(Metadata md, String arch) {
        float factor = md.getFloat(arch + ".rope.scaling.factor", 0f);
        return factor != 0f ? factor : md.getFloat(arch + ".rope.scale_linear", 0f);
    }

    /**
     * DeepSeek-V2's YaRN log multiplier (its {@code mscale_all_dim}), which its converter writes times 0.1 and llama.cpp
     * divides back; 0 where the file gives none.
     */
    private static float yarnLogMultiplier(Metadata md, String arch) {
        return md.getFloat(arch + ".rope.scaling.yarn_log_multiplier", 0f) / 0.1f;
    }

    /**
     * DeepSeek-V2's and V3's blocks as llama.cpp runs them ({@code deepseek2}): Llama's, the attention multi-head latent
     * ({@link LatentAttention}), its scores scaled by {@code mscale² / sqrt(key width)}, the key width a head's as
     * the model was trained ({@code attention.key_length_mla}, or {@code key_length} in files before it: 192 where
     * the latent attention's head is 576 wide), mscale YaRN's {@code 0.1 m ln(factor) + 1} (m its log multiplier)
     * times the cosines' and sines' factor, in llama.cpp's float steps; Mistral 4's ({@code mistral4}) the same.
     */
    private static Config.Variant deepseek2(Path path, Metadata md, String arch) {
        String rope = arch + ".rope.scaling.";
        int keyWidth = md.has(arch + ".attention.key_length_mla") ? required(md, path, arch + ".attention.key_length_mla") : required(md, path, arch + ".attention.key_length");
        float mscale = md.getFloat(rope + "attn_factor", 1f);
        if ("yarn".equals(md.getString(rope + "type", null))) {
            float factor = ropeScale(md, arch);
            float freqScale = factor == 0f ? 1f : 1f / factor, growth = (float) Math.log(1f / freqScale), m = yarnLogMultiplier(md, arch);
            // llama.cpp's context's attention factor (YaRN's growth by mscale over its growth by m, DeepSeek-V2's 1; or
            // its growth where there is no multiplier), which then cancels the rope kernel's growth; times that growth
            // again, and m's
            float context = m != 0f ? yarnGrowth(freqScale, growth, yarnMscale(arch, m)) / yarnGrowth(freqScale, growth, m) : yarnGrowth(freqScale, growth, 1f);
            float attn = context * (1f / (1f + 0.1f * growth)) * mscale;
            mscale = attn * (1f + 0.1f * growth) * (1f + 0.1f * m * growth);
        }
        // Llama's blocks with their own score scale (Granite's multipliers, all but that one 1)
        return Config.Variant.granite(1f, mscale * mscale / (float) Math.sqrt(keyWidth), 1f, 1f);
    }

    /**
     * YaRN's {@code mscale} beside a log multiplier {@code m}, as llama.cpp's context takes it: DeepSeek-V2's ({@code
     * deepseek2}) is m, the others' (Mistral 4's, Ministral 3's) 1.
     */
    private static float yarnMscale(String arch, float m) {
        return arch.equals("deepseek2") && m != 0f ? m : 1f;
    }

    /** llama.cpp's {@code get_mscale}: {@code 0.1 x ln(scale) + 1} where the frequencies are scaled down ({@code growth} ln(1 / freqScale)), else 1. */
    private static float yarnGrowth(float freqScale, float growth, float x) {
        return 1f / freqScale <= 1f ? 1f : 0.1f * x * growth + 1f;
    }

    /**
     * Per rotary pair, the divisor of its frequency: Llama-3.1's {@code rope_freqs} tensor, times the factor of a
     * linear rope scaling (position interpolation: llama.cpp's {@code rope.scaling.type} "linear" with
     * {@code rope.scaling.factor}, or the older {@code rope.scale_linear}, which llama.cpp runs as a frequency scale of
     * 1 / factor); null for neither. YaRN's factor is its own ({@link #scaled}); other scalings are refused: run
     * without, the model would be another.
     */
    private static float[] ropeFreqFactors(Path path, Metadata md, String arch, Map<String, TensorData> tensors, int pairs) {
        String type = md.getString(arch + ".rope.scaling.type", null);
        if (type != null && !List.of("none", "linear", "yarn").contains(type)) {
            throw new ModelFormatException(path + ": unsupported rope scaling '" + type + "' (supported: linear, yarn, and Llama-3.1's rope_freqs)");
        }
        float factor = ropeScale(md, arch);
        if (!(factor >= 0f) || Float.isInfinite(factor)) throw new ModelFormatException(path + ": rope scaling factor " + factor + " is not a positive number");
        float[] factors = null;
        String table = tensors.containsKey("rope_freqs.weight") ? "rope_freqs.weight" : "rope_factors_short.weight";
        if (tensors.containsKey(table)) {
            Tensor f = Tensor.of(tensors.get(table));
            factors = new float[f.cols];
            f.dequantizeRow(0, factors, 0);
        }
        if ("none".equals(type) || "yarn".equals(type) || factor == 0f || factor == 1f) return factors;
        if (factors == null) {
            factors = new float[pairs];
            Arrays.fill(factors, 1f);
        }
        for (int i = 0; i < factors.length; i++) factors[i] *= factor;
        return factors;
    }

    /**
     * A vision-language model's M-RoPE as it turns text (qwen2vl's and GLM-4V's sections of pairs, qwen3vl's interleaved:
     * {@code rope.dimension_sections}, the pairs of time, height, width and a fourth): llama.cpp gives a text token its
     * position in the first three alike and 0 in the fourth, so that their pairs turn as plain RoPE's and the fourth's
     * (interleaved: every pair past three times its section's size) not at all, which their frequencies divided by
     * infinity make here ({@code factors} otherwise as they are; a new table of ones where null). Other architectures'
     * factors, and those of sections without a fourth, as they are. The images themselves are not read (their
     * projector is a file of its own).
     */
    private static float[] textMrope(Path path, Metadata md, String arch, float[] factors, int pairs) {
        if (!List.of("qwen2vl", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe").contains(arch) && !usesMrope(md, arch)) return factors;
        int[] sections = md.getInts(arch + ".rope.dimension_sections");
        if (sections == null || sections.length != 4 || Arrays.stream(sections).anyMatch(n -> n < 0) || Arrays.stream(sections).sum() == 0
                || Arrays.stream(sections).sum() > pairs) {
            throw new ModelFormatException(path + ": " + arch + ".rope.dimension_sections must be 4 sizes of sections of the " + pairs
                    + " rotary pairs; got " + (sections == null ? "none" : Arrays.toString(sections)));
        }
        boolean interleaved = arch.startsWith("qwen3");
        int all = Arrays.stream(sections).sum();
        float[] out = null;
        for (int i = 0; i < pairs; i++) {
            int sector = i % all;
            boolean fourth = interleaved
                    ? !(sector % 3 == 1 && sector < 3 * sections[1] || sector % 3 == 2 && sector < 3 * sections[2] || sector % 3 == 0 && sector < 3 * sections[0])
                    : sector >= sections[0] + sections[1] + sections[2];
            if (!fourth) continue;
            if (out == null) {
                out = factors != null ? factors.clone() : new float[pairs];
                if (factors == null) Arrays.fill(out, 1f);
            }
            out[i] = Float.POSITIVE_INFINITY;
        }
        return out != null ? out : factors;
    }

    /**
     * Whether a GLM-4 or GLM-4.5 file is a vision-language model's (GLM-4.1V, GLM-4.5V: {@code rope.dimension_sections}
     * whose first two are not 0, as llama.cpp tells them), whose text part turns by M-RoPE ({@link #textMrope}).
     */
    private static boolean usesMrope(Metadata md, String arch) {
        int[] sections = md.getInts(arch + ".rope.dimension_sections");
        return (arch.equals("glm4") || arch.equals("glm4moe")) && sections != null && sections.length >= 2 && sections[0] > 0 && sections[1] > 0;
    }

    /** {@link Config#derivedHeadDim}, its refusal naming the file. */
    private static int derivedHeadDim(Path path, int dim, int nHeads) {
        try {
            return Config.derivedHeadDim(dim, nHeads);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /** The hyperparameters read from the file at {@code path}: values that no model can have are that file's error. */
    private static Config config(Path path, Supplier<Config> fromFile) {
        try {
            return fromFile.get();
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    private static TensorData tensor(Map<String, TensorData> tensors, Path path, String name) {
        TensorData t = tensors.get(name);
        if (t == null) throw new ModelFormatException(path + ": missing tensor " + name);
        return t;
    }

    private static Tensor matrix(Path path, Map<String, TensorData> tensors, String name, long cols, long rows) {
        TensorData t = tensor(tensors, path, name);
        if (!Arrays.equals(t.shape(), new long[]{cols, rows})) {
            throw new ModelFormatException(path + ": tensor " + name + " has shape " + t.shapeString() + ", expected [" + cols + ", " + rows + "]");
        }
        return Tensor.of(t);
    }

    /** Qwen2-MoE's gate of its shared expert, [dim] in the file: a matrix of one row. */
    private static Tensor sharedGate(Path path, Map<String, TensorData> tensors, String name, int dim) {
        TensorData t = tensor(tensors, path, name);
        if (t.shape().length != 1 || t.shape()[0] != dim) throw new ModelFormatException(path + ": tensor " + name + " has shape " + t.shapeString() + ", expected [" + dim + "]");
        return Tensor.of(t);
    }

    private static float[] vector(Path path, Map<String, TensorData> tensors, String name, int n) {
        TensorData t = tensor(tensors, path, name);
        if (t.elementCount() != n || t.shape()[0] != n) {
            throw new ModelFormatException(path + ": tensor " + name + " has shape " + t.shapeString() + ", expected [" + n + "]");
        }
        float[] v = new float[n];
        Tensor.of(t).dequantizeRow(0, v, 0);
        return v;
    }

    /** {@link #vector} where the file has {@code name}, else null. */
    private static float[] optionalVector(Path path, Map<String, TensorData> tensors, String name, int n) {
        return tensors.containsKey(name) ? vector(path, tensors, name, n) : null;
    }

    /** A float tensor of exactly {@code shape}, its elements in order (a [1, n] one's n rows of one). */
    private static float[] values(Path path, Map<String, TensorData> tensors, String name, long... shape) {
        TensorData t = tensor(tensors, path, name);
        if (!Arrays.equals(t.shape(), shape)) {
            throw new ModelFormatException(path + ": tensor " + name + " has shape " + t.shapeString() + ", expected " + Arrays.toString(shape));
        }
        Tensor rows = Tensor.of(t);
        float[] v = new float[Math.toIntExact(t.elementCount())];
        for (int r = 0; r < rows.rows; r++) rows.dequantizeRow(r, v, (int) (r * rows.cols));
        return v;
    }

    /**
     * A hyperparameter llama.cpp requires too: a default would run some models as others without a word (Llama-2's
     * RMS norm epsilon is 1e-5 in some conversions and 1e-6 in others).
     */
    private static int required(Metadata md, Path path, String key) {
        if (!md.has(key)) throw new ModelFormatException(path + ": missing metadata " + key);
        return md.getInt(key, 0);
    }

    private static float requiredFloat(Metadata md, Path path, String key) {
        if (!md.has(key)) throw new ModelFormatException(path + ": missing metadata " + key);
        return md.getFloat(key, 0f);
    }

    private static boolean requiredBool(Metadata md, Path path, String key) {
        if (!md.has(key)) throw new ModelFormatException(path + ": missing metadata " + key);
        return md.getBool(key, false);
    }

    /**
     * {@code json}'s integer {@code key} (read from {@code file}), or {@code orElse} where it is absent or null; an
     * absent key without a default, and a value that is no integer an int holds, are named (Jackson's {@code asInt}
     * read 2^31 as -2^31, 1.5 as 1 and true as 1).
     */
    private static int jsonInt(JsonNode json, Path file, String key, Integer orElse) {
        JsonNode v = json.path(key);
        if (v.isMissingNode() || v.isNull()) {
            if (orElse == null) throw new ModelFormatException(file + ": missing " + key);
            return orElse;
        }
        return checkedInt(v, file, key);
    }

    /** Element {@code index} of the array {@code json}, an integer as {@link #jsonInt(JsonNode, Path, String, Integer)} takes one. */
    private static int jsonInt(JsonNode json, Path file, int index) {
        return checkedInt(json.path(index), file, "element " + index);
    }

    private static int checkedInt(JsonNode v, Path file, String what) {
        boolean integral = v.isIntegralNumber() || v.isFloatingPointNumber() && v.asDouble() == Math.rint(v.asDouble());
        if (!integral || v.asDouble() < Integer.MIN_VALUE || v.asDouble() > Integer.MAX_VALUE) {
            throw new ModelFormatException(file + ": " + what + " must be an integer, got " + v);
        }
        return (int) v.asDouble();
    }

    /** {@code json}'s number {@code key}, or {@code orElse} where it is absent or null; anything else is named. */
    private static float jsonFloat(JsonNode json, Path file, String key, float orElse) {
        JsonNode v = json.path(key);
        if (v.isMissingNode() || v.isNull()) return orElse;
        if (!v.isNumber()) throw new ModelFormatException(file + ": " + key + " must be a number, got " + v);
        return (float) v.asDouble();
    }

    private static String readText(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": " + e.getMessage());
        }
    }

    private static JsonNode readJson(Path file) {
        if (!Files.exists(file)) throw new ModelFormatException(file + ": no such file");
        try {
            return new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(file + ": invalid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
    }
}
