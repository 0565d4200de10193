package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.quant.ImportanceCollector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "imatrix", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compute an importance matrix for quantize --imatrix: each layer's mean squared input per column over a text,",
                "as llama.cpp's llama-imatrix computes it (its GGUF form, which llama-quantize reads too); prints the text's perplexity."})
final class ImatrixCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "Calibration text (UTF-8; - for standard input).")
    Path file;

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", description = "Output file (default: ${DEFAULT-VALUE}; written atomically).")
    Path out = Path.of("imatrix.gguf");

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", description = "Chunk length in tokens (default: ${DEFAULT-VALUE}, as llama-imatrix).")
    int ctx = 512;

    @Option(names = "--chunks", paramLabel = "N", description = "At most N chunks of the text (default: all).")
    int chunks = Integer.MAX_VALUE;

    @Option(names = "--output-frequency", paramLabel = "N", description = "Write the matrix so far every N chunks (default: ${DEFAULT-VALUE}, as llama-imatrix; "
            + "an interrupted run leaves the last), and at the end.")
    int frequency = 10;

    @Option(names = "--process-output", description = "The output head's inputs too (llama-imatrix's flag; it leaves them out by default).")
    boolean processOutput;

    @Mixin
    KvCacheOption kvCache;

    @Override
    public Integer call() throws IOException {
        CommonOptions.checkOutputFile(out);
        if (frequency < 1) throw new IllegalArgumentException("--output-frequency must be at least 1, got " + frequency);
        for (Path input : new Path[]{common.checkpoint, file}) {
            if (Files.exists(out) && Files.exists(input) && Files.isSameFile(out, input)) throw new IllegalArgumentException("refusing to overwrite the input " + input);
        }
        String text = TextFiles.read(file, System.in);
        Checkpoint model = common.load();
        if (ctx > model.model().config.contextLength()) throw new IllegalArgumentException("--ctx " + ctx + " exceeds the context length " + model.model().config.contextLength());
        long t0 = System.nanoTime();
        ImportanceCollector.Collected c = ImportanceCollector.collect(model, text, file.toString(), ctx, chunks, processOutput, kvCache.type(),
                (done, soFar) -> {
                    System.err.print(".");
                    if (done % frequency == 0) soFar.get().write(out);
                });
        System.err.println();
        c.matrix().write(out);
        System.out.printf("Final estimate: PPL = %.4f +/- %.5f (%d chunks of %d tokens, %.1f s)%n", c.perplexity().ppl(), c.perplexity().pplStdErr(),
                c.perplexity().chunks(), ctx, (System.nanoTime() - t0) / 1e9);
        System.out.printf("wrote %s: %d tensors' importance over %d tokens%n", out, c.matrix().entries().size(), (long) c.perplexity().chunks() * ctx);
        return 0;
    }
}
