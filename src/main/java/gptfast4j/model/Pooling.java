package gptfast4j.model;

/**
 * How a text's embedding is made of its tokens' final hidden states ({@link Llama#hiddenStates}), as llama.cpp's
 * {@code --pooling} makes it: their mean, the first token's ({@code cls}: BOS's, the same for every text of a causal
 * model), or the last token's (the usual pooling of embedding models made from decoders, such as e5-mistral), then
 * scaled to length 1 (L2), as llama.cpp's server and {@code llama-embedding} give them by default.
 */
public enum Pooling {
    MEAN, CLS, LAST;

    /** GGUF's {@code ARCH.pooling_type} numbers (llama.cpp's enum): 1 mean, 2 cls, 3 last. */
    private static final Pooling[] BY_GGUF_NUMBER = {null, MEAN, CLS, LAST};

    /** The name {@code --pooling} takes: mean, cls, last. */
    public String option() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The pooling named {@code name} ({@link #option}). */
    public static Pooling parse(String name, String flag) {
        for (Pooling p : values()) if (p.option().equalsIgnoreCase(name)) return p;
        throw new IllegalArgumentException(flag + " must be mean, cls or last; got '" + name + "'");
    }

    /**
     * The pooling a checkpoint's file names ({@code ARCH.pooling_type}, which converters write for embedding models),
     * else the mean.
     */
    public static Pooling of(Checkpoint ckpt) {
        gptfast4j.io.Metadata md = ckpt.metadata();
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

    /**
     * The embedding of {@code tokens} (at least one), run from position 0 of {@code state}, whose cache they then fill:
     * {@code dim} floats of length 1.
     */
    public float[] embed(Llama model, Llama.State state, int[] tokens) {
        int dim = model.config.dim(), n = tokens.length;
        double[] sum = new double[dim];
        model.hiddenStates(state, tokens, (position, states, offset) -> {
            boolean taken = switch (this) {
                case MEAN -> true;
                case CLS -> position == 0;
                case LAST -> position == n - 1;
            };
            if (taken) for (int i = 0; i < dim; i++) sum[i] += states[offset + i];
        });
        double norm = 0;
        for (double v : sum) norm += v * v;
        // llama.cpp's common_embd_normalize: a zero vector stays zero
        double scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
        float[] embedding = new float[dim];
        for (int i = 0; i < dim; i++) embedding[i] = (float) (sum[i] * scale);
        return embedding;
    }
}
