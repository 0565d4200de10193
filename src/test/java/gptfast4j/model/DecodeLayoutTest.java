package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.bench.ModelShape;
import gptfast4j.bench.RandomModel;
import gptfast4j.io.HugePages;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The first decode step moves Q4_0's linear layers to their decode layout, a copy of their size, only when the system
 * has that much memory available; otherwise decode reads the file's layout. Both decode the same logits.
 */
class DecodeLayoutTest {
    private static final Path FILE = Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf");

    @Test
    void theCopyIsMadeOnlyWhenTheMemoryIsThere() {
        Llama tight = Checkpoint.load(FILE, null).model();
        Tensor wq = tight.weights().layers()[0].wq();
        long bytes = tight.weights().decodeCopyBytes();
        assertTrue(bytes > 0, "Q4_0 layers to copy");
        assertFalse(tight.useDecodeLayouts(OptionalLong.of(bytes + Llama.COPY_HEADROOM - 1)));
        assertSame(wq, tight.weights().layers()[0].wq(), "kept in the file's layout");

        Llama roomy = Checkpoint.load(FILE, null).model();
        assertTrue(roomy.useDecodeLayouts(OptionalLong.of(bytes + Llama.COPY_HEADROOM)));
        assertNotSame(roomy.weights().layers()[0].wq(), Checkpoint.load(FILE, null).model().weights().layers()[0].wq());
        assertEquals(0, roomy.weights().decodeCopyBytes(), "everything copied");
        assertFalse(roomy.useDecodeLayouts(OptionalLong.empty()), "once only");

        float[] a = tight.forward(tight.newState(8, 1), 1, 0), b = roomy.forward(roomy.newState(8, 1), 1, 0);
        for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-4f + 1e-5f * Math.abs(a[i]), "logit " + i);
    }

    /**
     * Each token's embedding row is read from the mapped file, and its pages are given back at once: the file is
     * cached in 2 MB folios where it can be, and each token seen had kept one mapped (Llama-2-7B Q4_K: 70 of its 74 MB
     * table after 100 tokens, past issue #3's memory allowance). A model whose table is not also its output head.
     */
    @Test
    void decodeGivesBackTheEmbeddingRowsItReads(@TempDir Path dir) {
        assumeTrue(Files.isReadable(Path.of("/proc/self/smaps")), "needs Linux's /proc/self/smaps");
        Path file = dir.resolve("untied.gguf");
        // a 32000 x 64 F32 table (8 MB): 32 tokens 1000 rows apart touch 32 pages of it, or folios
        RandomModel.write(new ModelShape("untied", 64, 128, 1, 2, 2, 32000, 64, 10000, 1e-5f, false, 0, 0, 0),
                GGMLType.F32, file, Shared.TOKENIZERS, bytes -> {});
        Llama model = Checkpoint.load(file, null).model();
        Llama.State s = model.newState(64, 1);
        model.forward(s, 1, 0);
        long before = HugePages.residency(file).map(HugePages.Residency::bytes).orElse(0L);
        for (int pos = 1; pos <= 32; pos++) model.forward(s, 1000 * pos - 1, pos);
        long after = HugePages.residency(file).map(HugePages.Residency::bytes).orElse(0L);
        assertTrue(after <= before, "the file's resident pages grew from " + before + " to " + after + " bytes over 32 tokens");
    }

    /** Where the available memory cannot be read (not Linux), the copy is made. */
    @Test
    void unknownMemoryCopies() {
        Llama model = Checkpoint.load(FILE, null).model();
        assertTrue(model.useDecodeLayouts(OptionalLong.empty()));
    }

    /** The note's sizes (and every other size a command prints) in MB below 1 GB: a small model's copy is not "0.0 GB". */
    @Test
    void theNoteSaysSmallSizesInMegabytes() {
        assertEquals("3.72 GB", gptfast4j.io.ByteSize.of(3_717_500_000L));
        assertEquals("1.00 GB", gptfast4j.io.ByteSize.of(1_000_000_000L));
        assertEquals("1.2 MB", gptfast4j.io.ByteSize.of(1_234_567L));
        assertEquals("0.0 MB", gptfast4j.io.ByteSize.of(0));
    }
}
