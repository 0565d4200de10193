package gptfast4j.server;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.Encoder;
import gptfast4j.model.Pooling;

/**
 * What the embedding and rerank endpoints ask of the model they serve, a decoder's checkpoint ({@link Server}) or an
 * encoder ({@link EncoderServer}): its width, its vocabulary, and how it takes a text and a query-document pair.
 */
interface EmbeddingModel {
    int dim();

    int vocabSize();

    /** A text's tokens as the model embeds them (BOS or [CLS] first, EOS or [SEP] where the model adds one). */
    int[] tokens(String text);

    /** The tokens a reranker scores {@code document} by against {@code query}. */
    int[] pair(String query, String document);

    /** Refuses (400) token ids past the vocabulary, the message starting with {@code field} (or nothing). */
    default void checkVocabulary(int[] ids, String field) {
        Server.checkVocabulary(vocabSize(), ids, field);
    }

    static EmbeddingModel of(Checkpoint ckpt) {
        return new EmbeddingModel() {
            @Override public int dim() { return ckpt.model().config.dim(); }
            @Override public int vocabSize() { return ckpt.model().config.vocabSize(); }
            @Override public int[] tokens(String text) { return Pooling.tokens(ckpt, text); }
            @Override public int[] pair(String query, String document) { return Rerank.prompt(ckpt, query, document); }
        };
    }

    static EmbeddingModel of(Encoder encoder) {
        return new EmbeddingModel() {
            @Override public int dim() { return encoder.config.dim(); }
            @Override public int vocabSize() { return encoder.config.vocabSize(); }
            @Override public int[] tokens(String text) { return encoder.tokens(text); }
            @Override public int[] pair(String query, String document) { return encoder.pair(query, document); }
        };
    }
}
