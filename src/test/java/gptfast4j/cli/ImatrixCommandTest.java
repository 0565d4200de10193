package gptfast4j.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static gptfast4j.cli.ErrorsTest.assertOneLineError;
import static gptfast4j.cli.ErrorsTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@code gptfast imatrix --show-statistics} against llama-imatrix's own tables (src/test/resources/imatrix). */
class ImatrixCommandTest {
    private static final Path DIR = Path.of("src/test/resources/imatrix");

    /**
     * A dense model's matrix in both forms (GGUF, legacy .dat) and a mixture's (four experts counted apart): the
     * table is llama-imatrix's character for character, its float arithmetic and its printf's rounding (15.625% as
     * 15.62) included.
     */
    @Test
    void statisticsAreLlamaImatrixs() throws IOException {
        for (String matrix : new String[]{"mini-llama2.imatrix.gguf", "mini-llama2.imatrix.dat", "mini-mixtral.imatrix.gguf"}) {
            ErrorsTest.Outcome o = run("imatrix", "--in-file", DIR.resolve(matrix).toString(), "--show-statistics");
            assertEquals(0, o.exit(), o.err());
            String theirs = Files.readString(DIR.resolve(matrix + ".statistics.txt"));
            // llama-imatrix names the file as given: here from the fixture's folder
            assertEquals(theirs, o.out().replace(DIR.resolve(matrix).toString(), matrix), matrix);
        }
    }

    /** --save-frequency keeps the matrix so far as OUT.at_K, K its chunks; --output-frequency rewrites OUT. */
    @Test
    void savedEveryNChunks(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path out = dir.resolve("m.gguf");
        ErrorsTest.Outcome o = run("imatrix", "-m", gptfast4j.Shared.MODELS.resolve("stories260K.gguf").toString(), "-f",
                gptfast4j.Shared.REFERENCE.resolve("ppl-text.txt").toString(), "-c", "128", "--chunks", "5", "--save-frequency", "2", "-o", out.toString());
        assertEquals(0, o.exit(), o.err());
        assertEquals(2, gptfast4j.quant.ImportanceMatrix.read(dir.resolve("m.gguf.at_2")).chunkCount());
        assertEquals(4, gptfast4j.quant.ImportanceMatrix.read(dir.resolve("m.gguf.at_4")).chunkCount());
        assertEquals(5, gptfast4j.quant.ImportanceMatrix.read(out).chunkCount());
        assertEquals(false, Files.exists(dir.resolve("m.gguf.at_5")));
    }

    /**
     * {@code --no-ppl} (llama-imatrix's): the same matrix and no perplexity line. The same up to the sums' rounding
     * (1e-4 of each): a run's early chunks may run before the JIT has compiled the kernels, whose lanes add in another
     * order, and the difference grows through the layers (the files differed by 1e-6 in a fresh clone's suite, by 1.2e-5
     * in blk.4.attn_output's when run after other test classes); a run that lost a chunk or a tensor's inputs would
     * differ by a tenth or more.
     */
    @Test
    void noPplLeavesThePerplexityOut(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        String[] common = {"imatrix", "-m", gptfast4j.Shared.MODELS.resolve("stories260K.gguf").toString(), "-f",
                gptfast4j.Shared.REFERENCE.resolve("ppl-text.txt").toString(), "-c", "128", "--chunks", "2", "-o"};
        ErrorsTest.Outcome with = run(java.util.stream.Stream.concat(java.util.Arrays.stream(common), java.util.stream.Stream.of(dir.resolve("a.gguf").toString())).toArray(String[]::new));
        ErrorsTest.Outcome without = run(java.util.stream.Stream.concat(java.util.Arrays.stream(common), java.util.stream.Stream.of(dir.resolve("b.gguf").toString(), "--no-ppl")).toArray(String[]::new));
        assertEquals(0, with.exit(), with.err());
        assertEquals(0, without.exit(), without.err());
        org.junit.jupiter.api.Assertions.assertTrue(with.out().contains("Final estimate: PPL = "), with.out());
        org.junit.jupiter.api.Assertions.assertTrue(!without.out().contains("PPL") && without.out().startsWith("2 chunks of 128 tokens"), without.out());
        gptfast4j.quant.ImportanceMatrix a = gptfast4j.quant.ImportanceMatrix.read(dir.resolve("a.gguf")), b = gptfast4j.quant.ImportanceMatrix.read(dir.resolve("b.gguf"));
        assertEquals(a.entries().keySet(), b.entries().keySet());
        assertEquals(List.of(a.datasets(), a.chunkCount(), a.chunkSize()), List.of(b.datasets(), b.chunkCount(), b.chunkSize()));
        a.entries().forEach((name, e) -> {
            org.junit.jupiter.api.Assertions.assertArrayEquals(e.counts(), b.entries().get(name).counts(), name);
            for (int i = 0; i < e.sums().length; i++) assertEquals(e.sums()[i], b.entries().get(name).sums()[i], 1e-4 * Math.abs(e.sums()[i]), name + " " + i);
        });
    }

