package gptfast4j.bench;

import gptfast4j.io.GGUF;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tokenizer.TokenType;
import gptfast4j.tokenizer.Tokenizers;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.LongConsumer;

/**
 * Writes a GGUF with random weights of a real shape, under llama.cpp's metadata keys and tensor names, with a real
 * tokenizer embedded. Weights are uniform with the variance of N(0, 1/fan_in), so activations stay O(1); norms are 1.
 * A Gemma 3 shape has its keys under {@code gemma3.}, Gemma 3 1B's sliding window of 512 positions (five layers of
 * every six), and its norms of each head's query and key and of the attention's and the FFN's outputs; a Phi-3 shape
 * its keys under {@code phi3.} and its fused projections ({@code attn_qkv}; {@code ffn_up} holding the gate's rows then
 * the up projection's); gpt-oss-20b's its biases, sinks and YaRN, its vocabulary (o200k's size, no such tokenizer at hand)
 * Llama-3's padded with unused tokens, and with {@code mxfp4} its experts in MXFP4, the other matrices Q8_0; a Qwen3
 * mixture's its per-head query and key norms and its experts' width, its vocabulary Llama-3's padded likewise; a
 * Qwen2 mixture's its query, key and value biases and its gated shared expert, four experts wide; DeepSeek-V2-Lite's
 * its latent attention (the up-projection split, as llama.cpp's converter now writes it), its dense first layer, its
 * two shared experts and YaRN, its vocabulary (102400, no such tokenizer at hand) Llama-2's padded as Gemma's size is;
 * LFM2-1.2B's its convolution layers (all but {@link #LFM2_ATTENTION}: {@code shortconv.*}, 3 taps) and its attention
 * layers' query and key norms, its output norm under its converter's name, its vocabulary (65536, a byte-level BPE not
 * at hand) Llama-2's padded likewise; Qwen3.5-4B's its delta nets ({@link #DELTA_KEY_HEADS} and {@link #DELTA_VALUE_HEADS}
 * of {@link #DELTA_WIDTH}, every fourth layer attention), its attention's gated queries, RoPE on a quarter of each head
 * and query and key norms, its vocabulary (248320, no such tokenizer at hand) Llama-3's padded as Qwen's size is;
 * Granite 4.0-H's its Mamba-2 mixers (all but {@link #GRANITE_ATTENTION}: {@link #graniteMamba}), attention without
 * RoPE, Granite's multipliers, -Tiny's experts beside a shared expert {@link #GRANITE_SHARED} wide, its vocabulary
 * (100352, no such tokenizer at hand) Llama-2's padded;
 * Nemotron-H-8B's its blocks of one part each ({@link #NEMOTRON_BLOCKS}: Mamba-2 {@link #NEMOTRON_MAMBA}, attention
 * without RoPE, feed-forwards of ReLU² without a gate), its vocabulary (131072) Llama-3's padded; Mamba-Codestral-7B's
 * its blocks of a Mamba-2 mixer alone ({@link #NEMOTRON_MAMBA}'s), no head and no feed-forward in its metadata as its
 * converter writes them, its vocabulary (32768, Mistral's v3, not at hand) Llama-2's padded; Falcon-Mamba-7B's its
 * blocks of a Mamba mixer alone ({@link #FALCON_MAMBA_STATES} states per channel, dt of rank {@link #FALCON_MAMBA_RANK},
 * normalized as its converter says), its vocabulary (65024, Falcon's BPE, not at hand) Llama-2's padded.
 */
public final class RandomModel {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final List<GGMLType> TYPES = List.of(GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1,
            GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.MXFP4);

    private RandomModel() {
    }

