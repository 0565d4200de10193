package gptfast4j.quant;

import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Importance matrices against llama.cpp's own (src/test/resources/imatrix, made by scripts/make-imatrix-fixture.sh
 * with llama-imatrix and llama-quantize): quantizing with llama-imatrix's matrix gives every tensor llama-quantize
 * --imatrix writes, bit for bit; {@code gptfast imatrix}'s matrix is llama-imatrix's within the rounding of two
 * engines' arithmetic (its F16 KV cache rounds attention's values to 11 bits); and a matrix lowers the KL divergence
 * of the low-bit mixes.
 */
class ImportanceMatrixTest {
    private static final Path DIR = Path.of("src/test/resources/imatrix");
    private static final Path MODELS = Shared.REFERENCE.resolve("models");

    /** The fixture's files, each tensor's type id and SHA-256 and the quantize.imatrix.* keys, by file. */
    private static Map<String, Map<String, String>> expected() throws IOException {
        Map<String, Map<String, String>> files = new TreeMap<>();
        for (String line : Files.readAllLines(DIR.resolve("quantized.sha256"))) {
            String[] f = line.split(" ", 3);
            files.computeIfAbsent(f[0], k -> new TreeMap<>()).put(f[1], f[2]);
        }
        return files;
    }

    @Test
    void quantizingWithLlamaImatrixsMatrixIsLlamaQuantizes(@TempDir Path dir) throws Exception {
        // named as llama-quantize was given them (from the fixture's folder), which the files record
        ImportanceMatrix llama2 = asGiven(ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.gguf")), "mini-llama2.imatrix.gguf");
        ImportanceMatrix mixtral = asGiven(ImportanceMatrix.read(DIR.resolve("mini-mixtral.imatrix.gguf")), "mini-mixtral.imatrix.gguf");
        // the fixture's mini-llama2 file: one weighted type per tensor, every type quantize writes (Q8_0 ignores the matrix)
        String[] overrides = {"blk.0.attn_q=q2_k", "blk.0.attn_k=q3_k", "blk.0.attn_v=q4_k", "blk.0.attn_output=q5_k", "blk.0.ffn_gate=q6_k",
                "blk.0.ffn_up=iq4_nl", "blk.0.ffn_down=iq4_xs", "blk.1.attn_q=q4_0", "blk.1.attn_k=q4_1", "blk.1.attn_v=q5_0",
                "blk.1.attn_output=q5_1", "blk.1.ffn_gate=q2_k", "blk.1.ffn_up=q3_k", "blk.1.ffn_down=q8_0"};
        List<Map.Entry<Pattern, GGMLType>> types = java.util.Arrays.stream(overrides)
                .map(o -> Map.entry(Pattern.compile(o.split("=")[0]), GGMLType.valueOf(o.split("=")[1].toUpperCase()))).toList();
        Map<String, Map<String, String>> expected = expected();
        Map<String, Path> ours = new LinkedHashMap<>();
        ours.put("mini-llama2-mixed", write(dir, "mini-llama2", QuantizeMode.Q4_K_M,
                new QuantizeModel.Options(false, true, GGMLType.Q6_K, GGMLType.Q4_K, types, llama2)));
        ours.put("mini-mixtral-q4_k_m", write(dir, "mini-mixtral", QuantizeMode.Q4_K_M, new QuantizeModel.Options(false, false, null, null, List.of(), mixtral)));
        ours.put("mini-mixtral-q2_k_s", write(dir, "mini-mixtral", QuantizeMode.Q2_K_S, new QuantizeModel.Options(false, false, null, null, List.of(), mixtral)));
        for (String t : new String[]{"q2_k", "q4_1", "iq4_xs"}) {
            ours.put("mini-mixtral-pure-" + t, write(dir, "mini-mixtral", QuantizeMode.of(t, "--mode"), new QuantizeModel.Options(false, true, null, null, List.of(), mixtral)));
        }
        assertEquals(expected.keySet(), ours.keySet());
        int weighted = 0;
        for (var file : ours.entrySet()) {
            GGUF gguf = GGUF.read(file.getValue());
            Map<String, String> want = expected.get(file.getKey());
            for (var e : want.entrySet()) {
                if (e.getKey().equals("key")) continue;
                TensorData t = gguf.tensors().get(e.getKey());
                assertNotNull(t, file.getKey() + " " + e.getKey());
                assertEquals(e.getValue(), t.type().id + " " + sha256(t), file.getKey() + " " + e.getKey() + " differs from llama-quantize's");
                if (!t.type().isFloat() && t.type() != GGMLType.Q8_0 && !t.name().equals("token_embd.weight")) weighted++;
            }
            assertEquals(want.size() - (int) want.keySet().stream().filter(k -> k.equals("key")).count(), gguf.tensors().size());
            assertEquals("ppl-text.txt", gguf.metadata().getString("quantize.imatrix.dataset", null));
            assertEquals(file.getKey().startsWith("mini-llama2") ? 15 : 16, gguf.metadata().getInt("quantize.imatrix.entries_count", 0));
            assertEquals(12, gguf.metadata().getInt("quantize.imatrix.chunks_count", 0));
        }
        // quantized in a type the matrix shapes: mini-llama2's 14 linear tensors but a Q8_0 one, and the head; mini-mixtral's
        // 14 and its head (without importance: the matrix was made without --process-output) in each of its five files
        assertEquals(14 + 5 * 15, weighted);
        // and each file whole, byte for byte: llama-quantize's keys, in its order, and its tensors' order
        Map<String, String> files = files();
        for (var file : ours.entrySet()) assertEquals(files.get(file.getKey() + ".gguf"), sha256(file.getValue()), file.getKey());
    }

    /** The fixture's files.sha256: each llama-quantize file's SHA-256, by name. */
    private static Map<String, String> files() throws IOException {
        Map<String, String> files = new TreeMap<>();
        for (String line : Files.readAllLines(DIR.resolve("files.sha256"))) {
            String[] f = line.split("\\s+");
            files.put(f[1], f[0]);
        }
        return files;
    }

    private static String sha256(Path file) throws IOException, NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    /**
     * --prune-layers: llama-quantize's files byte for byte, the kept layers numbered on from 0, the block count set
     * last, each tensor's importance from the source layer's entry, and the rules' counts as llama-quantize keeps them
     * (attn_v's over the layers kept, ffn_down's over the model's: mini-llama3 without layer 0 has its one attn_v in
     * Q6_K, its ffn_down in Q4_K).
     */
    @Test
    void prunedLayersAsLlamaQuantize(@TempDir Path dir) throws Exception {
        Map<String, String> files = files();
        Path llama3 = dir.resolve("mini-llama3-q4_k_m-prune0.gguf");
        QuantizeModel.plan(Checkpoint.load(MODELS.resolve("mini-llama3-F32.gguf"), null), QuantizeMode.Q4_K_M,
                new QuantizeModel.Options(false, false, null, null, List.of(), null, false, Map.of(), new java.util.TreeSet<>(List.of(0)))).write(llama3, b -> { });
        assertEquals(files.get("pruned/mini-llama3-q4_k_m-prune0.gguf"), sha256(llama3));
        GGUF pruned = GGUF.read(llama3);
        assertEquals(1, pruned.metadata().getInt("llama.block_count", 0));
        assertEquals(GGMLType.Q6_K, pruned.tensors().get("blk.0.attn_v.weight").type());
        assertEquals(GGMLType.Q4_K, pruned.tensors().get("blk.0.ffn_down.weight").type());
        Path mixtral = dir.resolve("mini-mixtral-q3_k_m-prune1.gguf");
        QuantizeModel.plan(Checkpoint.load(MODELS.resolve("mini-mixtral-F32.gguf"), null), QuantizeMode.Q3_K_M,
                new QuantizeModel.Options(false, false, null, null, List.of(), asGiven(ImportanceMatrix.read(DIR.resolve("mini-mixtral.imatrix.gguf")),
                        "mini-mixtral.imatrix.gguf"), false, Map.of(), new java.util.TreeSet<>(List.of(1)))).write(mixtral, b -> { });
        assertEquals(files.get("pruned/mini-mixtral-q3_k_m-prune1.gguf"), sha256(mixtral));
        // and the model runs: the pruned file loads as a one-layer model
        assertEquals(1, Checkpoint.load(mixtral, null).model().config.nLayers());
    }

    private static ImportanceMatrix asGiven(ImportanceMatrix m, String source) {
        return new ImportanceMatrix(source, m.entries(), m.datasets(), m.chunkCount(), m.chunkSize(), m.legacy());
    }

    private static Path write(Path dir, String model, QuantizeMode mode, QuantizeModel.Options options) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        Path out = dir.resolve(model + "-" + mode.flag + (options.pure() ? "-pure" : "") + ".gguf");
        QuantizeModel.plan(Checkpoint.load(MODELS.resolve(model + "-F32.gguf"), null), mode, options).write(out, b -> { });
        return out;
    }

