package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import gptfast4j.quant.Perplexity;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Control vectors against llama.cpp: a random control vector of ../shared's mini-llama2-F32 (2 layers: direction.1
 * is added after layer 1, direction.2 is past the last and left out, as llama.cpp leaves it), written here ({@link
 * #writeVector}), changes the perplexity of ../shared's text (ctx 128, F32 cache) to llama-perplexity de3ff81's with
 * {@code --control-vector} (and {@code --control-vector-scaled} 0.5; with {@code --control-vector-layer-range 2 2},
 * no layer's, the base's).
 */
class ControlVectorTest {
    private static final Path BASE = Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf");
    /** llama-perplexity de3ff81 -m mini-llama2-F32.gguf --control-vector FILE (-scaled FILE:0.5) -f ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32. */
    private static final double LLAMA_CPP_PPL = 10944.5785, LLAMA_CPP_PPL_HALF = 11126.7099, BASE_PPL = 11262.2632;

    /** direction.1 and direction.2 of 256 values each, -0.5 to 0.5 (seeded). */
    static void writeVector(Path out, int dim) {
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        md.put("general.architecture", Metadata.Value.string("controlvector"));
        md.put("controlvector.model_hint", Metadata.Value.string("llama"));
        md.put("controlvector.layer_count", Metadata.Value.uint32(2));
        List<GGUFWriter.TensorSpec> t = new ArrayList<>();
        for (int layer = 1; layer <= 2; layer++) {
            int seed = layer;
            t.add(new GGUFWriter.TensorSpec("direction." + layer, GGMLType.F32, new long[]{dim}, target -> {
                java.util.Random random = new java.util.Random(seed);
                for (int i = 0; i < dim; i++) target.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, random.nextFloat() - 0.5f);
            }));
        }
        GGUFWriter.write(out, md, t, n -> { });
    }

    private static double perplexity(Checkpoint c) throws IOException {
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        return Perplexity.compute(c, null, text.substring(0, text.length() - 1), 128, KvCache.Type.F32, k -> { }).ppl();
    }

    @Test
    void perplexityWithAControlVectorIsLlamaCpps(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("cvec.gguf");
        writeVector(file, 256);
        Checkpoint c = Checkpoint.load(BASE, null);
        c.model().steer(ControlVector.load(List.of(file), List.of(1f), 1, 2, 2, 256));
        assertEquals(LLAMA_CPP_PPL, perplexity(c), LLAMA_CPP_PPL * 1e-6);
        c.model().steer(ControlVector.load(List.of(file), List.of(0.5f), 1, 2, 2, 256));
        assertEquals(LLAMA_CPP_PPL_HALF, perplexity(c), LLAMA_CPP_PPL_HALF * 1e-6);
        c.model().steer(ControlVector.load(List.of(file), List.of(1f), 2, 2, 2, 256));
        assertEquals(BASE_PPL, perplexity(c), BASE_PPL * 1e-6);
    }

    @Test
    void filesThatAreNotControlVectorsOfThisModelAreRefusedByName(@TempDir Path dir) {
        Path wide = dir.resolve("wide.gguf");
        writeVector(wide, 512);
        var e = assertThrows(ModelFormatException.class, () -> ControlVector.load(List.of(wide), List.of(1f), 1, 2, 2, 256));
        assertTrue(e.getMessage().contains("'direction.1' has 512 values but the model's hidden state 256"), e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> ControlVector.load(List.of(BASE), List.of(1f), 1, 2, 2, 256));
        assertTrue(e.getMessage().contains("is not a control vector's direction.L"), e.getMessage());
    }
}
