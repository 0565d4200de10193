package gptfast4j.quant;

import gptfast4j.io.GGUF;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Mapped;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import gptfast4j.io.TensorData;
import gptfast4j.tensor.GGMLType;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * An importance matrix as llama.cpp's {@code llama-imatrix} writes it and {@code llama-quantize --imatrix} reads it:
 * for each linear layer ({@code blk.0.attn_q.weight}, ...), the sum over a text's tokens of each input column's
 * square ({@code sums}, [experts][cols], one matrix for a dense tensor) and how many tokens each matrix saw
 * ({@code counts}, per expert for a mixture of experts). A column's importance is its mean squared input: the weights
 * that meet large inputs matter most, and quantizing fits their scales first.
 * <p>
 * Files: the GGUF form ({@code <name>.in_sum2}, F32 [cols, experts], and {@code <name>.counts}, F32 [1, experts], per
 * tensor in name order; {@code general.type} "imatrix", {@code imatrix.datasets}, {@code imatrix.chunk_count},
 * {@code imatrix.chunk_size}), written and read, and the legacy {@code .dat} form (per entry its name, its call
 * count and its values, already divided by the tokens per call), written and read. {@code source}: the file's path as given
 * (which a quantized file records), or null for one not read from a file.
 */
public record ImportanceMatrix(String source, Map<String, Entry> entries, List<String> datasets, int chunkCount, int chunkSize, boolean legacy) {
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One tensor's sums of squared inputs, {@code counts.length} matrices of {@code sums.length / counts.length} columns. */
    public record Entry(float[] sums, long[] counts) {
        public int columns() {
            return sums.length / counts.length;
        }
    }

    /**
     * The importance of each column of the tensor {@code name} with {@code cols}-weight rows and {@code experts}
     * matrices, [experts * cols] (expert e's at {@code e * cols}): each sum over its count (1 for an expert that saw no
     * token, as llama-quantize has it); null where the matrix has no entry for the tensor.
     */
    public float[] importance(String name, long cols, long experts) {
        Entry e = entries.get(name);
        if (e == null) return null;
        if (e.sums.length != cols * experts) {
            throw new IllegalArgumentException("the importance matrix has " + e.sums.length + " values for " + name + ", whose rows of "
                    + cols + (experts > 1 ? " in " + experts + " experts" : "") + " want " + cols * experts + " (an importance matrix of another model?)");
        }
        float[] importance = new float[e.sums.length];
        int n = e.columns();
        for (int m = 0; m < e.counts.length; m++) {
            float count = e.counts[m];
            for (int i = 0; i < n; i++) {
                // the legacy form's values are means already: its count is the calls, by which llama-quantize divides them
                importance[m * n + i] = legacy ? (count > 0 ? e.sums[m * n + i] / count : e.sums[m * n + i])
                        : count > 0 ? e.sums[m * n + i] / count : 1;
            }
        }
        return importance;
    }

    /**
     * This matrix with only the entries whose names hold one of {@code include} (every entry where it is empty), less
     * those whose names hold one of {@code exclude}: llama-quantize's {@code --include-weights} and
     * {@code --exclude-weights}.
     */
    public ImportanceMatrix filtered(List<String> include, List<String> exclude) {
        Map<String, Entry> kept = new LinkedHashMap<>();
        entries.forEach((name, e) -> {
            if ((include.isEmpty() || include.stream().anyMatch(name::contains)) && exclude.stream().noneMatch(name::contains)) kept.put(name, e);
        });
        return new ImportanceMatrix(source, kept, datasets, chunkCount, chunkSize, legacy);
    }

    /** Reads a GGUF or legacy {@code .dat} importance matrix; a file of neither form is a one-line error. */
    public static ImportanceMatrix read(Path path) {
        MemorySegment file = Mapped.map(path);
        return GGUF.hasMagic(file) ? readGguf(path, GGUF.read(path, file)) : readLegacy(path, file);
    }

