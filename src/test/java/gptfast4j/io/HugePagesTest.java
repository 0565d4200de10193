package gptfast4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class HugePagesTest {
    /** Residency comes from this process's own mappings of the file: none before it is mapped, all of it once it is read. */
    @Test
    void residencyCountsOnlyThisFilesMappings(@TempDir Path dir) throws IOException {
        assumeTrue(Files.isReadable(Path.of("/proc/self/smaps")), "needs Linux's /proc/self/smaps");
        Path file = dir.resolve("weights.bin");
        Files.write(file, new byte[8 << 20]);
        assertEquals(Optional.empty(), HugePages.residency(file));

        MemorySegment mapped = Mapped.map(file);
        long sum = 0;
        for (long i = 0; i < mapped.byteSize(); i += 4096) sum += mapped.get(ValueLayout.JAVA_BYTE, i);
        Optional<HugePages.Residency> resident = HugePages.residency(file);
        assertTrue(resident.isPresent(), "a resident mapping of the file was not found");
        assertEquals(8 << 20, resident.get().bytes(), "every page was read");
        assertTrue(resident.get().hugeShare() >= 0 && resident.get().hugeShare() <= 1, "share " + resident.get().hugeShare());
        assertEquals(0, sum);
        assertEquals(Optional.empty(), HugePages.residency(dir.resolve("other.bin")));
    }
}
