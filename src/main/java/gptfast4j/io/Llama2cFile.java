package gptfast4j.io;

import gptfast4j.tensor.GGMLType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A llama2.c checkpoint ({@code run.c}'s legacy version-0 format): a header of seven i32
 * {@code dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len} (a negative vocab size means the
 * classifier is stored separately), then float32 arrays, each matrix row-major as PyTorch stores {@code [out, in]}:
 * <pre>
 *   token_embedding [vocab, dim] | rms_att [L, dim] | wq [L, dim, dim] | wk [L, kvDim, dim] | wv [L, kvDim, dim]
 *   wo [L, dim, dim] | rms_ffn [L, dim] | w1 [L, hidden, dim] | w2 [L, dim, hidden] | w3 [L, hidden, dim]
 *   rms_final [dim] | freq_cis_real, freq_cis_imag [seq_len, head_size / 2] (unused) | wcls [vocab, dim] if unshared
 * </pre>
 * Tensors are handed out under GGUF names so that one model builder serves all formats.
 */
public record Llama2cFile(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize, int seqLen,
                          boolean sharedClassifier, Map<String, TensorData> tensors) {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public static Llama2cFile read(Path path, MemorySegment file) {
        if (file.byteSize() < 28) throw new ModelFormatException(path + ": truncated file: too short for a llama2.c header");
        int[] h = new int[7];
        for (int i = 0; i < 7; i++) h[i] = file.get(I32, 4L * i);
        if (h[0] == 0x616b3432) throw new ModelFormatException(path + ": llama2.c version-1+ checkpoints are not supported (export with --version 0)");
        int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], seqLen = h[6];
        boolean shared = h[5] > 0;
        int vocab = Math.abs(h[5]); // negative for Integer.MIN_VALUE, refused below
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0
                || dim % heads != 0 || heads % kvHeads != 0 || dim > 1 << 16 || layers > 1024) {
            throw new ModelFormatException(path + ": not a llama2.c checkpoint (bad header " + java.util.Arrays.toString(h) + ")");
        }
        int headSize = dim / heads;
        int kvDim = kvHeads * headSize;
        Map<String, TensorData> t = new LinkedHashMap<>();
        long[] pos = {28};
        java.util.function.BiFunction<String, long[], TensorData> next = (name, shape) -> {
            long n = 1;
            for (long d : shape) n *= d;
            long bytes = n * 4;
            if (pos[0] + bytes > file.byteSize()) {
                throw new ModelFormatException(path + ": truncated file: " + name + " needs bytes up to " + (pos[0] + bytes)
                        + " but the file has " + file.byteSize());
            }
            TensorData td = new TensorData(name, GGMLType.F32, shape, file.asSlice(pos[0], bytes));
            pos[0] += bytes;
            return td;
        };
        TensorData embeddings = next.apply("token_embd.weight", new long[]{dim, vocab});
        t.put("token_embd.weight", embeddings);
        TensorData rmsAtt = next.apply("rms_att", new long[]{dim, layers});
        TensorData wq = next.apply("wq", new long[]{dim, dim, layers});
        TensorData wk = next.apply("wk", new long[]{dim, kvDim, layers});
        TensorData wv = next.apply("wv", new long[]{dim, kvDim, layers});
        TensorData wo = next.apply("wo", new long[]{dim, dim, layers});
        TensorData rmsFfn = next.apply("rms_ffn", new long[]{dim, layers});
        TensorData w1 = next.apply("w1", new long[]{dim, hidden, layers});
        TensorData w2 = next.apply("w2", new long[]{hidden, dim, layers});
        TensorData w3 = next.apply("w3", new long[]{dim, hidden, layers});
        t.put("output_norm.weight", next.apply("output_norm.weight", new long[]{dim}));
        next.apply("freq_cis", new long[]{seqLen, headSize});
        if (!shared) t.put("output.weight", next.apply("output.weight", new long[]{dim, vocab}));
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            t.put(p + "attn_norm.weight", layerSlice(rmsAtt, p + "attn_norm.weight", l));
            t.put(p + "attn_q.weight", layerSlice(wq, p + "attn_q.weight", l));
            t.put(p + "attn_k.weight", layerSlice(wk, p + "attn_k.weight", l));
            t.put(p + "attn_v.weight", layerSlice(wv, p + "attn_v.weight", l));
            t.put(p + "attn_output.weight", layerSlice(wo, p + "attn_output.weight", l));
            t.put(p + "ffn_norm.weight", layerSlice(rmsFfn, p + "ffn_norm.weight", l));
            t.put(p + "ffn_gate.weight", layerSlice(w1, p + "ffn_gate.weight", l));
            t.put(p + "ffn_down.weight", layerSlice(w2, p + "ffn_down.weight", l));
            t.put(p + "ffn_up.weight", layerSlice(w3, p + "ffn_up.weight", l));
        }
        return new Llama2cFile(dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared, t);
    }

    /** Layer {@code l} of a tensor stacked over layers along its last dimension. */
    private static TensorData layerSlice(TensorData stacked, String name, int l) {
        long[] shape = java.util.Arrays.copyOf(stacked.shape(), stacked.shape().length - 1);
        long bytes = stacked.data().byteSize() / stacked.shape()[stacked.shape().length - 1];
        return new TensorData(name, stacked.type(), shape, stacked.data().asSlice(bytes * l, bytes));
    }
}
