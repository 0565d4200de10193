package gptfast4j.io;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.LongConsumer;

/**
 * A model in several GGUF files, as llama.cpp's {@code llama-gguf-split} writes one too large for a single file
 * (Hugging Face takes files of up to 50 GB: a 70B in Q6_K or Q8_0 comes in shards): {@code NAME-00001-of-00003.gguf},
 * {@code NAME-00002-of-00003.gguf}, ... The first holds the model's metadata; each holds some of the tensors, and
 * {@code split.no} (its index from 0), {@code split.count} and {@code split.tensors.count} (the whole model's). Any
 * shard may be given: the others are found by the name, as llama.cpp finds them from the first.
 */
public final class GGUFShards {
    public static final String NO = "split.no", COUNT = "split.count", TENSORS_COUNT = "split.tensors.count";

    private GGUFShards() {
    }

    /**
     * The whole model {@code given} is a shard of: the first shard's path and metadata (whose {@code split.count} says
     * how many files there are) and every shard's tensors, each a view of its own file ({@code map} maps a shard);
     * {@code given} itself where it is a whole model.
     */
    public static GGUF join(GGUF given, Function<Path, MemorySegment> map) {
        List<Path> paths = paths(given.path(), given.metadata());
        if (paths.size() == 1) return given;
        int count = paths.size(), no = given.metadata().getInt(NO, 0);
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        GGUF first = null;
        for (int k = 0; k < count; k++) {
            Path p = paths.get(k);
            if (k != no && !Files.exists(p)) {
                throw new ModelFormatException(given.path() + ": shard " + (k + 1) + " of this split model is missing (" + p + ")");
            }
            GGUF shard = k == no ? given : GGUF.read(p, map.apply(p));
            if (shard.metadata().getInt(NO, -1) != k || shard.metadata().getInt(COUNT, -1) != count) {
                throw new ModelFormatException(p + ": not shard " + (k + 1) + " of " + count + " (its " + NO + " is " + shard.metadata().getInt(NO, -1)
                        + ", " + COUNT + " " + shard.metadata().getInt(COUNT, -1) + "): shards of different models?");
            }
            if (k == 0) first = shard;
            for (TensorData t : shard.tensors().values()) {
                if (tensors.put(t.name(), t) != null) throw new ModelFormatException(p + ": tensor " + t.name() + " is in an earlier shard too");
            }
        }
        int expected = first.metadata().getInt(TENSORS_COUNT, tensors.size());
        if (expected != tensors.size()) {
            throw new ModelFormatException(first.path() + ": the split model's " + count + " shards hold " + tensors.size() + " tensors, where its "
                    + TENSORS_COUNT + " says " + expected);
        }
        return new GGUF(first.path(), first.metadata(), Collections.unmodifiableMap(tensors), first.dataOffset());
    }

    /**
     * The files of the model whose file {@code path} has metadata {@code md}: that file alone, or every shard of a split
     * model in order (by the name, which a shard's must end in: {@code -00002-of-00003.gguf}).
     */
    public static List<Path> paths(Path path, Metadata md) {
        int count = md.getInt(COUNT, 1), no = md.getInt(NO, 0);
        if (count <= 1) return List.of(path);
        String name = path.getFileName().toString(), suffix = suffix(no, count);
        if (no < 0 || no >= count || !name.endsWith(suffix)) {
            throw new ModelFormatException(path + ": shard " + (no + 1) + " of " + count + " of a split model (gguf-split), whose name does not end in "
                    + suffix + " as a shard's does: the other shards cannot be found");
        }
        String prefix = name.substring(0, name.length() - suffix.length());
        List<Path> paths = new ArrayList<>();
        for (int k = 0; k < count; k++) paths.add(path.resolveSibling(prefix + suffix(k, count)));
        return paths;
    }

    /** Per shard of the model whose file {@code path} has metadata {@code md} ({@link #paths}), the names of its tensors. */
    public static List<Set<String>> tensorNames(Path path, Metadata md) {
        List<Set<String>> names = new ArrayList<>();
        for (Path p : paths(path, md)) names.add(new LinkedHashSet<>(GGUF.read(p).tensors().keySet()));
        return names;
    }

    /**
     * The shards {@link #write} makes of {@code out} for {@code count} shards: {@code x.gguf} becomes
     * {@code x-00001-of-00003.gguf} ..., as llama-quantize --keep-split names them.
     */
    public static List<Path> names(Path out, int count) {
        String name = out.getFileName().toString(), prefix = name.endsWith(".gguf") ? name.substring(0, name.length() - 5) : name;
        List<Path> paths = new ArrayList<>();
        for (int k = 0; k < count; k++) paths.add(out.resolveSibling(prefix + suffix(k, count)));
        return paths;
    }

    /**
     * Writes a model as {@code shards.size()} shards named as {@link #names} says: the first with {@code metadata}, each
     * with the split keys and its tensors. Each shard is written atomically ({@link GGUFWriter}); where one fails, or
     * the process is stopped, before the last is in place, those already written are deleted, so that no part of a
     * model is left. {@code progress} receives the bytes of tensor data written so far, over all shards.
     */
    public static List<Path> write(Path out, Map<String, Metadata.Value> metadata, List<List<GGUFWriter.TensorSpec>> shards, LongConsumer progress) {
        // read by the shutdown hook's thread too
        List<Path> paths = names(out, shards.size()), written = new java.util.concurrent.CopyOnWriteArrayList<>();
        int total = shards.stream().mapToInt(List::size).sum();
        Thread cleanup = new Thread(() -> written.forEach(GGUFShards::deleteQuietly));
        Runtime.getRuntime().addShutdownHook(cleanup);
        boolean done = false;
        try {
            long before = 0;
            for (int k = 0; k < shards.size(); k++) {
                Map<String, Metadata.Value> md = k == 0 ? new LinkedHashMap<>(metadata) : new LinkedHashMap<>();
                md.put(NO, new Metadata.Value(Metadata.Type.UINT16, null, (short) k));
                md.put(COUNT, new Metadata.Value(Metadata.Type.UINT16, null, (short) shards.size()));
                md.put(TENSORS_COUNT, new Metadata.Value(Metadata.Type.INT32, null, total));
                long offset = before;
                GGUFWriter.write(paths.get(k), md, shards.get(k), bytes -> progress.accept(offset + bytes));
                written.add(paths.get(k));
                before += shards.get(k).stream().mapToLong(GGUFWriter.TensorSpec::bytes).sum();
            }
            done = true;
            return paths;
        } finally {
            if (!done) written.forEach(GGUFShards::deleteQuietly);
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // stopped while writing: the hook deletes the shards written
            }
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (java.io.IOException ignored) {
            // nothing more to do about it
        }
    }

    /** llama.cpp's shard name ending: {@code -00002-of-00003.gguf} for index 1 of 3. */
    private static String suffix(int no, int count) {
        return String.format("-%05d-of-%05d.gguf", no + 1, count);
    }
}
