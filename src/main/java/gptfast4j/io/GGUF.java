package gptfast4j.io;

import gptfast4j.tensor.GGMLType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A GGUF file (versions 2 and 3), parsed straight from its memory mapping. Layout, all little-endian:
 * <pre>
 *   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
 *   metadata_kv_count x (string key, u32 value_type, value)
 *   tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
 *   padding to general.alignment (default 32) | tensor data (each offset relative to here, itself aligned)
 * </pre>
 * Strings are (u64 length, UTF-8 bytes). Tensor views are slices of the one mapping: nothing is copied.
 * Every read is bounds-checked by the segment, so a truncated file is an error message, never a crash.
 */
public final class GGUF {
    public static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
    public static final int DEFAULT_ALIGNMENT = 32;

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Metadata metadata;
    private final Map<String, TensorData> tensors;
    private final long dataOffset;

    GGUF(Path path, Metadata metadata, Map<String, TensorData> tensors, long dataOffset) {
        this.path = path;
        this.metadata = metadata;
        this.tensors = tensors;
        this.dataOffset = dataOffset;
    }

    public Path path() { return path; }
    public Metadata metadata() { return metadata; }
    /** Tensors in file order. */
    public Map<String, TensorData> tensors() { return tensors; }
    public long dataOffset() { return dataOffset; }

    public static boolean hasMagic(MemorySegment file) {
        return file.byteSize() >= 4 && file.get(U32, 0) == MAGIC;
    }

    /**
     * Whether the file is in one of llama.cpp's formats before GGUF (2023): GGML, GGMF or GGJT, by their magic (a
     * uint32 written little-endian, so the file starts "lmgg", "fmgg" or "tjgg"); such files were often named .bin.
     */
    public static boolean hasPreGgufMagic(MemorySegment file) {
        if (file.byteSize() < 4) return false;
        int magic = file.get(U32, 0);
        return magic == 0x67676d6c || magic == 0x67676d66 || magic == 0x67676a74;
    }

    public static GGUF read(Path path) {
        return read(path, Mapped.map(path));
    }

