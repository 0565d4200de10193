package gptfast4j.model;

import gptfast4j.io.GGUF;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import gptfast4j.io.TensorData;
import gptfast4j.tensor.Parallel;
import gptfast4j.tensor.Tensor;
import gptfast4j.tensor.VectorMath;
import gptfast4j.tokenizer.Tokenizer;
import gptfast4j.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A BERT encoder (GGUF architecture {@code bert}: BERT, MiniLM, bge, e5, gte and their rerankers, XLM-RoBERTa's bge-m3
 * and multilingual-e5; {@code nomic-bert}: nomic-embed-text; {@code jina-bert-v2}: jina-embeddings-v2), which makes a
 * text's embedding rather than its continuation, as llama.cpp's graph runs it. A text runs whole, in one pass, every
 * token attending to every other (no cache, no mask), framed as its vocabulary frames it ({@link Frame}: {@code [CLS]
 * text [SEP]}, XLM-RoBERTa's {@code <s> text </s>}):
 * <pre>
 *   x[n, dim] = LayerNorm(token_embd[token] + token_types[0] + position_embd[position])        (token_embd_norm)
 *   per layer:  x = LayerNorm(x + attn_output · attention(attn_q · x, attn_k · x, attn_v · x))  (attn_output_norm)
 *               x = LayerNorm(x + ffn_down · gelu(ffn_up · x))                                  (layer_output_norm)
 * </pre>
 * every projection with its bias where the file has one, every LayerNorm with its weight and bias; the last layer's x
 * are the hidden states that {@link Pooling} pools. nomic-bert's has no learned positions but RoPE on the queries and
 * keys (a head's halves), its feed-forward SwiGLU ({@code ffn_down · (silu(ffn_gate · x) * ffn_up · x)}), its query,
 * key and value projections one {@code attn_qkv}; nomic-bert-moe's (nomic-embed-text v2) RoPE and BERT's ungated
 * GELU, every other layer's feed-forward a mixture of experts instead (each token's two likeliest of the router's
 * softmax, weighted by their probabilities as they are, each expert {@code down · gelu(up · x)}); jina-bert-v3's
 * (jina-embeddings-v3, without its task adapters) BERT's blocks with RoPE. jina-bert-v2's has neither positions: ALiBi's biases on the scores
 * ({@code -slope * |i - j|}, each head's slope as ggml's with a maximum bias of 8), LayerNorms of the queries and keys
 * where the file has them, a second norm of the attention's output with the layer's input added again
 * ({@code attn_norm_2}), and GeGLU, its gate the first half of a fused {@code ffn_up} or its own {@code ffn_gate}. A
 * reranker's head ({@code cls} and {@code cls.output}) scores the first token's state: {@code cls.output · tanh(cls ·
 * x[0])}. ModernBERT's ({@code modern-bert}: gte-modernbert, modernbert-embed, granite-embedding R2) normalizes before
 * rather than after (LayerNorms without biases: {@code attn_norm}, none in its first layer, {@code ffn_norm}, and
 * {@code output_norm} last), turns every layer's queries and keys by RoPE, two of every three layers attending only to
 * the tokens within half its window on either side with a RoPE base of their own, and gates GeGLU (or SwiGLU, as its
 * file's {@code hidden_activation} says) with a fused {@code ffn_up}; no biases.
 */
public final class Encoder {
    /** The GGUF architectures this class runs. */
    public static final Set<String> ARCHITECTURES = Set.of("bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert");

    /** Whether {@code md} is an encoder's file, which {@link Checkpoint} does not load. */
    public static boolean isEncoder(Metadata md) {
        return ARCHITECTURES.contains(md.getString("general.architecture", ""));
    }

    /** Whether {@code path} is a GGUF file of an encoder (false for any other file, which {@link Checkpoint} then reads or refuses). */
    public static boolean isEncoderFile(Path path) {
        if (!java.nio.file.Files.isRegularFile(path)) return false;
        try {
            java.lang.foreign.MemorySegment file = gptfast4j.io.Mapped.map(path);
            return GGUF.hasMagic(file) && isEncoder(GGUF.read(path, file).metadata());
        } catch (RuntimeException e) {
            return false;
        }
    }

    /**
     * @param ropeTheta    RoPE's base (nomic-bert's); 0 where the positions are learned (BERT's {@code position_embd}) or ALiBi's
     * @param maxAlibiBias ALiBi's maximum bias (jina-bert-v2's 8, as llama.cpp sets it); 0 for none
     * @param siluGate     whether a gated feed-forward's gate is SiLU (nomic-bert's SwiGLU) rather than GELU (jina-bert-v2's GeGLU)
     * @param preNorm      whether the blocks normalize their inputs (ModernBERT's) rather than their residual sums
     * @param window       the sliding layers' window (ModernBERT's: a query sees the keys within half of it either side); 0 for none
     * @param slidingRopeTheta the sliding layers' RoPE base
     * @param experts      a mixture's experts (nomic-bert-moe's); 0 without mixtures
     * @param expertsUsed  how many of them each token runs
     */
    public record Config(String architecture, int dim, int layers, int heads, int hiddenDim, int contextLength, int vocabSize, float normEps, float ropeTheta,
                         float maxAlibiBias, boolean siluGate, boolean preNorm, int window, int slidingPattern, float slidingRopeTheta, int experts, int expertsUsed) {
        public int headDim() {
            return dim / heads;
        }

        /** Whether layer {@code l} attends within the window: all but every {@code slidingPattern}th from the first, as llama.cpp's pattern. */
        public boolean sliding(int l) {
            return window > 0 && l % slidingPattern != 0;
        }
    }

    /** {@code y = weight · x + bias}: weight [cols, rows] in GGUF's order, bias [rows] (null where the file has none). */
    record Projection(Tensor weight, float[] bias) {
        /** {@code out[t] = weight · x[t] + bias} for the {@code n} tokens of {@code x}, each output {@code rows} wide. */
        void apply(float[] x, int n, float[] out) {
            int rows = (int) weight.rows;
            weight.matmul(x, n, out, rows, false);
            if (bias != null) for (int t = 0; t < n; t++) VectorMath.add(out, t * rows, bias, 0, rows);
        }
    }

    /** A LayerNorm's weight and bias (null: none, ModernBERT's). */
    record Norm(float[] weight, float[] bias) {
        void apply(float[] x, int offset, int n, float eps) {
            apply(x, offset, x, offset, n, eps);
        }

        void apply(float[] out, int outOffset, float[] x, int xOffset, int n, float eps) {
            VectorMath.layernorm(out, outOffset, x, xOffset, weight, n, eps);
            if (bias != null) VectorMath.add(out, outOffset, bias, 0, n);
        }
    }

    /**
     * @param qNorm      the queries' LayerNorm (jina-bert-v2's), null for none; {@code kNorm} the keys'
     * @param secondNorm jina-bert-v2's {@code attn_norm_2}, after the attention's with the layer's input added again; null for none
     * @param gate       SwiGLU's or GeGLU's gate (nomic-bert's, jina-bert-v2's); null where the feed-forward is an ungated GELU (BERT's)
     * @param experts    the layer's mixture of experts in place of up and down (nomic-bert-moe's); null for a dense layer
     */
    record Block(Projection q, Projection k, Projection v, Norm qNorm, Norm kNorm, Projection output, Norm attentionNorm, Norm secondNorm,
                 Projection gate, Projection up, Projection down, Norm outputNorm, Experts experts) {
    }

    /** A mixture's router ({@code ffn_gate_inp}, [dim, experts]) and each expert's up [dim, hidden] and down [hidden, dim] (views of the file's 3-D tensors). */
    record Experts(Tensor router, Tensor[] up, Tensor[] down) {
    }

    public final Config config;
    private final Tensor tokenEmbeddings;
    /** Learned positions (BERT's) or RoPE (nomic-bert's, ModernBERT's), or neither (jina-bert-v2's ALiBi); ModernBERT's sliding layers' RoPE apart. */
    private final Tensor positionEmbeddings;
    private final Rope rope, slidingRope;
    /** ModernBERT's norm of the last layer's output; null where the blocks normalize after. */
    private final Norm outputNorm;
    /** The first token type's row, which llama.cpp adds to every token (sentence A); null where the file has no types. */
    private final float[] tokenType;
    private final Norm embeddingNorm;
    private final Block[] blocks;
    /** A reranker's dense layer ({@code cls}, before tanh) and its output ({@code cls.output}); null where absent. */
    private final Projection classifierDense, classifierOutput;
    private final Tokenizer tokenizer;
    /** How a text is framed in tokens: {@code first text last}, a pair {@code first query between document last}. */
    private final Frame frame;
    private final Metadata metadata;
    private final Path path;
    private final Map<String, TensorData> tensors;
    /** The matrices a LoRA adapter may change ({@link Reader#adaptable}). */
    private final Map<String, Tensor[]> adaptable;
    /** LoRA adapters applied to every pass ({@link #adapt}); null for none. */
    private volatile Lora lora;

    private Encoder(Config config, Tensor tokenEmbeddings, Tensor positionEmbeddings, Rope rope, Rope slidingRope, Norm outputNorm, float[] tokenType, Norm embeddingNorm, Block[] blocks,
                    Projection classifierDense, Projection classifierOutput, Tokenizer tokenizer, Frame frame, Metadata metadata,
                    Path path, Map<String, TensorData> tensors, Map<String, Tensor[]> adaptable) {
        this.adaptable = adaptable;
        this.config = config;
        this.tokenEmbeddings = tokenEmbeddings;
        this.positionEmbeddings = positionEmbeddings;
        this.rope = rope;
        this.slidingRope = slidingRope;
        this.outputNorm = outputNorm;
        this.tokenType = tokenType;
        this.embeddingNorm = embeddingNorm;
        this.blocks = blocks;
        this.classifierDense = classifierDense;
        this.classifierOutput = classifierOutput;
        this.tokenizer = tokenizer;
        this.frame = frame;
        this.metadata = metadata;
        this.path = path;
        this.tensors = tensors;
    }

    public Path path() {
        return path;
    }

    /**
     * Applies LoRA adapters (llama.cpp's GGUF form, jina-embeddings-v3's task adapters among them: {@link
     * Lora#forEncoder}) with weights {@code scales} to every later pass; none where {@code files} is empty.
     */
    public Lora adapt(List<Path> files, List<Float> scales) {
        Lora l = files.isEmpty() ? null : Lora.forEncoder(config.architecture(), blocks.length, adaptable, tokenEmbeddings, files, scales);
        this.lora = l;
        return l;
    }

    /** {@code out += } the LoRA adapters' change of {@code p}'s product of the {@code n} rows of {@code in}. */
    private void adapted(Projection p, float[] in, int n, float[] out) {
        Lora l = lora;
        if (l != null && p != null) l.add(l.of(p.weight()), in, p.weight().cols, n, out, (int) p.weight().rows, null);
    }

    /** Every tensor of the file, under its GGUF name. */
    public Map<String, TensorData> tensors() {
        return tensors;
    }

    /**
     * The special tokens around a text, as llama.cpp adds them: a WordPiece vocabulary's {@code [CLS] text [SEP]}
     * always (BOS's id, else {@code cls_token_id}, else 101; the separator's, else 102), a pair's {@code [SEP]} between;
     * another's BOS and EOS where the file adds them ({@code add_bos_token}, {@code add_eos_token}: XLM-RoBERTa's
     * {@code <s> text </s>}), EOS and the separator ({@code add_sep_token}) between a pair's texts, as llama-embedding
     * joins them.
     */
    record Frame(int[] first, int[] between, int[] last) {
        static Frame of(Metadata md, Tokenizer tokenizer, Path path) {
            Frame f;
            if (tokenizer.kind() == Tokenizer.Kind.WORDPIECE) {
                int cls = md.getInt("tokenizer.ggml.bos_token_id", md.getInt("tokenizer.ggml.cls_token_id", 101));
                int sep = md.getInt("tokenizer.ggml.seperator_token_id", 102);
                f = new Frame(new int[]{cls}, new int[]{sep}, new int[]{sep});
            } else {
                boolean bos = md.getBool("tokenizer.ggml.add_bos_token", false), eos = md.getBool("tokenizer.ggml.add_eos_token", true),
                        sep = md.getBool("tokenizer.ggml.add_sep_token", false);
                int eosId = md.getInt("tokenizer.ggml.eos_token_id", -1), sepId = md.getInt("tokenizer.ggml.seperator_token_id", -1);
                int[] first = bos ? new int[]{md.getInt("tokenizer.ggml.bos_token_id", -1)} : new int[0], last = eos ? new int[]{eosId} : new int[0];
                int[] between = java.util.stream.IntStream.concat(java.util.Arrays.stream(last), sep ? java.util.stream.IntStream.of(sepId) : java.util.stream.IntStream.empty()).toArray();
                f = new Frame(first, between, last);
            }
            for (int[] ids : new int[][]{f.first, f.between, f.last}) {
                for (int id : ids) if (id < 0 || id >= tokenizer.vocabSize()) throw new ModelFormatException(path + ": a special token around the texts (" + id + ") outside the vocabulary");
            }
            return f;
        }

        int[] around(int[]... parts) {
            java.util.stream.IntStream.Builder b = java.util.stream.IntStream.builder();
            for (int id : first) b.add(id);
            for (int i = 0; i < parts.length; i++) {
                if (i > 0) for (int id : between) b.add(id);
                for (int id : parts[i]) b.add(id);
            }
            for (int id : last) b.add(id);
            return b.build().toArray();
        }
    }

    /** How a text is framed, in its tokens' texts: {@code [CLS] text [SEP]} in BERT's vocabularies. */
    public String frame() {
        StringBuilder b = new StringBuilder();
        for (int id : frame.first()) b.append(tokenizer.piece(id)).append(' ');
        b.append("text");
        for (int id : frame.last()) b.append(' ').append(tokenizer.piece(id));
        return b.toString();
    }

    /** The number of labels a reranker's head scores; 0 where there is none. */
    public int labels() {
        return classifierOutput == null ? 0 : (int) classifierOutput.weight().rows;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public Metadata metadata() {
        return metadata;
    }

    /** Whether this encoder has a reranker's head, which rank pooling needs. */
    public boolean ranks() {
        return classifierOutput != null;
    }

    /**
     * A text's tokens as llama.cpp's embeddings take them: the text's tokens (special tokens' text as those tokens)
     * framed as the vocabulary frames them ({@link Frame}: {@code [CLS] text [SEP]}); at most the context length.
     */
    public int[] tokens(String text) {
        return frame.around(tokenizer.encodeWithSpecials(text));
    }

    /**
     * The tokens a reranker scores {@code document} by against {@code query}: {@code [CLS] query [SEP] document [SEP]},
     * BERT's pair of texts (as llama-embedding makes it of a line with its separator, {@link Frame}; llama-server leaves
     * out the last [SEP]), both texts the first token type, as llama.cpp runs every token (Hugging Face's
     * cross-encoders give the document the second).
     */
    public int[] pair(String query, String document) {
        return frame.around(tokenizer.encodeWithSpecials(query), tokenizer.encodeWithSpecials(document));
    }

    /** The encoder of a GGUF file whose architecture {@link #isEncoder} is. */
    public static Encoder load(Path path) {
        GGUF gguf = GGUF.read(path);
        Metadata md = gguf.metadata();
        String arch = md.getString("general.architecture", "");
        if (!ARCHITECTURES.contains(arch)) throw new ModelFormatException(path + ": not an encoder ('" + arch + "'; encoders: " + String.join(", ", ARCHITECTURES) + ")");
        Tokenizer tokenizer = Tokenizers.fromGGUF(path, md);
        int dim = required(md, path, arch + ".embedding_length"), heads = required(md, path, arch + ".attention.head_count");
        if (md.getInt(arch + ".attention.head_count_kv", heads) != heads) throw new ModelFormatException(path + ": an encoder whose keys and values have fewer heads than its queries is not supported");
        if (heads <= 0 || dim % heads != 0) throw new ModelFormatException(path + ": " + heads + " heads do not divide the width " + dim);
        if (!md.has(arch + ".attention.layer_norm_epsilon")) throw new ModelFormatException(path + ": missing metadata " + arch + ".attention.layer_norm_epsilon");
        Reader r = new Reader(path, gguf.tensors());
        TensorData embeddings = r.tensor("token_embd.weight");
        if (embeddings.shape().length != 2 || embeddings.shape()[0] != dim) throw r.shape("token_embd.weight", embeddings, "[" + dim + ", vocabulary]");
        int vocab = (int) embeddings.shape()[1];
        int context = required(md, path, arch + ".context_length");
        boolean modern = arch.equals("modern-bert"), moe = arch.equals("nomic-bert-moe"), rotary = arch.equals("nomic-bert") || moe || arch.equals("jina-bert-v3") || modern, alibi = arch.equals("jina-bert-v2");
        int experts = moe ? md.getInt(arch + ".expert_count", 0) : 0, expertsUsed = moe ? md.getInt(arch + ".expert_used_count", 0) : 0,
                moeEvery = moe ? md.getInt(arch + ".moe_every_n_layers", 0) : 0;
        if (moe && (experts < 1 || expertsUsed < 1 || expertsUsed > experts || moeEvery < 1)) {
            throw new ModelFormatException(path + ": a mixture of " + experts + " experts, " + expertsUsed + " used, every " + moeEvery + " layers");
        }
        if (arch.equals("nomic-bert") && !md.has(arch + ".rope.freq_base")) throw new ModelFormatException(path + ": missing metadata " + arch + ".rope.freq_base");
        // ModernBERT's activation, as llama.cpp reads its hidden_activation: GeGLU but where it names SiLU
        String activation = md.getString(arch + ".hidden_activation", "gelu");
        if (!List.of("gelu", "geglu", "silu", "swish", "swiglu").contains(activation)) throw new ModelFormatException(path + ": hidden_activation '" + activation + "' is not supported (gelu, silu)");
        int window = modern ? md.getInt(arch + ".attention.sliding_window", 0) : 0;
        if (window < 0) throw new ModelFormatException(path + ": a sliding window of " + window);
        int pattern = window > 0 ? md.getInt(arch + ".attention.sliding_window_pattern", 3) : 1;
        if (pattern < 1) throw new ModelFormatException(path + ": a sliding window pattern of " + pattern);
        Config c = new Config(arch, dim, required(md, path, arch + ".block_count"), heads, required(md, path, arch + ".feed_forward_length"),
                context, vocab, md.getFloat(arch + ".attention.layer_norm_epsilon", 0f), rotary ? md.getFloat(arch + ".rope.freq_base", 10000f) : 0f,
                alibi ? 8f : 0f, arch.equals("nomic-bert") || modern && !activation.startsWith("ge"), modern, window, pattern,
                md.getFloat(arch + ".rope.freq_base_swa", 10000f), experts, expertsUsed);
        if (tokenizer.vocabSize() > vocab) throw new ModelFormatException(path + ": the tokenizer has " + tokenizer.vocabSize() + " tokens but the model's vocabulary has " + vocab);
        Frame frame = Frame.of(md, tokenizer, path);
        float[] tokenType = null;
        if (r.has("token_types.weight")) {
            TensorData types = r.tensor("token_types.weight");
            if (types.shape().length != 2 || types.shape()[0] != dim) throw r.shape("token_types.weight", types, "[" + dim + ", types]");
            tokenType = new float[dim];
            Tensor.of(types).dequantizeRow(0, tokenType, 0);
        }
        Block[] blocks = new Block[c.layers()];
        for (int l = 0; l < c.layers(); l++) {
            String p = "blk." + l + ".";
            Projection[] qkv = r.has(p + "attn_qkv.weight") ? r.fused(p + "attn_qkv", dim, dim, dim, dim)
                    : new Projection[]{r.projection(p + "attn_q", dim, dim), r.projection(p + "attn_k", dim, dim), r.projection(p + "attn_v", dim, dim)};
            int hidden = c.hiddenDim();
            // nomic-bert-moe's mixtures, as llama.cpp places them: the layers whose index is 1 modulo moe_every_n_layers
            Experts mixture = moe && l % moeEvery == 1 ? r.experts(p, dim, hidden, experts) : null;
            // GeGLU's gate and up in one ffn_up of twice the width (jina-bert-v2's), the gate first
            boolean fusedGate = mixture == null && !r.has(p + "ffn_gate.weight") && r.has(p + "ffn_up.weight") && r.tensor(p + "ffn_up.weight").shape().length == 2
                    && r.tensor(p + "ffn_up.weight").shape()[1] == 2L * hidden;
            Projection[] gateUp = mixture != null ? new Projection[]{null, null} : fusedGate ? r.fused(p + "ffn_up", dim, hidden, hidden)
                    : new Projection[]{r.has(p + "ffn_gate.weight") ? r.projection(p + "ffn_gate", dim, hidden) : null, r.projection(p + "ffn_up", dim, hidden)};
            blocks[l] = modern
                    // the norms before: attentionNorm the attention's input's (none in the first layer), outputNorm the feed-forward's
                    ? new Block(qkv[0], qkv[1], qkv[2], null, null, r.projection(p + "attn_output", dim, dim),
                    r.has(p + "attn_norm.weight") ? r.unbiasedNorm(p + "attn_norm", dim) : null, null,
                    gateUp[0], gateUp[1], r.projection(p + "ffn_down", hidden, dim), r.unbiasedNorm(p + "ffn_norm", dim), null)
                    : new Block(qkv[0], qkv[1], qkv[2], r.optionalNorm(p + "attn_q_norm", dim), r.optionalNorm(p + "attn_k_norm", dim),
                    r.projection(p + "attn_output", dim, dim), r.norm(p + "attn_output_norm", dim), r.optionalNorm(p + "attn_norm_2", dim),
                    gateUp[0], gateUp[1], mixture != null ? null : r.projection(p + "ffn_down", hidden, dim), r.norm(p + "layer_output_norm", dim), mixture);
        }
        // a ModernBERT reranker pools the mean through a GELU and a norm (llama.cpp's), which rank() does not run
        if (modern && (r.has("cls.weight") || r.has("cls.output.weight"))) throw new ModelFormatException(path + ": a ModernBERT reranker's head is not supported");
        Projection dense = r.has("cls.weight") ? r.projection("cls", dim, dim) : null;
        Projection head = null;
        if (r.has("cls.output.weight")) {
            TensorData out = r.tensor("cls.output.weight");
            if (out.shape().length != 2 || out.shape()[0] != dim) throw r.shape("cls.output.weight", out, "[" + dim + ", labels]");
            head = r.projection("cls.output", dim, (int) out.shape()[1]);
        }
        gptfast4j.model.Config.RopeStyle halves = gptfast4j.model.Config.RopeStyle.HALVES;
        Encoder e = new Encoder(c, Tensor.of(embeddings), rotary || alibi ? null : r.matrix("position_embd.weight", dim, context),
                rotary ? new Rope(c.headDim(), c.ropeTheta(), halves, context) : null, window > 0 ? new Rope(c.headDim(), c.slidingRopeTheta(), halves, context) : null,
                modern ? r.unbiasedNorm("output_norm", dim) : null, tokenType,
                modern ? r.unbiasedNorm("token_embd_norm", dim) : r.norm("token_embd_norm", dim), blocks, dense, head, tokenizer, frame, md, path, gguf.tensors(),
                Map.copyOf(r.adaptable()));
        r.checkAllRead();
        return e;
    }

    private static int required(Metadata md, Path path, String key) {
        if (!md.has(key)) throw new ModelFormatException(path + ": missing metadata " + key);
        return md.getInt(key, 0);
    }

    /** A file's tensors by name, each checked for its shape, and the names read, so that none is left unread unnoticed. */
    /** {@code adaptable}: the projections' matrices by GGUF name, a fused one's parts in its rows' order (what a LoRA may adapt). */
    private record Reader(Path path, Map<String, TensorData> tensors, Set<String> read, Map<String, Tensor[]> adaptable) {
        Reader(Path path, Map<String, TensorData> tensors) {
            this(path, tensors, new LinkedHashSet<>(), new java.util.HashMap<>());
        }

        boolean has(String name) {
            return tensors.containsKey(name);
        }

        TensorData tensor(String name) {
            TensorData t = tensors.get(name);
            if (t == null) throw new ModelFormatException(path + ": missing tensor " + name);
            read.add(name);
            return t;
        }

        ModelFormatException shape(String name, TensorData t, String expected) {
            return new ModelFormatException(path + ": tensor " + name + " has shape " + t.shapeString() + ", expected " + expected);
        }

        Tensor matrix(String name, long cols, long rows) {
            TensorData t = tensor(name);
            if (!Arrays.equals(t.shape(), new long[]{cols, rows})) throw shape(name, t, "[" + cols + ", " + rows + "]");
            return Tensor.of(t);
        }

        float[] vector(String name, int n) {
            TensorData t = tensor(name);
            if (t.shape().length != 1 || t.shape()[0] != n) throw shape(name, t, "[" + n + "]");
            float[] v = new float[n];
            Tensor.of(t).dequantizeRow(0, v, 0);
            return v;
        }

        /** {@code NAME.weight} [cols, rows] and {@code NAME.bias} [rows] where the file has it. */
        Projection projection(String name, int cols, int rows) {
            Projection p = new Projection(matrix(name + ".weight", cols, rows), has(name + ".bias") ? vector(name + ".bias", rows) : null);
            if (name.startsWith("blk.")) adaptable.put(name + ".weight", new Tensor[]{p.weight()}); // a reranker's head is not adapted
            return p;
        }

        /** {@code NAME.weight}'s rows in parts of {@code rows} each (a fused projection), and {@code NAME.bias}'s where the file has it. */
        Projection[] fused(String name, int cols, int... rows) {
            int total = Arrays.stream(rows).sum();
            Tensor weight = matrix(name + ".weight", cols, total);
            float[] bias = has(name + ".bias") ? vector(name + ".bias", total) : null;
            Projection[] parts = new Projection[rows.length];
            for (int i = 0, first = 0; i < rows.length; first += rows[i++]) {
                parts[i] = new Projection(weight.rows(first, rows[i]), bias == null ? null : Arrays.copyOfRange(bias, first, first + rows[i]));
            }
            adaptable.put(name + ".weight", Arrays.stream(parts).map(Projection::weight).toArray(Tensor[]::new));
            return parts;
        }

        Norm optionalNorm(String name, int n) {
            return has(name + ".weight") ? norm(name, n) : null;
        }

        Norm norm(String name, int n) {
            return new Norm(vector(name + ".weight", n), vector(name + ".bias", n));
        }

        /** Layer {@code p}'s mixture: its router and each expert's views of {@code ffn_up_exps} and {@code ffn_down_exps}. */
        Experts experts(String p, int dim, int hidden, int count) {
            Tensor router = matrix(p + "ffn_gate_inp.weight", dim, count);
            Tensor up = expertMatrix(p + "ffn_up_exps.weight", dim, hidden, count), down = expertMatrix(p + "ffn_down_exps.weight", hidden, dim, count);
            Tensor[] ups = new Tensor[count], downs = new Tensor[count];
            for (int e = 0; e < count; e++) {
                ups[e] = up.rows((long) e * hidden, hidden);
                downs[e] = down.rows((long) e * dim, dim);
            }
            return new Experts(router, ups, downs);
        }

        private Tensor expertMatrix(String name, long cols, long rows, long count) {
            TensorData t = tensor(name);
            if (!Arrays.equals(t.shape(), new long[]{cols, rows, count})) throw shape(name, t, "[" + cols + ", " + rows + ", " + count + "]");
            return Tensor.of(t);
        }

        /** A LayerNorm without a bias (ModernBERT's). */
        Norm unbiasedNorm(String name, int n) {
            return new Norm(vector(name + ".weight", n), null);
        }

        void checkAllRead() {
            var unread = tensors.keySet().stream().filter(n -> !read.contains(n)).toList();
            if (!unread.isEmpty()) {
                throw new ModelFormatException(path + ": unused tensor" + (unread.size() == 1 ? " " : "s ") + String.join(", ", unread.subList(0, Math.min(5, unread.size())))
                        + (unread.size() > 5 ? " and " + (unread.size() - 5) + " more" : "") + " (a layout this version does not know)");
            }
        }
    }

    /** Where {@link #hiddenStates(List, StatesSink)} hands each text's final hidden states. */
    public interface StatesSink {
        void accept(int text, int position, float[] states, int offset);
    }

    /**
     * The most tokens of several texts one pass runs together: their projections one matrix product each, which
     * reuses each weight over more tokens than one text has (bge-small's shape in F32, 100 texts of 60 tokens, 2
     * threads, warm: 2.83-2.94 s one text a pass, 2.25-2.47 s in passes of up to 512 tokens, 2.36-2.44 s of 2048).
     */
    public static final int BATCH_TOKENS = 512;

    /**
     * Runs each of {@code texts} (each at most the context length, attending to itself only), several in one pass up
     * to {@link #BATCH_TOKENS} tokens, and hands each text's positions' final hidden states to {@code sink}, text by
     * text, in order.
     */
    public void hiddenStates(List<int[]> texts, StatesSink sink) {
        for (int[] tokens : texts) {
            if (tokens.length == 0) throw new IllegalArgumentException("no tokens to run");
            if (tokens.length > config.contextLength()) throw new IllegalArgumentException(tokens.length + " tokens exceed the context length " + config.contextLength());
            for (int token : tokens) if (token < 0 || token >= config.vocabSize()) throw new IllegalArgumentException("token id " + token + " outside the vocabulary");
        }
        for (int first = 0; first < texts.size(); ) {
            int last = first, n = 0;
            while (last < texts.size() && (last == first || n + texts.get(last).length <= BATCH_TOKENS)) n += texts.get(last++).length;
            int[] starts = new int[last - first + 1];
            for (int t = first; t < last; t++) starts[t - first + 1] = starts[t - first] + texts.get(t).length;
            float[] x = pass(texts.subList(first, last), starts);
            for (int t = first; t < last; t++) {
                for (int p = 0; p < texts.get(t).length; p++) sink.accept(t, p, x, (starts[t - first] + p) * config.dim());
            }
            first = last;
        }
    }

    /** One pass of the texts whose tokens start at {@code starts} ([texts + 1], the last their total): the final states [n, dim]. */
    private float[] pass(List<int[]> texts, int[] starts) {
        int n = starts[texts.size()], dim = config.dim();
        float[] x = new float[n * dim], position = new float[dim];
        for (int i = 0; i < texts.size(); i++) {
            int[] tokens = texts.get(i);
            for (int p = 0; p < tokens.length; p++) {
                int t = starts[i] + p;
                tokenEmbeddings.dequantizeRow(tokens[p], x, t * dim);
                Lora l = lora;
                if (l != null) l.addEmbedding(tokens[p], x, t * dim, 0, null);
                if (tokenType != null) VectorMath.add(x, t * dim, tokenType, 0, dim);
                if (positionEmbeddings != null) {
                    positionEmbeddings.dequantizeRow(p, position, 0);
                    VectorMath.add(x, t * dim, position, 0, dim);
                }
                embeddingNorm.apply(x, t * dim, dim, config.normEps());
            }
        }
        // v with the slack VectorMath.product4 may read past its last row
        float[] q = new float[n * dim], k = new float[n * dim], v = new float[n * dim + VectorMath.PRODUCT_SLACK], attended = new float[n * dim], out = new float[n * dim];
        float[] hidden = new float[n * config.hiddenDim()], gate = Arrays.stream(blocks).anyMatch(b -> b.gate() != null) ? new float[n * config.hiddenDim()] : null;
        int heads = config.heads(), longest = java.util.stream.IntStream.range(0, texts.size()).map(i -> starts[i + 1] - starts[i]).max().orElseThrow();
        float[] slopes = alibiSlopes(), layerInput = Arrays.stream(blocks).anyMatch(b -> b.secondNorm() != null) ? new float[n * dim] : null;
        // pre-norm blocks' normalized inputs (ModernBERT's); post-norm blocks read x itself
        float[] normed = config.preNorm() ? new float[n * dim] : null;
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            Rope layerRope = config.sliding(l) ? slidingRope : rope;
            int halfWindow = config.sliding(l) ? config.window() / 2 : -1;
            if (b.secondNorm() != null) System.arraycopy(x, 0, layerInput, 0, n * dim);
            float[] in = config.preNorm() ? normalized(b.attentionNorm(), x, normed, n) : x;
            b.q().apply(in, n, q);
            b.k().apply(in, n, k);
            b.v().apply(in, n, v);
            adapted(b.q(), in, n, q);
            adapted(b.k(), in, n, k);
            adapted(b.v(), in, n, v);
            for (int t = 0; t < n; t++) {
                if (b.qNorm() != null) b.qNorm().apply(q, t * dim, dim, config.normEps());
                if (b.kNorm() != null) b.kNorm().apply(k, t * dim, dim, config.normEps());
            }
            if (layerRope != null) {
                for (int i = 0; i < texts.size(); i++) {
                    for (int t = starts[i]; t < starts[i + 1]; t++) {
                        layerRope.rotate(q, t * dim, config.heads(), t - starts[i]);
                        layerRope.rotate(k, t * dim, config.heads(), t - starts[i]);
                    }
                }
            }
            // each text's heads, a task per text and head
            Parallel.run(texts.size() * heads, 1, (from, to) -> {
                // a thread's scratch: four queries' scores, and one head's keys of one text transposed
                float[] scores = new float[VectorMath.QUERIES * longest], keys = new float[config.headDim() * longest + VectorMath.PRODUCT_SLACK];
                for (int task = from; task < to; task++) {
                    attend(q, k, v, attended, scores, keys, task % heads, slopes == null ? 0f : slopes[task % heads], halfWindow, starts[task / heads], starts[task / heads + 1]);
                }
            });
            b.output().apply(attended, n, out);
            adapted(b.output(), attended, n, out);
            if (config.preNorm()) {
                VectorMath.add(x, 0, out, 0, n * dim);
                in = normalized(b.outputNorm(), x, normed, n);
            } else {
                residualNorm(x, out, b.attentionNorm(), n);
                if (b.secondNorm() != null) residualNorm(x, layerInput, b.secondNorm(), n);
            }
            if (b.experts() != null) {
                mixture(b.experts(), in, n, out);
            } else {
                b.up().apply(in, n, hidden);
                adapted(b.up(), in, n, hidden);
                if (b.gate() == null) {
                    VectorMath.gelu(hidden, 0, n * config.hiddenDim());
                } else {
                    b.gate().apply(in, n, gate);
                    adapted(b.gate(), in, n, gate);
                    if (config.siluGate()) VectorMath.swiglu(gate, hidden, 0, n * config.hiddenDim()); // gate = silu(gate) * up
                    else VectorMath.geglu(gate, hidden, 0, n * config.hiddenDim()); // gate = gelu(gate) * up
                }
                b.down().apply(b.gate() == null ? hidden : gate, n, out);
                adapted(b.down(), b.gate() == null ? hidden : gate, n, out);
            }
            if (config.preNorm()) VectorMath.add(x, 0, out, 0, n * dim);
            else residualNorm(x, out, b.outputNorm(), n);
        }
        if (outputNorm != null) for (int t = 0; t < n; t++) outputNorm.apply(x, t * dim, dim, config.normEps());
        return x;
    }

    /**
     * A mixture's output for each of the {@code n} tokens of {@code in}: the router's softmax over the experts, each
     * token's {@code expertsUsed} likeliest (the first index of a tie) weighted by their probabilities as they are
     * (llama.cpp's nomic-bert-moe: not renormalized), each expert's tokens run together, {@code down · gelu(up · x)}.
     */
    private void mixture(Experts m, float[] in, int n, float[] out) {
        int dim = config.dim(), hidden = config.hiddenDim(), count = m.up().length, used = config.expertsUsed();
        float[] probs = new float[n * count];
        m.router().matmul(in, n, probs, count, false);
        int[][] chosen = new int[n][used];
        for (int t = 0; t < n; t++) {
            VectorMath.softmax(probs, t * count, count);
            boolean[] taken = new boolean[count];
            for (int s = 0; s < used; s++) {
                int best = -1;
                for (int e = 0; e < count; e++) if (!taken[e] && (best < 0 || probs[t * count + e] > probs[t * count + best])) best = e;
                taken[best] = true;
                chosen[t][s] = best;
            }
        }
        // each slot's weighted output, added in slot order as llama.cpp adds the chosen experts' outputs
        float[][] slots = new float[used][n * dim];
        for (int e = 0; e < count; e++) {
            List<int[]> routed = new java.util.ArrayList<>(); // {token, slot}
            for (int t = 0; t < n; t++) for (int s = 0; s < used; s++) if (chosen[t][s] == e) routed.add(new int[]{t, s});
            if (routed.isEmpty()) continue;
            int r = routed.size();
            float[] x = new float[r * dim], h = new float[r * hidden], y = new float[r * dim];
            for (int i = 0; i < r; i++) System.arraycopy(in, routed.get(i)[0] * dim, x, i * dim, dim);
            m.up()[e].matmul(x, r, h, hidden, false);
            VectorMath.gelu(h, 0, r * hidden);
            m.down()[e].matmul(h, r, y, dim, false);
            for (int i = 0; i < r; i++) {
                int t = routed.get(i)[0], s = routed.get(i)[1];
                VectorMath.axpy(probs[t * count + e], y, i * dim, slots[s], t * dim, dim);
            }
        }
        System.arraycopy(slots[0], 0, out, 0, n * dim);
        for (int s = 1; s < used; s++) VectorMath.add(out, 0, slots[s], 0, n * dim);
    }

    /** {@code out = norm(x)} for each of the {@code n} tokens ({@code x} itself where there is no norm: ModernBERT's first layer's); returns what to read. */
    private float[] normalized(Norm norm, float[] x, float[] out, int n) {
        if (norm == null) return x;
        int dim = config.dim();
        for (int t = 0; t < n; t++) norm.apply(out, t * dim, x, t * dim, dim, config.normEps());
        return out;
    }

    /**
     * Head {@code h}'s attention for every query of the tokens {@code [from, to)} (one text) over their keys:
     * {@code attended = softmax(q·k / sqrt(headDim)) · v}, four queries at a time as two small matrix products
     * ({@link VectorMath#product4}: the scores against the keys transposed into {@code keys} [headDim, n], then the
     * weighted sums of the values), the rest one query at a time. bge-small's shape in F16, 100 texts of 60 tokens,
     * 2 threads, warm, three alternating pairs of JVMs: 2.60-2.84 s with a dot product and an axpy per query and key,
     * 2.34-2.61 s so.
     */
    private void attend(float[] q, float[] k, float[] v, float[] attended, float[] scores, float[] keys, int h, float slope, int halfWindow, int from, int to) {
        int dim = config.dim(), headDim = config.headDim(), offset = h * headDim, n = to - from, quads = n / VectorMath.QUERIES * VectorMath.QUERIES;
        float scale = (float) (1 / Math.sqrt(headDim));
        for (int j = 0; j < n; j++) {
            for (int d = 0; d < headDim; d++) keys[d * n + j] = k[(from + j) * dim + offset + d];
        }
        for (int i = from; i < from + quads; i += VectorMath.QUERIES) {
            VectorMath.product4(q, i * dim + offset, dim, keys, 0, n, headDim, n, scale, scores, 0, n);
            for (int r = 0; r < VectorMath.QUERIES; r++) {
                if (slope != 0f) alibi(scores, r * n, n, slope, i - from + r);
                if (halfWindow >= 0) outsideWindow(scores, r * n, n, halfWindow, i - from + r);
                VectorMath.softmax(scores, r * n, n);
            }
            VectorMath.product4(scores, 0, n, v, from * dim + offset, dim, n, headDim, 1f, attended, i * dim + offset, dim);
        }
        for (int i = from + quads; i < to; i++) {
            for (int j = 0; j < n; j++) scores[j] = VectorMath.dot(q, i * dim + offset, k, (from + j) * dim + offset, headDim) * scale;
            if (slope != 0f) alibi(scores, 0, n, slope, i - from);
            if (halfWindow >= 0) outsideWindow(scores, 0, n, halfWindow, i - from);
            VectorMath.softmax(scores, 0, n);
            Arrays.fill(attended, i * dim + offset, i * dim + offset + headDim, 0f);
            for (int j = 0; j < n; j++) VectorMath.axpy(scores[j], v, (from + j) * dim + offset, attended, i * dim + offset, headDim);
        }
    }

    /** ALiBi's bias on the scores of the query at {@code position} over the {@code n} keys: {@code -slope * |position - j|}. */
    private static void alibi(float[] scores, int offset, int n, float slope, int position) {
        for (int j = 0; j < n; j++) scores[offset + j] += slope * -Math.abs(position - j);
    }

    /** A sliding layer's mask (ModernBERT's, llama.cpp's symmetric window): no weight for keys more than {@code half} from {@code position}. */
    private static void outsideWindow(float[] scores, int offset, int n, int half, int position) {
        for (int j = 0; j < n; j++) if (Math.abs(position - j) > half) scores[offset + j] = Float.NEGATIVE_INFINITY;
    }

    /**
     * Each head's ALiBi slope as ggml's softmax takes it from the maximum bias: {@code m0^(h+1)} for the first heads up to
     * the largest power of two, {@code m1^(2(h - that) + 1)} after; null without ALiBi.
     */
    private float[] alibiSlopes() {
        float maxBias = config.maxAlibiBias();
        if (maxBias == 0f) return null;
        int heads = config.heads(), log2 = Integer.highestOneBit(heads);
        float m0 = (float) Math.pow(2.0f, -maxBias / log2), m1 = (float) Math.pow(2.0f, -(maxBias / 2.0f) / log2);
        float[] slopes = new float[heads];
        for (int h = 0; h < heads; h++) slopes[h] = (float) (h < log2 ? Math.pow(m0, h + 1) : Math.pow(m1, 2 * (h - log2) + 1));
        return slopes;
    }

    /** {@code x = LayerNorm(x + out)} for each of the {@code n} tokens. */
    private void residualNorm(float[] x, float[] out, Norm norm, int n) {
        int dim = config.dim();
        for (int t = 0; t < n; t++) {
            VectorMath.add(x, t * dim, out, t * dim, dim);
            norm.apply(x, t * dim, dim, config.normEps());
        }
    }

    /** A reranker's scores of a text's first token's state {@code state}: {@code cls.output · tanh(cls · state)}. */
    float[] rank(float[] state) {
        if (!ranks()) throw new IllegalArgumentException("rank pooling needs a reranker: this model has no classifier head (cls.output.weight)");
        float[] x = state;
        if (classifierDense != null) {
            x = new float[config.dim()];
            classifierDense.apply(state, 1, x);
            for (int i = 0; i < x.length; i++) x[i] = (float) Math.tanh(x[i]);
        }
        float[] scores = new float[(int) classifierOutput.weight().rows];
        classifierOutput.apply(x, 1, scores);
        return scores;
    }
}
