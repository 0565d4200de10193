package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.quant.Perplexity;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "perplexity", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Perplexity of a text as llama.cpp's llama-perplexity computes it; with --kl-base, KL divergence from a base model.")
final class PerplexityCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Mixin
    WorkersOption workers;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "Text file to score (UTF-8; - for standard input).")
    Path file;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", description = "Chunk length (default: ${DEFAULT-VALUE}).")
    int ctx = 512;

    @Mixin
    KvCacheOption kvCache;

    @Option(names = "--kl-base", paramLabel = "M0", description = "Base model (e.g. the F32 original) for KL divergence and top-1 agreement.")
    Path klBase;

    @Override
    public Integer call() throws IOException {
        KvCache.Type kvType = kvCache.type();
        String text = TextFiles.read(file, System.in);
        Checkpoint model = common.load(workers);
        Checkpoint base = klBase == null ? null : Checkpoint.load(klBase, common.tokenizer);
        if (ctx > model.model().config.contextLength()) throw new IllegalArgumentException("--ctx " + ctx + " exceeds the context length " + model.model().config.contextLength());
        long t0 = System.nanoTime();
        Perplexity.Result r;
        try (ProgressLine progress = ProgressLine.chunks("perplexity", Perplexity.tokenize(model, text).length / ctx)) {
            r = Perplexity.compute(model, base, text, ctx, kvType, c -> progress.accept(c + 1));
        }
        StringBuilder running = new StringBuilder();
        for (int i = 0; i < r.runningPpl().size(); i++) running.append(String.format("[%d]%.4f,", i + 1, r.runningPpl().get(i)));
        System.out.println(running);
        System.out.printf("Final estimate: PPL = %.4f +/- %.5f (%d tokens, %d chunks of %d, %d scored, %.1f s)%n", r.ppl(), r.pplStdErr(),
                r.tokens(), r.chunks(), ctx, r.scored(), (System.nanoTime() - t0) / 1e9);
        if (r.meanKl() != null) {
            System.out.printf("Mean KL divergence from %s: %.6f; top-1 agreement %.2f%%%n", klBase.getFileName(), r.meanKl(), 100 * r.top1Agreement());
        }
        return 0;
    }
}
