package gptfast4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Embeddings are llama.cpp's: stories260K's, each pooling, against {@code llama-embedding}'s output on four texts
 * (src/test/resources/embeddings, with the command that made it), in batches smaller than the texts and with the
 * state's cache holding another text before.
 */
public class EmbeddingTest {
    @Test
    void poolingsAreLlamaEmbeddingsOutput() {
        Checkpoint ckpt = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        JsonNode refs = Shared.json(Path.of("src/test/resources/embeddings/stories260K-embeddings.json"));
        // batches of 8: the longer texts run in several
        Llama.State state = ckpt.model().newState(256, 8, 1, KvCache.Type.F32);
        for (Pooling pooling : new Pooling[]{Pooling.MEAN, Pooling.CLS, Pooling.LAST}) {
            JsonNode expected = refs.path(pooling.option());
            assertEquals(4, expected.size());
            for (int i = 0; i < expected.size(); i++) {
                float[] embedding = pooling.embed(ckpt.model(), state, Pooling.tokens(ckpt, refs.path("texts").get(i).asText()), Pooling.EUCLIDEAN);
                float[] reference = new float[expected.get(i).size()];
                for (int j = 0; j < reference.length; j++) reference[j] = (float) expected.get(i).get(j).asDouble();
                // llama-embedding prints 6-7 significant digits
                assertArrayEquals(reference, embedding, 2e-6f, pooling + " " + i);
            }
        }
        // llama-embedding's other --embd-normalize modes (mean pooling): none, int16's range, taxicab, the 3-norm
        for (String mode : new String[]{"-1", "0", "1", "3"}) {
            JsonNode expected = refs.path("normalized_mean").path(mode);
            for (int i = 0; i < expected.size(); i++) {
                float[] embedding = Pooling.MEAN.embed(ckpt.model(), state, Pooling.tokens(ckpt, refs.path("texts").get(i).asText()), Integer.parseInt(mode));
                for (int j = 0; j < embedding.length; j++) {
                    double reference = expected.get(i).get(j).asDouble();
                    // printed with 7 decimals, mode 0 as whole numbers (up to 32760)
                    double tolerance = mode.equals("0") ? 0.5 + 1e-6 * 32760 : 2e-6 + 1e-6 * Math.abs(reference);
                    assertEquals(reference, embedding[j], tolerance, "--embd-normalize " + mode + ", text " + i + ", value " + j);
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> Pooling.normalize(new float[]{1}, -2));
        assertEquals(Pooling.MEAN, Pooling.of(ckpt), "stories260K's file names no pooling");
        assertEquals(Pooling.LAST, Pooling.parse("LAST", "--pooling"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Pooling.parse("max", "--pooling"));
        assertEquals("--pooling must be mean, cls, last or rank; got 'max'", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Pooling.RANK.checkedFor(ckpt.model()));
        assertEquals("rank pooling needs a reranker: this model has no classifier head (cls.output.weight)", e.getMessage());
    }

    /**
     * Writes a Qwen3 reranker to {@code out} as llama.cpp's converter writes Qwen3-Reranker: QwenTest's qwen3 model, its
     * classifier head ({@code cls.output.weight}) the output head's rows of the tokens of "yes" and "no" (in that order,
     * as the converter takes them), pooling type rank, and a rerank template.
     */
    public static void writeQwen3Reranker(Path dir, Path out) {
        Path plain = dir.resolve("qwen3-plain.gguf");
        QwenTest.write(dir.resolve("llama.gguf"), plain);
        Checkpoint c = Checkpoint.load(plain, null);
        int yes = c.tokenizer().encode("yes")[0], no = c.tokenizer().encode("no")[0];
        FamilyFiles.rewrite(plain, out, md -> {
            md.put("qwen3.pooling_type", gptfast4j.io.Metadata.Value.uint32(4));
            md.put("tokenizer.chat_template.rerank", gptfast4j.io.Metadata.Value.string("Query: {query}\nDocument: {document}\nRelevant:"));
        }, name -> true, (tensors, list) -> {
            gptfast4j.io.TensorData head = tensors.get("output.weight");
            long dim = head.shape()[0], rowBytes = 4 * dim;
            list.add(new gptfast4j.io.GGUFWriter.TensorSpec("cls.output.weight", gptfast4j.tensor.GGMLType.F32, new long[]{dim, 2}, target -> {
                java.lang.foreign.MemorySegment.copy(head.data(), yes * rowBytes, target, 0, rowBytes);
                java.lang.foreign.MemorySegment.copy(head.data(), no * rowBytes, target, rowBytes, rowBytes);
            }));
        });
    }

    /**
     * A reranker's rank pooling is llama.cpp's: Qwen3-Reranker's score of a prompt is the softmax of its classifier's
     * two outputs at the last token, here the output head's rows of "yes" and "no", so the probability of "yes" against
     * "no" that the model's own logits give at that position (whose figures are llama-perplexity's: QwenTest); another
     * architecture's reads the first token's state, its bias added, no softmax.
     */
    @Test
    void rankPoolingIsTheClassifiersScores(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path file = dir.resolve("qwen3-reranker.gguf");
        writeQwen3Reranker(dir, file);
        Checkpoint c = Checkpoint.load(file, null);
        assertEquals(Pooling.RANK, Pooling.of(c));
        int yes = c.tokenizer().encode("yes")[0], no = c.tokenizer().encode("no")[0];
        int[] tokens = c.promptTokens("Query: what do cats eat?\nDocument: Cats eat fish.\nRelevant:", true);
        Llama.State state = c.model().newState(256, 8, 1, KvCache.Type.F32);
        float[] logits = c.model().forward(c.model().newState(256, 64, 1, KvCache.Type.F32), tokens, 0, tokens.length, 0, null);
        double pYes = 1 / (1 + Math.exp(logits[no] - logits[yes]));
        float[] scores = Pooling.RANK.embed(c.model(), state, tokens, Pooling.EUCLIDEAN);
        assertEquals(2, scores.length);
        assertEquals(pYes, scores[0], 1e-5);
        assertEquals(1 - pYes, scores[1], 1e-5);

        // a Llama file with a classifier of 3 labels and their bias: the first token's state, no softmax
        Path llama = dir.resolve("llama-classifier.gguf");
        FamilyFiles.rewrite(dir.resolve("llama.gguf"), llama, md -> md.put("llama.pooling_type", gptfast4j.io.Metadata.Value.uint32(4)), name -> true, (tensors, list) -> {
            FamilyFiles.matrix(list, "cls.output.weight", new long[]{QwenTest.SHAPE.dim(), 3}, 5);
            FamilyFiles.bias(list, "cls.output.bias", new long[]{3}, 6);
        });
        Checkpoint l = Checkpoint.load(llama, null);
        Weights.Classifier head = l.model().weights().classifier();
        float[] first = Pooling.CLS.embed(l.model(), state = l.model().newState(256, 8, 1, KvCache.Type.F32), tokens, -1), expected = new float[3];
        for (int k = 0; k < 3; k++) {
            float[] row = new float[QwenTest.SHAPE.dim()];
            head.weights().dequantizeRow(k, row, 0);
            for (int i = 0; i < row.length; i++) expected[k] += row[i] * first[i];
            expected[k] += head.bias()[k];
        }
        assertArrayEquals(expected, Pooling.RANK.embed(l.model(), state, tokens, Pooling.EUCLIDEAN), 1e-5f);
    }

}
