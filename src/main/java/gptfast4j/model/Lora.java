package gptfast4j.model;

import gptfast4j.io.GGUF;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import gptfast4j.io.TensorData;
import gptfast4j.tensor.Tensor;
import gptfast4j.tensor.VectorMath;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * LoRA adapters applied at run time, as llama.cpp applies them ({@code --lora}, {@code --lora-scaled}): an adapter
 * file (llama.cpp's GGUF form, convert_lora_to_gguf.py's) holds, for each adapted matrix W [in, out] of its base
 * model, {@code NAME.lora_a} [in, rank] and {@code NAME.lora_b} [rank, out] (GGML order), and each product W·x
 * becomes {@code W·x + scale · B·(A·x)}, scale the adapter's weight times {@code adapter.lora.alpha / rank} (the
 * weight alone where alpha is 0). A and B are small (rank 8-64), so they are kept as floats, and their products run on
 * the pool. A decoder's attention and dense feed-forward matrices, a mixture's experts (3-D pairs, sliced by expert),
 * the embeddings (llama.cpp's form: a token's row gains {@code scale · B·A[token]}) and the output head can be
 * adapted, and an encoder's projections ({@link #forEncoder}: jina-embeddings-v3's task adapters); an adapter of any
 * other tensor (a shared expert, a decoder's fused projection) is refused by name.
 */
public final class Lora {
    /** Which matrix of a layer a delta adds to, by its GGUF name. */
    enum Target {
        Q("attn_q"), K("attn_k"), V("attn_v"), O("attn_output"), GATE("ffn_gate"), UP("ffn_up"), DOWN("ffn_down"),
        /** A mixture's experts' (3-D lora_a [in, rank, experts] and lora_b [rank, out, experts]). */
        GATE_EXPERTS("ffn_gate_exps"), UP_EXPERTS("ffn_up_exps"), DOWN_EXPERTS("ffn_down_exps");

        final String gguf;

        Target(String gguf) {
            this.gguf = gguf;
        }
    }

    /**
     * One adapter's low-rank update of one matrix; {@code next} another adapter's of the same matrix, or null.
     * {@code alphaScale}: alpha / rank (1 where alpha is 0), times the adapter's weight ({@code adapter}'s entry of
     * the weights in use) in each product.
     */
    static final class Delta {
        /** a: [rank][cols] (A's rows), b: [rank][rows] (B's columns: each a multiple of one added to the output, no sums of lanes). */
        final float[] a, b;
        final int rank, cols, rows, adapter;
        final float alphaScale;
        final Delta next;

        Delta(float[] a, float[] b, int rank, int cols, int rows, int adapter, float alphaScale, Delta next) {
            this.a = a;
            this.b = b;
            this.rank = rank;
            this.cols = cols;
            this.rows = rows;
            this.adapter = adapter;
            this.alphaScale = alphaScale;
            this.next = next;
        }
    }

    /** [layer][target], null where no adapter changes that matrix; for an expert target, the chain of expert 0. */
    private final Delta[][] layers;
    /** [layer][target - GATE_EXPERTS][expert]: the experts' chains; null where the layer's experts are not adapted. */
    private final Delta[][][] experts;
    /** An encoder's deltas, by the matrix (a fused one's part) they add to; empty for a decoder's. */
    private final Map<Tensor, Delta> byMatrix = new java.util.IdentityHashMap<>();
    /**
     * The output head's; and the embeddings' (llama.cpp's form: lora_a [rank, vocab], a row per token, lora_b [rank,
     * dim], so that a token's row gains scale · B · A[token]; kept here with a: [vocab][rank], b: [rank][dim]).
     */
    private final Delta output, embeddings;
    private final String description;
    /** Each adapter's file, in the order given (its id). */
    private final List<Path> files;
    /** Each adapter's weight where a state gives none of its own ({@link Llama.State#loraWeights}): as loaded, or as {@link #setWeights} set them. */
    private volatile float[] weights;
    /** Per calling thread: its products' task, bound once (no allocation per product). */
    private final ThreadLocal<Products> products = ThreadLocal.withInitial(Products::new);

    /**
     * One delta's products for a batch, on the pool: A·x of each token by ranges of A's rows, then B's columns added
     * to the outputs by ranges of B's rows, so that the threads share the adapter's reads.
     */
    private static final class Products implements gptfast4j.tensor.Parallel.RangeTask {
        float[] ax = new float[0], in, out;
        float[] scales = new float[0];
        Delta d;
        int n, inStride, outStride;
        /** Whether the task's ranges are B's rows (else A's). */
        boolean rows;

        @Override
        public void run(int start, int end) {
            for (int t = 0; t < n; t++) {
                if (scales[t] == 0f) continue;
                if (rows) {
                    for (int r = 0; r < d.rank; r++) VectorMath.axpy(ax[t * d.rank + r], d.b, r * d.rows + start, out, t * outStride + start, end - start);
                } else {
                    for (int r = start; r < end; r++) ax[t * d.rank + r] = scales[t] * VectorMath.dot(d.a, r * d.cols, in, t * inStride, d.cols);
                }
            }
        }
    }

    private Lora(Delta[][] layers, Delta[][][] experts, Delta output, Delta embeddings, String description, List<Path> files, float[] weights) {
        this.layers = layers;
        this.experts = experts;
        this.output = output;
        this.embeddings = embeddings;
        this.description = description;
        this.files = List.copyOf(files);
        this.weights = weights;
    }

    /** The adapters' files, by id. */
    public List<Path> files() {
        return files;
    }

    /** Each adapter's weight in products whose state gives none of its own (a copy). */
    public float[] weights() {
        return weights.clone();
    }

    /** Sets the weights of {@link #weights()} (llama.cpp server's POST /lora-adapters): one per adapter, finite. */
    public void setWeights(float[] weights) {
        if (weights.length != files.size()) throw new IllegalArgumentException(files.size() + " adapters but " + weights.length + " weights");
        for (float w : weights) if (!Float.isFinite(w)) throw new IllegalArgumentException("an adapter's scale must be finite, got " + w);
        this.weights = weights.clone();
    }

    /** What was applied, for a line on stderr: each file with its weight as loaded. */
    public String description() {
        return description;
    }

    private static final Pattern LAYER_MATRIX = Pattern.compile("blk\\.(\\d+)\\.([a-z_]+)\\.weight");

    /**
     * The adapters {@code files} with weights {@code scales} for {@code model}: each must be a LoRA adapter of the
     * model's architecture, every tensor a pair of a matrix the model has, of its shape.
     */
    public static Lora load(Llama model, List<Path> files, List<Float> scales) {
        Config c = model.config;
        Weights w = model.weights();
        Delta[][] layers = new Delta[c.nLayers()][Target.values().length];
        Delta[][][] experts = new Delta[c.nLayers()][3][];
        Delta output = null, embeddings = null;
        StringBuilder description = new StringBuilder();
        for (int f = 0; f < files.size(); f++) {
            Path path = files.get(f);
            float weight = scales.get(f);
            Adapter adapter = Adapter.read(path, c.architecture());
            float alpha = adapter.alpha();
            Map<String, TensorData[]> pairs = adapter.pairs();
            for (var e : pairs.entrySet()) {
                String name = e.getKey();
                TensorData a = e.getValue()[0], b = e.getValue()[1];
                if (name.equals("output.weight")) {
                    output = delta(path, name, w.output(), a, b, alpha, f, output, 0);
                    continue;
                }
                if (name.equals("token_embd.weight")) {
                    embeddings = embeddingDelta(path, name, w.tokEmbeddings(), a, b, alpha, f, embeddings);
                    continue;
                }
                Matcher m = LAYER_MATRIX.matcher(name);
                Target target = m.matches() ? Arrays.stream(Target.values()).filter(t -> t.gguf.equals(m.group(2))).findFirst().orElse(null) : null;
                int layer = target == null ? -1 : Integer.parseInt(m.group(1));
                if (target == null || layer >= c.nLayers()) {
                    throw new ModelFormatException(path + ": a LoRA of '" + name + "', which this version does not adapt (the attention's, the dense feed-forward's and the experts' matrices, token_embd.weight and output.weight only)");
                }
                Layer l = w.layers()[layer];
                if (l.latent() != null) throw new ModelFormatException(path + ": a LoRA of '" + name + "', a latent attention's, which this version does not adapt");
                // an LFM2 convolution layer's wq, wk, wv and wo are parts of shortconv's in_proj and its out_proj, no attn_* tensors
                // a delta net's wq, wk and wo are attn_qkv, attn_gate and ssm_out; a gated-query attention's wq is twice as tall as its queries
                if ((l.recurrent() != null && target.ordinal() <= Target.O.ordinal() || l.queryGates() && target == Target.Q)) {
                    throw new ModelFormatException(path + ": a LoRA of '" + name + "', which this version does not adapt in this model's layers (" + model.config.architecture() + ")");
                }
                if (l.shortConv() != null && target.ordinal() <= Target.O.ordinal()) throw new ModelFormatException(path + ": a LoRA of '" + name + "', which the model does not have (a convolution layer)");
                // Nemotron-H's blocks are a mixer's or a feed-forward's alone
                if (l.wo() == null && target.ordinal() <= Target.O.ordinal() || l.feedForward() == null && target.ordinal() > Target.O.ordinal()) {
                    throw new ModelFormatException(path + ": a LoRA of '" + name + "', which the model does not have (layer " + layer + " is " + (l.wo() == null ? "a feed-forward" : "a mixer") + " alone)");
                }
                if (target.ordinal() >= Target.GATE_EXPERTS.ordinal()) {
                    if (!(l.feedForward() instanceof FeedForward.MoE moe)) throw new ModelFormatException(path + ": a LoRA of '" + name + "', which the model does not have");
                    Tensor[] bases = target == Target.GATE_EXPERTS ? moe.w1() : target == Target.UP_EXPERTS ? moe.w3() : moe.w2();
                    if (bases == null) throw new ModelFormatException(path + ": a LoRA of '" + name + "', which the model does not have (its experts have no gate)");
                    int x = target.ordinal() - Target.GATE_EXPERTS.ordinal();
                    if (experts[layer][x] == null) experts[layer][x] = new Delta[bases.length];
                    long[] as = a.shape(), bs = b.shape();
                    if (as.length != 3 || bs.length != 3 || as[2] != bases.length || bs[2] != bases.length) {
                        throw new ModelFormatException(path + ": '" + name + "' has lora_a " + a.shapeString() + " and lora_b " + b.shapeString() + ", not one pair per each of the model's " + bases.length + " experts");
                    }
                    for (int expert = 0; expert < bases.length; expert++) {
                        experts[layer][x][expert] = delta(path, name, bases[expert], a, b, alpha, f, experts[layer][x][expert], expert);
                    }
                    continue;
                }
                Tensor base = switch (target) {
                    case Q -> l.wq();
                    case K -> l.wk();
                    case V -> l.wv();
                    case O -> l.wo();
                    case GATE, UP, DOWN -> l.feedForward() instanceof FeedForward.Dense d ? (target == Target.GATE ? d.w1() : target == Target.UP ? d.w3() : d.w2()) : null;
                    default -> throw new IllegalStateException(target.name());
                };
                if (base == null) throw new ModelFormatException(path + ": a LoRA of '" + name + "', which the model does not have");
                layers[layer][target.ordinal()] = delta(path, name, base, a, b, alpha, f, layers[layer][target.ordinal()], 0);
            }
            description.append(description.isEmpty() ? "" : ", ").append(path.getFileName()).append(" (").append(pairs.size()).append(" matrices")
                    .append(weight != 1f ? ", scale " + weight : "").append(")");
        }
        float[] weights = new float[files.size()];
        for (int f = 0; f < weights.length; f++) weights[f] = scales.get(f);
        return new Lora(layers, experts, output, embeddings, description.toString(), files, weights);
    }

    /**
     * The adapters {@code files} for an encoder of {@code architecture}: {@code matrices} its adaptable matrices by
     * GGUF name, each the parts a fused one is split into in its rows' order (jina-embeddings-v3's task adapters:
     * {@code attn_qkv}'s pair split likewise), and {@code tokenEmbeddings} its embeddings; an adapter of
     * {@code token_types} is read and left out, as llama.cpp leaves it.
     */
    public static Lora forEncoder(String architecture, int layers, Map<String, Tensor[]> matrices, Tensor tokenEmbeddings, List<Path> files, List<Float> scales) {
        Delta embeddings = null;
        Map<Tensor, Delta> byMatrix = new java.util.IdentityHashMap<>();
        StringBuilder description = new StringBuilder();
        for (int f = 0; f < files.size(); f++) {
            Path path = files.get(f);
            Adapter adapter = Adapter.read(path, architecture);
            for (var e : adapter.pairs().entrySet()) {
                String name = e.getKey();
                TensorData a = e.getValue()[0], b = e.getValue()[1];
                if (name.equals("token_embd.weight")) {
                    embeddings = embeddingDelta(path, name, tokenEmbeddings, a, b, adapter.alpha(), f, embeddings);
                    continue;
                }
                if (name.equals("token_types.weight")) continue;
                Tensor[] parts = matrices.get(name);
                if (parts == null) throw new ModelFormatException(path + ": a LoRA of '" + name + "', which this version does not adapt in a " + architecture + " model");
                long total = 0;
                for (Tensor part : parts) total += part.rows;
                long[] bs = b.shape();
                if (bs.length != 2 || bs[1] != total) {
                    throw new ModelFormatException(path + ": '" + name + "' has lora_b " + b.shapeString() + ", which does not fit the model's " + total + " rows (an adapter of another model?)");
                }
                long first = 0;
                for (Tensor part : parts) {
                    byMatrix.put(part, delta(path, name, part, a, b, adapter.alpha(), f, byMatrix.get(part), 0, first));
                    first += part.rows;
                }
            }
            description.append(description.isEmpty() ? "" : ", ").append(path.getFileName()).append(" (").append(adapter.pairs().size()).append(" matrices")
                    .append(scales.get(f) != 1f ? ", scale " + scales.get(f) : "").append(")");
        }
        float[] weights = new float[files.size()];
        for (int f = 0; f < weights.length; f++) weights[f] = scales.get(f);
        Lora lora = new Lora(new Delta[layers][0], new Delta[layers][3][], null, embeddings, description.toString(), files, weights);
        lora.byMatrix.putAll(byMatrix);
        return lora;
    }

    /** An adapter file's LoRA pairs by the adapted tensor's name ({@code [lora_a, lora_b]}) and its alpha. */
    private record Adapter(Map<String, TensorData[]> pairs, float alpha) {
        /** {@code path}'s pairs, checked to be a LoRA adapter of a model of {@code architecture}, each pair whole. */
        static Adapter read(Path path, String architecture) {
            GGUF gguf = GGUF.read(path);
            Metadata md = gguf.metadata();
            String type = md.getString("general.type", "");
            if (!type.equals("adapter")) throw new ModelFormatException(path + ": not a LoRA adapter (general.type is '" + type + "', not 'adapter')");
            String adapterType = md.getString("adapter.type", "");
            if (!adapterType.equals("lora")) throw new ModelFormatException(path + ": adapter.type is '" + adapterType + "'; only 'lora' adapters are read");
            String arch = md.getString("general.architecture", "");
            if (!arch.equals(architecture)) throw new ModelFormatException(path + ": an adapter for a " + arch + " model, but the model is a " + architecture + " one");
            if (md.has("adapter.alora.invocation_tokens")) throw new ModelFormatException(path + ": an activated LoRA (aLoRA), which this version does not apply");
            Map<String, TensorData[]> pairs = new HashMap<>();
            for (TensorData t : gguf.tensors().values()) {
                String name = t.name();
                int part = name.endsWith(".lora_a") ? 0 : name.endsWith(".lora_b") ? 1 : -1;
                if (part < 0) {
                    if (name.endsWith("_norm.weight")) continue; // as llama.cpp: an adapter's norms are left out
                    throw new ModelFormatException(path + ": tensor '" + name + "' is neither a LoRA's lora_a nor its lora_b");
                }
                pairs.computeIfAbsent(name.substring(0, name.length() - ".lora_a".length()), k -> new TensorData[2])[part] = t;
            }
            for (var e : pairs.entrySet()) {
                if (e.getValue()[0] == null || e.getValue()[1] == null) {
                    throw new ModelFormatException(path + ": '" + e.getKey() + "' has lora_" + (e.getValue()[0] == null ? "b but no lora_a" : "a but no lora_b"));
                }
            }
            return new Adapter(pairs, md.getFloat("adapter.lora.alpha", 0f));
        }
    }

    /** An encoder's delta of {@code matrix} (a fused one's part), or null. */
    Delta of(Tensor matrix) {
        return byMatrix.get(matrix);
    }

    /**
     * {@code a} [cols, rank] and {@code b} [rank, rows] of {@code base} [cols, rows], as floats; of a mixture, their
     * slices of expert {@code expert} ([cols, rank, experts], [rank, rows, experts]).
     */
    private static Delta delta(Path path, String name, Tensor base, TensorData a, TensorData b, float alpha, int adapter, Delta next, int expert) {
        long[] as = a.shape(), bs = b.shape();
        if (as.length < 2 || bs.length < 2 || as[0] != base.cols || bs[1] != base.rows) {
            throw new ModelFormatException(path + ": '" + name + "' has lora_a " + a.shapeString() + " and lora_b " + b.shapeString() + ", which do not fit the model's "
                    + "[" + base.cols + ", " + base.rows + "] (an adapter of another model?)");
        }
        return delta(path, name, base, a, b, alpha, adapter, next, (long) expert * as[1], (long) expert * base.rows);
    }

    /**
     * {@code base}'s delta from rows {@code aFirst ..} of {@code a} (its rank rows) and rows {@code bFirst ..} of {@code b}
     * (base's rows: an expert's slice, or a fused matrix's part), as floats.
     */
    private static Delta delta(Path path, String name, Tensor base, TensorData a, TensorData b, float alpha, int adapter, Delta next, long aFirst, long bFirst) {
        long[] as = a.shape(), bs = b.shape();
        if (as[0] != base.cols) throw new ModelFormatException(path + ": '" + name + "' has lora_a " + a.shapeString() + ", whose rows are not the model's " + base.cols + " wide");
        if (as[1] != bs[0]) throw new ModelFormatException(path + ": '" + name + "' has lora_a " + a.shapeString() + " and lora_b " + b.shapeString() + " of different ranks");
        int rank = Math.toIntExact(as[1]), cols = base.cols, rows = Math.toIntExact(base.rows);
        float[] af = new float[rank * cols], bf = new float[rows * rank];
        Tensor at = Tensor.of(a), bt = Tensor.of(b);
        for (int r = 0; r < rank; r++) at.dequantizeRow(aFirst + r, af, r * cols);
        float[] row = new float[rank];
        for (int r = 0; r < rows; r++) {
            bt.dequantizeRow(bFirst + r, row, 0);
            for (int k = 0; k < rank; k++) bf[k * rows + r] = row[k];
        }
        return new Delta(af, bf, rank, cols, rows, adapter, alpha != 0 ? alpha / rank : 1f, next);
    }

    /** The embeddings' delta: {@code a} [rank, vocab] (a row per token), {@code b} [rank, dim], of {@code table} [dim, vocab]. */
    private static Delta embeddingDelta(Path path, String name, Tensor table, TensorData a, TensorData b, float alpha, int adapter, Delta next) {
        long[] as = a.shape(), bs = b.shape();
        if (as.length != 2 || bs.length != 2 || as[1] != table.rows || bs[1] != table.cols || as[0] != bs[0]) {
            throw new ModelFormatException(path + ": '" + name + "' has lora_a " + a.shapeString() + " and lora_b " + b.shapeString() + ", which do not fit the model's "
                    + "[" + table.cols + ", " + table.rows + "] (an adapter of another model?)");
        }
        int rank = Math.toIntExact(as[0]), vocab = Math.toIntExact(table.rows), dim = table.cols;
        float[] af = new float[vocab * rank], bf = new float[rank * dim], row = new float[rank];
        Tensor at = Tensor.of(a), bt = Tensor.of(b);
        for (int t = 0; t < vocab; t++) at.dequantizeRow(t, af, t * rank);
        for (int i = 0; i < dim; i++) {
            bt.dequantizeRow(i, row, 0);
            for (int k = 0; k < rank; k++) bf[k * dim + i] = row[k];
        }
        return new Delta(af, bf, rank, rank, dim, adapter, alpha != 0 ? alpha / rank : 1f, next);
    }

    /** Adds the embeddings' deltas of {@code token} to its row {@code x[offset .. + dim)}, the batch's token {@code t}. */
    void addEmbedding(int token, float[] x, int offset, int t, Llama.State s) {
        float[] w = s == null ? null : s.perToken ? s.tokenLora[t] : s.loraWeights;
        for (Delta d = embeddings; d != null; d = d.next) {
            float scale = d.alphaScale * (w != null ? w[d.adapter] : weights[d.adapter]);
            if (scale == 0f) continue;
            for (int r = 0; r < d.rank; r++) VectorMath.axpy(scale * d.a[token * d.rank + r], d.b, r * d.rows, x, offset, d.rows);
        }
    }

    Delta delta(int layer, Target target) {
        return layers[layer][target.ordinal()];
    }

    /** Expert {@code expert}'s delta of layer {@code layer}'s {@code target} (an expert target), or null. */
    Delta expert(int layer, Target target, int expert) {
        Delta[] chains = experts[layer][target.ordinal() - Target.GATE_EXPERTS.ordinal()];
        return chains == null ? null : chains[expert];
    }

    Delta output() {
        return output;
    }

    /**
     * Adds each delta of the chain to the {@code n} tokens' outputs: {@code out[t * outStride + row] += scale · B·(A·x)}
     * for {@code x = in[t * inStride ..]}, scale the delta's alpha / rank times its adapter's weight for token t:
     * {@code s}'s (each token's own sequence's in a step of several, {@link Llama.State#tokenLora}), or {@link #weights}.
     */
    void add(Delta d, float[] in, int inStride, int n, float[] out, int outStride, Llama.State s) {
        add(d, in, inStride, n, out, outStride, s, null);
    }

    /** {@link #add(Delta, float[], int, int, float[], int, Llama.State)} of rows gathered from the batch: row i is token {@code rowToken[i]}'s. */
    void add(Delta d, float[] in, int inStride, int n, float[] out, int outStride, Llama.State s, int[] rowToken) {
        float[] global = weights;
        Products p = products.get();
        for (; d != null; d = d.next) {
            if (p.ax.length < n * d.rank) p.ax = new float[n * d.rank];
            if (p.scales.length < n) p.scales = new float[n];
            boolean any = false;
            for (int t = 0; t < n; t++) {
                float[] w = s == null ? null : s.perToken ? s.tokenLora[rowToken == null ? t : rowToken[t]] : s.loraWeights;
                any |= (p.scales[t] = d.alphaScale * (w != null ? w[d.adapter] : global[d.adapter])) != 0f;
            }
            if (!any) continue;
            p.d = d;
            p.n = n;
            p.in = in;
            p.inStride = inStride;
            p.out = out;
            p.outStride = outStride;
            p.rows = false;
            gptfast4j.tensor.Parallel.run(d.rank, 1, p);
            p.rows = true;
            gptfast4j.tensor.Parallel.run(d.rows, 64, p);
            p.in = p.out = null; // the caller's
        }
    }
}
