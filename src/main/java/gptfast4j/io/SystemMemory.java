package gptfast4j.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

/** What the operating system says of its memory. */
public final class SystemMemory {
    private SystemMemory() {
    }

    /**
     * Bytes the kernel estimates can be allocated without swapping ({@code MemAvailable} in {@code /proc/meminfo}:
     * free memory plus reclaimable caches, such as a mapped model file's cached pages); empty where that cannot be read.
     */
    public static OptionalLong available() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) return OptionalLong.of(1024 * Long.parseLong(line.replaceAll("[^0-9]", "")));
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux, or an unexpected format: nothing known
        }
        return OptionalLong.empty();
    }
}
