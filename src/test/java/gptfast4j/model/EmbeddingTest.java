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
class EmbeddingTest {
    @Test
    void poolingsAreLlamaEmbeddingsOutput() {
        Checkpoint ckpt = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        JsonNode refs = Shared.json(Path.of("src/test/resources/embeddings/stories260K-embeddings.json"));
        // batches of 8: the longer texts run in several
        Llama.State state = ckpt.model().newState(256, 8, 1, KvCache.Type.F32);
        for (Pooling pooling : Pooling.values()) {
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
        assertEquals("--pooling must be mean, cls or last; got 'max'", e.getMessage());
    }
}