    private static ImportanceMatrix readGguf(Path path, GGUF gguf) {
        Metadata md = gguf.metadata();
        if (!md.has("imatrix.datasets") || !md.has("imatrix.chunk_count") || !md.has("imatrix.chunk_size")) {
            throw new ModelFormatException(path + ": not an importance matrix (a GGUF without imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size"
                    + (md.has("general.architecture") ? ": a model?" : "") + ")");
        }
        Map<String, TensorData> sums = new TreeMap<>(), counts = new TreeMap<>();
        for (TensorData t : gguf.tensors().values()) {
            if (t.name().endsWith(".in_sum2")) sums.put(t.name().substring(0, t.name().length() - 8), t);
            else if (t.name().endsWith(".counts")) counts.put(t.name().substring(0, t.name().length() - 7), t);
        }
        if (sums.isEmpty()) throw new ModelFormatException(path + ": an importance matrix with no entries");
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (var s : sums.entrySet()) {
            TensorData c = counts.get(s.getKey());
            if (c == null) throw new ModelFormatException(path + ": " + s.getKey() + " has sums but no counts");
            if (s.getValue().type() != GGMLType.F32 || c.type() != GGMLType.F32) throw new ModelFormatException(path + ": " + s.getKey() + "'s sums and counts must be F32");
            float[] values = s.getValue().data().toArray(FLOAT_LE);
            float[] n = c.data().toArray(FLOAT_LE);
            if (n.length == 0 || values.length % n.length != 0) {
                throw new ModelFormatException(path + ": " + s.getKey() + " has " + values.length + " sums for " + n.length + " counts");
            }
            long[] rounded = new long[n.length];
            for (int i = 0; i < n.length; i++) rounded[i] = Math.round(n[i]);
            entries.put(s.getKey(), new Entry(values, rounded));
        }
        for (String name : counts.keySet()) if (!sums.containsKey(name)) throw new ModelFormatException(path + ": " + name + " has counts but no sums");
        String[] datasets = md.getStrings("imatrix.datasets");
        return new ImportanceMatrix(path.toString(), entries, datasets == null ? List.of() : List.of(datasets), md.getInt("imatrix.chunk_count", 0),
                md.getInt("imatrix.chunk_size", 0), false);
    }

    /**
     * The legacy form (llama-imatrix {@code --output-format dat}): an int count of entries; per entry an int name
     * length, the name, an int call count, an int value count and the floats; then, optionally, the chunk count and
     * the dataset's name.
     */
    private static ImportanceMatrix readLegacy(Path path, MemorySegment file) {
        long[] at = {0};
        try {
            int n = file.get(INT_LE, 0);
            at[0] = 4;
            if (n < 1 || n > file.byteSize() / 12) throw new ModelFormatException(path + ": neither a GGUF nor a legacy (.dat) importance matrix");
            Map<String, Entry> entries = new LinkedHashMap<>();
            for (int i = 0; i < n; i++) {
                String name = legacyString(path, file, at);
                int calls = file.get(INT_LE, at[0]);
                int count = file.get(INT_LE, at[0] + 4);
                at[0] += 8;
                if (count < 1 || count > (file.byteSize() - at[0]) / 4) throw new ModelFormatException(path + ": entry " + name + " has " + count + " values, past the end of the file");
                float[] values = file.asSlice(at[0], 4L * count).toArray(FLOAT_LE);
                at[0] += 4L * count;
                entries.put(name, new Entry(values, new long[]{calls}));
            }
            int chunks = 0;
            List<String> datasets = new ArrayList<>();
            if (at[0] + 4 <= file.byteSize()) {
                chunks = file.get(INT_LE, at[0]);
                at[0] += 4;
                if (at[0] + 4 <= file.byteSize()) datasets.add(legacyString(path, file, at));
            }
            return new ImportanceMatrix(path.toString(), entries, datasets, chunks, 0, true);
        } catch (IndexOutOfBoundsException e) {
            throw new ModelFormatException(path + ": truncated importance matrix (at byte " + at[0] + " of " + file.byteSize() + ")");
        }
    }

