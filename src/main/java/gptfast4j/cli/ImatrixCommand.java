package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.quant.ImportanceCollector;
import gptfast4j.quant.ImportanceMatrix;
import gptfast4j.quant.ImportanceStatistics;
import gptfast4j.quant.Perplexity;
import gptfast4j.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "imatrix", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compute an importance matrix for quantize --imatrix over a text, as llama.cpp's llama-imatrix does.",
                "Each layer's mean squared input per column, in llama-imatrix's GGUF form (which llama-quantize reads too); prints the text's perplexity."})
final class ImatrixCommand implements Callable<Integer> {
    @Option(names = {"-m", "--checkpoint"}, paramLabel = "PATH", description = "Model: a GGUF file, a llama2.c .bin, or a Hugging Face directory (with --file).")
    Path checkpoint;

    @Option(names = "--tokenizer", paramLabel = "PATH", description = "Tokenizer file when the checkpoint has none.")
    Path tokenizer;

    @Option(names = {"-f", "--file"}, paramLabel = "TEXT", description = "Calibration text (UTF-8; - for standard input).")
    Path file;

    @Option(names = "--in-file", paramLabel = "FILE", description = "An earlier matrix (GGUF or .dat) to add to, as llama-imatrix's flag; repeatable. "
            + "Without --file, the matrices combined are written.")
    List<Path> inFiles = new ArrayList<>();

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", description = "Output file (default: ${DEFAULT-VALUE}; written atomically).")
    Path out = Path.of("imatrix.gguf");

    @Option(names = "--output-format", paramLabel = "gguf|dat", description = "The file's form: gguf, or dat, the legacy form that older tools read (llama-imatrix's flag; default: gguf).")
    String outputFormat;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", description = "Chunk length in tokens (default: ${DEFAULT-VALUE}, as llama-imatrix).")
    int ctx = 512;

    @Option(names = "--chunks", paramLabel = "N", description = "At most N chunks of the text (default: all).")
    int chunks = Integer.MAX_VALUE;

    @Option(names = {"--chunk", "--from-chunk"}, paramLabel = "K", description = "Start from chunk K of the text, the ones before it left out (llama-imatrix's flag): "
            + "to go on with a run cut short, give the matrix it left as --in-file and the chunks it had done as K.")
    int firstChunk;

    @Option(names = "--save-frequency", paramLabel = "N", description = "Also keep the matrix every N chunks as OUT.at_K, K its chunks so far (llama-imatrix's flag; default: none).")
    int saveFrequency;

    @Option(names = "--output-frequency", paramLabel = "N", description = "Write the matrix so far every N chunks (default: ${DEFAULT-VALUE}, as llama-imatrix; "
            + "an interrupted run leaves the last), and at the end.")
    int frequency = 10;

    @Option(names = "--parse-special", description = "Take special tokens' text in the calibration text (such as a chat template's <|eot_id|>) as those tokens, not as text (llama-imatrix's flag).")
    boolean parseSpecial;

