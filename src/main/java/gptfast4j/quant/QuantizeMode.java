package gptfast4j.quant;

import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * What {@code gptfast quantize --mode} writes. gpt-fast's int8/int4 modes and the plain K-quant modes put every linear
 * layer and the output head in one type and keep the token embedding as it is. {@code q4_k_m} and {@code q5_k_m} are
 * llama.cpp's Q4_K_M and Q5_K_M mixes, chosen tensor by tensor as {@code llama-quantize} chooses them without an
 * importance matrix (its {@code llama_tensor_get_type} for Llama-family models): the output head in Q6_K, and attn_v and
 * ffn_down in Q6_K in the layers where errors cost most (the first and last eighth, and every third between); the
 * token embedding in the mix's type too, or in Q6_K where it is also the output head.
 */
public enum QuantizeMode {
    INT8("int8", GGMLType.Q8_0, false, GGMLType.Q8_0.fileType()),
    INT4("int4", GGMLType.Q4_0, false, GGMLType.Q4_0.fileType()),
    INT4_ASYM("int4-asym", GGMLType.Q4_1, false, GGMLType.Q4_1.fileType()),
    Q4_K("q4_k", GGMLType.Q4_K, false, GGMLType.Q4_K.fileType()),
    Q5_K("q5_k", GGMLType.Q5_K, false, GGMLType.Q5_K.fileType()),
    Q6_K("q6_k", GGMLType.Q6_K, false, GGMLType.Q6_K.fileType()),
    Q4_K_M("q4_k_m", GGMLType.Q4_K, true, 15), // llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M
    Q5_K_M("q5_k_m", GGMLType.Q5_K, true, 17); // LLAMA_FTYPE_MOSTLY_Q5_K_M

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

    /** The modes' names, for help and errors: "int8, int4, ... or q5_k_m". */
    public static String names() {
        String all = Arrays.stream(values()).map(m -> m.flag).collect(Collectors.joining(", "));
        int last = all.lastIndexOf(", ");
        return all.substring(0, last) + " or " + all.substring(last + 2);
    }

    /**
     * The type for the weight tensor of {@code kind} ({@code attn_v}, {@code ffn_down_exps}, {@code output},
     * {@code token_embd}, ...) in layer {@code layer} (-1 outside the layers) of a model of {@code c}, whose output head is
     * its token embedding where {@code tied}; null where the tensor is kept as it is.
     */
    public GGMLType typeOf(String kind, int layer, Config c, boolean tied) {
        if (!mix) return kind.equals("token_embd") ? null : base;
        boolean moreBits = layer >= 0 && moreBits(layer, c.nLayers());
        boolean eightExperts = c.expertCount() == 8;
        return switch (kind) {
            case "output" -> GGMLType.Q6_K;
            case "token_embd" -> tied ? GGMLType.Q6_K : base;
            case "attn_v" -> {
                GGMLType t = moreBits ? GGMLType.Q6_K : base;
                // a 70B's attn_v is 8 times smaller than its attn_q (8 heads share it): more bits there cost little
                if (t == GGMLType.Q4_K && c.nLayers() == 80 && c.nKvHeads() < c.nHeads()) t = GGMLType.Q5_K;
                yield eightExperts ? GGMLType.Q8_0 : t;
            }
            case "attn_k" -> eightExperts ? GGMLType.Q8_0 : base;
            case "attn_output" -> eightExperts && this == Q4_K_M ? GGMLType.Q5_K : base;
            case "ffn_down", "ffn_down_exps" -> moreBits ? GGMLType.Q6_K : base;
            default -> base;
        };
    }

    /**
     * What a tensor of {@code cols}-weight rows takes where {@code wanted}'s blocks do not divide them: for the K-quant
     * modes llama-quantize's fallback (Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, blocks of 32, and F16 where those do
     * not divide the rows either); null for gpt-fast's modes, whose tensors then keep their float type.
     */
    GGMLType fallback(GGMLType wanted, long cols) {
        if (base.blockSize < 256) return null;
        GGMLType type = switch (wanted) {
            case Q4_K -> GGMLType.Q5_0;
            case Q5_K -> GGMLType.Q5_1;
            case Q6_K -> GGMLType.Q8_0;
            default -> wanted;
        };
        return cols % type.blockSize == 0 ? type : GGMLType.F16;
    }

    /** llama.cpp's {@code use_more_bits}: the first and last eighth of the layers, and every third layer between. */
    static boolean moreBits(int layer, int layers) {
        return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    }
}