    private static String legacyString(Path path, MemorySegment file, long[] at) {
        int length = file.get(INT_LE, at[0]);
        if (length < 0 || length > file.byteSize() - at[0] - 4) throw new ModelFormatException(path + ": neither a GGUF nor a legacy (.dat) importance matrix");
        String s = new String(file.asSlice(at[0] + 4, length).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        at[0] += 4 + length;
        return s;
    }

    /** Writes the GGUF form, tensors in name order, as llama-imatrix does (atomically, as every GGUF written here). */
    public void write(Path out) {
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        md.put("general.type", Metadata.Value.string("imatrix"));
        md.put("imatrix.datasets", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, datasets.toArray(String[]::new)));
        md.put("imatrix.chunk_count", Metadata.Value.uint32(chunkCount));
        md.put("imatrix.chunk_size", Metadata.Value.uint32(chunkSize));
        List<GGUFWriter.TensorSpec> tensors = new ArrayList<>();
        for (var e : new TreeMap<>(entries).entrySet()) {
            Entry entry = e.getValue();
            float[] counts = new float[entry.counts.length];
            for (int i = 0; i < counts.length; i++) counts[i] = entry.counts[i];
            tensors.add(floats(e.getKey() + ".in_sum2", entry.sums, entry.columns(), counts.length));
            tensors.add(floats(e.getKey() + ".counts", counts, 1, counts.length));
        }
        GGUFWriter.write(out, md, tensors, written -> { });
    }

    /**
     * Writes the legacy form as llama-imatrix {@code --output-format dat} does (for tools that read only that form):
     * the entries whose matrices saw a token, names in order; per entry a call count, the most tokens one of its
     * matrices saw over the chunk size rounded up, and each value its sum over its matrix's count (1 over 1 for a
     * matrix that saw none) times that call count; then the chunk count and the last dataset's name. A matrix read from
     * that form is written as read. Atomically, as the GGUF form.
     */
    public void writeLegacy(Path out) {
        List<String> names = entries.entrySet().stream().filter(e -> legacy || Arrays.stream(e.getValue().counts).anyMatch(c -> c > 0))
                .map(Map.Entry::getKey).sorted().toList();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ByteBuffer word = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        IntConsumer putInt = v -> bytes.writeBytes(word.clear().putInt(v).array());
        Consumer<String> putString = text -> {
            byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
            putInt.accept(utf8.length);
            bytes.writeBytes(utf8);
        };
        putInt.accept(names.size());
        for (String name : names) {
            Entry e = entries.get(name);
            putString.accept(name);
            int calls;
            float[] values;
            if (legacy) {
                calls = (int) e.counts[0];
                values = e.sums;
            } else {
                long most = Arrays.stream(e.counts).max().orElse(0);
                calls = (int) ((most + chunkSize - 1) / chunkSize);
                values = new float[e.sums.length];
                int n = e.columns();
                for (int i = 0; i < values.length; i++) {
                    float count = e.counts[i / n];
                    values[i] = count == 0 ? calls : e.sums[i] / count * calls;
                }
            }
            putInt.accept(calls);
            putInt.accept(values.length);
            for (float v : values) bytes.writeBytes(word.clear().putFloat(v).array());
        }
        putInt.accept(chunkCount);
        putString.accept(datasets.isEmpty() ? "" : datasets.getLast());
        Path target = GGUFWriter.target(out);
        try {
            Path temp = Files.createTempFile(target.toAbsolutePath().getParent(), "." + target.getFileName(), ".partial");
            try {
                Files.write(temp, bytes.toByteArray());
                Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(temp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(out + ": write failed: " + e.getMessage(), e);
        }
    }

    /** An F32 tensor of [cols, rows], a single row written as one dimension (as ggml writes a tensor: trailing 1s dropped). */
    private static GGUFWriter.TensorSpec floats(String name, float[] values, long cols, long rows) {
        return new GGUFWriter.TensorSpec(name, GGMLType.F32, rows == 1 ? new long[]{cols} : new long[]{cols, rows},
                t -> MemorySegment.copy(values, 0, t, FLOAT_LE, 0, values.length));
    }
}