    /**
     * {@code --output-format dat}: llama-imatrix's matrix, taken in (--in-file) and written in the legacy form with its
     * chunk size, is llama-imatrix's .dat of the same run byte for byte; another form is refused.
     */
    @Test
    void legacyFormAsLlamaImatrixWritesIt(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path out = dir.resolve("m.dat");
        ErrorsTest.Outcome o = run("imatrix", "--in-file", DIR.resolve("mini-llama2.imatrix.gguf").toString(), "-c", "128", "--output-format", "dat", "-o", out.toString());
        assertEquals(0, o.exit(), o.err());
        assertEquals(-1, java.util.Arrays.mismatch(Files.readAllBytes(DIR.resolve("mini-llama2.imatrix.dat")), Files.readAllBytes(out)));
        assertOneLineError(run("imatrix", "--in-file", DIR.resolve("mini-llama2.imatrix.gguf").toString(), "--output-format", "xml", "-o", out.toString()),
                "--output-format must be gguf or dat, got 'xml'");
    }

    /**
     * {@code --parse-special}: the reference text's paragraphs joined by {@code </s>}, whose text is stories260K's EOS
     * token where the flag is given and plain text where not. llama-imatrix on that file ({@code -c 128 -t 1}, its F16
     * cache, as ours by default) printed PPL = 12.6319 without the flag and 6.0534 with it; ours within 0.1%.
     */
    @Test
    void parseSpecialAsLlamaImatrix(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        String text = Files.readString(gptfast4j.Shared.REFERENCE.resolve("ppl-text.txt"));
        Path chat = dir.resolve("chat.txt");
        Files.writeString(chat, String.join("</s>", text.lines().filter(l -> !l.isBlank()).toList()));
        double[] llamaImatrix = {12.6319, 6.0534};
        for (int i = 0; i < 2; i++) {
            List<String> args = new java.util.ArrayList<>(List.of("imatrix", "-m", gptfast4j.Shared.MODELS.resolve("stories260K.gguf").toString(), "-f", chat.toString(),
                    "-c", "128", "-o", dir.resolve("m" + i + ".gguf").toString()));
            if (i == 1) args.add("--parse-special");
            ErrorsTest.Outcome o = run(args.toArray(String[]::new));
            assertEquals(0, o.exit(), o.err());
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("PPL = ([0-9.]+)").matcher(o.out());
            org.junit.jupiter.api.Assertions.assertTrue(m.find(), o.out());
            assertEquals(llamaImatrix[i], Double.parseDouble(m.group(1)), llamaImatrix[i] * 1e-3, String.join(" ", args));
        }
    }

    /** C's {@code %.Nf}: the exact binary value rounded, ties to even, the sign of a negative zero kept, x86's NaN. */
    @Test
    void figuresPrintAsCPrintsThem() {
        assertEquals("15.62", CFormat.fixed(15.625, 2)); // Java's %.2f: 15.63
        assertEquals("1.00", CFormat.fixed(1.005, 2)); // 1.00499999999999989...; Java's %.2f: 1.01
        assertEquals("-0.000000", CFormat.fixed(-1e-9, 6));
        assertEquals("0.000000", CFormat.fixed(1e-9, 6));
        assertEquals("-nan", CFormat.fixed(Math.sqrt(-1), 6));
        assertEquals("-3.1416", CFormat.fixed(-Math.PI, 4));
    }

    @Test
    void statisticsTakeOneMatrix() {
        String matrix = DIR.resolve("mini-llama2.imatrix.gguf").toString();
        String expected = "--show-statistics takes one matrix, --in-file FILE, and no --checkpoint or --file";
        assertOneLineError(run("imatrix", "--show-statistics"), expected);
        assertOneLineError(run("imatrix", "--in-file", matrix, "--in-file", matrix, "--show-statistics"), expected);
        assertOneLineError(run("imatrix", "--in-file", matrix, "-f", "README.md", "--show-statistics"), expected);
        assertOneLineError(run("imatrix", "--in-file", "README.md", "--show-statistics"), "neither a GGUF nor a legacy (.dat) importance matrix");
    }
}
