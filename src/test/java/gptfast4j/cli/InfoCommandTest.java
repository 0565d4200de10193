package gptfast4j.cli;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code gptfast info} on stories260K, against the hyperparameters llama2.c's README publishes for it (dim 64, 5
 * layers, 8 heads, 4 kv heads, a 512-token vocabulary); {@code --metadata} lists the GGUF keys with their types.
 */
class InfoCommandTest {
    private static final String GGUF = Shared.MODELS.resolve("stories260K.gguf").toString();

    @Test
    void theSummaryHasThePublishedShape() {
        ErrorsTest.Outcome o = ErrorsTest.run("info", "-m", GGUF);
        assertEquals(0, o.exit(), o.err());
        for (String line : new String[]{"dim:             64", "layers:          5", "heads:           8 (kv heads 4, head dim 8)", "splits:          across 2, 4 processes (--workers)",
                "vocab:           512", "tokenizer:       sentencepiece, 512 tokens, BOS 1 (added), EOS [2]"}) {
            assertTrue(o.out().contains(line), line + "\n" + o.out());
        }
        assertTrue(!o.out().contains("metadata:"), "only with --metadata");
        assertTrue(!o.out().contains("pooling:"), "stories260K's file names no pooling");
    }

    /** A reranker's summary says so: its pooling and its classifier head (EmbeddingTest's Qwen3 reranker). */
    @Test
    void aRerankerSaysItsPoolingAndHead(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("reranker.gguf");
        gptfast4j.model.EmbeddingTest.writeQwen3Reranker(dir, file);
        ErrorsTest.Outcome o = ErrorsTest.run("info", "-m", file.toString());
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.out().contains("pooling:         rank (a reranker: a classifier head of 2 labels, /v1/rerank)\n"), o.out());
    }

    /** A model of Mamba-2 mixers alone (Mamba2Test's) says so, and that no layer attends or has a feed-forward, rather than the config's nominal head. */
    @Test
    void aMamba2ModelSaysItHasNoAttention(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("mamba2-mini.gguf");
        gptfast4j.model.Mamba2Test.write(dir.resolve("llama.gguf"), file);
        ErrorsTest.Outcome o = ErrorsTest.run("info", "-m", file.toString());
        assertEquals(0, o.exit(), o.err());
        for (String line : new String[]{"layers:          4; Mamba-2 mixers in all (8 heads of 16 in 2 groups, states of 16, convolutions of 4 taps)",
                "heads:           none (no layer attends)", "ffn hidden:      none (no layer has a feed-forward)", "splits:          none (Mamba-2 mixers)"}) {
            assertTrue(o.out().contains(line + "\n"), line + " in\n" + o.out());
        }
        assertTrue(!o.out().contains("rope:"), o.out());
    }

    /** GPT-2's mini (LayerNormFamiliesTest's): no RoPE but its learned positions, LayerNorm's epsilon named as such. */
    @Test
    void aGpt2ModelSaysItsPositionsAreLearned(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("gpt2-mini.gguf");
        gptfast4j.model.LayerNormFamiliesTest.writeGpt2("gpt2", dir.resolve("llama.gguf"), file);
        assertInfoShows(file, "rope:            none (512 learned positions)", "layernorm eps:   1.00000e-05", "blocks:          GELU without a gate, no rope, LayerNorm");
    }

    /** {@code info} on {@code file} exits 0 and prints each of {@code lines} whole. */
    private static void assertInfoShows(java.nio.file.Path file, String... lines) {
        ErrorsTest.Outcome o = ErrorsTest.run("info", "-m", file.toString());
        assertEquals(0, o.exit(), o.err());
        for (String line : lines) assertTrue(o.out().contains(line + "\n"), line + " in\n" + o.out());
    }

    /** A deci model's mini (DeciTest's): its layers' own shapes, and the splits its kv heads allow. */
    @Test
    void aDeciModelSaysWhatEachLayerHas(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("deci-mini.gguf");
        gptfast4j.model.DeciTest.write(dir.resolve("llama.gguf"), file);
        assertInfoShows(file, "layers:          6; each of its own shape: no attention in 1, 4, wo alone (linear attention) in 2, no feed-forward in 4; feed-forwards 96 to 224 wide",
                "splits:          across 2 processes (--workers)");
    }

    /** MiniCPM3's mini (LatentAttentionTest's): its latent attention, and LongRoPE's factors named as such. */
    @Test
    void aMiniCpm3ModelNamesItsLongRopeFactors(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("minicpm3-mini.gguf");
        gptfast4j.model.LatentAttentionTest.writeMiniCpm3(dir.resolve("llama.gguf"), file);
        assertInfoShows(file, "rope:            base 10000.0, halves pairs, with LongRoPE's short frequency factors", "splits:          none (latent attention)");
    }

    /** An encoder's file (EncoderTest's BERT reranker): what it is, its shape, pooling, vocabulary and tensors; its metadata. */
    @Test
    void anEncoderSaysWhatItIs(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("bert-mini-reranker.gguf");
        gptfast4j.model.EncoderTest.writeBert(file, true);
        ErrorsTest.Outcome o = ErrorsTest.run("info", "-m", file.toString(), "--metadata");
        assertEquals(0, o.exit(), o.err());
        for (String line : new String[]{"architecture:    bert (an encoder: embeddings with gptfast embed, not text)", "layers:          2",
                "heads:           4 (head dim 16), every token attending to every other", "context length:  128 (learned positions)",
                "pooling:         rank (a reranker: a classifier head of 1 label)", "tokenizer:       wordpiece, 32000 tokens, each text [CLS] text [SEP]",
                "  F32        41 tensors       2,127,617 parameters       8,510,468 bytes"}) {
            assertTrue(o.out().contains(line + "\n"), line + " in\n" + o.out());
        }
        assertTrue(o.out().matches("(?s).*\\n  bert\\.pooling_type +uint32 +\\= 4\\n.*"), o.out());
    }

    @Test
    void metadataListsTheKeysWithTheirTypes() {
        ErrorsTest.Outcome o = ErrorsTest.run("info", "-m", GGUF, "--metadata");
        assertEquals(0, o.exit(), o.err());
        String out = o.out();
        assertTrue(out.matches("(?s).*\\n  general\\.architecture +string +\\= \"llama\"\\n.*"), out);
        assertTrue(out.matches("(?s).*\\n  llama\\.block_count +uint32 +\\= 5\\n.*"), out);
        assertTrue(out.matches("(?s).*\\n  llama\\.embedding_length +uint32 +\\= 64\\n.*"), out);
        // SentencePiece's first three pieces, then the list cut
        assertTrue(out.matches("(?s).*\\n  tokenizer\\.ggml\\.tokens +arr\\[string,512\\] +\\= \\[\"<unk>\", \"<s>\", \"</s>\", .*, \\.\\.\\.\\]\\n.*"), out);
        // a uint32 of all ones (no separator token) shown unsigned, not as Java's -1
        assertTrue(out.matches("(?s).*\\n  tokenizer\\.ggml\\.seperator_token_id +uint32 +\\= 4294967295\\n.*"), out);
        ErrorsTest.Outcome bin = ErrorsTest.run("info", "-m", Shared.MODELS.resolve("stories260K.bin").toString(),
                "--tokenizer", Shared.MODELS.resolve("tok512.bin").toString(), "--metadata");
        assertTrue(bin.out().contains("metadata:        none (a llama2.c checkpoint has no GGUF metadata)"), bin.out());
    }
}
