package gptfast4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalDouble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class HugePagesTest {
    /** The share comes from this process's own mappings of the file: none before it is mapped, some once it is read. */
    @Test
    void residentShareCountsOnlyThisFilesMappings(@TempDir Path dir) throws IOException {
        assumeTrue(Files.isReadable(Path.of("/proc/self/smaps")), "needs Linux's /proc/self/smaps");
        Path file = dir.resolve("weights.bin");
        Files.write(file, new byte[8 << 20]);
        assertEquals(OptionalDouble.empty(), HugePages.residentShare(file));

        MemorySegment mapped = Mapped.map(file);
        long sum = 0;
        for (long i = 0; i < mapped.byteSize(); i += 4096) sum += mapped.get(ValueLayout.JAVA_BYTE, i);
        OptionalDouble share = HugePages.residentShare(file);
        assertTrue(share.isPresent(), "a resident mapping of the file was not found");
        assertTrue(share.getAsDouble() >= 0 && share.getAsDouble() <= 1, "share " + share);
        assertEquals(0, sum);
        assertEquals(OptionalDouble.empty(), HugePages.residentShare(dir.resolve("other.bin")));
    }
}