    private static String sha256(TensorData t) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(t.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
    }

    /**
     * {@code --include-weights} / {@code --exclude-weights} (llama-quantize's, whose files with them are ours, checked
     * here): the entries whose names hold a string kept or dropped; a tensor left out is quantized as without a matrix.
     */
    @Test
    void includedAndExcludedWeights(@TempDir Path dir) {
        ImportanceMatrix m = ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.gguf"));
        assertEquals(List.of("blk.0.ffn_down.weight", "blk.1.ffn_down.weight"), List.copyOf(new TreeMap<>(m.filtered(List.of("ffn_down"), List.of()).entries()).keySet()));
        ImportanceMatrix noAttention = m.filtered(List.of(), List.of("attn_", "output"));
        assertEquals(6, noAttention.entries().size());
        assertTrue(m.filtered(List.of("nothing"), List.of()).entries().isEmpty());
        GGUF plain = GGUF.read(write(dir, "mini-llama2", QuantizeMode.Q4_K_M, QuantizeModel.Options.NONE));
        GGUF partly = GGUF.read(write(dir.resolve("partly"), "mini-llama2", QuantizeMode.Q4_K_M,
                new QuantizeModel.Options(false, false, null, null, List.of(), noAttention)));
        for (TensorData t : partly.tensors().values()) {
            boolean same = t.data().mismatch(plain.tensors().get(t.name()).data()) == -1;
            boolean weighted = noAttention.entries().containsKey(t.name());
            assertEquals(!weighted, same, t.name());
        }
    }

