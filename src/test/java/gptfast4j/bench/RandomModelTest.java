package gptfast4j.bench;

import gptfast4j.Shared;
import gptfast4j.generate.Generator;
import gptfast4j.generate.Sampler;
import gptfast4j.io.GGUF;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** make-model writes a GGUF of the shape asked for, with llama.cpp's keys and a real tokenizer, that runs. */
class RandomModelTest {
    @Test
    void stories15MRoundTrips(@TempDir Path dir) {
        ModelShape shape = ModelShape.named("stories15M");
        Path out = dir.resolve("s15.gguf");
        RandomModel.write(shape, GGMLType.Q8_0, out, Shared.TOKENIZERS, b -> { });
        GGUF gguf = GGUF.read(out);
        assertEquals(7, gguf.metadata().getInt("general.file_type", -1));
        assertEquals(RandomModel.dataBytes(shape, GGMLType.Q8_0), gguf.tensors().values().stream().mapToLong(t -> t.data().byteSize()).sum());
        Checkpoint c = Checkpoint.load(out, null);
        Config config = c.model().config;
        assertEquals(new Config("llama", 288, 768, 6, 6, 6, 32000, 256, 1e-5f, 10000f, null, Config.RopeStyle.INTERLEAVED, 0, 0), config);
        assertEquals(32000, c.tokenizer().vocabSize());
        assertEquals("▁Hello", c.tokenizer().piece(c.tokenizer().encode("Hello")[0]));
        int[] tokens = new Generator(c.model(), c.model().newState(16, 8), c.eos())
                .generate(new int[]{1, 15043}, 0, 8, new Sampler(32000, 0, 0, 1, 0), t -> true).tokens();
        assertTrue(tokens.length > 0);
        assertEquals(0, dir.toFile().list((d, name) -> name.endsWith(".partial")).length, "no temporary file left");
        assertTrue(Files.exists(out));
    }
}
