package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.quant.KlDivergence;
import gptfast4j.quant.LogProbabilities;
import gptfast4j.quant.Perplexity;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "perplexity", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Perplexity of a text as llama.cpp's llama-perplexity computes it; with --kl-base, KL divergence from a base model.",
                "--kl-divergence-base FILE saves the model's log-probabilities; --kl-divergence compares another model with them (llama-perplexity's file)."})
final class PerplexityCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Mixin
    AdapterOptions adapterOptions;

    @Mixin
    WorkersOption workers;

    @Option(names = {"-f", "--file"}, paramLabel = "TEXT", description = "Text file to score (UTF-8; - for standard input).")
    Path file;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", description = "Chunk length (default: ${DEFAULT-VALUE}).")
    int ctx = 512;

    @Option(names = "--chunks", paramLabel = "N", description = "At most N chunks of the text (default: all), as llama-perplexity's flag.")
    int chunks = Integer.MAX_VALUE;

    @Mixin
    KvCacheOption kvCache;

    @Option(names = "--kl-base", paramLabel = "M0", description = "Base model (e.g. the F32 original) for KL divergence and top-1 agreement.")
    Path klBase;

    @Option(names = "--kl-divergence-base", paramLabel = "FILE", description = "Save the model's log-probabilities over the text to FILE "
            + "(llama-perplexity's flag and file); with --kl-divergence, compare the model with the ones FILE holds.")
    Path logProbabilities;

    @Option(names = "--kl-divergence", description = "Compare the model with a base whose log-probabilities --kl-divergence-base FILE holds "
            + "(saved by this command or by llama-perplexity; the text is the file's): llama-perplexity's statistics of perplexity, "
            + "KL divergence and token probabilities.")
    boolean klDivergence;

    @Override
    public Integer call() throws IOException {
        KvCache.Type kvType = kvCache.type();
        if (klDivergence) {
            if (logProbabilities == null) throw new IllegalArgumentException("--kl-divergence needs --kl-divergence-base FILE, the base's log-probabilities");
            if (file != null || klBase != null) throw new IllegalArgumentException("--kl-divergence takes its text from --kl-divergence-base's file: no --file or --kl-base");
            LogProbabilities.Reader base = LogProbabilities.Reader.open(logProbabilities);
            Checkpoint model = common.load(workers);
            adapterOptions.apply(model);
            KlDivergence kl;
            try (ProgressLine progress = ProgressLine.chunks("kl-divergence", base.chunks())) {
                kl = Perplexity.klDivergence(model, base, kvType, c -> progress.accept(c + 1));
            }
            print(kl);
            return 0;
        }
        if (file == null) throw new IllegalArgumentException("perplexity needs the text: --file TEXT (or --kl-divergence with --kl-divergence-base FILE)");
        if (logProbabilities != null) {
            CommonOptions.checkOutputFile(logProbabilities);
            for (Path input : new Path[]{common.checkpoint, file, klBase}) {
                if (input != null && Files.exists(input) && Files.exists(logProbabilities) && Files.isSameFile(input, logProbabilities)) {
                    throw new IllegalArgumentException("refusing to overwrite the input " + input + " with log-probabilities");
                }
            }
        }
        String text = TextFiles.read(file, System.in);
        Checkpoint model = common.load(workers);
        adapterOptions.apply(model);
        Checkpoint base = klBase == null ? null : Checkpoint.load(klBase, common.tokenizer);
        if (ctx > model.model().config.contextLength()) throw new IllegalArgumentException("--ctx " + ctx + " exceeds the context length " + model.model().config.contextLength());
        long t0 = System.nanoTime();
        Perplexity.Result r;
        if (chunks < 1) throw new IllegalArgumentException("--chunks must be at least 1, got " + chunks);
        try (ProgressLine progress = ProgressLine.chunks("perplexity", Math.min(chunks, Perplexity.tokenize(model, text).length / ctx))) {
            r = Perplexity.compute(model, base, text, Perplexity.Options.ctx(ctx).kvType(kvType).chunks(0, chunks).saveTo(logProbabilities), c -> progress.accept(c + 1));
        }
        StringBuilder running = new StringBuilder();
        for (int i = 0; i < r.runningPpl().size(); i++) running.append(String.format("[%d]%.4f,", i + 1, r.runningPpl().get(i)));
        System.out.println(running);
        System.out.printf("Final estimate: PPL = %.4f +/- %.5f (%d tokens, %d chunks of %d, %d scored, %.1f s)%n", r.ppl(), r.pplStdErr(),
                r.tokens(), r.chunks(), ctx, r.scored(), (System.nanoTime() - t0) / 1e9);
        if (r.meanKl() != null) {
            System.out.printf("Mean KL divergence from %s: %.6f; top-1 agreement %.2f%%%n", klBase.getFileName(), r.meanKl(), 100 * r.top1Agreement());
        }
        if (logProbabilities != null) System.out.printf("saved the log-probabilities of %d positions to %s (for --kl-divergence)%n", r.scored(), logProbabilities);
        return 0;
    }

    /** The statistics as llama-perplexity --kl-divergence prints them at its end. */
    private static void print(KlDivergence kl) {
        System.out.println("====== Perplexity statistics ======");
        CFormat.printf("Mean PPL(Q)                   : %10.6f ± %10.6f%n", kl.ppl().value(), kl.ppl().uncertainty());
        CFormat.printf("Mean PPL(base)                : %10.6f ± %10.6f%n", kl.basePpl().value(), kl.basePpl().uncertainty());
        CFormat.printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%%n", 100 * kl.correlation());
        CFormat.printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f%n", kl.logPplRatio().value(), kl.logPplRatio().uncertainty());
        CFormat.printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f%n", kl.pplRatio().value(), kl.pplRatio().uncertainty());
        CFormat.printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f%n", kl.pplDifference().value(), kl.pplDifference().uncertainty());
        System.out.println();
        System.out.println("====== KL divergence statistics ======");
        CFormat.printf("Mean    KLD: %10.6f ± %10.6f%n", kl.meanKld().value(), kl.meanKld().uncertainty());
        float[] k = kl.kld();
        CFormat.printf("Maximum KLD: %10.6f%n", (double) k[k.length - 1]);
        for (float f : new float[]{0.999f, 0.99f, 0.95f, 0.9f}) CFormat.printf("%4.1f%%   KLD: %10.6f%n", 100.0 * f, (double) KlDivergence.percentile(k, f));
        CFormat.printf("Median  KLD: %10.6f%n", (double) KlDivergence.median(k));
        for (float f : new float[]{0.1f, 0.05f, 0.01f, 0.001f}) CFormat.printf("%4.1f%%   KLD: %10.6f%n", 100.0 * f, (double) KlDivergence.percentile(k, f));
        CFormat.printf("Minimum KLD: %10.6f%n", (double) k[0]);
        System.out.println();
        System.out.println("====== Token probability statistics ======");
        CFormat.printf("Mean    Δp: %6.3f ± %5.3f %%%n", 100 * kl.meanPDiff().value(), 100 * kl.meanPDiff().uncertainty());
        float[] d = kl.pDiff();
        CFormat.printf("Maximum Δp: %6.3f%%%n", 100.0 * d[d.length - 1]);
        for (float f : new float[]{0.999f, 0.99f, 0.95f, 0.9f, 0.75f}) CFormat.printf("%4.1f%%   Δp: %6.3f%%%n", 100.0 * f, 100.0 * KlDivergence.percentile(d, f));
        CFormat.printf("Median  Δp: %6.3f%%%n", 100.0 * KlDivergence.median(d));
        for (float f : new float[]{0.25f, 0.1f, 0.05f, 0.01f, 0.001f}) CFormat.printf("%4.1f%%   Δp: %6.3f%%%n", 100.0 * f, 100.0 * KlDivergence.percentile(d, f));
        CFormat.printf("Minimum Δp: %6.3f%%%n", 100.0 * d[0]);
        CFormat.printf("RMS Δp    : %6.3f ± %5.3f %%%n", 100 * kl.rmsPDiff().value(), 100 * kl.rmsPDiff().uncertainty());
        CFormat.printf("Same top p: %6.3f ± %5.3f %%%n", 100 * kl.sameTopShare().value(), 100 * kl.sameTopShare().uncertainty());
        System.out.println();
    }
}
