package gptfast4j.quant;

import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * What {@code gptfast quantize --mode} writes. gpt-fast's int8/int4 modes put every linear layer and the output head in
 * one type and keep the token embedding as it is. The other modes are llama.cpp's mixes of the same names (Q4_0 ...
 * Q8_0, Q2_K, Q2_K_S, Q3_K_S ... Q6_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0), chosen tensor by tensor as {@code llama-quantize} chooses them, with an
 * importance matrix or without (its {@code llama_tensor_get_type} for Llama-family models): more bits where errors cost most (the
 * output head in Q6_K; in the K-quant and IQ4 mixes attn_v and ffn_down, in some layers or all, a type or two above the
 * rest), the token embedding quantized too (as the head where it is the head), and its fallbacks where a type's blocks
 * do not divide a tensor's rows.
 */
public enum QuantizeMode {
    INT8("int8", GGMLType.Q8_0, false, GGMLType.Q8_0.fileType()),
    INT4("int4", GGMLType.Q4_0, false, GGMLType.Q4_0.fileType()),
    INT4_ASYM("int4-asym", GGMLType.Q4_1, false, GGMLType.Q4_1.fileType()),
    // general.file_type: llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_0 ... _Q6_K, _IQ4_NL, _IQ4_XS, _TQ1_0, _TQ2_0
    Q4_0("q4_0", GGMLType.Q4_0, true, 2),
    Q4_1("q4_1", GGMLType.Q4_1, true, 3),
    Q5_0("q5_0", GGMLType.Q5_0, true, 8),
    Q5_1("q5_1", GGMLType.Q5_1, true, 9),
    Q8_0("q8_0", GGMLType.Q8_0, true, 7),
    Q2_K("q2_k", GGMLType.Q2_K, true, 10),
    /** Q2_K's smaller mix, which llama-quantize makes only with an importance matrix. */
    Q2_K_S("q2_k_s", GGMLType.Q2_K, true, 21),
    Q3_K_S("q3_k_s", GGMLType.Q3_K, true, 11),
    Q3_K_M("q3_k_m", GGMLType.Q3_K, true, 12),
    Q3_K_L("q3_k_l", GGMLType.Q3_K, true, 13),
    Q4_K_S("q4_k_s", GGMLType.Q4_K, true, 14),
    Q4_K_M("q4_k_m", GGMLType.Q4_K, true, 15),
    Q5_K_S("q5_k_s", GGMLType.Q5_K, true, 16),
    Q5_K_M("q5_k_m", GGMLType.Q5_K, true, 17),
    Q6_K("q6_k", GGMLType.Q6_K, true, 18),
    IQ4_NL("iq4_nl", GGMLType.IQ4_NL, true, 25),
    IQ4_XS("iq4_xs", GGMLType.IQ4_XS, true, 30),
    /** The ternary types, for ternary-trained models (TriLM's): their token embedding in Q4_K. */
    TQ1_0("tq1_0", GGMLType.TQ1_0, true, 36),
    TQ2_0("tq2_0", GGMLType.TQ2_0, true, 37);

    /** The name {@code --mode} takes. */
    public final String flag;
    /** The type of the linear layers the mode does not single out. */
    public final GGMLType base;
    /** Whether this is one of llama.cpp's mixes, which quantize the token embedding too. */
    public final boolean mix;
    /** {@code general.file_type}: what llama.cpp calls a file of this mode. */
    final int fileType;

    QuantizeMode(String flag, GGMLType base, boolean mix, int fileType) {
        this.flag = flag;
        this.base = base;
        this.mix = mix;
        this.fileType = fileType;
    }

    /** The mode {@code flag} names; a one-line error naming the modes there are for anything else. */
    public static QuantizeMode of(String flag, String option) {
        for (QuantizeMode m : values()) if (m.flag.equals(flag)) return m;
        throw new IllegalArgumentException(option + " must be " + names() + ", got '" + flag + "'");
    }

