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
 * Memory-maps whole files read-only, advised as huge pages ({@link HugePages}). The mapping lives as long as the
 * returned segment is reachable.
 */
public final class Mapped {
    private Mapped() {
    }

    public static MemorySegment map(Path path) {
        if (!Files.exists(path)) throw new ModelFormatException(path + ": no such file");
        if (Files.isDirectory(path)) throw new ModelFormatException(path + ": is a directory, expected a file");
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size == 0) throw new ModelFormatException(path + ": file is empty");
            MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, Arena.ofAuto());
            HugePages.advise(file);
            return file;
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path + ": no such file");
        } catch (IOException e) {
            throw new ModelFormatException(path + ": cannot read: " + e.getMessage());
        }
    }
}
