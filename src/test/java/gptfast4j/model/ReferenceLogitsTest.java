package gptfast4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The random-weight mini models against llama.cpp. F32 files against llama.cpp's native run; the other weight types
 * against {@code logits-dequant/} (llama.cpp's F32 run on the exact dequantization of the file's weights), which is
 * the arithmetic we use: F32 activations times the file's weights.
 */
class ReferenceLogitsTest {

    @ParameterizedTest
    @ValueSource(strings = {"mini-llama2-F32", "mini-llama3-F32", "mini-mixtral-F32"})
    void f32MatchesLlamaCpp(String model) {
        check(model, Shared.REFERENCE.resolve("logits/" + model + ".json.gz"));
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "mini-llama2-F16", "mini-llama2-BF16", "mini-llama2-Q8_0", "mini-llama2-Q4_0", "mini-llama2-Q4_1",
            "mini-llama3-F16", "mini-llama3-BF16", "mini-llama3-Q8_0", "mini-llama3-Q4_0", "mini-llama3-Q4_1",
            "mini-llama2-Q4_K", "mini-llama2-Q5_K", "mini-llama2-Q6_K", "mini-llama3-Q4_K", "mini-llama3-Q5_K", "mini-llama3-Q6_K",
            "mini-mixtral-Q8_0", "mini-mixtral-Q4_0", "mini-mixtral-Q4_K", "mini-mixtral-Q6_K"})
    void otherTypesMatchDequantizedReference(String model) {
        check(model, Shared.REFERENCE.resolve("logits-dequant/" + model + ".json.gz"));
    }

    private static void check(String model, Path reference) {
        Path file = Shared.REFERENCE.resolve("models/" + model + ".gguf");
        assertTrue(Files.exists(reference), reference.toString());
        JsonNode ref = Shared.json(reference);
        assertEquals(file.getFileName().toString(), ref.path("model_file").asText());
        Checkpoint ckpt = Checkpoint.load(file, null);
        int compared = ReferenceCheck.check(ckpt, ref);
        assertTrue(compared >= 4, "compared only " + compared + " greedy tokens");
    }
}