    public static void write(ModelShape s, GGMLType type, Path out, Path sharedTokenizers, LongConsumer progress) {
        if (!TYPES.contains(type)) throw new IllegalArgumentException("unsupported type " + type + " for make-model; supported: " + TYPES);
        if (type == GGMLType.MXFP4 && s.experts() == 0) throw new IllegalArgumentException("mxfp4 is for the experts of a mixture (llama.cpp's MXFP4_MOE); " + s.name() + " has none");
        Config config = new Config("llama", s.dim(), s.hiddenDim(), s.layers(), s.heads(), s.kvHeads(), s.vocab(), s.context(),
                s.rmsEps(), s.ropeTheta(), null, Config.RopeStyle.INTERLEAVED, s.experts(), s.expertsUsed(), s.headDim());
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        String arch = s.architecture();
        config.ggufMetadata(s.name() + " (random weights)").forEach((k, v) -> md.put(k.startsWith("llama.") ? arch + k.substring(5) : k, v));
        md.put("general.architecture", Metadata.Value.string(arch));
        if (arch.equals("gemma3")) {
            md.put("gemma3.attention.sliding_window", Metadata.Value.uint32(512));
            md.put("gemma3.attention.key_length", Metadata.Value.uint32(s.headDim()));
            md.put("gemma3.attention.value_length", Metadata.Value.uint32(s.headDim()));
        }
        if (arch.equals("qwen3moe")) md.put("qwen3moe.expert_feed_forward_length", Metadata.Value.uint32(s.hiddenDim()));
        if (arch.equals("qwen2moe")) {
            md.put("qwen2moe.expert_feed_forward_length", Metadata.Value.uint32(s.hiddenDim()));
            md.put("qwen2moe.expert_shared_feed_forward_length", Metadata.Value.uint32(QWEN2MOE_SHARED * s.hiddenDim()));
        }
        if (arch.equals("deepseek2")) {
            String a = "deepseek2.";
            md.put(a + "feed_forward_length", Metadata.Value.uint32(DEEPSEEK_DENSE));
            md.put(a + "expert_feed_forward_length", Metadata.Value.uint32(s.hiddenDim()));
            md.put(a + "leading_dense_block_count", Metadata.Value.uint32(1));
            md.put(a + "expert_shared_count", Metadata.Value.uint32(DEEPSEEK_SHARED));
            md.put(a + "expert_weights_scale", Metadata.Value.float32(1f));
            md.put(a + "expert_gating_func", Metadata.Value.uint32(1));
            md.put(a + "attention.kv_lora_rank", Metadata.Value.uint32(LATENT_RANK));
            // queries straight from attn_q: DeepSeek-V2-Lite's file has no such key, which llama.cpp then requires of other layer counts
            md.put(a + "attention.q_lora_rank", Metadata.Value.uint32(0));
            md.put(a + "attention.key_length", Metadata.Value.uint32(LATENT_RANK + LATENT_ROPE));
            md.put(a + "attention.value_length", Metadata.Value.uint32(LATENT_RANK));
            md.put(a + "attention.key_length_mla", Metadata.Value.uint32(s.headDim() + LATENT_ROPE));
            md.put(a + "attention.value_length_mla", Metadata.Value.uint32(s.headDim()));
            md.put(a + "rope.dimension_count", Metadata.Value.uint32(LATENT_ROPE));
            md.put(a + "rope.scaling.type", Metadata.Value.string("yarn"));
            md.put(a + "rope.scaling.factor", Metadata.Value.float32(40f));
            md.put(a + "rope.scaling.original_context_length", Metadata.Value.uint32(4096));
            md.put(a + "rope.scaling.yarn_log_multiplier", Metadata.Value.float32(0.0707f));
        }
        if (arch.equals("lfm2")) {
            int[] kvHeads = new int[s.layers()];
            for (int l = 0; l < kvHeads.length; l++) kvHeads[l] = LFM2_ATTENTION.contains(l) ? s.kvHeads() : 0;
            md.put("lfm2.attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, kvHeads));
            md.put("lfm2.shortconv.l_cache", Metadata.Value.uint32(3));
        }
        if (arch.equals("qwen35")) {
            String a = "qwen35.";
            md.put(a + "attention.key_length", Metadata.Value.uint32(s.headDim()));
            md.put(a + "attention.value_length", Metadata.Value.uint32(s.headDim()));
            md.put(a + "rope.dimension_count", Metadata.Value.uint32(s.headDim() / 4));
            // M-RoPE's sections of the rotated pairs, Qwen3.5's [11, 11, 10] of 32
            int pairs = s.headDim() / 8;
            md.put(a + "rope.dimension_sections", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, new int[]{(pairs + 2) / 3, (pairs + 1) / 3, pairs / 3, 0}));
            md.put(a + "ssm.conv_kernel", Metadata.Value.uint32(4));
            md.put(a + "ssm.state_size", Metadata.Value.uint32(DELTA_WIDTH));
            md.put(a + "ssm.group_count", Metadata.Value.uint32(DELTA_KEY_HEADS));
            md.put(a + "ssm.time_step_rank", Metadata.Value.uint32(DELTA_VALUE_HEADS));
            md.put(a + "ssm.inner_size", Metadata.Value.uint32(DELTA_VALUE_HEADS * DELTA_WIDTH));
            md.put(a + "full_attention_interval", Metadata.Value.uint32(4));
        }
        if (arch.equals("granitehybrid")) {
            // Granite 4.0-H-Micro's multipliers; no RoPE
            String a = "granitehybrid.";
            int[] kvHeads = new int[s.layers()];
            for (int l = 0; l < kvHeads.length; l++) kvHeads[l] = GRANITE_ATTENTION.contains(l) ? s.kvHeads() : 0;
            md.put(a + "attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, kvHeads));
            md.put(a + "embedding_scale", Metadata.Value.float32(12f));
            md.put(a + "residual_scale", Metadata.Value.float32(0.22f));
            md.put(a + "attention.scale", Metadata.Value.float32(0.0078125f));
            md.put(a + "logit_scale", Metadata.Value.float32(8f));
            md.put(a + "rope.scaling.finetuned", Metadata.Value.bool(false));
            graniteMamba(s.dim()).metadata(md, a);
            if (s.experts() > 0) md.put(a + "expert_shared_feed_forward_length", Metadata.Value.uint32(GRANITE_SHARED));
        }
        if (arch.equals("nemotron_h")) {
            // Nemotron-H-8B's blocks (NEMOTRON_BLOCKS), its attention without RoPE
            String a = "nemotron_h.";
            int[] kvHeads = new int[s.layers()], widths = new int[s.layers()];
            for (int l = 0; l < s.layers(); l++) {
                kvHeads[l] = NEMOTRON_BLOCKS.charAt(l) == '*' ? s.kvHeads() : 0;
                widths[l] = NEMOTRON_BLOCKS.charAt(l) == '-' ? s.hiddenDim() : 0;
            }
            md.put(a + "attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, kvHeads));
            md.put(a + "feed_forward_length", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, widths));
            md.put(a + "attention.key_length", Metadata.Value.uint32(s.headDim()));
            md.put(a + "attention.value_length", Metadata.Value.uint32(s.headDim()));
            md.put(a + "attention.layer_norm_epsilon", Metadata.Value.float32(s.rmsEps()));
            md.put(a + "rope.scaling.finetuned", Metadata.Value.bool(false));
            NEMOTRON_MAMBA.metadata(md, a);
        }
        if (arch.equals("mamba2")) {
            // no head, no feed-forward: Mamba-2 blocks alone
            md.keySet().removeIf(k -> k.startsWith("mamba2.attention.head_count_kv") || k.startsWith("mamba2.rope."));
            md.put("mamba2.attention.head_count", Metadata.Value.uint32(0));
            md.put("mamba2.feed_forward_length", Metadata.Value.uint32(0));
            NEMOTRON_MAMBA.metadata(md, "mamba2.");
        }
        if (arch.equals("mamba")) {
            // no head, no feed-forward: Mamba blocks alone, Falcon-Mamba's
            md.keySet().removeIf(k -> k.startsWith("mamba.attention.head_count_kv") || k.startsWith("mamba.rope."));
            md.put("mamba.attention.head_count", Metadata.Value.uint32(0));
            md.put("mamba.feed_forward_length", Metadata.Value.uint32(0));
            md.put("mamba.ssm.conv_kernel", Metadata.Value.uint32(4));
            md.put("mamba.ssm.inner_size", Metadata.Value.uint32(2 * s.dim()));
            md.put("mamba.ssm.state_size", Metadata.Value.uint32(FALCON_MAMBA_STATES));
            md.put("mamba.ssm.time_step_rank", Metadata.Value.uint32(FALCON_MAMBA_RANK));
            md.put("mamba.ssm.dt_b_c_rms", Metadata.Value.bool(true));
        }
        if (arch.equals("falcon")) md.put("falcon.attention.layer_norm_epsilon", md.remove("falcon.attention.layer_norm_rms_epsilon"));
        if (arch.equals("phi2")) {
            // Phi-2's LayerNorm epsilon in place of RMSNorm's, RoPE on 2/5 of each head (32 of 80), an even count
            md.put("phi2.attention.layer_norm_epsilon", md.remove("phi2.attention.layer_norm_rms_epsilon"));
            md.put("phi2.rope.dimension_count", Metadata.Value.uint32(s.headDim() * 2 / 5 / 2 * 2));
        }
        if (arch.equals("gpt-oss")) {
            // gpt-oss-20b's: its experts' width, a window of 128 positions on every other layer, YaRN x32 of 4096
            md.put("gpt-oss.expert_feed_forward_length", Metadata.Value.uint32(s.hiddenDim()));
            md.put("gpt-oss.attention.sliding_window", Metadata.Value.uint32(128));
            md.put("gpt-oss.rope.scaling.type", Metadata.Value.string("yarn"));
            md.put("gpt-oss.rope.scaling.factor", Metadata.Value.float32(32f));
            md.put("gpt-oss.rope.scaling.original_context_length", Metadata.Value.uint32(4096));
        }
        md.put("general.file_type", Metadata.Value.uint32(type == GGMLType.MXFP4 ? MXFP4_MOE : type.fileType()));
        md.put("general.quantization_version", Metadata.Value.uint32(2));
        md.putAll(tokenizerMetadata(s.vocab(), sharedTokenizers));
        GGUFWriter.write(out, md, tensors(s, type), progress);
    }

    /**
     * The tensors of a model of shape {@code s}, linear layers in {@code type} (their contents are made as they are
     * written). A matrix whose rows are not a whole number of the type's blocks (a K-quant's 256, e.g. stories15M's
     * width of 288) is made in Q8_0 instead, as llama.cpp's quantizer also falls back to a 32-block type.
     */
    public static List<GGUFWriter.TensorSpec> tensors(ModelShape s, GGMLType asked) {
        List<GGUFWriter.TensorSpec> tensors = new ArrayList<>();
        int dim = s.dim(), qDim = s.heads() * s.headDim(), kvDim = s.kvHeads() * s.headDim(), hidden = s.hiddenDim();
        // MXFP4: the experts', the other matrices Q8_0 (llama.cpp's MXFP4_MOE)
        GGMLType type = asked == GGMLType.MXFP4 ? GGMLType.Q8_0 : asked, expertType = asked;
        boolean gptOss = s.architecture().equals("gpt-oss"), qwen2moe = s.architecture().equals("qwen2moe"), deepseek2 = s.architecture().equals("deepseek2"),
                lfm2 = s.architecture().equals("lfm2"), qwen35 = s.architecture().equals("qwen35"), granite = s.architecture().equals("granitehybrid"),
                nemotron = s.architecture().equals("nemotron_h"), mamba2 = s.architecture().equals("mamba2"), mamba1 = s.architecture().equals("mamba");
        tensors.add(matrix("token_embd.weight", type, dim, s.vocab(), 1.0));
        if (s.architecture().equals("phi2")) return phi2(tensors, s, type);
        if (s.architecture().equals("falcon")) return falcon(tensors, s, type);
        if (s.ropeScaling() > 0) {
            float[] factors = Checkpoint.llama3RopeFactors(s.ropeScaling(), 1, 4, 8192, s.ropeTheta(), s.headDim());
            tensors.add(new GGUFWriter.TensorSpec("rope_freqs.weight", GGMLType.F32, new long[]{factors.length},
                    t -> MemorySegment.copy(factors, 0, t, FLOAT_LE, 0, factors.length)));
        }
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            tensors.add(ones(p + "attn_norm.weight", dim));
            if (mamba2) {
                NEMOTRON_MAMBA.tensors(tensors, p, type, dim);
                continue;
            }
            if (mamba1) {
                int inner = 2 * dim, states = FALCON_MAMBA_STATES, rank = FALCON_MAMBA_RANK;
                tensors.add(matrix(p + "ssm_in.weight", type, dim, 2L * inner, 1 / Math.sqrt(dim)));
                tensors.add(tensor(p + "ssm_conv1d.weight", GGMLType.F32, new long[]{4, inner}, 0.5));
                tensors.add(tensor(p + "ssm_conv1d.bias", GGMLType.F32, new long[]{inner}, 0.1));
                tensors.add(matrix(p + "ssm_x.weight", type, inner, rank + 2L * states, 1 / Math.sqrt(inner)));
                tensors.add(matrix(p + "ssm_dt.weight", type, rank, inner, 1 / Math.sqrt(rank)));
                tensors.add(tensor(p + "ssm_dt.bias", GGMLType.F32, new long[]{inner}, 0.5));
                tensors.add(constant(p + "ssm_a", new long[]{states, inner}, -1f)); // -exp(A_log): a decay
                tensors.add(constant(p + "ssm_d", new long[]{inner}, 1f));
                tensors.add(matrix(p + "ssm_out.weight", type, inner, dim, 1 / Math.sqrt(inner)));
                continue;
            }
            if (nemotron) {
                // one part a block: Mamba-2, attention, or a feed-forward without a gate
                switch (NEMOTRON_BLOCKS.charAt(l)) {
                    case 'M' -> NEMOTRON_MAMBA.tensors(tensors, p, type, dim);
                    case '*' -> {
                        tensors.add(matrix(p + "attn_q.weight", type, dim, qDim, 1 / Math.sqrt(dim)));
                        tensors.add(matrix(p + "attn_k.weight", type, dim, kvDim, 1 / Math.sqrt(dim)));
                        tensors.add(matrix(p + "attn_v.weight", type, dim, kvDim, 1 / Math.sqrt(dim)));
                        tensors.add(matrix(p + "attn_output.weight", type, qDim, dim, 1 / Math.sqrt(qDim)));
                    }
                    default -> {
                        tensors.add(matrix(p + "ffn_up.weight", type, dim, hidden, 1 / Math.sqrt(dim)));
                        tensors.add(matrix(p + "ffn_down.weight", type, hidden, dim, 1 / Math.sqrt(hidden)));
                    }
                }
                continue;
            }
            boolean phi3 = s.architecture().equals("phi3"), convolution = lfm2 && !LFM2_ATTENTION.contains(l), delta = qwen35 && (l + 1) % 4 != 0,
                    mamba = granite && !GRANITE_ATTENTION.contains(l);
            if (mamba) {
                graniteMamba(dim).tensors(tensors, p, type, dim);
            } else if (delta) {
                int channels = (2 * DELTA_KEY_HEADS + DELTA_VALUE_HEADS) * DELTA_WIDTH, values = DELTA_VALUE_HEADS * DELTA_WIDTH;
                tensors.add(matrix(p + "attn_qkv.weight", type, dim, channels, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "attn_gate.weight", type, dim, values, 1 / Math.sqrt(dim)));
                tensors.add(tensor(p + "ssm_conv1d.weight", GGMLType.F32, new long[]{4, channels}, 0.5));
                tensors.add(tensor(p + "ssm_dt.bias", GGMLType.F32, new long[]{DELTA_VALUE_HEADS}, 0.5));
                tensors.add(constant(p + "ssm_a", DELTA_VALUE_HEADS, -1f)); // -exp(A_log): a decay
                tensors.add(matrix(p + "ssm_beta.weight", type, dim, DELTA_VALUE_HEADS, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "ssm_alpha.weight", type, dim, DELTA_VALUE_HEADS, 1 / Math.sqrt(dim)));
                tensors.add(ones(p + "ssm_norm.weight", DELTA_WIDTH));
                tensors.add(matrix(p + "ssm_out.weight", type, values, dim, 1 / Math.sqrt(values)));
            } else if (qwen35) {
                tensors.add(matrix(p + "attn_q.weight", type, dim, 2L * qDim, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "attn_k.weight", type, dim, kvDim, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "attn_v.weight", type, dim, kvDim, 1 / Math.sqrt(dim)));
            } else if (convolution) {
                tensors.add(matrix(p + "shortconv.in_proj.weight", type, dim, 3L * dim, 1 / Math.sqrt(dim)));
                tensors.add(tensor(p + "shortconv.conv.weight", GGMLType.F32, new long[]{3, dim}, 1 / Math.sqrt(3)));
                tensors.add(matrix(p + "shortconv.out_proj.weight", type, dim, dim, 1 / Math.sqrt(dim)));
            } else if (deepseek2) {
                // heads of headDim non-rotated and LATENT_ROPE rotated elements, values headDim wide
                int heads = s.heads(), nope = s.headDim(), width = nope + LATENT_ROPE;
                tensors.add(matrix(p + "attn_q.weight", type, dim, (long) heads * width, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "attn_kv_a_mqa.weight", type, dim, LATENT_RANK + LATENT_ROPE, 1 / Math.sqrt(dim)));
                tensors.add(ones(p + "attn_kv_a_norm.weight", LATENT_RANK));
                tensors.add(tensor(p + "attn_k_b.weight", type, new long[]{nope, LATENT_RANK, heads}, 1 / Math.sqrt(nope)));
                tensors.add(tensor(p + "attn_v_b.weight", type, new long[]{LATENT_RANK, nope, heads}, 1 / Math.sqrt(LATENT_RANK)));
                tensors.add(matrix(p + "attn_output.weight", type, (long) heads * nope, dim, 1 / Math.sqrt((double) heads * nope)));
            } else if (phi3) {
                tensors.add(matrix(p + "attn_qkv.weight", type, dim, qDim + 2L * kvDim, 1 / Math.sqrt(dim)));
            } else {
                tensors.add(matrix(p + "attn_q.weight", type, dim, qDim, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "attn_k.weight", type, dim, kvDim, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "attn_v.weight", type, dim, kvDim, 1 / Math.sqrt(dim)));
            }
            if (!deepseek2 && !convolution && !delta && !mamba) tensors.add(matrix(p + "attn_output.weight", type, qDim, dim, 1 / Math.sqrt(qDim)));
            // gpt-oss's biases (small), its sinks, and its FFN norm under the name of a post-attention norm
            if (qwen2moe) {
                tensors.add(tensor(p + "attn_q.bias", GGMLType.F32, new long[]{qDim}, 0.01));
                tensors.add(tensor(p + "attn_k.bias", GGMLType.F32, new long[]{kvDim}, 0.01));
                tensors.add(tensor(p + "attn_v.bias", GGMLType.F32, new long[]{kvDim}, 0.01));
            }
            if (gptOss) {
                tensors.add(tensor(p + "attn_q.bias", GGMLType.F32, new long[]{qDim}, 0.01));
                tensors.add(tensor(p + "attn_k.bias", GGMLType.F32, new long[]{kvDim}, 0.01));
                tensors.add(tensor(p + "attn_v.bias", GGMLType.F32, new long[]{kvDim}, 0.01));
                tensors.add(tensor(p + "attn_output.bias", GGMLType.F32, new long[]{dim}, 0.01));
                tensors.add(ones(p + "attn_sinks.weight", s.heads()));
            }
            tensors.add(ones(p + (gptOss || qwen35 ? "post_attention_norm.weight" : "ffn_norm.weight"), dim));
            if (s.architecture().equals("gemma3") || s.architecture().equals("qwen3moe") || lfm2 && !convolution || qwen35 && !delta) {
                tensors.add(ones(p + "attn_q_norm.weight", s.headDim()));
                tensors.add(ones(p + "attn_k_norm.weight", s.headDim()));
            }
            if (s.architecture().equals("bitnet")) {
                // BitNet's norms of wo's and w2's inputs
                tensors.add(ones(p + "attn_sub_norm.weight", qDim));
                tensors.add(ones(p + "ffn_sub_norm.weight", hidden));
            }
            if (s.architecture().equals("gemma3")) {
                tensors.add(ones(p + "post_attention_norm.weight", dim));
                tensors.add(ones(p + "post_ffw_norm.weight", dim));
            }
            if (deepseek2 && l == 0) {
                tensors.add(matrix(p + "ffn_gate.weight", type, dim, DEEPSEEK_DENSE, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "ffn_up.weight", type, dim, DEEPSEEK_DENSE, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "ffn_down.weight", type, DEEPSEEK_DENSE, dim, 1 / Math.sqrt(DEEPSEEK_DENSE)));
            } else if (s.experts() > 0) {
                tensors.add(tensor(p + "ffn_gate_inp.weight", GGMLType.F32, new long[]{dim, s.experts()}, 1 / Math.sqrt(dim)));
                tensors.add(tensor(p + "ffn_gate_exps.weight", expertType, new long[]{dim, hidden, s.experts()}, 1 / Math.sqrt(dim)));
                tensors.add(tensor(p + "ffn_up_exps.weight", expertType, new long[]{dim, hidden, s.experts()}, 1 / Math.sqrt(dim)));
                tensors.add(tensor(p + "ffn_down_exps.weight", expertType, new long[]{hidden, dim, s.experts()}, 1 / Math.sqrt(hidden)));
                if (deepseek2) {
                    long shared = (long) DEEPSEEK_SHARED * hidden;
                    tensors.add(matrix(p + "ffn_gate_shexp.weight", type, dim, shared, 1 / Math.sqrt(dim)));
                    tensors.add(matrix(p + "ffn_up_shexp.weight", type, dim, shared, 1 / Math.sqrt(dim)));
                    tensors.add(matrix(p + "ffn_down_shexp.weight", type, shared, dim, 1 / Math.sqrt(shared)));
                }
                if (granite) {
                    // Granite-4.0-H-Tiny's shared expert, added as it is
                    tensors.add(matrix(p + "ffn_gate_shexp.weight", type, dim, GRANITE_SHARED, 1 / Math.sqrt(dim)));
                    tensors.add(matrix(p + "ffn_up_shexp.weight", type, dim, GRANITE_SHARED, 1 / Math.sqrt(dim)));
                    tensors.add(matrix(p + "ffn_down_shexp.weight", type, GRANITE_SHARED, dim, 1 / Math.sqrt(GRANITE_SHARED)));
                }
                if (qwen2moe) {
                    // its shared expert, gated
                    long shared = (long) QWEN2MOE_SHARED * hidden;
                    tensors.add(tensor(p + "ffn_gate_inp_shexp.weight", GGMLType.F32, new long[]{dim}, 1 / Math.sqrt(dim)));
                    tensors.add(matrix(p + "ffn_gate_shexp.weight", type, dim, shared, 1 / Math.sqrt(dim)));
                    tensors.add(matrix(p + "ffn_up_shexp.weight", type, dim, shared, 1 / Math.sqrt(dim)));
                    tensors.add(matrix(p + "ffn_down_shexp.weight", type, shared, dim, 1 / Math.sqrt(shared)));
                }
                if (gptOss) {
                    tensors.add(tensor(p + "ffn_gate_inp.bias", GGMLType.F32, new long[]{s.experts()}, 0.01));
                    tensors.add(tensor(p + "ffn_gate_exps.bias", GGMLType.F32, new long[]{hidden, s.experts()}, 0.01));
                    tensors.add(tensor(p + "ffn_up_exps.bias", GGMLType.F32, new long[]{hidden, s.experts()}, 0.01));
                    tensors.add(tensor(p + "ffn_down_exps.bias", GGMLType.F32, new long[]{dim, s.experts()}, 0.01));
                }
            } else if (phi3) {
                tensors.add(matrix(p + "ffn_up.weight", type, dim, 2L * hidden, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "ffn_down.weight", type, hidden, dim, 1 / Math.sqrt(hidden)));
            } else {
                tensors.add(matrix(p + "ffn_gate.weight", type, dim, hidden, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "ffn_up.weight", type, dim, hidden, 1 / Math.sqrt(dim)));
                tensors.add(matrix(p + "ffn_down.weight", type, hidden, dim, 1 / Math.sqrt(hidden)));
            }
        }
        tensors.add(ones(lfm2 ? "token_embd_norm.weight" : "output_norm.weight", dim));
        if (!s.tiedEmbeddings()) tensors.add(matrix("output.weight", type, dim, s.vocab(), 1 / Math.sqrt(dim)));
        return tensors;
    }

