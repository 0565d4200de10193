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
 * 1 / factor), YaRN (and Ministral 3's attention temperature) against llama-perplexity, and the scalings not
 * supported, refused rather than run without.
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
        Path longrope = storiesWith(dir.resolve("longrope.gguf"), Map.of("llama.rope.scaling.type", Metadata.Value.string("longrope")));
        var e = assertThrows(ModelFormatException.class, () -> Checkpoint.load(longrope, null));
        assertEquals(longrope + ": unsupported rope scaling 'longrope' (supported: linear, yarn, and Llama-3.1's rope_freqs)", e.getMessage());
        // a config.json's linear scaling, and one not supported
        var mapper = new ObjectMapper();
        assertArrayEquals(new float[]{2, 2, 2, 2}, Checkpoint.ropeScaling(mapper.readTree("{\"rope_type\": \"linear\", \"factor\": 2.0}"), Path.of("config.json"), 10000, 8));
        e = assertThrows(ModelFormatException.class, () -> Checkpoint.ropeScaling(mapper.readTree("{\"type\": \"dynamic\", \"factor\": 2.0}"), Path.of("config.json"), 10000, 8));
        assertTrue(e.getMessage().contains("unsupported rope_scaling type 'dynamic' (supported: llama3, linear)"), e.getMessage());
    }

    /**
     * YaRN as llama.cpp runs it: llama-perplexity de3ff81 ({@code -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32}) on the
     * files written here, ours within 1e-6 (they lay 1e-8 to 2e-8 from it). LlamaLikeTest's {@code llama} model with
     * factor 4 over an original 64 positions (47615.37 unscaled); QwenTest's {@code qwen3} (RoPE on halves) with factor
     * 8 over 32, and a {@code yarn_beta_fast} that llama.cpp reads for mistral3 only; Ministral 3's {@code mistral3}
     * with its own betas and log multiplier (which shrinks the cosines' growth) and its attention temperature over an
     * original 48 positions, so that it grows within the text's chunks.
     */
    @Test
    void yarnGivesLlamaCppsPerplexity(@TempDir Path dir) throws Exception {
        Path llama = dir.resolve("yarn-llama.gguf");
        LlamaLikeTest.write("llama", dir.resolve("l.gguf"), llama, md -> {
            md.put("llama.rope.scaling.type", Metadata.Value.string("yarn"));
            md.put("llama.rope.scaling.factor", Metadata.Value.float32(4f));
            md.put("llama.rope.scaling.original_context_length", Metadata.Value.uint32(64));
        });
        Checkpoint c = Checkpoint.load(llama, null);
        assertEquals(new Config.Yarn(4f, 64, 32f, 1f, 0f), c.model().config.variant().yarn());
        assertNull(c.model().config.ropeFreqFactors());
        assertEquals(47459.4544, LlamaLikeTest.perplexity(c), 1e-6 * 47459.4544);

        Path qwen3 = dir.resolve("yarn-qwen3.gguf");
        QwenTest.write(QwenTest.SHAPE, "qwen3", dir.resolve("q.gguf"), qwen3, md -> {
            md.put("qwen3.rope.scaling.type", Metadata.Value.string("yarn"));
            md.put("qwen3.rope.scaling.factor", Metadata.Value.float32(8f));
            md.put("qwen3.rope.scaling.original_context_length", Metadata.Value.uint32(32));
            md.put("qwen3.rope.scaling.yarn_beta_fast", Metadata.Value.float32(1f));
        });
        assertEquals(47956.8554, LlamaLikeTest.perplexity(Checkpoint.load(qwen3, null)), 1e-6 * 47956.8554);

        Path ministral = dir.resolve("yarn-ministral.gguf");
        LlamaLikeTest.write("mistral3", dir.resolve("l.gguf"), ministral, md -> {
            md.put("mistral3.rope.scaling.type", Metadata.Value.string("yarn"));
            md.put("mistral3.rope.scaling.factor", Metadata.Value.float32(16f));
            md.put("mistral3.rope.scaling.original_context_length", Metadata.Value.uint32(48));
            md.put("mistral3.rope.scaling.yarn_beta_fast", Metadata.Value.float32(2f));
            md.put("mistral3.rope.scaling.yarn_beta_slow", Metadata.Value.float32(0.25f));
            md.put("mistral3.rope.scaling.yarn_log_multiplier", Metadata.Value.float32(0.5f));
            md.put("mistral3.attention.temperature_scale", Metadata.Value.float32(0.3f));
        });
        c = Checkpoint.load(ministral, null);
        assertEquals(new Config.Temperature(0.3f, 48), c.model().config.variant().temperature());
        assertEquals(16 * 48, c.model().config.usableContextLength());
        assertEquals(47986.8024, LlamaLikeTest.perplexity(c), 1e-6 * 47986.8024);
    }
}
