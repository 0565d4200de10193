package gptfast4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.io.GGUF;
import gptfast4j.io.GGUFShards;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/** The shared test data beside the repository ({@code ../shared}): real models, tokenizers and references. */
public final class Shared {
    public static final Path ROOT = locate();
    public static final Path MODELS = ROOT.resolve("models");
    public static final Path TOKENIZERS = ROOT.resolve("tokenizers");
    public static final Path REFERENCE = ROOT.resolve("reference");

    private Shared() {
    }

    /** stories260K.gguf written again at {@code out}, its metadata changed by {@code edit} (keys added, replaced or removed). */
    public static Path storiesWithMetadata(Path out, java.util.function.Consumer<java.util.Map<String, gptfast4j.io.Metadata.Value>> edit) {
        gptfast4j.io.GGUF stories = gptfast4j.io.GGUF.read(MODELS.resolve("stories260K.gguf"));
        java.util.Map<String, gptfast4j.io.Metadata.Value> metadata = new java.util.LinkedHashMap<>(stories.metadata().asMap());
        edit.accept(metadata);
        gptfast4j.io.GGUFWriter.write(out, metadata, stories.tensors().values().stream()
                .map(t -> new gptfast4j.io.GGUFWriter.TensorSpec(t.name(), t.type(), t.shape(), target -> target.copyFrom(t.data()))).toList(), bytes -> {
        });
        return out;
    }

    /** stories260K.gguf at {@code out} with its tokens from {@code firstId} on renamed {@code texts}, of control type. */
    public static Path storiesWithSpecials(Path out, int firstId, String... texts) {
        return storiesWithMetadata(out, md -> {
            String[] tokens = ((String[]) md.get("tokenizer.ggml.tokens").value()).clone();
            int[] types = ((int[]) md.get("tokenizer.ggml.token_type").value()).clone();
            for (int i = 0; i < texts.length; i++) {
                tokens[firstId + i] = texts[i];
                types[firstId + i] = 3;
            }
            md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens));
            md.put("tokenizer.ggml.token_type", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.INT32, types));
        });
    }

    /**
     * stories260K.gguf in shards of {@code perShard} tensors named {@code prefix-0000k-of-0000n.gguf}, as llama-gguf-split
     * writes them: the first with all the model's metadata, each with split.no, split.tensors.count and split.count
     * after it; with {@code metadataFirst}, the first shard without tensors (its --no-tensor-first-split).
     */
    public static List<Path> storiesInShards(Path dir, String prefix, int perShard, boolean metadataFirst) {
        GGUF src = GGUF.read(MODELS.resolve("stories260K.gguf"));
        List<List<TensorData>> groups = new ArrayList<>();
        if (metadataFirst) groups.add(List.of());
        List<TensorData> all = new ArrayList<>(src.tensors().values());
        for (int i = 0; i < all.size(); i += perShard) groups.add(all.subList(i, Math.min(all.size(), i + perShard)));
        List<Path> shards = new ArrayList<>();
        for (int k = 0; k < groups.size(); k++) {
            Map<String, Metadata.Value> md = k == 0 ? new LinkedHashMap<>(src.metadata().asMap()) : new LinkedHashMap<>();
            // in llama-gguf-split's order: the count is set last (its placeholder, set again, moves to the end)
            md.put(GGUFShards.NO, new Metadata.Value(Metadata.Type.UINT16, null, (short) k));
            md.put(GGUFShards.TENSORS_COUNT, new Metadata.Value(Metadata.Type.INT32, null, all.size()));
            md.put(GGUFShards.COUNT, new Metadata.Value(Metadata.Type.UINT16, null, (short) groups.size()));
            Path shard = dir.resolve(String.format("%s-%05d-of-%05d.gguf", prefix, k + 1, groups.size()));
            GGUFWriter.write(shard, md, groups.get(k).stream()
                    .map(t -> new GGUFWriter.TensorSpec(t.name(), t.type(), t.shape(), target -> target.copyFrom(t.data()))).toList(), bytes -> { });
            shards.add(shard);
        }
        return shards;
    }

    private static Path locate() {
        Path dir = Path.of(System.getProperty("user.dir")).toAbsolutePath();
        for (Path d = dir; d != null; d = d.getParent()) {
            Path candidate = d.resolveSibling("shared");
            if (Files.isDirectory(candidate.resolve("reference"))) return candidate;
        }
        throw new IllegalStateException("../shared (test data) not found beside " + dir);
    }

    public static JsonNode json(Path file) {
        try (InputStream in = file.toString().endsWith(".gz") ? new GZIPInputStream(Files.newInputStream(file)) : Files.newInputStream(file)) {
            return new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) r[i] = array.get(i).asInt();
        return r;
    }

    public static float[] floats(JsonNode array) {
        float[] r = new float[array.size()];
        for (int i = 0; i < r.length; i++) r[i] = (float) array.get(i).asDouble();
        return r;
    }
}
