package gptfast4j.model;

import gptfast4j.tensor.Tensor;

import java.util.Arrays;
import java.util.function.UnaryOperator;

/**
 * All weights of a model. {@code tokEmbeddings} is {@code [dim, vocab]} (one row per token), {@code output} is
 * {@code [dim, vocab]} and is the same tensor as {@code tokEmbeddings} when the model ties them. {@code classifier}: a
 * reranker's head over its pooled state ({@link Pooling#RANK}); null in other models. {@code normBias} [dim]: the
 * output norm's bias (a LayerNorm's: StarCoder2's, Phi-2's), {@code outputBias} [vocab]: the logits' (Phi-2's);
 * {@code positionEmbeddings} {@code [dim, positions]}: learned positions, row p added to the token's embedding at
 * position p (GPT-2's, StarCoder's, which have no RoPE); {@code embeddingNorm}, {@code embeddingNormBias} [dim]: a
 * LayerNorm of the embeddings before the first layer (BLOOM's); null in the others.
 */
public record Weights(Tensor tokEmbeddings, Layer[] layers, float[] norm, Tensor output, Classifier classifier, float[] normBias, float[] outputBias,
                      Tensor positionEmbeddings, float[] embeddingNorm, float[] embeddingNormBias) {

    /**
     * A classifier head, {@code cls.output}: {@code weights} {@code [dim, labels]} (Qwen3-Reranker's two, the output
     * head's rows of "yes" and "no"), and its {@code bias} [labels] or null.
     */
    public record Classifier(Tensor weights, float[] bias) {
    }

    /** Bytes read per decoded token: every weight but the embedding table, of which only one row is read. */
    public long bytesPerToken() {
        long bytes = output.byteSize() + tokEmbeddings.rowBytes;
        for (Layer l : layers) {
            for (Tensor t : new Tensor[]{l.wq(), l.wk(), l.wv(), l.wo()}) if (t != null) bytes += t.byteSize(); // none in a feed-forward's block alone
            if (l.latent() != null) bytes += l.latent().bytesPerToken();
            if (l.recurrent() != null) bytes += l.recurrent().bytesPerToken();
            if (l.feedForward() != null) bytes += l.feedForward().bytesPerToken(); // none in a mixer's block alone
            for (float[] v : new float[][]{l.attentionNorm(), l.ffnNorm(), l.postAttentionNorm(), l.postFfnNorm()}) if (v != null) bytes += 4L * v.length;
        }
        return bytes + 4L * norm.length;
    }

    /** The bytes of memory that moving the linear layers to their decode layouts ({@link Tensor#forDecode}) allocates. */
    public long decodeCopyBytes() {
        long[] bytes = {0};
        map(t -> {
            bytes[0] += t.decodeCopyBytes();
            return t;
        });
        return bytes[0];
    }

    /**
     * These weights with {@code f} applied to every linear layer: attention, feed-forward or experts, output head. The
     * embeddings, norms and a mixture's router stay as they are (llama-quantize leaves the router too).
     */
    public Weights map(UnaryOperator<Tensor> f) {
        Layer[] mapped = new Layer[layers.length];
        for (int l = 0; l < layers.length; l++) {
            Layer x = layers[l];
            FeedForward ffn = switch (x.feedForward()) {
                case null -> null;
                case FeedForward.Dense d -> map(d, f);
                case FeedForward.MoE m -> m.with(m.w1() == null ? null : Arrays.stream(m.w1()).map(f).toArray(Tensor[]::new),
                        Arrays.stream(m.w2()).map(f).toArray(Tensor[]::new), Arrays.stream(m.w3()).map(f).toArray(Tensor[]::new), m.biases(),
                        m.shared() == null ? null : map(m.shared().ffn(), f));
            };
            LatentAttention latent = x.latent();
            if (latent != null) {
                Tensor kB = f.apply(latent.kB());
                latent = latent.with(latent.qA() == null ? null : f.apply(latent.qA()), kB, latent.fused() ? kB : f.apply(latent.vB()));
            }
            mapped[l] = x.with(mapped(x.wq(), f), mapped(x.wk(), f), mapped(x.wv(), f), mapped(x.wo(), f), ffn, latent,
                    x.recurrent() == null ? null : x.recurrent().with(f));
        }
        return new Weights(tokEmbeddings, mapped, norm, f.apply(output), classifier, normBias, outputBias, positionEmbeddings, embeddingNorm, embeddingNormBias);
    }

    /** {@code f(t)}, or null for a matrix the layer has not. */
    private static Tensor mapped(Tensor t, UnaryOperator<Tensor> f) {
        return t == null ? null : f.apply(t);
    }

    private static FeedForward.Dense map(FeedForward.Dense d, UnaryOperator<Tensor> f) {
        return d.with(d.w1() == null ? null : f.apply(d.w1()), f.apply(d.w2()), f.apply(d.w3()));
    }

    /**
     * The widest of the feed-forwards' hidden widths (dense, experts, shared experts): {@code whole}, their widths;
     * else this process's rows of them (w3's rows, all of them where the whole model is here).
     */
    public int widestHidden(boolean whole) {
        int widest = 0;
        for (Layer l : layers) {
            switch (l.feedForward()) {
                case null -> { }
                case FeedForward.Dense d -> widest = Math.max(widest, hidden(d, whole));
                case FeedForward.MoE m -> {
                    widest = Math.max(widest, whole ? m.width() : (int) m.w3()[0].rows);
                    if (m.shared() != null) widest = Math.max(widest, hidden(m.shared().ffn(), whole));
                }
            }
        }
        return widest;
    }

    private static int hidden(FeedForward.Dense d, boolean whole) {
        return whole ? d.width() : (int) d.w3().rows;
    }
}