    /** The legacy .dat form of the same run holds the same importances (its values are means times the calls). */
    @Test
    void theLegacyFormReadsAsTheGguf() {
        ImportanceMatrix gguf = ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.gguf"));
        ImportanceMatrix dat = ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.dat"));
        assertEquals(gguf.entries().keySet(), new TreeMap<>(dat.entries()).keySet());
        assertEquals(List.of("ppl-text.txt"), dat.datasets());
        assertEquals(12, dat.chunkCount());
        for (String name : gguf.entries().keySet()) {
            float[] a = gguf.importance(name, gguf.entries().get(name).columns(), 1);
            float[] b = dat.importance(name, dat.entries().get(name).columns(), 1);
            assertEquals(a.length, b.length, name);
            for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 2e-6 * Math.abs(a[i]), name + " column " + i);
        }
        assertNull(gguf.importance("token_embd.weight", 256, 1));
    }

    /**
     * The legacy form as llama-imatrix writes it ({@code --output-format dat}): llama-imatrix's GGUF matrix written in
     * that form is its .dat of the same run byte for byte; a matrix read from that form is written back as read.
     */
    @Test
    void theLegacyFormIsWrittenAsLlamaImatrixWritesIt(@TempDir Path dir) throws IOException {
        Path dat = dir.resolve("mini-llama2.imatrix.dat");
        ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.gguf")).writeLegacy(dat);
        byte[] theirs = Files.readAllBytes(DIR.resolve("mini-llama2.imatrix.dat"));
        assertEquals(-1, Arrays.mismatch(theirs, Files.readAllBytes(dat)));
        Path again = dir.resolve("again.dat");
        ImportanceMatrix.read(dat).writeLegacy(again);
        assertEquals(-1, Arrays.mismatch(theirs, Files.readAllBytes(again)));
    }

    /**
     * {@code gptfast imatrix} on mini-llama2 and mini-mixtral: llama-imatrix's entries, counts and sums, the sums within
     * 0.2% (measured: 0.07% at most; llama.cpp's F16 cache rounds the values to 11 bits, ours too but not alike). In
     * the mixture a near-tie may route a token to another expert (one of 1536 in layer 0 here): each expert's count
     * within 3 of llama-imatrix's, and the gate and up inputs summed over the experts (every token's, whichever expert
     * took it) within the same 0.2%.
     */
    @Test
    void gptfastImatrixIsLlamaImatrixs(@TempDir Path dir) throws IOException {
        for (String model : new String[]{"mini-llama2", "mini-mixtral"}) {
            assertLlamaImatrixs(Checkpoint.load(MODELS.resolve(model + "-F32.gguf"), null), model, model.equals("mini-llama2"), dir);
        }
    }

    /**
     * The same of mixtures with shared experts and of Llama 4's, whose experts' inputs are weighed before their products
     * (the random models of SharedExpertTest and Llama4Test; the fixtures llama-imatrix's of the files they write): Qwen2-MoE's
     * gate of its shared expert an entry of its own, Llama 4's experts' gate and up inputs the token's times its weight.
     */
    @Test
    void sharedExpertsAndWeighedInputsAreLlamaImatrixs(@TempDir Path dir) throws IOException {
        Path qwen = dir.resolve("qwen2moe.gguf"), llama4 = dir.resolve("llama4.gguf");
        gptfast4j.model.SharedExpertTest.writeQwen2Moe(dir.resolve("mixtral.gguf"), qwen);
        gptfast4j.model.Llama4Test.write(dir.resolve("mixtral.gguf"), llama4, 4, 96);
        assertLlamaImatrixs(Checkpoint.load(qwen, null), "qwen2moe-mini", false, dir);
        assertLlamaImatrixs(Checkpoint.load(llama4, null), "llama4-mini", false, dir);
    }

    /**
     * The same of DeepSeek-V2's latent attention (LatentAttentionTest's models; the fixtures llama-imatrix's of the files
     * it writes): the queries' projections an entry each, attn_k_b's and attn_v_b's inputs of every head side by side
     * in one entry, counted once per token, and a fused attn_kv_b's the normalized latents.
     */
    @Test
    void latentAttentionIsLlamaImatrixs(@TempDir Path dir) throws IOException {
        Path v3 = dir.resolve("v3.gguf"), lite = dir.resolve("lite.gguf");
        gptfast4j.model.LatentAttentionTest.write(dir, v3, true);
        gptfast4j.model.LatentAttentionTest.write(dir, lite, false);
        assertLlamaImatrixs(Checkpoint.load(v3, null), "deepseek2-v3-mini", false, dir);
        assertLlamaImatrixs(Checkpoint.load(lite, null), "deepseek2-lite-mini", false, dir);
    }

    /** {@code c}'s matrix of ppl-text.txt in chunks of 128 against llama-imatrix's fixture {@code name.imatrix.gguf}, as above. */
    private static void assertLlamaImatrixs(Checkpoint model, String name, boolean processOutput, Path dir) throws IOException {
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        ImportanceMatrix theirs = ImportanceMatrix.read(DIR.resolve(name + ".imatrix.gguf"));
        ImportanceCollector.Collected c = ImportanceCollector.collect(model, text, "ppl-text.txt",
                128, Integer.MAX_VALUE, processOutput, KvCache.Type.F16, (done, soFar) -> { });
        // written and read back: what llama-quantize reads too (checked here: the same q4_k_m file from it and from us)
        Path file = dir.resolve(name + ".imatrix.gguf");
        c.matrix().write(file);
        ImportanceMatrix ours = ImportanceMatrix.read(file);
        assertEquals(theirs.datasets(), ours.datasets());
        assertEquals(theirs.chunkCount(), ours.chunkCount());
        assertEquals(theirs.chunkSize(), ours.chunkSize());
        assertEquals(new TreeMap<>(theirs.entries()).keySet(), new TreeMap<>(ours.entries()).keySet());
        for (String entry : theirs.entries().keySet()) {
            ImportanceMatrix.Entry a = theirs.entries().get(entry), b = ours.entries().get(entry);
            assertEquals(a.sums().length, b.sums().length, entry);
            if (a.counts().length == 1) {
                assertArrayEquals(a.counts(), b.counts(), entry);
                for (int i = 0; i < a.sums().length; i++) assertEquals(a.sums()[i], b.sums()[i], 2e-3 * a.sums()[i], entry + " column " + i);
                continue;
            }
            long total = 0;
            for (int e = 0; e < a.counts().length; e++) {
                assertEquals(a.counts()[e], b.counts()[e], 3, entry + " expert " + e);
                total += a.counts()[e] - b.counts()[e];
            }
            assertEquals(0, total, entry + ": tokens counted");
            if (entry.contains("ffn_down")) continue; // each expert's own hidden state: no sum over experts that routing leaves alone
            int cols = a.columns();
            for (int i = 0; i < cols; i++) {
                double sa = 0, sb = 0;
                for (int e = 0; e < a.counts().length; e++) {
                    sa += a.sums()[e * cols + i];
                    sb += b.sums()[e * cols + i];
                }
                assertEquals(sa, sb, 2e-3 * sa, entry + " column " + i + " over the experts");
            }
        }
    }

    /**
     * A run cut short goes on (llama-imatrix's {@code --in-file} with {@code --chunk}): the matrix of chunks 0-3, then
     * chunks 4-5 added to it from chunk 4 on, is the matrix of chunks 0-5 in one run (the same counts; the sums within
     * float rounding, added in another order).
     */
    @Test
    void aRunCutShortGoesOn() throws IOException {
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        Checkpoint model = Checkpoint.load(MODELS.resolve("mini-mixtral-F32.gguf"), null);
        ImportanceMatrix whole = ImportanceCollector.collect(model, text, "t", 128, 6, false, KvCache.Type.F32, (done, soFar) -> { }).matrix();
        ImportanceMatrix cut = ImportanceCollector.collect(model, text, "t", 128, 4, false, KvCache.Type.F32, (done, soFar) -> { }).matrix();
        ImportanceCollector resumed = new ImportanceCollector(false, 4, 128);
        resumed.add(cut);
        ImportanceMatrix on = resumed.run(model, text, false, "t", 4, 2, KvCache.Type.F32, (done, soFar) -> { }).matrix();
        assertEquals(6, on.chunkCount());
        assertEquals(new TreeMap<>(whole.entries()).keySet(), new TreeMap<>(on.entries()).keySet());
        for (var e : whole.entries().entrySet()) {
            ImportanceMatrix.Entry b = on.entries().get(e.getKey());
            assertArrayEquals(e.getValue().counts(), b.counts(), e.getKey());
            for (int i = 0; i < b.sums().length; i++) assertEquals(e.getValue().sums()[i], b.sums()[i], 1e-5 * e.getValue().sums()[i] + 1e-7, e.getKey());
        }
        IllegalArgumentException past = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new ImportanceCollector(false, 4, 128).run(model, text, false, "t", 12, 1, KvCache.Type.F32, (done, soFar) -> { }));
        assertEquals("the text has 1642 tokens: from chunk 12 on, not one chunk of --ctx 128 is left", past.getMessage());
    }

    /**
     * Matrices add up as llama-imatrix's {@code --in-file} adds them (its combination of these two files is ours byte
     * for byte, checked here): the legacy form's means times the chunk's tokens per call, so the GGUF and the .dat of
     * one run make twice its sums and counts, 24 chunks, both datasets; a run over a text goes on from them.
     */
    @Test
    void matricesAddUp() throws IOException {
        ImportanceMatrix gguf = ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.gguf"));
        ImportanceCollector both = new ImportanceCollector(false, 0, 128);
        both.add(gguf);
        both.add(ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.dat")));
        ImportanceMatrix sum = both.result();
        assertEquals(List.of("ppl-text.txt", "ppl-text.txt"), sum.datasets());
        assertEquals(24, sum.chunkCount());
        for (var e : gguf.entries().entrySet()) {
            ImportanceMatrix.Entry twice = sum.entries().get(e.getKey());
            assertArrayEquals(new long[]{2 * e.getValue().counts()[0]}, twice.counts(), e.getKey());
            for (int i = 0; i < twice.sums().length; i++) assertEquals(2 * e.getValue().sums()[i], twice.sums()[i], 2e-6 * twice.sums()[i], e.getKey());
        }
        // and on over the text: the run's sums added to the file's (its first three chunks)
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        Checkpoint model = Checkpoint.load(MODELS.resolve("mini-llama2-F32.gguf"), null);
        ImportanceMatrix alone = ImportanceCollector.collect(model, text, "t", 128, 3, true, KvCache.Type.F16, (done, soFar) -> { }).matrix();
        ImportanceCollector after = new ImportanceCollector(true, 0, 128);
        after.add(gguf);
        ImportanceMatrix on = after.run(model, text, false, "t", 0, 3, KvCache.Type.F16, (done, soFar) -> { }).matrix();
        assertEquals(List.of("ppl-text.txt", "t"), on.datasets());
        assertEquals(15, on.chunkCount());
        float[] a = gguf.entries().get("output.weight").sums(), b = alone.entries().get("output.weight").sums(), c = on.entries().get("output.weight").sums();
        // (the run adds each token's squares to the file's sums: float rounding at their size, not at the run's own)
        for (int i = 0; i < a.length; i++) assertEquals(a[i] + b[i], c[i], 1e-5 * c[i]);
        // a matrix of another model's shapes does not add
        ImportanceCollector wrong = new ImportanceCollector(false, 0, 128);
        wrong.add(gguf);
        var other = new ImportanceMatrix("other.gguf", Map.of("blk.0.attn_q.weight", new ImportanceMatrix.Entry(new float[64], new long[]{1})), List.of(), 1, 128, false);
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> wrong.add(other));
        assertEquals("other.gguf has 64 values for blk.0.attn_q.weight, the matrices before it 256", e.getMessage());
    }

    /**
     * The matrix so far after each chunk (what {@code --output-frequency} writes) holds that many chunks' tokens; at
     * most {@code --chunks} chunks run.
     */
    @Test
    void theMatrixSoFarCountsTheChunksDone() throws IOException {
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        List<Long> tokens = new java.util.ArrayList<>();
        List<Integer> chunks = new java.util.ArrayList<>();
        ImportanceCollector.Collected c = ImportanceCollector.collect(Checkpoint.load(MODELS.resolve("mini-llama2-F32.gguf"), null), text, "t", 128, 3, false,
                KvCache.Type.F16, (done, soFar) -> {
                    chunks.add(soFar.get().chunkCount());
                    tokens.add(soFar.get().entries().get("blk.1.ffn_down.weight").counts()[0]);
                });
        assertEquals(List.of(1, 2, 3), chunks);
        assertEquals(List.of(128L, 256L, 384L), tokens);
        assertEquals(3, c.matrix().chunkCount());
        assertEquals(3, c.perplexity().chunks());
    }

    /**
     * The point of it: with the matrix of a text, the low-bit mixes lose less of the F32 model's distribution on that
     * text (KL divergence from F32, measured: mini-llama2 q2_k 1.208 -> 1.064, q4_0 0.169 -> 0.159; mini-llama3 q2_k
     * 2.675 -> 2.397, q4_0 0.606 -> 0.565).
     */
    @Test
    void aMatrixLowersTheKlDivergence(@TempDir Path dir) throws IOException {
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        Files.createDirectories(dir.resolve("with"));
        for (String model : new String[]{"mini-llama2", "mini-llama3"}) {
            Checkpoint f32 = Checkpoint.load(MODELS.resolve(model + "-F32.gguf"), null);
            ImportanceMatrix matrix = ImportanceCollector.collect(f32, text, "ppl-text.txt", 128, Integer.MAX_VALUE, false, KvCache.Type.F16, (done, soFar) -> { }).matrix();
            for (QuantizeMode mode : new QuantizeMode[]{QuantizeMode.Q2_K, QuantizeMode.Q4_0}) {
                double plain = kl(write(dir, model, mode, QuantizeModel.Options.NONE), f32, text);
                double weighted = kl(write(dir.resolve("with"), model, mode, new QuantizeModel.Options(false, false, null, null, List.of(), matrix)), f32, text);
                assertTrue(weighted < 0.97 * plain, model + " " + mode.flag + ": KL " + weighted + " with the matrix against " + plain + " without");
            }
        }
    }

    /**
     * On the trained stories260K, with a matrix of other text than the one measured (llama.cpp's eight reference
     * generations in ../shared, prompts included, calibrating; ppl-text.txt measuring): KL divergence from F32 lower
     * with it (measured: q4_1 0.0563 -> 0.0406, q4_0 0.0771 -> 0.0725; the perplexity too, 4.394 -> 4.245 and 4.488 ->
     * 4.461, against F32's 4.195).
     */
    @Test
    void aMatrixOfOtherTextHelpsTheTrainedModel(@TempDir Path dir) throws IOException {
        StringBuilder calibration = new StringBuilder();
        for (var c : Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")).get("cases")) {
            calibration.append(c.get("prompt").asText()).append(c.get("gen_text").asText()).append('\n');
        }
        Path model = Shared.MODELS.resolve("stories260K.gguf");
        Checkpoint f32 = Checkpoint.load(model, null);
        ImportanceMatrix matrix = ImportanceCollector.collect(f32, calibration.toString(), "refs", 128, Integer.MAX_VALUE, false, KvCache.Type.F16,
                (done, soFar) -> { }).matrix();
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        Files.createDirectories(dir.resolve("with"));
        for (var mode : List.of(Map.entry(QuantizeMode.Q4_1, 0.8), Map.entry(QuantizeMode.Q4_0, 0.97))) {
            Path plainFile = dir.resolve(mode.getKey().flag + ".gguf"), weightedFile = dir.resolve("with").resolve(mode.getKey().flag + ".gguf");
            QuantizeModel.plan(f32, mode.getKey(), QuantizeModel.Options.NONE).write(plainFile, b -> { });
            QuantizeModel.plan(f32, mode.getKey(), new QuantizeModel.Options(false, false, null, null, List.of(), matrix)).write(weightedFile, b -> { });
            double plain = kl(plainFile, f32, text), weighted = kl(weightedFile, f32, text);
            assertTrue(weighted < mode.getValue() * plain, mode.getKey().flag + ": KL " + weighted + " with the matrix against " + plain + " without");
        }
    }

    private static double kl(Path model, Checkpoint base, String text) {
        return Perplexity.compute(Checkpoint.load(model, null), base, text, 128, KvCache.Type.F16, c -> { }).meanKl();
    }

    /** The mixes' rules with a matrix, as llama_tensor_get_type's: at TinyLlama's 22 layers, the first two ffn_down. */
    @Test
    void theMixesRulesWithAMatrix() {
        var tinyllama = new gptfast4j.model.Config("llama", 2048, 5632, 22, 32, 4, 32000, 2048, 1e-5f, 10000f, null, gptfast4j.model.Config.RopeStyle.INTERLEAVED, 0, 0);
        for (int layer = 0; layer < 22; layer++) {
            boolean first = layer < 22 / 8;
            assertEquals(first ? GGMLType.Q4_1 : GGMLType.Q4_0, QuantizeMode.Q4_0.typeOf("ffn_down", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, true));
            assertEquals(GGMLType.Q4_0, QuantizeMode.Q4_0.typeOf("ffn_down", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, false));
            assertEquals(first ? GGMLType.Q5_1 : GGMLType.Q5_0, QuantizeMode.Q5_0.typeOf("ffn_down", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, true));
            assertEquals(GGMLType.IQ4_XS, QuantizeMode.IQ4_XS.typeOf("ffn_down", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, true));
            assertEquals(first ? GGMLType.Q5_K : GGMLType.IQ4_XS, QuantizeMode.IQ4_XS.typeOf("ffn_down", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, false));
            assertEquals(GGMLType.Q4_1, QuantizeMode.Q4_1.typeOf("ffn_down", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, true));
            // Q2_K_S (made only with a matrix): the first eighth's ffn_down in Q4_K, attn_v in Q4_K where 4 or more heads share a kv head
            assertEquals(first ? GGMLType.Q4_K : GGMLType.Q2_K, QuantizeMode.Q2_K_S.typeOf("ffn_down", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, true));
            assertEquals(GGMLType.Q4_K, QuantizeMode.Q2_K_S.typeOf("attn_v", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, true));
            assertEquals(GGMLType.Q2_K, QuantizeMode.Q2_K_S.typeOf("attn_output", layer, tinyllama.nLayers(), QuantizeMode.Shape.of(tinyllama), false, true));
        }
        var llama2 = new gptfast4j.model.Config("llama", 4096, 11008, 32, 32, 32, 32000, 4096, 1e-5f, 10000f, null, gptfast4j.model.Config.RopeStyle.INTERLEAVED, 0, 0);
        assertEquals(GGMLType.Q2_K, QuantizeMode.Q2_K_S.typeOf("attn_v", 5, llama2.nLayers(), QuantizeMode.Shape.of(llama2), false, true));
        assertEquals(GGMLType.Q6_K, QuantizeMode.Q2_K_S.typeOf("output", -1, llama2.nLayers(), QuantizeMode.Shape.of(llama2), false, true));
    }

    @Test
    void errors(@TempDir Path dir) throws IOException {
        Path model = MODELS.resolve("mini-llama3-F32.gguf");
        ImportanceMatrix llama2 = ImportanceMatrix.read(DIR.resolve("mini-llama2.imatrix.gguf"));
        // a matrix of other shapes is refused, naming the tensor; mini-llama2's fits mini-llama3 (the same columns), every tensor weighted
        var wrong = new ImportanceMatrix(null, Map.of("blk.0.attn_q.weight", new ImportanceMatrix.Entry(new float[128], new long[]{1})), List.of("x"), 1, 128, false);
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> QuantizeModel.plan(Checkpoint.load(model, null), QuantizeMode.Q4_K_M,
                new QuantizeModel.Options(false, false, null, null, List.of(), wrong)));
        assertTrue(e.getMessage().contains("128 values for blk.0.attn_q.weight, whose rows of 256 want 256"), e.getMessage());
        assertTrue(QuantizeModel.plan(Checkpoint.load(model, null), QuantizeMode.Q4_K_M, new QuantizeModel.Options(false, false, null, null, List.of(), llama2))
                .withoutImportance().isEmpty());
        // Q2_K_S only with a matrix, and one that has every Q2_K tensor (as llama-quantize refuses it)
        var none = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> QuantizeModel.plan(Checkpoint.load(model, null), QuantizeMode.Q2_K_S, QuantizeModel.Options.NONE));
        assertTrue(none.getMessage().startsWith("q2_k_s needs an importance matrix (--imatrix FILE"), none.getMessage());
        var partial = new ImportanceMatrix(null, Map.of("blk.0.attn_q.weight", llama2.entries().get("blk.0.attn_q.weight")), List.of("x"), 1, 128, false);
        var missing = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> QuantizeModel.plan(Checkpoint.load(model, null),
                QuantizeMode.Q2_K_S, new QuantizeModel.Options(false, false, null, null, List.of(), partial)));
        assertEquals("the importance matrix has no entry for blk.0.attn_k.weight, which q2_k_s needs for its Q2_K tensors", missing.getMessage());
        // a model is not a matrix; nor is a file of neither form
        var notMatrix = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> ImportanceMatrix.read(model));
        assertTrue(notMatrix.getMessage().contains("not an importance matrix"), notMatrix.getMessage());
        Path junk = dir.resolve("junk.dat");
        Files.writeString(junk, "hello, world");
        var neither = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> ImportanceMatrix.read(junk));
        assertTrue(neither.getMessage().contains("neither a GGUF nor a legacy (.dat) importance matrix"), neither.getMessage());
        Path cut = dir.resolve("cut.dat");
        byte[] dat = Files.readAllBytes(DIR.resolve("mini-llama2.imatrix.dat"));
        Files.write(cut, java.util.Arrays.copyOf(dat, dat.length / 2));
        var truncated = org.junit.jupiter.api.Assertions.assertThrows(gptfast4j.io.ModelFormatException.class, () -> ImportanceMatrix.read(cut));
        assertTrue(truncated.getMessage().contains("past the end of the file") || truncated.getMessage().contains("truncated"), truncated.getMessage());
    }
}
