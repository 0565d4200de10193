package gptfast4j.io;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Asks Linux to back memory with 2 MB pages ({@code madvise(MADV_HUGEPAGE)}); only advice, a no-op elsewhere.
 * <p>
 * For a file mapping it makes the kernel read pages that are not yet cached into 2 MB page-cache folios, which this
 * and every later mapping of the file (this kernel aligns large mappings to 2 MB) then maps with one page-table entry
 * per 2 MB. Measured on this machine (a VM, kernel 6.18, ext4), Llama-2-7B Q4_0 in the page cache: the first touch of
 * the 3.7 GB mapping took 0.15 s against 1.4-2.0 s in 4 KB pages, and decode ran at 3.49-3.59 against 2.74-3.10
 * tokens/s (fewer TLB misses; TinyLlama's 0.6 GB decoded at the same speed either way). Pages already cached in
 * small folios stay small: the advice helps from the first read of a file.
 */
public final class HugePages {
    public static final long SIZE = 2 << 20;
    private static final int MADV_HUGEPAGE = 14;
    private static final MethodHandle MADVISE = madvise();
    private static final Pattern MAPPING = Pattern.compile("[0-9a-f]+-[0-9a-f]+ ");

    private HugePages() {
    }

    /**
     * The system's page size ({@code getpagesize()}; 4096 where it cannot be asked): what {@link #madvise} needs its
     * address aligned to. 4 KB on x86, 4, 16 or 64 KB on ARM Linux.
     */
    static final long PAGE_SIZE = pageSize();

    private static long pageSize() {
        if (MADVISE == null) return 4096;
        Linker c = Linker.nativeLinker();
        try {
            var getpagesize = c.defaultLookup().find("getpagesize");
            return getpagesize.isPresent() ? (int) c.downcallHandle(getpagesize.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT)).invokeExact() : 4096;
        } catch (Throwable e) {
            throw new IllegalStateException("getpagesize failed", e);
        }
    }

    private static MethodHandle madvise() {
        if (!System.getProperty("os.name").equals("Linux")) return null;
        Linker c = Linker.nativeLinker();
        return c.defaultLookup().find("madvise").map(f -> c.downcallHandle(f,
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT))).orElse(null);
    }

    /**
     * {@code madvise(address, length, advice)}'s result, -1 where there is no such call; the address as a number, so
     * that a call allocates nothing ({@link Mapped#release}).
     */
    static int madvise(long address, long length, int advice) {
        if (MADVISE == null) return -1;
        try {
            return (int) MADVISE.invokeExact(address, length, advice);
        } catch (Throwable e) {
            throw new IllegalStateException("madvise failed", e);
        }
    }

    /** Whether {@link #advise} does anything here. */
    public static boolean supported() {
        return MADVISE != null;
    }

    /** Advises huge pages for {@code memory}, which must start on a page boundary (a mapping or a 2 MB aligned block). */
    public static void advise(MemorySegment memory) {
        int ignored = madvise(memory.address(), memory.byteSize(), MADV_HUGEPAGE); // refused advice costs nothing
    }

    /** This process's resident pages of a file's mappings: all of them, and those mapped in 2 MB pages. */
    public record Residency(long bytes, long hugeBytes) {
        public double hugeShare() {
            return (double) hugeBytes / bytes;
        }
    }

    /**
     * This process's resident pages of {@code file}'s mappings, from {@code /proc/self/smaps} ({@code Rss} and
     * {@code FilePmdMapped}); empty where that cannot be read or nothing of the file is resident.
     */
    public static Optional<Residency> residency(Path file) {
        List<String> smaps;
        String name;
        try {
            smaps = Files.readAllLines(Path.of("/proc/self/smaps"));
            name = file.toRealPath().toString();
        } catch (IOException | UnsupportedOperationException e) {
            return Optional.empty();
        }
        long rss = 0, huge = 0;
        boolean inFile = false;
        for (String line : smaps) {
            if (MAPPING.matcher(line).lookingAt()) {
                inFile = line.endsWith(" " + name); // a mapping's header line: range, permissions, ..., path
            } else if (inFile && line.startsWith("Rss:")) {
                rss += kilobytes(line);
            } else if (inFile && line.startsWith("FilePmdMapped:")) {
                huge += kilobytes(line);
            }
        }
        return rss == 0 ? Optional.empty() : Optional.of(new Residency(1024 * rss, 1024 * huge));
    }

    private static long kilobytes(String line) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
    }
}
