package gptfast4j.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Memory-maps whole files read-only, advised as huge pages ({@link HugePages}), the mapping in a given arena: an
 * automatic one unmaps it once the returned segment is unreachable, a shared one when it is closed.
 */
public final class Mapped {
    private Mapped() {
    }

    private static final int MADV_DONTNEED = 4;

    /**
     * Gives back this process's pages of {@code mapping[from, to)}, with the rest of the pages the range touches; a
     * later read maps them again from the page cache. Nothing once the mapping's arena is closed (its range may
     * already be another mapping's). What {@link MemorySegment#unload} does ({@code
     * madvise(MADV_DONTNEED)}), without the slice that allocates: an embedding row's pages are released at every
     * decoded token. The start is aligned down to the system's page, which stays within the file's mapping (itself
     * page-aligned). Where that call fails (no Linux), through {@code unload}.
     */
    public static void release(MemorySegment mapping, long from, long to) {
        if (to <= from || !mapping.scope().isAlive()) return;
        long start = (mapping.address() + from) & -HugePages.PAGE_SIZE, end = mapping.address() + to;
        if (HugePages.madvise(start, end - start, MADV_DONTNEED) != 0) mapping.asSlice(from, to - from).unload();
    }

    /** {@code path} mapped until the returned segment is unreachable. */
    public static MemorySegment map(Path path) {
        return map(path, Arena.ofAuto());
    }

    /** {@code path} mapped until {@code arena} is closed (or, for an automatic arena, no longer reachable). */
    public static MemorySegment map(Path path, Arena arena) {
        if (!Files.exists(path)) throw new ModelFormatException(path + ": no such file");
        if (Files.isDirectory(path)) throw new ModelFormatException(path + ": is a directory, expected a file");
        // a pipe (a model piped to /dev/stdin) cannot be mapped, and opening a FIFO waits for a writer
        if (!Files.isRegularFile(path)) throw new ModelFormatException(path + ": not a regular file (a pipe or a device); models are mapped from files");
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size == 0) throw new ModelFormatException(path + ": file is empty");
            MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            HugePages.advise(file);
            return file;
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path + ": no such file");
        } catch (IOException e) {
            throw new ModelFormatException(path + ": cannot read: " + e.getMessage());
        }
    }
}
