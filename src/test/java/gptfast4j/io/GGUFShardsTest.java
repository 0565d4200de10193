package gptfast4j.io;

import gptfast4j.Shared;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import gptfast4j.quant.QuantizeMode;
import gptfast4j.quant.QuantizeModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Split models: shards as llama-gguf-split writes them (this test writes them again and holds them to the SHA-256 of
 * llama-gguf-split's own, src/test/resources/split) load as the whole model, from any shard.
 */
class GGUFShardsTest {
    private static final Path STORIES = Shared.MODELS.resolve("stories260K.gguf");

    @Test
    void shardsAreLlamaGgufSplits(@TempDir Path dir) throws IOException {
        Map<String, String> theirs = new TreeMap<>(), ours = new TreeMap<>();
        for (String line : Files.readAllLines(Path.of("src/test/resources/split/stories260K.sha256"))) {
            String[] f = line.split("\\s+");
            theirs.put(f[1], f[0]);
        }
        List<Path> shards = new ArrayList<>(Shared.storiesInShards(dir, "by16", 16, false));
        shards.addAll(Shared.storiesInShards(dir, "metadata-first", 16, true));
        for (Path p : shards) ours.put(p.getFileName().toString(), sha256(p));
        assertEquals(7, ours.size());
        theirs.keySet().retainAll(ours.keySet()); // llama-gguf-split's (the rest are llama-quantize's, below)
        assertEquals(theirs, ours);
    }

    /** From the first shard or another, the same tensors, metadata and logits as the whole file's. */
    @Test
    void aSplitModelIsTheWholeModel(@TempDir Path dir) {
        Checkpoint whole = Checkpoint.load(STORIES, null);
        float[] expected = logits(whole);
        for (boolean metadataFirst : new boolean[]{false, true}) {
            List<Path> shards = Shared.storiesInShards(dir, metadataFirst ? "m" : "t", 16, metadataFirst);
            for (Path given : List.of(shards.getFirst(), shards.get(2))) {
                Checkpoint c = Checkpoint.load(given, null);
                assertEquals(shards.getFirst(), c.path());
                assertEquals(List.copyOf(whole.tensors().keySet()), List.copyOf(c.tensors().keySet()));
                for (TensorData t : whole.tensors().values()) {
                    assertEquals(-1, t.data().mismatch(c.tensors().get(t.name()).data()), t.name());
                }
                assertEquals(shards.size(), c.metadata().getInt(GGUFShards.COUNT, 0));
                // the same bytes; within rounding, as the same file's logits are from a JVM's first (interpreted) calls
                assertArrayEquals(expected, logits(c), 1e-5f, given.toString());
            }
        }
    }

    /** quantize writes one file of a split model, byte for byte the file of the whole one (the split keys left out). */
    @Test
    void quantizingASplitModelWritesOneFile(@TempDir Path dir) throws IOException {
        List<Path> shards = Shared.storiesInShards(dir, "q", 16, false);
        Path whole = dir.resolve("whole-q8_0.gguf"), fromShards = dir.resolve("shards-q8_0.gguf");
        QuantizeModel.plan(Checkpoint.load(STORIES, null), QuantizeMode.of("q8_0", "--mode"), QuantizeModel.Options.NONE).write(whole, bytes -> { });
        QuantizeModel.plan(Checkpoint.load(shards.get(1), null), QuantizeMode.of("q8_0", "--mode"), QuantizeModel.Options.NONE).write(fromShards, bytes -> { });
        assertEquals(-1, Files.mismatch(whole, fromShards));
    }

    /** quantize --keep-split: llama-quantize --keep-split's shards, byte for byte, from any shard given, with a layer pruned too. */
    @Test
    void quantizingKeepsTheSplitAsLlamaQuantize(@TempDir Path dir) throws IOException {
        Map<String, String> theirs = new TreeMap<>();
        for (String line : Files.readAllLines(Path.of("src/test/resources/split/stories260K.sha256"))) {
            String[] f = line.split("\\s+");
            theirs.put(f[1], f[0]);
        }
        List<Path> shards = Shared.storiesInShards(dir, "by16", 16, false);
        for (String mode : new String[]{"q8_0", "q4_0"}) {
            Checkpoint src = Checkpoint.load(shards.get(2), null);
            List<Path> written = QuantizeModel.plan(src, QuantizeMode.of(mode, "--mode"), QuantizeModel.Options.NONE)
                    .writeShards(dir.resolve("by16-" + mode + ".gguf"), GGUFShards.tensorNames(src.path(), src.metadata()), bytes -> { });
            assertEquals(3, written.size());
            for (Path p : written) assertEquals(theirs.get(p.getFileName().toString()), sha256(p), p.getFileName().toString());
        }
        // a layer pruned: each renumbered layer's tensors in the shard their source layer's were in
        Checkpoint src = Checkpoint.load(shards.getFirst(), null);
        List<Path> pruned = QuantizeModel.plan(src, QuantizeMode.of("q8_0", "--mode"), new QuantizeModel.Options(false, false, null, null, List.of(), null,
                        false, Map.of(), new java.util.TreeSet<>(List.of(1))))
                .writeShards(dir.resolve("by16-q8_0-prune1.gguf"), GGUFShards.tensorNames(src.path(), src.metadata()), bytes -> { });
        for (Path p : pruned) assertEquals(theirs.get(p.getFileName().toString()), sha256(p), p.getFileName().toString());
    }

    @Test
    void brokenSplits(@TempDir Path dir) throws IOException {
        List<Path> shards = Shared.storiesInShards(dir, "a", 16, false);
        // a shard's name without its -0000k-of-0000n
        Path renamed = Files.copy(shards.get(1), dir.resolve("renamed.gguf"));
        assertMessage(renamed, "renamed.gguf: shard 2 of 3 of a split model (gguf-split), whose name does not end in -00002-of-00003.gguf");
        // a shard missing
        Files.move(shards.get(2), dir.resolve("elsewhere.gguf"));
        assertMessage(shards.get(0), "shard 3 of this split model is missing (" + shards.get(2) + ")");
        // another split's shard in its place
        List<Path> other = Shared.storiesInShards(dir, "b", 24, false);
        Files.copy(other.get(1), shards.get(2));
        assertMessage(shards.get(0), shards.get(2) + ": not shard 3 of 3 (its split.no is 1, split.count 2): shards of different models?");
        // the same tensor in two shards
        List<Path> twice = Shared.storiesInShards(dir, "c", 16, false);
        GGUF first = GGUF.read(twice.get(0));
        GGUFWriter.write(twice.get(1), GGUF.read(twice.get(1)).metadata().asMap(), first.tensors().values().stream()
                .map(t -> new GGUFWriter.TensorSpec(t.name(), t.type(), t.shape(), target -> target.copyFrom(t.data()))).toList(), bytes -> { });
        assertMessage(twice.get(0), twice.get(1) + ": tensor " + first.tensors().keySet().iterator().next() + " is in an earlier shard too");
        // a tensor count that disagrees with the shards'
        List<Path> counted = Shared.storiesInShards(dir, "d", 16, false);
        GGUF d0 = GGUF.read(counted.get(0));
        Map<String, Metadata.Value> md = new LinkedHashMap<>(d0.metadata().asMap());
        md.put(GGUFShards.TENSORS_COUNT, new Metadata.Value(Metadata.Type.INT32, null, 47));
        GGUFWriter.write(counted.get(0), md, d0.tensors().values().stream()
                .map(t -> new GGUFWriter.TensorSpec(t.name(), t.type(), t.shape(), target -> target.copyFrom(t.data()))).toList(), bytes -> { });
        assertMessage(counted.get(1), "the split model's 3 shards hold 48 tensors, where its split.tensors.count says 47");
    }

    private static void assertMessage(Path given, String expected) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Checkpoint.load(given, null));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    /** The last position's logits after a few tokens. */
    private static float[] logits(Checkpoint c) {
        int[] ids = c.promptTokens("Once upon a time", true);
        Llama.State state = c.model().newState(32, ids.length);
        return c.model().forward(state, ids, 0, ids.length, 0, null).clone();
    }

    private static String sha256(Path p) throws IOException {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
