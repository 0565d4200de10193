package gptfast4j.tensor;

import gptfast4j.io.HugePages;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.ref.WeakReference;
import java.util.function.Supplier;

/**
 * Off-heap memory for weights made at load (the copies of quantizing while loading, the decode layouts) and for F16 KV
 * caches, from the C library's {@code aligned_alloc}. An arena's allocations count against the JVM's direct-memory
 * limit (by default the maximum heap size, a quarter of RAM here), which a 7B model's weights exceed; these do not.
 * Not zeroed: every byte is written by the caller before it is read, and a page is given to the process when first
 * written (a KV cache sized for a long chat holds what the chat has used).
 * <p>
 * A model's weights come from one instance: {@link #AUTOMATIC}, whose blocks are freed when nothing holds them any
 * more, or {@link #in}, whose blocks are freed when the caller closes its arena (a program that swaps models in one
 * JVM gives the old model's gigabytes back at once, rather than at some later full collection).
 * <p>
 * On Linux the weights' memory comes in 2 MB aligned blocks advised as huge pages ({@code madvise(MADV_HUGEPAGE)}):
 * the first write to fresh memory faults it in page by page, and on this machine (a VM) a 4 KB fault costs about
 * 16 us, so a 3.7 GB copy took 15 s in 4 KB pages against 5 s in 2 MB pages (C, one thread). Tensors under 1 GB
 * share such blocks, which would otherwise round each of them up to a whole huge page.
 */
public final class OffHeap {
    private static final Linker C = Linker.nativeLinker();
    private static final MethodHandle ALIGNED_ALLOC = C.downcallHandle(C.defaultLookup().find("aligned_alloc").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    private static final MethodHandle FREE = C.downcallHandle(C.defaultLookup().find("free").orElseThrow(),
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
    private static final long ALIGNMENT = 64;

    /** Blocks each in an automatic arena of its own: freed once the garbage collector finds nothing that holds them. */
    public static final OffHeap AUTOMATIC = new OffHeap(Arena::ofAuto);

    /** The arena each new block is freed with. */
    private final Supplier<Arena> arenas;

    private OffHeap(Supplier<Arena> arenas) {
        this.arenas = arenas;
    }

    /**
     * Blocks freed when {@code arena} is closed; a model's tensors are read by the worker threads, so it must be an
     * arena whose memory any thread may read (shared, global or automatic).
     */
    public static OffHeap in(Arena arena) {
        return new OffHeap(() -> arena);
    }

    /** The arena this memory's next block, or a file's mapping that belongs with it, is freed with. */
    public Arena arena() {
        return arenas.get();
    }

    /**
     * Slices of chunks this large share huge pages, so that the last, part-used page of each tensor is not wasted; a
     * chunk's own last page is (Llama-2-7B Q4_K's decode layouts, 3924 MB: 21 MB more resident in 256 MB chunks, none
     * measurable in 1 GB ones). Only what is written is resident; the rest of a chunk is address space.
     */
    private static final long CHUNK = 1L << 30;
    /**
     * The slice last cut from the current chunk, weakly: the tensor that holds it keeps the chunk's memory (slices
     * share their chunk's scope), and the next slice is cut after it. Once nothing holds it, a new chunk is begun, and
     * a chunk is freed when nothing holds any of its slices. (A weak reference to the chunk itself was cleared by the
     * next young collection, with slices of it still in use, and each new chunk left a part-used huge page.)
     */
    private WeakReference<MemorySegment> last = new WeakReference<>(null);
    /** The address where the current chunk ends. */
    private long chunkEnd;

    /** {@code bytes} of memory, 64-byte aligned: a block of its own when large, else a slice of a shared chunk. */
    synchronized MemorySegment allocate(long bytes) {
        MemorySegment previous = last.get();
        long from = previous == null ? 0 : (previous.address() + previous.byteSize() + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        MemorySegment slice;
        if (previous != null && from + bytes <= chunkEnd) {
            slice = previous.reinterpret(chunkEnd - previous.address()).asSlice(from - previous.address(), bytes);
        } else if (bytes >= CHUNK) {
            return block(bytes);
        } else {
            MemorySegment chunk = block(CHUNK);
            chunkEnd = chunk.address() + CHUNK;
            slice = chunk.asSlice(0, bytes);
        }
        last = new WeakReference<>(slice);
        return slice;
    }

    /**
     * {@code bytes} of memory of its own, with no huge-page advice: for memory written a little at a time over a long
     * while (a KV cache), which in 2 MB pages would be given 2 MB at a time, each at its first write. Freed once
     * nothing holds it.
     */
    public static MemorySegment allocatePages(long bytes) {
        return block(bytes, false, "a KV cache", Arena.ofAuto());
    }

    private MemorySegment block(long bytes) {
        return block(bytes, HugePages.supported(), "weights", arena());
    }

    private static MemorySegment block(long bytes, boolean huge, String what, Arena arena) {
        long alignment = huge ? HugePages.SIZE : ALIGNMENT;
        // C11 wants the size to be a multiple of the alignment
        long size = (bytes + alignment - 1) / alignment * alignment;
        MemorySegment block;
        try {
            block = (MemorySegment) ALIGNED_ALLOC.invokeExact(alignment, size);
            if (huge && !block.equals(MemorySegment.NULL)) HugePages.advise(block.reinterpret(size));
        } catch (Throwable e) {
            throw new IllegalStateException("aligned_alloc failed", e);
        }
        if (block.equals(MemorySegment.NULL)) throw new OutOfMemoryError("cannot allocate " + bytes + " bytes off-heap for " + what);
        try {
            return block.reinterpret(bytes, arena, OffHeap::free);
        } catch (IllegalStateException closed) { // the model's arena closed while it was being copied: not to be leaked
            free(block);
            throw closed;
        }
    }

    private static void free(MemorySegment block) {
        try {
            FREE.invokeExact(block);
        } catch (Throwable e) {
            throw new IllegalStateException("free failed", e);
        }
    }
}
