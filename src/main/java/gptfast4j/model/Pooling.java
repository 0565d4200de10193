package gptfast4j.model;

import java.util.List;

/**
 * How a text's embedding is made of its tokens' final hidden states ({@link Llama#hiddenStates}, {@link Encoder#hiddenStates}), as llama.cpp's
 * {@code --pooling} makes it: their mean, the first token's ({@code cls}: BOS's, the same for every text of a causal
 * model), or the last token's (the usual pooling of embedding models made from decoders, such as e5-mistral), then
 * normalized as llama.cpp's {@code --embd-normalize} does ({@link #normalize}; by default to length 1, L2). A
 * reranker's ({@link #RANK}) is instead its classifier's scores of one token's state, as llama.cpp's rank pooling.
 */
public enum Pooling {
    MEAN, CLS, LAST,
    /**
     * A reranker's scores: its classifier head ({@link Weights#classifier}) over the last token's state in Qwen3's
     * (whose rerankers read their last token), the first's in others, with Qwen3's a softmax of them (the first its
     * "yes"); not normalized.
     */
    RANK;

    /** GGUF's {@code ARCH.pooling_type} numbers (llama.cpp's enum): 1 mean, 2 cls, 3 last, 4 rank. */
    private static final Pooling[] BY_GGUF_NUMBER = {null, MEAN, CLS, LAST, RANK};

