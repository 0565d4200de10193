package gptfast4j.io;

import gptfast4j.tensor.GGMLType;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * Writes a GGUF v3 file (layout in {@link GGUF}): the header, then each tensor's bytes at an offset aligned to
 * {@code general.alignment} (32). The file is written under a temporary name beside the target, filled through a
 * writable mapping, forced to disk and only then moved into place, so an error or Ctrl-C never leaves a partial file.
 */
public final class GGUFWriter {
    /** Fills a tensor's bytes, given a segment of exactly its size. */
    @FunctionalInterface
    public interface Fill {
        void into(MemorySegment target);
    }

    public record TensorSpec(String name, GGMLType type, long[] shape, Fill fill) {
        public long bytes() {
            long n = 1;
            for (long d : shape) n *= d;
            return type.bytesFor(n);
        }
    }

    private GGUFWriter() {
    }

    /** Writes {@code out}; {@code progress} receives the bytes of tensor data written so far after each tensor. */
    public static void write(Path out, Map<String, Metadata.Value> metadata, List<TensorSpec> tensors, LongConsumer progress) {
        int alignment = GGUF.DEFAULT_ALIGNMENT;
        Metadata.Value a = metadata.get("general.alignment");
        if (a != null) alignment = ((Number) a.value()).intValue();
        Header header = new Header();
        header.u32(GGUF.MAGIC);
        header.u32(3);
        header.u64(tensors.size());
        header.u64(metadata.size());
        for (var e : metadata.entrySet()) {
            header.string(e.getKey());
            header.u32(e.getValue().type().id);
            header.value(e.getValue());
        }
        long offset = 0;
        long[] offsets = new long[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) {
            TensorSpec t = tensors.get(i);
            if (t.shape()[0] % t.type().blockSize != 0) {
                throw new IllegalArgumentException("tensor " + t.name() + ": row length " + t.shape()[0] + " is not a multiple of the " + t.type() + " block size");
            }
            header.string(t.name());
            header.u32(t.shape().length);
            for (long d : t.shape()) header.u64(d);
            header.u32(t.type().id);
            offsets[i] = offset;
            header.u64(offset);
            offset = GGUF.alignUp(offset + t.bytes(), alignment);
        }
        byte[] head = header.bytes.toByteArray();
        long dataStart = GGUF.alignUp(head.length, alignment);
        long total = dataStart + offset;

        Path target = target(out);
        Path dir = target.toAbsolutePath().getParent();
        // the file is filled through a mapping of a sparse file, where a full disk is a fault on a page (below), after
        // all the work before it: so say so first where the space is short already (a file system that reports no
        // space at all may just not know; the fault still says so if it is full)
        long free = usableSpace(dir);
        if (free > 0 && free < total) throw writeFailure(out + ": needs " + ByteSize.of(total) + " but " + dir + " has " + ByteSize.of(free) + " free");
        Path temp;
        try {
            // not Files.createTempFile, which makes the file its owner's alone (0600): a model file gets the
            // permissions any new file gets here (0666 less the umask), as llama.cpp's and cp's do
            temp = Files.createFile(dir.resolve("." + target.getFileName() + "." + ProcessHandle.current().pid() + "." + Long.toHexString(System.nanoTime()) + ".partial"));
        } catch (IOException e) {
            throw new ModelFormatException(out + ": cannot create: " + e.getMessage());
        }
        Thread cleanup = new Thread(() -> deleteQuietly(temp));
        Runtime.getRuntime().addShutdownHook(cleanup);
        boolean done = false;
        try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.READ, StandardOpenOption.WRITE);
             Arena arena = Arena.ofShared()) { // shared: tensors may be filled by the worker pool
            channel.truncate(0);
            channel.write(ByteBuffer.allocate(1), total - 1); // size the file (sparse) before mapping it
            MemorySegment file = channel.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
            HugePages.advise(file); // so that the file is cached in 2 MB folios for the runs that read it next
            MemorySegment.copy(MemorySegment.ofArray(head), 0, file, 0, head.length);
            long written = 0;
            for (int i = 0; i < tensors.size(); i++) {
                TensorSpec t = tensors.get(i);
                t.fill().into(file.asSlice(dataStart + offsets[i], t.bytes()));
                // out of this process's memory (the page cache keeps the bytes, dirty until written back): a
                // quantized file's pages would otherwise stay resident beside its source's until the end
                Mapped.release(file, dataStart + offsets[i], dataStart + offsets[i] + t.bytes());
                written += t.bytes();
                progress.accept(written);
            }
            file.force();
            channel.force(true);
            done = true;
        } catch (IOException e) {
            throw new UncheckedIOException(out + ": write failed: " + e.getMessage(), e);
        } catch (InternalError e) {
            // HotSpot's form of a SIGBUS on a mapped page: the file system could not back it (tmpfs or a disk full)
            throw writeFailure(out + ": write failed: the file system could not store a page of it (" + e.getMessage() + "; out of space?)");
        } finally {
            if (!done) deleteQuietly(temp);
        }
        try {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            deleteQuietly(temp);
            throw new UncheckedIOException(out + ": cannot move the finished file into place: " + e.getMessage(), e);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs anyway; the file has been moved, so it finds nothing to delete
            }
        }
    }

    /**
     * The file that writing {@code out} replaces: {@code out} itself, or where a link to a file points (the link
     * stays, as cp leaves it); never a folder, a device or a pipe, which the move into place would turn into a
     * regular file. Commands call it before their work, to fail early.
     */
    public static Path target(Path out) {
        if (!Files.exists(out)) return out;
        if (!Files.isRegularFile(out)) throw new ModelFormatException(out + " is not a regular file (a folder, a device or a pipe)");
        try {
            return out.toRealPath();
        } catch (IOException e) {
            throw new ModelFormatException(out + ": cannot resolve: " + e.getMessage());
        }
    }

    /** Bytes free to this process where {@code dir} is; the most a long holds where that cannot be asked. */
    private static long usableSpace(Path dir) {
        try {
            return Files.getFileStore(dir).getUsableSpace();
        } catch (IOException e) {
            return Long.MAX_VALUE;
        }
    }

    private static UncheckedIOException writeFailure(String message) {
        return new UncheckedIOException(message, new IOException(message));
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort: nothing more to do about a temporary file we cannot delete
        }
    }

    /** Little-endian serialization of header fields. */
    private static final class Header {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void u8(byte v) { bytes.write(v); }
        void u16(short v) { scratch.clear(); scratch.putShort(v); bytes.write(scratch.array(), 0, 2); }
        void u32(int v) { scratch.clear(); scratch.putInt(v); bytes.write(scratch.array(), 0, 4); }
        void u64(long v) { scratch.clear(); scratch.putLong(v); bytes.write(scratch.array(), 0, 8); }
        void f32(float v) { u32(Float.floatToRawIntBits(v)); }
        void f64(double v) { u64(Double.doubleToRawLongBits(v)); }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes.writeBytes(b);
        }

        void value(Metadata.Value v) {
            Object o = v.value();
            switch (v.type()) {
                case UINT8, INT8 -> u8((Byte) o);
                case UINT16, INT16 -> u16((Short) o);
                case UINT32, INT32 -> u32((Integer) o);
                case UINT64, INT64 -> u64((Long) o);
                case FLOAT32 -> f32((Float) o);
                case FLOAT64 -> f64((Double) o);
                case BOOL -> u8((byte) ((Boolean) o ? 1 : 0));
                case STRING -> string((String) o);
                case ARRAY -> array(v.elementType(), o);
            }
        }

        void array(Metadata.Type element, Object values) {
            u32(element.id);
            switch (values) {
                case byte[] a -> { u64(a.length); bytes.writeBytes(a); }
                case short[] a -> { u64(a.length); for (short x : a) u16(x); }
                case int[] a -> { u64(a.length); for (int x : a) u32(x); }
                case long[] a -> { u64(a.length); for (long x : a) u64(x); }
                case float[] a -> { u64(a.length); for (float x : a) f32(x); }
                case double[] a -> { u64(a.length); for (double x : a) f64(x); }
                case boolean[] a -> { u64(a.length); for (boolean x : a) u8((byte) (x ? 1 : 0)); }
                case String[] a -> { u64(a.length); for (String x : a) string(x); }
                case Metadata.Value[] a -> { u64(a.length); for (Metadata.Value x : a) array(x.elementType(), x.value()); }
                default -> throw new IllegalArgumentException("unsupported metadata array " + values.getClass());
            }
        }
    }
}
