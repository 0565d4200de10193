package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.generate.Generator;
import gptfast4j.generate.Sampler;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A model loaded in a shared arena keeps all its memory there (the file's mapping, the copies of quantizing at load
 * and of the decode layouts), so that closing the arena gives it all back at once; a model used after that fails with
 * an exception, not a crash.
 */
class ModelArenaTest {

    /** The decode layouts' copies of each kind (row groups, half floats, K-quants), and copies made at load. */
    @ParameterizedTest
    @CsvSource({"models/mini-llama2-Q4_0.gguf, ", "models/mini-llama2-F16.gguf, ", "models/mini-llama2-Q4_K.gguf, ", "models/mini-llama2-F32.gguf, Q8_0"})
    void closingTheArenaUnmapsTheFileAndFreesTheCopies(String name, GGMLType quantize) throws IOException {
        assumeTrue(Files.isReadable(Path.of("/proc/self/maps")), "needs Linux's /proc/self/maps");
        Path file = Shared.REFERENCE.resolve(name);
        Checkpoint plain = Checkpoint.load(file, null, quantize);
        Arena arena = Arena.ofShared();
        Checkpoint inArena = Checkpoint.load(file, null, quantize, arena);
        int[] prompt = inArena.promptTokens("Once upon a time");
        int[] expected = greedy(plain, prompt), got = greedy(inArena, prompt);
        assertArrayEquals(expected, got, "the same model, wherever its memory is");

        Llama model = inArena.model();
        assertEquals(0, model.weights().decodeCopyBytes(), "decoding moved every layer to its decode layout");
        List<Tensor> tensors = tensors(model.weights());
        for (Tensor t : tensors) assertEquals(arena.scope(), t.data.scope(), t.name + " is in the arena");
        long embeddings = model.weights().tokEmbeddings().data.address(); // a view of the file's mapping
        assertTrue(mapped(file, embeddings), "the file is mapped");

        arena.close();
        assertFalse(mapped(file, embeddings), "the file is unmapped");
        for (Tensor t : tensors) assertFalse(t.data.scope().isAlive(), t.name);
        Llama.State state = model.newState(16, 1);
        assertThrows(IllegalStateException.class, () -> model.forward(state, prompt[0], 0), "a closed model fails, and the JVM goes on");
        assertArrayEquals(expected, greedy(plain, prompt), "another model of the same file is untouched");
    }

    /**
     * A model whose arena closed before its first decode step cannot make its decode layouts, and the memory it had
     * asked for (a 1 GB chunk of address space) is given back rather than leaked.
     */
    @Test
    void aCopyRefusedByAClosedArenaLeavesNoMemoryBehind() throws IOException {
        assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "needs Linux's /proc/self/status");
        Arena arena = Arena.ofShared();
        Llama model = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf"), null, null, arena).model();
        assertTrue(model.weights().decodeCopyBytes() > 0);
        arena.close();
        long before = virtualMemory();
        assertThrows(IllegalStateException.class, model::startDecoding);
        long grown = virtualMemory() - before;
        assertTrue(grown < 256 << 20, grown + " bytes more address space");
    }

    /** {@code VmSize} of {@code /proc/self/status}, in bytes. */
    private static long virtualMemory() throws IOException {
        String line = Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("VmSize:")).findFirst().orElseThrow();
        return 1024 * Long.parseLong(line.replaceAll("[^0-9]", ""));
    }

    /** The worker threads read a model's weights, which a confined arena's memory would refuse them. */
    @Test
    void aConfinedArenaIsRefused() {
        try (Arena arena = Arena.ofConfined()) {
            var e = assertThrows(IllegalArgumentException.class, () -> Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null, null, arena));
            assertTrue(e.getMessage().contains("shared arena"), e.getMessage());
        }
    }

    private static int[] greedy(Checkpoint c, int[] prompt) {
        Llama m = c.model();
        return new Generator(m, m.newState(64, prompt.length), c.eos()).generate(prompt, 0, 16, new Sampler(m.config.vocabSize(), 0, 0, 1, 0), t -> true).tokens();
    }

    private static List<Tensor> tensors(Weights w) {
        List<Tensor> all = new ArrayList<>(List.of(w.tokEmbeddings()));
        w.map(t -> {
            all.add(t);
            return t;
        });
        return all;
    }

    /**
     * Whether {@code /proc/self/maps} lists a mapping of {@code file} that holds {@code address} (the model loaded
     * without an arena maps the same file elsewhere).
     */
    private static boolean mapped(Path file, long address) throws IOException {
        String name = " " + file.toRealPath();
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.endsWith(name)).anyMatch(l -> {
            String[] range = l.substring(0, l.indexOf(' ')).split("-");
            return Long.compareUnsigned(Long.parseUnsignedLong(range[0], 16), address) <= 0 && Long.compareUnsigned(address, Long.parseUnsignedLong(range[1], 16)) < 0;
        });
    }
}
