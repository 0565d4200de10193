package gptfast4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@code gptfast embed}: llama-embedding's vectors (EmbeddingTest's references, an F32 cache as theirs), as lines of numbers and as OpenAI's JSON. */
class EmbedCommandTest {
    @Test
    void embeddingsAreLlamaEmbeddingsOutput(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        JsonNode refs = Shared.json(Path.of("src/test/resources/embeddings/stories260K-embeddings.json"));
        Path texts = dir.resolve("texts.txt");
        StringBuilder lines = new StringBuilder();
        refs.path("texts").forEach(t -> lines.append(t.asText()).append("\n\n")); // blank lines left out
        Files.writeString(texts, lines);
        String model = Shared.MODELS.resolve("stories260K.gguf").toString();

        ErrorsTest.Outcome text = ErrorsTest.run("embed", "-m", model, "-f", texts.toString(), "--pooling", "last", "--kv-cache", "f32");
        assertEquals(0, text.exit(), text.err());
        String[] rows = text.out().strip().split("\n");
        assertEquals(4, rows.length);
        for (int i = 0; i < 4; i++) {
            String[] numbers = rows[i].split(" ");
            assertEquals(refs.at("/last/" + i).size(), numbers.length);
            for (int j = 0; j < numbers.length; j++) assertEquals(refs.at("/last/" + i + "/" + j).asDouble(), Float.parseFloat(numbers[j]), 2e-6, "text " + i);
        }
        assertEquals("4 texts, 83 tokens, last pooling", text.err().strip().lines().reduce((a, b) -> b).orElseThrow());

        ErrorsTest.Outcome json = ErrorsTest.run("embed", "-m", model, "-p", refs.at("/texts/2").asText(), "--format", "json", "--kv-cache", "f32");
        assertEquals(0, json.exit(), json.err());
        JsonNode response = new ObjectMapper().readTree(json.out());
        assertEquals(3, response.at("/usage/prompt_tokens").asInt());
        JsonNode embedding = response.at("/data/0/embedding");
        for (int j = 0; j < embedding.size(); j++) assertEquals(refs.at("/mean/2/" + j).asDouble(), embedding.get(j).asDouble(), 2e-6);
    }

    /**
     * An encoder's file (BERT's): {@code embed} runs each text as [CLS] text [SEP] in one pass (llama-embedding's
     * vectors, EncoderTest's references, to their F16 GELU's difference), the file's mean pooling by default; a
     * reranker's scores with rank pooling; {@code generate} refuses the file in one line.
     */
    @Test
    void anEncodersEmbeddingsAreLlamaEmbeddingsOutput(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        JsonNode refs = Shared.json(Path.of("src/test/resources/embeddings/bert-mini-embeddings.json"));
        Path model = dir.resolve("bert-mini.gguf"), reranker = dir.resolve("bert-mini-reranker.gguf"), texts = dir.resolve("texts.txt");
        gptfast4j.model.EncoderTest.writeBert(model, false);
        gptfast4j.model.EncoderTest.writeBert(reranker, true);
        StringBuilder lines = new StringBuilder();
        refs.path("texts").forEach(t -> lines.append(t.asText()).append("\n"));
        Files.writeString(texts, lines);

        ErrorsTest.Outcome json = ErrorsTest.run("embed", "-m", model.toString(), "-f", texts.toString(), "--format", "json", "--threads", "2");
        assertEquals(0, json.exit(), json.err());
        JsonNode response = new ObjectMapper().readTree(json.out());
        assertEquals(refs.path("n_tokens").asInt(), response.at("/usage/prompt_tokens").asInt());
        for (int i = 0; i < 4; i++) {
            JsonNode embedding = response.at("/data/" + i + "/embedding");
            assertEquals(refs.at("/mean/" + i).size(), embedding.size());
            for (int j = 0; j < embedding.size(); j++) assertEquals(refs.at("/mean/" + i + "/" + j).asDouble(), embedding.get(j).asDouble(), gptfast4j.model.EncoderTest.TOLERANCE);
        }
        assertEquals("4 texts, 78 tokens, mean pooling", json.err().strip().lines().reduce((a, b) -> b).orElseThrow());

        ErrorsTest.Outcome ranked = ErrorsTest.run("embed", "-m", reranker.toString(), "-f", texts.toString());
        assertEquals(0, ranked.exit(), ranked.err());
        String[] scores = ranked.out().strip().split("\n");
        for (int i = 0; i < 4; i++) assertEquals(refs.at("/rank/" + i).asDouble(), Double.parseDouble(scores[i]), gptfast4j.model.EncoderTest.TOLERANCE);

        ErrorsTest.Outcome generate = ErrorsTest.run("generate", "-m", model.toString(), "-p", "Hello");
        assertEquals(1, generate.exit());
        assertEquals("error: " + model + ": a bert model is an encoder, which makes embeddings, not text (gptfast embed)", generate.err().strip());
        ErrorsTest.Outcome quantized = ErrorsTest.run("embed", "-m", model.toString(), "-p", "Hello", "--quantize", "int8");
        assertEquals("error: --quantize is not for an encoder (bert): quantize its file instead", quantized.err().strip());
        // which quantize does: the file in Q8_0, whose embeddings are the F32 file's within Q8_0's rounding
        Path q8 = dir.resolve("bert-mini-q8_0.gguf");
        ErrorsTest.Outcome quantize = ErrorsTest.run("quantize", "--checkpoint", model.toString(), "--mode", "q8_0", "--out", q8.toString());
        assertEquals(0, quantize.exit(), quantize.err());
        ErrorsTest.Outcome q8json = ErrorsTest.run("embed", "-m", q8.toString(), "-f", texts.toString(), "--format", "json");
        assertEquals(0, q8json.exit(), q8json.err());
        JsonNode q8response = new ObjectMapper().readTree(q8json.out());
        for (int j = 0; j < 64; j++) assertEquals(refs.at("/mean/0/" + j).asDouble(), q8response.at("/data/0/embedding/" + j).asDouble(), 3e-3);
    }
}