    /** The modes' names, for help and errors: "int8, int4, ... or q6_k". */
    public static String names() {
        String all = Arrays.stream(values()).map(m -> m.flag).collect(Collectors.joining(", "));
        int last = all.lastIndexOf(", ");
        return all.substring(0, last) + " or " + all.substring(last + 2);
    }

    /**
     * The type for the weight tensor of {@code kind} ({@code attn_v}, {@code ffn_down_exps}, {@code output},
     * {@code token_embd}, ...) in layer {@code layer} (-1 outside the layers; with layers pruned, its index in the
     * file written; for attn_v's kinds, the tensor's index among the file's attn_v tensors, llama-quantize's {@code
     * i_attention_wv}, and for ffn_down's in a model without experts its index among the ffn_down tensors, {@code
     * i_ffn_down}: each differs where some layers have none) of a model of {@code c}, whose output head is its token embedding where {@code tied}, quantized
     * with an importance matrix where {@code importance}; null where the tensor is kept as it is. {@code keptLayers}:
     * the layers the file keeps ({@code c}'s less those pruned), which attn_v's rules count as llama-quantize counts
     * the attn_v tensors it writes, where ffn_down's count the model's.
     */
    public GGMLType typeOf(String kind, int layer, int keptLayers, Shape c, boolean tied, boolean importance) {
        return typeOf(kind, layer, keptLayers, c.layers(), c, tied, importance);
    }

    /**
     * What a mix's rules ask of a model: its layers, its query and kv heads (the GQA ratio), its experts (0 for none),
     * and whether it is a Falcon, whose output head, ffn_down and attn_output llama-quantize treats apart.
     */
    public record Shape(int layers, int heads, int kvHeads, int experts, boolean falcon) {
        public static Shape of(Config c) {
            return new Shape(c.nLayers(), c.nHeads(), c.nKvHeads(), c.expertCount(), c.architecture().equals("falcon"));
        }
    }

