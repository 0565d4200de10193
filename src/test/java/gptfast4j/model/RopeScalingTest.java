package gptfast4j.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The Llama-3.1 rope scaling of a config.json gives the factors llama.cpp's converter stored in rope_freqs. */
class RopeScalingTest {
    @Test
    void hfRopeScalingMatchesGGUFRopeFreqs() throws Exception {
        Config gguf = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama3-F32.gguf"), null).model().config;
        var scaling = new ObjectMapper().readTree("""
                {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                 "original_max_position_embeddings": 8192}""");
        float[] fromConfig = Checkpoint.llama3RopeFactors(scaling, java.nio.file.Path.of("config.json"), gguf.ropeTheta(), gguf.headDim());
        assertArrayEquals(gguf.ropeFreqFactors(), fromConfig, 1e-6f);
    }
}
