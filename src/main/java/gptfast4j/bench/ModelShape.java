package gptfast4j.bench;

import java.util.List;

/**
 * The hyperparameters of real models, for benchmark files with random weights (speed does not depend on the values).
 *
 * @param vocab 32000 shapes embed the Llama-2 SentencePiece tokenizer, 128256 shapes the Llama-3 one, 32064 Phi-3's
 *              (Llama-2's and its added tokens), 262144 (Gemma's size) Llama-2's padded with unused tokens
 * @param ropeScaling Llama-3.1-style rope scaling factor (0 for none), with low 1, high 4, original context 8192
 * @param headDim a head's width: {@code dim / heads}, or a model's own ({@link gptfast4j.model.Config#headDim})
 * @param architecture "llama", "gemma3", "phi3", ... (their blocks: {@link RandomModel})
 */
public record ModelShape(String name, int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocab, int context,
                         float ropeTheta, float rmsEps, boolean tiedEmbeddings, float ropeScaling, int experts, int expertsUsed, int headDim,
                         String architecture) {

    /** A Llama shape whose heads are {@code headDim} wide. */
    public ModelShape(String name, int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocab, int context,
                      float ropeTheta, float rmsEps, boolean tiedEmbeddings, float ropeScaling, int experts, int expertsUsed, int headDim) {
        this(name, dim, hiddenDim, layers, heads, kvHeads, vocab, context, ropeTheta, rmsEps, tiedEmbeddings, ropeScaling, experts, expertsUsed, headDim, "llama");
    }

    /** A shape whose heads are {@code dim / heads} wide. */
    public ModelShape(String name, int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocab, int context,
                      float ropeTheta, float rmsEps, boolean tiedEmbeddings, float ropeScaling, int experts, int expertsUsed) {
        this(name, dim, hiddenDim, layers, heads, kvHeads, vocab, context, ropeTheta, rmsEps, tiedEmbeddings, ropeScaling, experts, expertsUsed, dim / heads);
    }

    public static final List<ModelShape> ALL = List.of(
            new ModelShape("stories15M", 288, 768, 6, 6, 6, 32000, 256, 10000, 1e-5f, true, 0, 0, 0),
            new ModelShape("stories110M", 768, 2048, 12, 12, 12, 32000, 1024, 10000, 1e-5f, true, 0, 0, 0),
            new ModelShape("tinyllama-1.1b", 2048, 5632, 22, 32, 4, 32000, 2048, 10000, 1e-5f, false, 0, 0, 0),
            new ModelShape("llama-3.2-1b", 2048, 8192, 16, 32, 8, 128256, 131072, 500000, 1e-5f, true, 32, 0, 0),
            new ModelShape("llama-2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, 10000, 1e-5f, false, 0, 0, 0),
            new ModelShape("llama-3-8b", 4096, 14336, 32, 32, 8, 128256, 8192, 500000, 1e-5f, false, 0, 0, 0),
            new ModelShape("mistral-7b", 4096, 14336, 32, 32, 8, 32000, 32768, 10000, 1e-5f, false, 0, 0, 0),
            // Mixtral's layout (8 experts, top 2, GQA 32/8, rope 1e6) at TinyLlama's width, so that it fits in RAM
            new ModelShape("mixtral-mini", 2048, 5632, 16, 32, 8, 32000, 32768, 1e6f, 1e-5f, false, 0, 8, 2),
            // the dense model with mixtral-mini's active size: one FFN as wide as its two chosen experts
            new ModelShape("mixtral-mini-dense", 2048, 2 * 5632, 16, 32, 8, 32000, 32768, 1e6f, 1e-5f, false, 0, 0, 0),
            // Gemma 3 1B: 4 heads of 256 at width 1152 sharing one kv head, tied embeddings of Gemma's 262144 tokens
            new ModelShape("gemma3-1b", 1152, 6912, 26, 4, 1, 262144, 32768, 1e6f, 1e-6f, true, 0, 0, 0, 256, "gemma3"),
            // Phi-3-mini (4k): 32 heads of 96, no grouping, its projections fused, Phi-3's 32064-token vocabulary
            new ModelShape("phi-3-mini", 3072, 8192, 32, 32, 32, 32064, 4096, 10000, 1e-5f, false, 0, 0, 0, 96, "phi3"),
            new ModelShape("gpt-oss-20b", 2880, 2880, 24, 64, 8, 201088, 131072, 150000, 1e-5f, false, 0, 32, 4, 64, "gpt-oss"),
            // Qwen3-30B-A3B: 48 layers of 128 experts 768 wide, 8 used, heads of 128 (32 sharing 4 kv heads) at width 2048
            new ModelShape("qwen3-30b-a3b", 2048, 768, 48, 32, 4, 151936, 40960, 1e6f, 1e-6f, false, 0, 128, 8, 128, "qwen3moe"),
            // Qwen1.5-MoE-A2.7B: 24 layers of 60 experts 1408 wide, 4 used, beside a shared expert 5632 wide; 16 heads of 128
            new ModelShape("qwen1.5-moe-a2.7b", 2048, 1408, 24, 16, 16, 151936, 8192, 1e6f, 1e-6f, false, 0, 60, 4, 128, "qwen2moe"),
            // DeepSeek-V2-Lite: 27 layers, the first dense (10944 wide), the others 64 experts 1408 wide, 6 used, beside
            // two shared; 16 heads of latent attention (a latent of 512, heads of 128 + 64 rotated), YaRN x40 of 4096
            new ModelShape("deepseek-v2-lite", 2048, 1408, 27, 16, 1, 102400, 163840, 10000, 1e-6f, false, 0, 64, 6, 128, "deepseek2"),
            // LFM2-1.2B: 16 layers, 10 of them convolutions, 6 attention (32 heads of 64 sharing 8 kv heads), tied embeddings of 65536 tokens
            new ModelShape("lfm2-1.2b", 2048, 8192, 16, 32, 8, 65536, 128000, 1e6f, 1e-5f, true, 0, 0, 0, 64, "lfm2"),
            // Qwen3.5-4B: 32 layers, 24 of them gated delta nets (16 key heads and 32 value heads of 128), 8 attention (16
            // heads of 256 sharing 4, a gate per query), tied embeddings of 248320 tokens; its FFN width 9216 an estimate
            // (its published figures are the others), which gives its text its 4.2 B parameters
            new ModelShape("qwen3.5-4b", 2560, 9216, 32, 16, 4, 248320, 262144, 1e7f, 1e-6f, true, 0, 0, 0, 256, "qwen35"),
            // Granite 4.0-H-Micro: 40 layers, 36 of them Mamba-2 (64 heads of 64, states of 128, one group), 4 attention
            // without RoPE (32 heads of 64 sharing 8), tied embeddings of 100352 tokens; which 4 layers attend an estimate
            new ModelShape("granite-4-h-micro", 2048, 8192, 40, 32, 8, 100352, 131072, 10000, 1e-5f, true, 0, 0, 0, 64, "granitehybrid"),
            // Granite 4.0-H-Tiny: its 36 Mamba-2 layers 48 heads of 64, 4 attention (12 heads of 128 sharing 4), 64 experts
            // 512 wide, 6 used, beside a shared expert 1024 wide; which layers attend an estimate
            new ModelShape("granite-4-h-tiny", 1536, 512, 40, 12, 4, 100352, 131072, 10000, 1e-5f, true, 0, 64, 6, 128, "granitehybrid"),
            // Nemotron-H-8B: 52 blocks of one part each, 24 Mamba-2 (128 heads of 64, states of 128, 8 groups), 4 attention
            // without RoPE (32 heads of 128 sharing 8), 24 feed-forwards of ReLU² 21504 wide; 131072 tokens, untied
            new ModelShape("nemotron-h-8b", 4096, 21504, 52, 32, 8, 131072, 8192, 10000, 1e-5f, false, 0, 0, 0, 128, "nemotron_h"),
            // Mamba-Codestral-7B: 64 blocks of a Mamba-2 mixer alone (128 heads of 64, states of 128, 8 groups), no attention
            // and no feed-forward (its head and width here nominal, as the loader takes them), 32768 tokens, untied; the
            // converter's context of 2^20
            new ModelShape("mamba-codestral-7b", 4096, 1, 64, 1, 1, 32768, 1 << 20, 10000, 1e-5f, false, 0, 0, 0, 4096, "mamba2"),
            // Falcon-Mamba-7B: 64 blocks of a Mamba mixer alone (8192 channels of 16 states, dt of rank 256, its input, B and
            // C normalized), no attention and no feed-forward (nominal here, as for Mamba-Codestral), 65024 tokens, untied
            new ModelShape("falcon-mamba-7b", 4096, 1, 64, 1, 1, 65024, 1 << 20, 10000, 1e-5f, false, 0, 0, 0, 4096, "mamba"),
            // Phi-2: 32 layers of 32 heads of 80 (RoPE on 32 of them), LayerNorm with biases, a feed-forward 10240 wide
            // without a gate, the attention and the FFN in parallel, its 51200-token vocabulary, a bias on the logits
            new ModelShape("phi-2", 2560, 10240, 32, 32, 32, 51200, 2048, 10000, 1e-5f, false, 0, 0, 0, 80, "phi2"),
            // Falcon-7B: 32 layers of 71 heads of 64 sharing one kv head, LayerNorm with biases, a feed-forward 18176 wide
            // without a gate in parallel with the attention, tied embeddings of its 65024 tokens
            new ModelShape("falcon-7b", 4544, 18176, 32, 71, 1, 65024, 2048, 10000, 1e-5f, true, 0, 0, 0, 64, "falcon"),
            // 1bitLLM's bitnet_b1_58-large: 24 layers of 16 heads of 96, a feed-forward 4096 wide, norms of wo's and w2's
            // inputs, tied embeddings of Llama-2's 32000 tokens (its file's 32002 less two); for TQ1_0 and TQ2_0, made
            // from a float file by `gptfast quantize`
            new ModelShape("bitnet-large", 1536, 4096, 24, 16, 16, 32000, 2048, 10000, 1e-5f, true, 0, 0, 0, 96, "bitnet"));

    public static ModelShape named(String name) {
        for (ModelShape s : ALL) if (s.name.equalsIgnoreCase(name)) return s;
        throw new IllegalArgumentException("unknown shape '" + name + "'; known: "
                + String.join(", ", ALL.stream().map(ModelShape::name).toList()));
    }
}