    @Option(names = "--ppl", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Print the text's perplexity at the end (llama-imatrix's --ppl and --no-ppl; default: on). --no-ppl leaves the line out: "
                    + "the pass computes every position's logits either way, as llama-imatrix's does, and the figure costs little besides.")
    boolean ppl;

    @Option(names = "--process-output", description = "The output head's inputs too (llama-imatrix's flag; it leaves them out by default).")
    boolean processOutput;

    @Mixin
    KvCacheOption kvCache;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Threads (default: one per physical core, ${DEFAULT-VALUE}).")
    int threads = gptfast4j.tensor.Parallel.defaultThreads();

    @Option(names = "--quantize", paramLabel = "int8|int4", description = "Quantize float linear layers while loading (int8: Q8_0, int4: Q4_0).")
    String quantize;

    @Option(names = "--show-statistics", description = "Print the statistics of one --in-file matrix per tensor and per layer (llama-imatrix's flag): "
            + "its columns' mean squared inputs' sum, range, mean, deviation, active share, entropy, share above one deviation (ZD), "
            + "and cosine similarity to the layer before. Writes nothing.")
    boolean showStatistics;

    @Option(names = "--debug", description = "Show stack traces on errors.")
    boolean debug;

    @Override
    public Integer call() throws IOException {
        if (showStatistics) {
            if (inFiles.size() != 1 || file != null || checkpoint != null) {
                throw new IllegalArgumentException("--show-statistics takes one matrix, --in-file FILE, and no --checkpoint or --file");
            }
            printStatistics(inFiles.getFirst(), ImportanceStatistics.of(ImportanceMatrix.read(inFiles.getFirst())));
            return 0;
        }
        CommonOptions.checkOutputFile(out);
        if (outputFormat != null && !outputFormat.equals("gguf") && !outputFormat.equals("dat")) {
            throw new IllegalArgumentException("--output-format must be gguf or dat, got '" + outputFormat + "'");
        }
        if (outputFormat == null && !out.getFileName().toString().endsWith(".gguf")) {
            System.err.println("note: " + out + " is written in the GGUF form, its name notwithstanding (--output-format dat writes the legacy form), as llama-imatrix does");
        }
        if (frequency < 1) throw new IllegalArgumentException("--output-frequency must be at least 1, got " + frequency);
        if (saveFrequency < 0) throw new IllegalArgumentException("--save-frequency must be 0 (none) or more, got " + saveFrequency);
        if (file == null && checkpoint != null) throw new IllegalArgumentException("--checkpoint without --file: give the text to run (or leave the model out to combine --in-file matrices)");
        if (file == null && inFiles.isEmpty()) throw new IllegalArgumentException("imatrix needs --checkpoint and --file TEXT, or --in-file FILE to combine matrices");
        if (file != null && checkpoint == null) throw new IllegalArgumentException("imatrix --file needs the model: --checkpoint PATH");
        List<Path> inputs = new ArrayList<>(inFiles);
        if (checkpoint != null) inputs.add(checkpoint);
        if (file != null) inputs.add(file);
        for (Path input : inputs) {
            if (Files.exists(out) && Files.exists(input) && Files.isSameFile(out, input)) throw new IllegalArgumentException("refusing to overwrite the input " + input);
        }
        List<ImportanceMatrix> earlier = inFiles.stream().map(ImportanceMatrix::read).toList();
        if (file == null) {
            // llama-imatrix without a prompt: the matrices combined
            ImportanceCollector combined = new ImportanceCollector(false, 0, ctx);
            earlier.forEach(combined::add);
            ImportanceMatrix m = combined.result();
            write(m, out);
            System.out.printf("wrote %s: %d matrices combined, %d tensors' importance over %d chunks of %d tokens%n", out, earlier.size(), m.entries().size(), m.chunkCount(), ctx);
            return 0;
        }
        String text = TextFiles.read(file, System.in);
        CommonOptions.checkThreads(threads);
        Parallel.setThreads(threads);
        Checkpoint model = CommonOptions.load(checkpoint, tokenizer, quantize, null);
        if (ctx > model.model().config.contextLength()) throw new IllegalArgumentException("--ctx " + ctx + " exceeds the context length " + model.model().config.contextLength());
        ImportanceCollector collector = new ImportanceCollector(processOutput, model.model().config.expertCount(), ctx);
        earlier.forEach(collector::add);
        long t0 = System.nanoTime();
        int total = Math.max(0, Math.min(chunks, Perplexity.tokenize(model, text, parseSpecial).length / ctx - firstChunk));
        ImportanceCollector.Collected c;
        try (ProgressLine progress = ProgressLine.chunks("imatrix", total)) {
            c = collector.run(model, text, parseSpecial, file.toString(), firstChunk, chunks, kvCache.type(), (done, soFar) -> {
                progress.accept(done);
                if (done % frequency == 0) write(soFar.get(), out);
                if (saveFrequency > 0 && done % saveFrequency == 0) {
                    ImportanceMatrix m = soFar.get();
                    write(m, out.resolveSibling(out.getFileName() + ".at_" + m.chunkCount()));
                }
            });
        }
        write(c.matrix(), out);
        String run = String.format("%d chunks of %d tokens, %.1f s", c.perplexity().chunks(), ctx, (System.nanoTime() - t0) / 1e9);
        if (ppl) System.out.printf("Final estimate: PPL = %.4f +/- %.5f (%s)%n", c.perplexity().ppl(), c.perplexity().pplStdErr(), run);
        else System.out.println(run);
        System.out.printf("wrote %s: %d tensors' importance over %d tokens%s%n", out, c.matrix().entries().size(), (long) c.perplexity().chunks() * ctx,
                earlier.isEmpty() ? "" : " and the " + earlier.size() + " matrices before it (" + c.matrix().chunkCount() + " chunks in all)");
        return 0;
    }

    /** {@code m} to {@code file} in the form {@code --output-format} names. */
    private void write(ImportanceMatrix m, Path file) {
        if ("dat".equals(outputFormat)) m.writeLegacy(file);
        else m.write(file);
    }

    /**
     * The statistics as llama-imatrix --show-statistics prints them (its columns, tab-separated), on standard output,
     * each figure rounded as C's printf rounds it ({@link CFormat#fixed}).
     */
    private static void printStatistics(Path matrix, ImportanceStatistics s) {
        for (String name : s.skipped()) System.err.println("imatrix: " + name + " has no counted inputs; left out");
        System.out.printf("Computing statistics for %s (%d tensors)%n%n", matrix, s.tensors().size());
        System.out.println(String.join("\t", " Layer", "       Tensor", "          Σ(Act²)", "  Min", "            Max", "           μ", "   σ",
                " % Active", "N", "   Entropy", "E (norm)", "ZD", "  CosSim"));
        System.out.println("=".repeat(169));
        for (ImportanceStatistics.Tensor t : s.tensors()) {
            System.out.printf("%5s\t%-20s\t%10s\t%8s\t%11s\t%6s\t%6s\t%8s%%\t%6d\t%10s\t%6s%%\t%10s%%\t%8s%n", t.layer(), t.tensor(),
                    CFormat.fixed(t.total(), 2), CFormat.fixed(t.min(), 4), CFormat.fixed(t.max(), 4), CFormat.fixed(t.mean(), 2), CFormat.fixed(t.stddev(), 2), CFormat.fixed(100f * t.active(), 2),
                    t.elements(), CFormat.fixed(t.entropy(), 4), CFormat.fixed(100 * t.normalizedEntropy(), 2), CFormat.fixed(100f * t.zd(), 2), CFormat.fixed(t.cosineSimilarity(), 4));
        }
        System.out.printf("%nComputing weighted average statistics per layer (%d layers)%n%n", s.layers().size());
        System.out.println(String.join("\t", "  Layer", "     μΣ(Act²)", "      μZD", "μCosSim"));
        System.out.println("=".repeat(48));
        for (ImportanceStatistics.Layer l : s.layers()) {
            System.out.printf("%5d\t%14s\t%10s%%\t%6s%n", l.layer(), CFormat.fixed(l.total(), 2), CFormat.fixed(100f * l.zd(), 4), CFormat.fixed(l.cosineSimilarity(), 4));
        }
        System.out.println();
    }
}
