package gptfast4j.model;

import gptfast4j.tensor.Tensor;

/**
 * All weights of a model. {@code tokEmbeddings} is {@code [dim, vocab]} (one row per token), {@code output} is
 * {@code [dim, vocab]} and is the same tensor as {@code tokEmbeddings} when the model ties them.
 */
public record Weights(Tensor tokEmbeddings, Layer[] layers, float[] norm, Tensor output) {

    /** Bytes read per decoded token: every weight but the embedding table, of which only one row is read. */
    public long bytesPerToken() {
        long bytes = output.byteSize() + tokEmbeddings.rowBytes;
        for (Layer l : layers) {
            bytes += l.wq().byteSize() + l.wk().byteSize() + l.wv().byteSize() + l.wo().byteSize();
            bytes += l.feedForward().bytesPerToken();
            bytes += 4L * (l.attentionNorm().length + l.ffnNorm().length);
        }
        return bytes + 4L * norm.length;
    }
}
