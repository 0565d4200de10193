package gptfast4j.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.Shared;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Rope scaling as llama.cpp reads it: Llama-3.1's factors (a config.json's equal the rope_freqs tensor llama.cpp's
 * converter stored), a linear scaling (every frequency divided by its factor: llama.cpp's frequency scale of
 * 1 / factor), and the scalings not supported, refused rather than run without.
 */
class RopeScalingTest {
    @Test
    void hfRopeScalingMatchesGGUFRopeFreqs() throws Exception {
        Config gguf = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama3-F32.gguf"), null).model().config;
        var scaling = new ObjectMapper().readTree("""
                {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                 "original_max_position_embeddings": 8192}""");
        float[] fromConfig = Checkpoint.ropeScaling(scaling, Path.of("config.json"), gguf.ropeTheta(), gguf.headDim());
        assertArrayEquals(gguf.ropeFreqFactors(), fromConfig, 1e-6f);
    }

    /** stories260K (head dim 8: 4 rotary pairs) with its metadata plus {@code extra}, at {@code out}. */
    private static Path storiesWith(Path out, Map<String, Metadata.Value> extra) {
        return Shared.storiesWithMetadata(out, metadata -> metadata.putAll(extra));
    }

    @Test
    void linearScalingDividesEveryFrequency(@TempDir Path dir) throws Exception {
        Config linear = Checkpoint.load(storiesWith(dir.resolve("linear.gguf"), Map.of(
                "llama.rope.scaling.type", Metadata.Value.string("linear"),
                "llama.rope.scaling.factor", new Metadata.Value(Metadata.Type.FLOAT32, null, 4f))), null).model().config;
        assertArrayEquals(new float[]{4, 4, 4, 4}, linear.ropeFreqFactors());
        // the key older conversions wrote
        Config older = Checkpoint.load(storiesWith(dir.resolve("older.gguf"), Map.of(
                "llama.rope.scale_linear", new Metadata.Value(Metadata.Type.FLOAT32, null, 2f))), null).model().config;
        assertArrayEquals(new float[]{2, 2, 2, 2}, older.ropeFreqFactors());
        Config none = Checkpoint.load(storiesWith(dir.resolve("none.gguf"), Map.of(
                "llama.rope.scaling.type", Metadata.Value.string("none"),
                "llama.rope.scaling.factor", new Metadata.Value(Metadata.Type.FLOAT32, null, 4f))), null).model().config;
        assertNull(none.ropeFreqFactors());
        Path yarn = storiesWith(dir.resolve("yarn.gguf"), Map.of("llama.rope.scaling.type", Metadata.Value.string("yarn")));
        var e = assertThrows(ModelFormatException.class, () -> Checkpoint.load(yarn, null));
        assertEquals(yarn + ": unsupported rope scaling 'yarn' (supported: linear, and Llama-3.1's rope_freqs)", e.getMessage());
        // a config.json's linear scaling, and one not supported
        var mapper = new ObjectMapper();
        assertArrayEquals(new float[]{2, 2, 2, 2}, Checkpoint.ropeScaling(mapper.readTree("{\"rope_type\": \"linear\", \"factor\": 2.0}"), Path.of("config.json"), 10000, 8));
        e = assertThrows(ModelFormatException.class, () -> Checkpoint.ropeScaling(mapper.readTree("{\"type\": \"dynamic\", \"factor\": 2.0}"), Path.of("config.json"), 10000, 8));
        assertTrue(e.getMessage().contains("unsupported rope_scaling type 'dynamic' (supported: llama3, linear)"), e.getMessage());
    }
}