    /**
     * {@link #typeOf(String, int, int, Shape, boolean, boolean)} in a file of {@code fileLayers} layers, which ffn_down's
     * rules count: GLM-4.5's next-token prediction layers among them, as llama-quantize counts its {@code block_count}.
     */
    public GGMLType typeOf(String kind, int layer, int keptLayers, int fileLayers, Shape c, boolean tied, boolean importance) {
        if (!mix) return kind.equals("token_embd") ? null : base;
        int layers = fileLayers;
        boolean eightExperts = c.experts() == 8;
        boolean falcon = c.falcon();
        return switch (kind) {
            // Falcon's head in Q8_0 in every mix
            case "output" -> falcon ? GGMLType.Q8_0 : head();
            case "token_embd" -> tied ? (falcon ? GGMLType.Q8_0 : head()) : base == GGMLType.TQ1_0 || base == GGMLType.TQ2_0 ? GGMLType.Q4_K : base;
            // Phi-3's fused query, key and value projections take attn_v's rules, as llama-quantize gives them, and
            // DeepSeek-V2's key and value up-projection where the file has it whole
            case "attn_v", "attn_qkv", "attn_kv_b" -> {
                // such a file's head_count_kv is its head count, llama.cpp's n_gqa 1 (ours is 1 kv head: the latent)
                int gqa = kind.equals("attn_kv_b") ? 1 : c.heads() / c.kvHeads();
                GGMLType t = switch (this) {
                    case Q2_K -> gqa >= 4 ? GGMLType.Q4_K : GGMLType.Q3_K;
                    case Q2_K_S -> gqa >= 4 ? GGMLType.Q4_K : base;
                    case Q3_K_M -> layer < 2 ? GGMLType.Q5_K : GGMLType.Q4_K;
                    case Q3_K_L -> GGMLType.Q5_K;
                    case Q4_K_M, Q5_K_M -> moreBits(layer, keptLayers) ? GGMLType.Q6_K : base;
                    case Q4_K_S -> layer < 4 ? GGMLType.Q5_K : base;
                    case IQ4_NL, IQ4_XS -> gqa >= 4 ? GGMLType.Q5_K : base;
                    default -> base;
                };
                // a 70B's attn_v is 8 times smaller than its attn_q (8 heads share it): more bits there cost little
                if ((t == GGMLType.Q3_K || t == GGMLType.Q4_K) && layers == 80 && c.kvHeads() < c.heads()) t = GGMLType.Q5_K;
                yield eightExperts ? GGMLType.Q8_0 : t;
            }
            case "attn_k" -> eightExperts ? GGMLType.Q8_0 : base;
            case "attn_output" -> falcon ? (this == Q3_K_L ? GGMLType.Q4_K : base) : switch (this) {
                case Q2_K, Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M, IQ4_NL, IQ4_XS -> eightExperts ? GGMLType.Q5_K
                        : this == Q2_K ? GGMLType.Q3_K : this == Q3_K_M ? GGMLType.Q4_K : base;
                case Q3_K_L -> eightExperts ? base : GGMLType.Q5_K;
                default -> base;
            };
            // a shared expert's too: llama-quantize's rule is for every name with ffn_down in it
            case "ffn_down", "ffn_down_exps", "ffn_down_shexp" -> switch (this) {
                case Q2_K -> GGMLType.Q3_K;
                case Q2_K_S -> layer < layers / 8 ? GGMLType.Q4_K : base;
                case Q3_K_M -> layer < layers / 16 ? GGMLType.Q5_K : !falcon || moreBits(layer, layers) ? GGMLType.Q4_K : base;
                case Q3_K_L -> falcon ? GGMLType.Q4_K : GGMLType.Q5_K;
                case Q4_K_M -> !falcon ? (moreBits(layer, layers) ? GGMLType.Q6_K : base)
                        : layer < layers / 16 ? GGMLType.Q6_K : moreBits(layer, layers) ? GGMLType.Q5_K : base;
                case Q5_K_M -> moreBits(layer, layers) ? GGMLType.Q6_K : base;
                case Q4_K_S -> layer < layers / 8 && !falcon ? GGMLType.Q5_K : base;
                // the first eighth's ffn_down goes wrong in IQ4 without an importance matrix, and in Q4_0/Q5_0 even with one
                case IQ4_NL, IQ4_XS -> layer < layers / 8 && !importance ? GGMLType.Q5_K : base;
                case Q4_0 -> layer < layers / 8 && importance ? GGMLType.Q4_1 : base;
                case Q5_0 -> layer < layers / 8 && importance ? GGMLType.Q5_1 : base;
                default -> base;
            };
            default -> base;
        };
    }

    /**
     * What a tensor of {@code cols}-weight rows takes where {@code wanted}'s blocks do not divide them: for llama.cpp's
     * mixes llama-quantize's fallback (Q2_K, Q3_K, TQ1_0 and TQ2_0 to Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0,
     * IQ4_XS to IQ4_NL, blocks of 32, and F16 where those do not divide the rows either); null for gpt-fast's modes,
     * whose tensors then keep their float type.
     */
    GGMLType fallback(GGMLType wanted, long cols) {
        if (!mix) return null;
        GGMLType type = switch (wanted) {
            case Q2_K, Q3_K, TQ1_0, TQ2_0 -> GGMLType.Q4_0;
            case IQ4_XS -> GGMLType.IQ4_NL;
            case Q4_K -> GGMLType.Q5_0;
            case Q5_K -> GGMLType.Q5_1;
            case Q6_K -> GGMLType.Q8_0;
            default -> wanted;
        };
        return cols % type.blockSize == 0 ? type : GGMLType.F16;
    }

    /** The output head's type in llama.cpp's mixes: Q6_K, or Q8_0 in Q8_0's. */
    private GGMLType head() {
        return base == GGMLType.Q8_0 ? GGMLType.Q8_0 : GGMLType.Q6_K;
    }

    /** llama.cpp's {@code use_more_bits}: the first and last eighth of the layers, and every third layer between. */
    static boolean moreBits(int layer, int layers) {
        return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    }
}
