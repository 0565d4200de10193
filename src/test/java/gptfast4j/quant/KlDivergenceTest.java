package gptfast4j.quant;

import gptfast4j.Shared;
import gptfast4j.io.ModelFormatException;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Saved log-probabilities and KL divergence against llama-perplexity's own (src/test/resources/kld, made by
 * scripts/make-kld-fixture.sh): its file of stories260K's log-probabilities over 4 chunks of 128 tokens, and what
 * its {@code --kl-divergence} printed against that file for the model itself and for its q4_0. Both caches F32.
 */
class KlDivergenceTest {
    private static final Path DIR = Path.of("src/test/resources/kld");
    private static final Path STORIES = Shared.MODELS.resolve("stories260K.gguf");

    private static String text() throws IOException {
        return Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"));
    }

    /** A figure llama-perplexity printed: the first number after {@code label}, or its uncertainty (the one after ±). */
    private static double printed(String file, String label, boolean uncertainty) throws IOException {
        for (String line : Files.readAllLines(DIR.resolve(file))) {
            if (!line.startsWith(label)) continue;
            Matcher m = Pattern.compile("(-?[0-9.]+)\\s*±\\s*(-?[0-9.]+)|(-?[0-9.]+)%?$").matcher(line.substring(label.length()));
            assertTrue(m.find(), line);
            return Double.parseDouble(m.group(1) != null ? (uncertainty ? m.group(2) : m.group(1)) : m.group(3));
        }
        throw new AssertionError("no " + label + " in " + file);
    }

    /**
     * Our file is llama-perplexity's layout: the same header and tokens byte for byte, and each position's
     * log-probabilities within 0.05 of its (the two engines' F32 logits differ by that much at most here; their
     * perplexities by 0.02%).
     */
    @Test
    void savedAsLlamaPerplexitySavesThem(@TempDir Path dir) throws IOException {
        Path ours = dir.resolve("ours.kld");
        Perplexity.compute(Checkpoint.load(STORIES, null), null, text(), Perplexity.Options.ctx(128).chunks(0, 4).saveTo(ours), c -> { });
        LogProbabilities.Reader a = LogProbabilities.Reader.open(DIR.resolve("stories260K.kld")), b = LogProbabilities.Reader.open(ours);
        assertEquals(Files.size(DIR.resolve("stories260K.kld")), Files.size(ours));
        assertEquals(-1, a.file().asSlice(0, a.dataStart()).mismatch(b.file().asSlice(0, b.dataStart())));
        assertEquals(4, a.chunks());
        int positions = 0;
        for (int c = 0; c < a.chunks(); c++) {
            for (int p = 64; p < 127; p++) {
                long ea = a.entry(c, p), eb = b.entry(c, p);
                float sa = a.scale(ea), la = a.least(ea), sb = b.scale(eb), lb = b.least(eb);
                for (int t = 0; t < a.vocab(); t++) {
                    float x = a.logProbability(ea, t, sa, la), y = b.logProbability(eb, t, sb, lb);
                    if (x > -15 || y > -15) assertEquals(x, y, 0.05, "chunk " + c + " position " + p + " token " + t);
                }
                positions++;
            }
        }
        assertEquals(252, positions);
    }

