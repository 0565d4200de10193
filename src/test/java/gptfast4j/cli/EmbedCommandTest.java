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
}