    public static GGUF read(Path path, MemorySegment file) {
        Cursor in = new Cursor(path, file);
        try {
            if (file.byteSize() < 4 || file.get(U32, 0) != MAGIC) {
                throw new ModelFormatException(path + ": not a GGUF file (bad magic)");
            }
            in.pos = 4;
            int version = in.u32();
            if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3) {
                // llama.cpp's converter writes such files for big-endian machines (s390x) with --bigendian
                throw new ModelFormatException(path + ": a big-endian GGUF (version " + Integer.reverseBytes(version) + " byte-swapped), which is not supported: convert the model without --bigendian");
            }
            if (version != 2 && version != 3) {
                throw new ModelFormatException(path + ": unsupported GGUF version " + version + " (2 and 3 are supported)");
            }
            long tensorCount = in.count("tensor count");
            long kvCount = in.count("metadata count");
            Map<String, Metadata.Value> kv = new LinkedHashMap<>();
            for (long i = 0; i < kvCount; i++) {
                String key = in.string();
                kv.put(key, in.value(in.u32()));
            }
            Metadata metadata = new Metadata(kv, path.toString());
            int alignment = metadata.getInt("general.alignment", DEFAULT_ALIGNMENT);
            if (alignment <= 0 || Integer.bitCount(alignment) != 1) {
                throw new ModelFormatException(path + ": general.alignment " + alignment + " is not a power of two");
            }
            record Info(String name, GGMLType type, long[] shape, long offset) {}
            Info[] infos = new Info[Math.toIntExact(tensorCount)];
            for (int i = 0; i < infos.length; i++) {
                String name = in.string();
                int nDims = in.u32();
                if (nDims < 1 || nDims > 4) throw new ModelFormatException(path + ": tensor " + name + " has " + nDims + " dimensions");
                long[] shape = new long[nDims];
                for (int d = 0; d < nDims; d++) {
                    shape[d] = in.u64();
                    if (shape[d] <= 0) throw new ModelFormatException(path + ": tensor " + name + " has dimension " + shape[d]);
                }
                int typeId = in.u32();
                GGMLType type = GGMLType.byId(typeId);
                if (type == null && GGMLType.otherName(typeId) != null) {
                    throw new ModelFormatException(path + ": tensor " + name + " has type " + GGMLType.otherName(typeId) + " (GGML type id " + typeId
                            + "), which gptfast4j does not read (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K to Q6_K, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0 and MXFP4)");
                }
                if (type == null) throw new ModelFormatException(path + ": tensor " + name + " has unknown tensor type id " + typeId);
                long offset = in.u64();
                if (offset % alignment != 0) {
                    throw new ModelFormatException(path + ": tensor " + name + " offset " + offset + " is not aligned to " + alignment);
                }
                infos[i] = new Info(name, type, shape, offset);
            }
            long dataOffset = alignUp(in.pos, alignment);
            Map<String, TensorData> tensors = new LinkedHashMap<>();
            for (Info info : infos) {
                // a corrupt shape or offset may be near 2^63: every bound is checked before a sum or product that
                // could overflow (a shape of 2^40 x 2^40 was an ArithmeticException, an offset near 2^63 passed)
                long elements = 1;
                for (long d : info.shape) elements = d <= Long.MAX_VALUE / elements ? elements * d : Long.MAX_VALUE;
                long size = file.byteSize();
                boolean fits = info.offset >= 0 && info.offset <= size - dataOffset && elements / info.type.blockSize <= (size - dataOffset - info.offset) / info.type.blockBytes;
                if (!fits) {
                    throw new ModelFormatException(path + ": truncated or corrupt file: tensor " + info.name + " " + java.util.Arrays.toString(info.shape)
                            + " " + info.type + " at data offset " + Long.toUnsignedString(info.offset) + " runs past the end of the file (" + size + " bytes)");
                }
                if (elements % info.type.blockSize != 0 || info.shape[0] % info.type.blockSize != 0) {
                    throw new ModelFormatException(path + ": tensor " + info.name + " " + java.util.Arrays.toString(info.shape)
                            + " is not a whole number of " + info.type + " blocks");
                }
                long bytes = info.type.bytesFor(elements), start = dataOffset + info.offset;
                if (tensors.put(info.name, new TensorData(info.name, info.type, info.shape, file.asSlice(start, bytes))) != null) {
                    throw new ModelFormatException(path + ": duplicate tensor " + info.name);
                }
            }
            return new GGUF(path, metadata, Collections.unmodifiableMap(tensors), dataOffset);
        } catch (IndexOutOfBoundsException e) {
            throw new ModelFormatException(path + ": truncated file: header ends at byte " + in.pos + " of " + file.byteSize());
        }
    }

    public static long alignUp(long value, long alignment) {
        return (value + alignment - 1) / alignment * alignment;
    }

    /** Sequential reader over the header; the segment does the bounds checks. */
    private static final class Cursor {
        final Path path;
        final MemorySegment file;
        long pos;

        Cursor(Path path, MemorySegment file) {
            this.path = path;
            this.file = file;
        }

        byte u8() { return file.get(ValueLayout.JAVA_BYTE, pos++); }
        short u16() { short v = file.get(U16, pos); pos += 2; return v; }
        int u32() { int v = file.get(U32, pos); pos += 4; return v; }
        long u64() { long v = file.get(U64, pos); pos += 8; return v; }
        float f32() { float v = file.get(F32, pos); pos += 4; return v; }
        double f64() { double v = file.get(F64, pos); pos += 8; return v; }

        /** A count that must fit in what remains of the file (guards against huge allocations from garbage). */
        long count(String what) {
            long n = u64();
            if (n < 0 || n > file.byteSize() - pos) {
                throw new ModelFormatException(path + ": truncated or corrupt file: " + what + " " + Long.toUnsignedString(n)
                        + " at byte " + (pos - 8) + " runs past the end of the file (" + file.byteSize() + " bytes)");
            }
            return n;
        }

        String string() {
            long len = count("string length");
            byte[] bytes = file.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
            pos += len;
            return new String(bytes, StandardCharsets.UTF_8);
        }

        Metadata.Value value(int typeId) {
            Metadata.Type type = Metadata.Type.byId(typeId);
            if (type == null) throw new ModelFormatException(path + ": unknown metadata value type " + typeId);
            return switch (type) {
                case UINT8, INT8 -> new Metadata.Value(type, null, u8());
                case UINT16, INT16 -> new Metadata.Value(type, null, u16());
                case UINT32, INT32 -> new Metadata.Value(type, null, u32());
                case UINT64, INT64 -> new Metadata.Value(type, null, u64());
                case FLOAT32 -> new Metadata.Value(type, null, f32());
                case FLOAT64 -> new Metadata.Value(type, null, f64());
                case BOOL -> new Metadata.Value(type, null, u8() != 0);
                case STRING -> new Metadata.Value(type, null, string());
                case ARRAY -> array();
            };
        }

        Metadata.Value array() {
            int elemId = u32();
            Metadata.Type elem = Metadata.Type.byId(elemId);
            if (elem == null) throw new ModelFormatException(path + ": unknown metadata array element type " + elemId);
            int n = Math.toIntExact(count("array length"));
            Object values = switch (elem) {
                case UINT8, INT8 -> { byte[] a = new byte[n]; for (int i = 0; i < n; i++) a[i] = u8(); yield a; }
                case UINT16, INT16 -> { short[] a = new short[n]; for (int i = 0; i < n; i++) a[i] = u16(); yield a; }
                case UINT32, INT32 -> { int[] a = new int[n]; for (int i = 0; i < n; i++) a[i] = u32(); yield a; }
                case UINT64, INT64 -> { long[] a = new long[n]; for (int i = 0; i < n; i++) a[i] = u64(); yield a; }
                case FLOAT32 -> { float[] a = new float[n]; for (int i = 0; i < n; i++) a[i] = f32(); yield a; }
                case FLOAT64 -> { double[] a = new double[n]; for (int i = 0; i < n; i++) a[i] = f64(); yield a; }
                case BOOL -> { boolean[] a = new boolean[n]; for (int i = 0; i < n; i++) a[i] = u8() != 0; yield a; }
                case STRING -> { String[] a = new String[n]; for (int i = 0; i < n; i++) a[i] = string(); yield a; }
                case ARRAY -> { Metadata.Value[] a = new Metadata.Value[n]; for (int i = 0; i < n; i++) a[i] = array(); yield a; }
            };
            return new Metadata.Value(Metadata.Type.ARRAY, elem, values);
        }
    }
}