    /**
     * Against llama-perplexity's file, the base's figures are llama-perplexity's to the digits it prints (they come
     * from the file alone); the model's are its within the two engines' arithmetic: stories260K itself, KL divergence
     * within 1e-5 of llama's (both near 0, from the file's 16-bit rounding); its q4_0 (llama-quantize's file, which
     * ours is byte for byte) within 3% (0.9% measured) and 3 points of top-token agreement, llama.cpp rounding Q4_0's activations to
     * int8 where we multiply in F32 (its perplexity lies 0.2% from the F32 one, PerplexityTest).
     */
    @Test
    void againstLlamaPerplexitysFile(@TempDir Path dir) throws IOException {
        LogProbabilities.Reader base = LogProbabilities.Reader.open(DIR.resolve("stories260K.kld"));
        Path q4 = dir.resolve("q4_0.gguf");
        QuantizeModel.plan(Checkpoint.load(STORIES, null), QuantizeMode.Q4_0, QuantizeModel.Options.NONE).write(q4, b -> { });
        Map<String, KlDivergence> runs = new HashMap<>();
        runs.put("f32.txt", Perplexity.klDivergence(Checkpoint.load(STORIES, null), base, KvCache.Type.F32, c -> { }));
        runs.put("q4_0.txt", Perplexity.klDivergence(Checkpoint.load(q4, null), base, KvCache.Type.F32, c -> { }));
        for (var run : runs.entrySet()) {
            String f = run.getKey();
            KlDivergence kl = run.getValue();
            assertEquals(252, kl.count());
            assertEquals(printed(f, "Mean PPL(base)", false), kl.basePpl().value(), 5e-7, f);
            assertEquals(printed(f, "Mean PPL(base)", true), kl.basePpl().uncertainty(), 5e-7, f);
            assertEquals(printed(f, "Mean PPL(Q) ", false), kl.ppl().value(), 0.01 * kl.ppl().value(), f);
        }
        KlDivergence f32 = runs.get("f32.txt"), q4_0 = runs.get("q4_0.txt");
        assertEquals(printed("f32.txt", "Mean    KLD", false), f32.meanKld().value(), 1e-5);
        assertTrue(f32.sameTopShare().value() > 0.99, "same top " + f32.sameTopShare().value());
        double theirs = printed("q4_0.txt", "Mean    KLD", false);
        assertEquals(theirs, q4_0.meanKld().value(), 0.03 * theirs);
        assertEquals(printed("q4_0.txt", "Same top p", false), 100 * q4_0.sameTopShare().value(), 3);
    }

    /**
     * The saved file's KL divergence is the one computed with the base model in memory ({@code --kl-base}, exact
     * log-probabilities), within what 16 bits per log-probability and the cut below e^-16 lose: 1%.
     */
    @Test
    void aSavedBaseIsTheBaseInMemory(@TempDir Path dir) throws IOException {
        Path saved = dir.resolve("base.kld"), q4 = dir.resolve("q4_0.gguf");
        Checkpoint base = Checkpoint.load(STORIES, null);
        Perplexity.Result baseRun = Perplexity.compute(base, null, text(), Perplexity.Options.ctx(128).saveTo(saved), c -> { });
        QuantizeModel.plan(base, QuantizeMode.Q4_0, QuantizeModel.Options.NONE).write(q4, b -> { });
        Checkpoint model = Checkpoint.load(q4, null);
        double live = Perplexity.compute(model, base, text(), 128, KvCache.Type.F32, c -> { }).meanKl();
        KlDivergence fromFile = Perplexity.klDivergence(model, LogProbabilities.Reader.open(saved), KvCache.Type.F32, c -> { });
        assertEquals(live, fromFile.meanKld().value(), 0.01 * live);
        assertEquals(baseRun.ppl(), fromFile.basePpl().value(), 1e-4 * baseRun.ppl());
        // the base against itself: nothing but the storage's rounding
        KlDivergence self = Perplexity.klDivergence(base, LogProbabilities.Reader.open(saved), KvCache.Type.F32, c -> { });
        assertEquals(0, self.meanKld().value(), 1e-5);
        assertEquals(1.0, self.sameTopShare().value());
    }

    @Test
    void badFiles(@TempDir Path dir) throws IOException {
        Path text = Files.writeString(dir.resolve("text.kld"), "not log-probabilities at all");
        assertTrue(assertThrows(ModelFormatException.class, () -> LogProbabilities.Reader.open(text)).getMessage().contains("not a file of log-probabilities"));
        byte[] good = Files.readAllBytes(DIR.resolve("stories260K.kld"));
        Path cut = Files.write(dir.resolve("cut.kld"), java.util.Arrays.copyOf(good, good.length - 10));
        assertTrue(assertThrows(ModelFormatException.class, () -> LogProbabilities.Reader.open(cut)).getMessage().contains("(truncated?)"));
        // a whole file of another vocabulary: 1 chunk of 8 tokens, 3 scored positions of 1000 tokens' entries
        java.nio.ByteBuffer other = java.nio.ByteBuffer.allocate(20 + 4 * 8 + 3 * (1000 + 4) * 2).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        other.put("_logits_".getBytes(java.nio.charset.StandardCharsets.US_ASCII)).putInt(8).putInt(1000).putInt(1);
        Path otherFile = Files.write(dir.resolve("other.kld"), other.array());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Perplexity.klDivergence(Checkpoint.load(STORIES, null), LogProbabilities.Reader.open(otherFile), KvCache.Type.F32, c -> { }));
        assertTrue(e.getMessage().contains("holds log-probabilities over 1000 tokens, where the model has 512 (another model's?)"), e.getMessage());
    }
}