    /** The name {@code --pooling} takes: mean, cls, last, rank. */
    public String option() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The pooling named {@code name} ({@link #option}). */
    public static Pooling parse(String name, String flag) {
        for (Pooling p : values()) if (p.option().equalsIgnoreCase(name)) return p;
        throw new IllegalArgumentException(flag + " must be mean, cls, last or rank; got '" + name + "'");
    }

    /**
     * The pooling a checkpoint's file names ({@code ARCH.pooling_type}, which converters write for embedding models),
     * else the mean.
     */
    public static Pooling of(Checkpoint ckpt) {
        return of(ckpt.metadata());
    }

    /** The pooling {@code md} names ({@code ARCH.pooling_type}), else the mean; null metadata (not a GGUF file's) the mean. */
    public static Pooling of(gptfast4j.io.Metadata md) {
        if (md == null) return MEAN;
        int n = md.getInt(md.getString("general.architecture", "llama") + ".pooling_type", 0);
        return n > 0 && n < BY_GGUF_NUMBER.length ? BY_GGUF_NUMBER[n] : MEAN;
    }

    /**
     * A text's tokens as llama.cpp's embeddings take them: {@link Checkpoint#promptTokens(String, boolean)} (special
     * tokens' text as those tokens), and EOS last where the file asks for it ({@code tokenizer.ggml.add_eos_token}, as
     * e5-mistral's conversions do, whose last-token pooling reads the EOS position).
     */
    public static int[] tokens(Checkpoint ckpt, String text) {
        int[] ids = ckpt.promptTokens(text, true);
        if (ckpt.metadata() == null || !ckpt.metadata().getBool("tokenizer.ggml.add_eos_token", false)) return ids;
        int[] withEos = java.util.Arrays.copyOf(ids, ids.length + 1);
        withEos[ids.length] = ckpt.eos()[0];
        return withEos;
    }

    /** llama.cpp's default {@code --embd-normalize}: Euclidean (L2), length 1. */
    public static final int EUCLIDEAN = 2;

    /**
     * The embedding of {@code tokens} (at least one), run from position 0 of {@code state}, whose cache they then fill:
     * {@code dim} floats, normalized by {@code normalize} ({@link #normalize}).
     */
    public float[] embed(Llama model, Llama.State state, int[] tokens, int normalize) {
        checkedFor(model);
        Weights.Classifier classifier = model.weights().classifier();
        int dim = model.config.dim(), n = tokens.length;
        boolean lastToken = this == LAST || this == RANK && qwen3(model);
        double[] sum = new double[dim];
        model.hiddenStates(state, tokens, (position, states, offset) -> {
            boolean taken = switch (this) {
                case MEAN -> true;
                case CLS, LAST, RANK -> position == (lastToken ? n - 1 : 0);
            };
            if (taken) for (int i = 0; i < dim; i++) sum[i] += states[offset + i];
        });
        float[] pooled = new float[dim];
        for (int i = 0; i < dim; i++) pooled[i] = (float) (this == MEAN ? sum[i] / n : sum[i]);
        if (this != RANK) return normalize(pooled, normalize);
        int labels = (int) classifier.weights().rows;
        float[] scores = new float[labels];
        classifier.weights().matmul(pooled, 1, scores, labels, true);
        if (classifier.bias() != null) for (int i = 0; i < labels; i++) scores[i] += classifier.bias()[i];
        if (qwen3(model)) gptfast4j.tensor.VectorMath.softmax(scores, 0, labels);
        return scores;
    }

    /**
     * The embedding of an encoder's {@code tokens} ({@link Encoder#tokens}), normalized by {@code normalize}; a
     * reranker's scores of their first token ({@link Encoder#rank}) for rank pooling.
     */
    public float[] embed(Encoder model, int[] tokens, int normalize) {
        return embed(model, List.of(tokens), normalize).getFirst();
    }

    /** {@link #embed(Encoder, int[], int)} of each of {@code texts}, several in one pass of the encoder. */
    public List<float[]> embed(Encoder model, List<int[]> texts, int normalize) {
        if (this == RANK && !model.ranks()) throw new IllegalArgumentException("rank pooling needs a reranker: this model has no classifier head (cls.output.weight)");
        int dim = model.config.dim();
        double[][] sums = new double[texts.size()][dim];
        model.hiddenStates(texts, (text, position, states, offset) -> {
            if (this == MEAN || position == (this == LAST ? texts.get(text).length - 1 : 0)) {
                for (int i = 0; i < dim; i++) sums[text][i] += states[offset + i];
            }
        });
        List<float[]> embeddings = new java.util.ArrayList<>();
        for (int t = 0; t < texts.size(); t++) {
            float[] pooled = new float[dim];
            for (int i = 0; i < dim; i++) pooled[i] = (float) (this == MEAN ? sums[t][i] / texts.get(t).length : sums[t][i]);
            embeddings.add(this == RANK ? model.rank(pooled) : normalize(pooled, normalize));
        }
        return embeddings;
    }

    /** This pooling, which {@code model} can run: rank pooling needs a reranker's classifier head. */
    public Pooling checkedFor(Llama model) {
        if (this == RANK && model.weights().classifier() == null) throw new IllegalArgumentException("rank pooling needs a reranker: this model has no classifier head (cls.output.weight)");
        return this;
    }

    /** Qwen3's rerankers (qwen3, qwen3vl), whose rank pooling reads the last token and softmaxes its scores, as llama.cpp's. */
    private static boolean qwen3(Llama model) {
        String arch = model.config.architecture();
        return arch.equals("qwen3") || arch.equals("qwen3vl");
    }

    /**
     * {@code v} scaled as llama.cpp's {@code common_embd_normalize} scales an embedding: -1 not at all, 0 so that its
     * largest magnitude is 32760 (int16's range), 1 taxicab (L1), 2 Euclidean (L2), above 2 that p-norm; a zero vector
     * stays zero. In place; returns {@code v}.
     */
    public static float[] normalize(float[] v, int mode) {
        if (mode < -1) throw new IllegalArgumentException("embedding normalization must be -1 (none), 0 (int16 range), 1 (taxicab), 2 (Euclidean) or a p-norm above 2; got " + mode);
        double sum = 0;
        switch (mode) {
            case -1 -> sum = 1;
            case 0 -> {
                for (float x : v) sum = Math.max(sum, Math.abs(x));
                sum /= 32760.0;
            }
            case 2 -> {
                for (float x : v) sum += (double) x * x;
                sum = Math.sqrt(sum);
            }
            default -> {
                for (float x : v) sum += Math.pow(Math.abs(x), mode);
                sum = Math.pow(sum, 1.0 / mode);
            }
        }
        float scale = sum > 0 ? (float) (1 / sum) : 0;
        for (int i = 0; i < v.length; i++) v[i] *= scale;
        return v;
    }
}