    /**
     * Phi-2's layers and head after {@code tensors}' embeddings: LayerNorm with biases, the query, key and value
     * projections in one tensor with its bias, biases on the output and feed-forward projections (no gate, no FFN norm:
     * its blocks are parallel), and on the logits.
     */
    private static List<GGUFWriter.TensorSpec> phi2(List<GGUFWriter.TensorSpec> tensors, ModelShape s, GGMLType type) {
        int dim = s.dim(), hidden = s.hiddenDim(), qkv = 3 * s.heads() * s.headDim();
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            tensors.add(ones(p + "attn_norm.weight", dim));
            tensors.add(tensor(p + "attn_norm.bias", GGMLType.F32, new long[]{dim}, 0.01));
            tensors.add(matrix(p + "attn_qkv.weight", type, dim, qkv, 1 / Math.sqrt(dim)));
            tensors.add(tensor(p + "attn_qkv.bias", GGMLType.F32, new long[]{qkv}, 0.01));
            tensors.add(matrix(p + "attn_output.weight", type, dim, dim, 1 / Math.sqrt(dim)));
            tensors.add(tensor(p + "attn_output.bias", GGMLType.F32, new long[]{dim}, 0.01));
            tensors.add(matrix(p + "ffn_up.weight", type, dim, hidden, 1 / Math.sqrt(dim)));
            tensors.add(tensor(p + "ffn_up.bias", GGMLType.F32, new long[]{hidden}, 0.01));
            tensors.add(matrix(p + "ffn_down.weight", type, hidden, dim, 1 / Math.sqrt(hidden)));
            tensors.add(tensor(p + "ffn_down.bias", GGMLType.F32, new long[]{dim}, 0.01));
        }
        tensors.add(ones("output_norm.weight", dim));
        tensors.add(tensor("output_norm.bias", GGMLType.F32, new long[]{dim}, 0.01));
        tensors.add(matrix("output.weight", type, dim, s.vocab(), 1 / Math.sqrt(dim)));
        tensors.add(tensor("output.bias", GGMLType.F32, new long[]{s.vocab()}, 0.01));
        return tensors;
    }

    /**
     * Falcon-7B's layers and head after {@code tensors}' embeddings: LayerNorm with biases, the query, key and value
     * projections in one tensor, no gate and no FFN norm (its blocks are parallel), the head tied where the shape says.
     */
    private static List<GGUFWriter.TensorSpec> falcon(List<GGUFWriter.TensorSpec> tensors, ModelShape s, GGMLType type) {
        int dim = s.dim(), hidden = s.hiddenDim(), qkv = (s.heads() + 2 * s.kvHeads()) * s.headDim();
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            tensors.add(ones(p + "attn_norm.weight", dim));
            tensors.add(tensor(p + "attn_norm.bias", GGMLType.F32, new long[]{dim}, 0.01));
            tensors.add(matrix(p + "attn_qkv.weight", type, dim, qkv, 1 / Math.sqrt(dim)));
            tensors.add(matrix(p + "attn_output.weight", type, (long) s.heads() * s.headDim(), dim, 1 / Math.sqrt(dim)));
            tensors.add(matrix(p + "ffn_up.weight", type, dim, hidden, 1 / Math.sqrt(dim)));
            tensors.add(matrix(p + "ffn_down.weight", type, hidden, dim, 1 / Math.sqrt(hidden)));
        }
        tensors.add(ones("output_norm.weight", dim));
        tensors.add(tensor("output_norm.bias", GGMLType.F32, new long[]{dim}, 0.01));
        if (!s.tiedEmbeddings()) tensors.add(matrix("output.weight", type, dim, s.vocab(), 1 / Math.sqrt(dim)));
        return tensors;
    }

    /** Total bytes of tensor data {@link #write} will produce (for progress reports). */
    public static long dataBytes(ModelShape s, GGMLType type) {
        return tensors(s, type).stream().mapToLong(GGUFWriter.TensorSpec::bytes).sum();
    }

    /**
     * GGUF tokenizer keys: Llama-2's SentencePiece vocabulary for 32000, the Llama-3 vocabulary for 128256, for 32064
     * Phi-3's (Llama-2's and its added tokens: {@code <|endoftext|>}, the chat markers, then padding), and for 262144
     * 102400 and 65536 (Gemma's, DeepSeek's and LFM2's sizes; no such tokenizer is at hand) Llama-2's followed by {@code <unused0>} ... tokens of llama.cpp's
     * type unused, as Gemma's own vocabulary has thousands of, which text never tokenizes into.
     */
    static Map<String, Metadata.Value> tokenizerMetadata(int vocab, Path sharedTokenizers) {
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        if (vocab == 32000 || vocab == PHI3_VOCAB || vocab == GEMMA_VOCAB || vocab == DEEPSEEK_VOCAB || vocab == LFM2_VOCAB || vocab == GRANITE_VOCAB || vocab == CODESTRAL_VOCAB || vocab == FALCON_VOCAB
                || vocab == PHI2_VOCAB) {
            md.putAll(Tokenizers.load(sharedTokenizers.resolve("llama2-tokenizer.model")).ggufMetadata());
            if (vocab == PHI3_VOCAB) pad(md, PHI3_ADDED, TokenType.CONTROL, vocab, "[PAD%d]", TokenType.UNKNOWN);
            if (vocab == GEMMA_VOCAB || vocab == DEEPSEEK_VOCAB || vocab == LFM2_VOCAB || vocab == GRANITE_VOCAB || vocab == CODESTRAL_VOCAB || vocab == FALCON_VOCAB || vocab == PHI2_VOCAB) pad(md, new String[0], 0, vocab, "<unused%d>", UNUSED_TYPE);
            md.put("tokenizer.ggml.bos_token_id", Metadata.Value.uint32(1));
            md.put("tokenizer.ggml.eos_token_id", Metadata.Value.uint32(2));
            md.put("tokenizer.ggml.unknown_token_id", Metadata.Value.uint32(0));
            md.put("tokenizer.ggml.add_bos_token", Metadata.Value.bool(true));
            md.put("tokenizer.ggml.add_eos_token", Metadata.Value.bool(false));
        } else if (vocab == 128256 || vocab == GPT_OSS_VOCAB || vocab == QWEN_VOCAB || vocab == QWEN35_VOCAB || vocab == NEMOTRON_VOCAB) {
            Metadata vocabFile = GGUF.read(sharedTokenizers.resolve("llama3-vocab.gguf")).metadata();
            for (var e : vocabFile.asMap().entrySet()) {
                if (e.getKey().startsWith("tokenizer.")) md.put(e.getKey(), e.getValue());
            }
            if (vocab != 128256) pad(md, new String[0], 0, vocab, "<unused%d>", UNUSED_TYPE);
        } else {
            throw new IllegalArgumentException("no tokenizer for a vocabulary of " + vocab);
        }
        return md;
    }

    /** A Qwen2-MoE shape's shared expert's width in experts' widths (Qwen1.5-MoE-A2.7B's: 5632 = 4 x 1408). */
    private static final int QWEN2MOE_SHARED = 4;
    private static final int PHI3_VOCAB = 32064, GEMMA_VOCAB = 262144, GPT_OSS_VOCAB = 201088, QWEN_VOCAB = 151936, DEEPSEEK_VOCAB = 102400, LFM2_VOCAB = 65536,
            QWEN35_VOCAB = 248320, GRANITE_VOCAB = 100352, NEMOTRON_VOCAB = 131072, CODESTRAL_VOCAB = 32768, FALCON_VOCAB = 65024, PHI2_VOCAB = 51200, UNUSED_TYPE = 5;
    /** Falcon-Mamba-7B's Mamba mixers: rows of 16 states per channel, dt of rank 256, channels twice the width. */
    private static final int FALCON_MAMBA_STATES = 16, FALCON_MAMBA_RANK = 256;
    /** Qwen3.5's delta nets' key heads, value heads and their width (Qwen3-Next's). */
    private static final int DELTA_KEY_HEADS = 16, DELTA_VALUE_HEADS = 32, DELTA_WIDTH = 128;
    /** A shape's Mamba-2 mixers: heads, their width, states, groups (of B and C), each with a convolution of 4 taps. */
    private record Mamba(int heads, int width, int states, int groups) {
        void metadata(Map<String, Metadata.Value> md, String a) {
            md.put(a + "ssm.conv_kernel", Metadata.Value.uint32(4));
            md.put(a + "ssm.state_size", Metadata.Value.uint32(states));
            md.put(a + "ssm.group_count", Metadata.Value.uint32(groups));
            md.put(a + "ssm.time_step_rank", Metadata.Value.uint32(heads));
            md.put(a + "ssm.inner_size", Metadata.Value.uint32(heads * width));
        }

        /** The layer {@code p}'s ("blk.N.") tensors: its projections in {@code type}. */
        void tensors(List<GGUFWriter.TensorSpec> tensors, String p, GGMLType type, int dim) {
            int inner = heads * width, channels = inner + 2 * groups * states;
            tensors.add(matrix(p + "ssm_in.weight", type, dim, (long) inner + channels + heads, 1 / Math.sqrt(dim)));
            tensors.add(tensor(p + "ssm_conv1d.weight", GGMLType.F32, new long[]{4, channels}, 0.5));
            tensors.add(tensor(p + "ssm_conv1d.bias", GGMLType.F32, new long[]{channels}, 0.1));
            tensors.add(tensor(p + "ssm_dt.bias", GGMLType.F32, new long[]{heads}, 0.5));
            tensors.add(constant(p + "ssm_a", new long[]{1, heads}, -1f)); // -exp(A_log): a decay
            tensors.add(constant(p + "ssm_d", new long[]{1, heads}, 1f));
            tensors.add(constant(p + "ssm_norm.weight", new long[]{inner / groups, groups}, 1f));
            tensors.add(matrix(p + "ssm_out.weight", type, inner, dim, 1 / Math.sqrt(inner)));
        }
    }

    /** Granite 4.0-H-Micro's Mamba-2 mixers, Nemotron-H-8B's and Mamba-Codestral-7B's. */
    private static final Mamba NEMOTRON_MAMBA = new Mamba(128, 64, 128, 8);

    /** Granite 4.0-H's Mamba-2 mixers at width {@code dim}: twice as wide, in heads of 64, states of 128, one group. */
    private static Mamba graniteMamba(int dim) {
        return new Mamba(2 * dim / 64, 64, 128, 1);
    }

    /** Granite-4.0-H-Tiny's shared expert's width. */
    private static final int GRANITE_SHARED = 1024;
    /**
     * Nemotron-H-8B's 52 blocks, as its {@code hybrid_override_pattern} writes them (M Mamba-2, * attention, -
     * feed-forward): 24 Mamba-2, 4 attention, 24 feed-forwards, where the attention blocks stand an estimate.
     */
    static final String NEMOTRON_BLOCKS = "M-M-M-M-M-M*-M-M-M-M-M-M*-M-M-M-M-M-M*-M-M-M-M-M-M*-";
    /** The attention layers of a Granite 4.0-H shape (an estimate of Granite 4.0-H-Micro's four); the others are Mamba-2. */
    private static final java.util.Set<Integer> GRANITE_ATTENTION = java.util.Set.of(9, 19, 29, 39);
    /** LFM2-1.2B's attention layers; the others are convolutions. */
    private static final java.util.Set<Integer> LFM2_ATTENTION = java.util.Set.of(2, 5, 8, 10, 12, 14);
    /** DeepSeek-V2-Lite's dense first layer's width, its shared experts, its latent's width and its heads' rotated elements. */
    private static final int DEEPSEEK_DENSE = 10944, DEEPSEEK_SHARED = 2, LATENT_RANK = 512, LATENT_ROPE = 64;
    /** llama.cpp's file type of a mixture whose experts are MXFP4 ({@code LLAMA_FTYPE_MOSTLY_MXFP4_MOE}). */
    private static final int MXFP4_MOE = 38;
    private static final String[] PHI3_ADDED = {"<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
            "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>"};

    /**
     * The vocabulary in {@code md} made {@code vocab} tokens long: {@code added} (of type {@code addedType}) first, then
     * {@code padding} (a format of the token's id, Phi-3's {@code [PAD32011]}, or of its count, Gemma's {@code
     * <unused0>}) of type {@code paddingType}.
     */
    private static void pad(Map<String, Metadata.Value> md, String[] added, int addedType, int vocab, String padding, int paddingType) {
        String[] pieces = (String[]) md.get("tokenizer.ggml.tokens").value();
        float[] scores = md.containsKey("tokenizer.ggml.scores") ? (float[]) md.get("tokenizer.ggml.scores").value() : null; // none in a BPE vocabulary
        int[] types = (int[]) md.get("tokenizer.ggml.token_type").value();
        int n = pieces.length;
        pieces = java.util.Arrays.copyOf(pieces, vocab);
        types = java.util.Arrays.copyOf(types, vocab);
        for (int i = n; i < vocab; i++) {
            boolean isAdded = i - n < added.length;
            pieces[i] = isAdded ? added[i - n] : String.format(padding, padding.contains("PAD") ? i : i - n - added.length);
            types[i] = isAdded ? addedType : paddingType;
        }
        md.put("tokenizer.ggml.tokens", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, pieces));
        if (scores != null) md.put("tokenizer.ggml.scores", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT32, java.util.Arrays.copyOf(scores, vocab)));
        md.put("tokenizer.ggml.token_type", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, types));
    }

    private static GGUFWriter.TensorSpec ones(String name, int n) {
        return constant(name, n, 1f);
    }

    /** A vector of {@code n} times {@code value}. */
    private static GGUFWriter.TensorSpec constant(String name, int n, float value) {
        return constant(name, new long[]{n}, value);
    }

    /** A tensor of {@code shape} all {@code value}. */
    private static GGUFWriter.TensorSpec constant(String name, long[] shape, float value) {
        long n = java.util.Arrays.stream(shape).reduce(1, (x, y) -> x * y);
        return new GGUFWriter.TensorSpec(name, GGMLType.F32, shape, t -> {
            for (long i = 0; i < n; i++) t.setAtIndex(FLOAT_LE, i, value);
        });
    }

    /** A [cols, rows] matrix of uniform values with standard deviation {@code std}. */
    private static GGUFWriter.TensorSpec matrix(String name, GGMLType type, long cols, long rows, double std) {
        return tensor(name, type, new long[]{cols, rows}, std);
    }

    private static GGUFWriter.TensorSpec tensor(String name, GGMLType asked, long[] shape, double std) {
        GGMLType type = shape[0] % asked.blockSize == 0 ? asked : GGMLType.Q8_0;
        float amplitude = (float) (std * Math.sqrt(3));
        return new GGUFWriter.TensorSpec(name, type, shape, t -> fill(t, type, amplitude, new SplittableRandom(name.hashCode())));
    }

    private static void fill(MemorySegment t, GGMLType type, float amplitude, SplittableRandom random) {
        long size = t.byteSize();
        switch (type) {
            case F32 -> {
                for (long i = 0; i < size; i += 4) t.set(FLOAT_LE, i, uniform(random, amplitude));
            }
            case F16 -> {
                for (long i = 0; i < size; i += 2) t.set(SHORT_LE, i, Float.floatToFloat16(uniform(random, amplitude)));
            }
            case BF16 -> {
                for (long i = 0; i < size; i += 2) t.set(SHORT_LE, i, (short) (Float.floatToRawIntBits(uniform(random, amplitude)) >>> 16));
            }
            case Q8_0, Q4_0, Q4_1 -> {
                // random quant bytes, then sane scales: the block's values span [-amplitude, amplitude]
                for (long i = 0; i + 8 <= size; i += 8) t.set(LONG_LE, i, random.nextLong());
                for (long i = size & ~7L; i < size; i++) t.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
                short d = Float.floatToFloat16(type == GGMLType.Q8_0 ? amplitude / 127 : type == GGMLType.Q4_0 ? amplitude / 8 : 2 * amplitude / 15);
                short m = Float.floatToFloat16(-amplitude);
                for (long b = 0; b < size; b += type.blockBytes) {
                    t.set(SHORT_LE, b, d);
                    if (type == GGMLType.Q4_1) t.set(SHORT_LE, b + 2, m);
                }
            }
            case Q4_K, Q5_K, Q6_K -> {
                // random quant bytes and sub-block scales (and mins), then super-block scales that keep the values
                // within about [-amplitude, amplitude]: Q4_K/Q5_K are d * scale * q - dmin * min with 6-bit scale and
                // min, Q6_K is d * scale * (q - 32) with int8 scales
                for (long i = 0; i + 8 <= size; i += 8) t.set(LONG_LE, i, random.nextLong());
                int levels = type == GGMLType.Q4_K ? 16 : 32;
                for (long b = 0; b < size; b += type.blockBytes) {
                    if (type == GGMLType.Q6_K) {
                        t.set(SHORT_LE, b + 208, Float.floatToFloat16(amplitude / (128 * 32)));
                    } else {
                        t.set(SHORT_LE, b, Float.floatToFloat16(2 * amplitude / (63 * (levels - 1))));
                        t.set(SHORT_LE, b + 2, Float.floatToFloat16(amplitude / 63));
                    }
                }
            }
            case MXFP4 -> {
                // random nibbles, and the E8M0 exponent whose largest level (6) is about the amplitude
                for (long i = 0; i + 8 <= size; i += 8) t.set(LONG_LE, i, random.nextLong());
                for (long i = size & ~7L; i < size; i++) t.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
                byte e = (byte) (127 + Math.round(Math.log(amplitude / 6) / Math.log(2)));
                for (long b = 0; b < size; b += type.blockBytes) t.set(ValueLayout.JAVA_BYTE, b, e);
            }
            default -> throw new IllegalArgumentException(type.toString());
        }
    }

    private static float uniform(SplittableRandom random, float amplitude) {
        return (float) ((random.nextDouble() * 2 - 1) * amplitude);
    }
}
