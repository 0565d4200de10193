package gptfast4j.quant;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import gptfast4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Sums the squares of each matrix product's inputs, column by column, as llama-imatrix does: for every layer's
 * matrices ({@code blk.*}, the MoE router included) and, where asked ({@code --process-output}), the output head; an
 * expert of a merged expert tensor ({@code <tensor>[e]}) into its own row of the tensor's entry, counted apart. Sums
 * are floats added token after token, as llama-imatrix keeps them.
 */
public final class ImportanceCollector implements Llama.InputObserver {
    private final boolean output;
    private final int experts;
    private final Map<String, float[]> sums = new LinkedHashMap<>();
    private final Map<String, long[]> counts = new LinkedHashMap<>();

    /** {@code output}: the output head's inputs too; {@code experts}: the model's experts (0 for a dense model). */
    ImportanceCollector(boolean output, int experts) {
        this.output = output;
        this.experts = experts;
    }

    @Override
    public void inputs(Tensor weight, float[] x, int rows) {
        String name = weight.name;
        int expert = 0, matrices = 1;
        int bracket = name.lastIndexOf('[');
        if (bracket > 0 && name.endsWith("]")) {
            expert = Integer.parseInt(name.substring(bracket + 1, name.length() - 1));
            name = name.substring(0, bracket);
            matrices = experts;
        }
        if (!name.startsWith("blk.") && !(output && name.equals("output.weight"))) return;
        int cols = weight.cols, m = matrices;
        float[] sum = sums.computeIfAbsent(name, k -> new float[m * cols]);
        long[] count = counts.computeIfAbsent(name, k -> new long[m]);
        int at = expert * cols;
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < cols; j++) sum[at + j] += x[t * cols + j] * x[t * cols + j];
        }
        for (int j = 0; j < cols; j++) {
            if (!Float.isFinite(sum[at + j])) throw new IllegalStateException("the inputs of " + name + " are not finite (a model with NaN or infinite weights?)");
        }
        count[expert] += rows;
    }

    /** An importance matrix and the perplexity of the text it was made from (llama-imatrix prints both). */
    public record Collected(ImportanceMatrix matrix, Perplexity.Result perplexity) {}

    /** Told of each chunk done: how many are, and the matrix so far (made on asking; valid until the next chunk runs). */
    public interface Progress {
        void chunkDone(int chunks, Supplier<ImportanceMatrix> soFar);
    }

    /**
     * The importance matrix of {@code model} over {@code text} (named {@code dataset} in the matrix), in chunks of
     * {@code ctx} tokens as llama-imatrix makes them (and as llama-perplexity, whose figure it reports too: each chunk
     * from an empty cache, its first token BOS), at most {@code maxChunks} of them; {@code output}: the output head's
     * inputs too.
     */
    public static Collected collect(Checkpoint model, String text, String dataset, int ctx, int maxChunks, boolean output,
                                    KvCache.Type kvType, Progress progress) {
        if (ctx < 16) throw new IllegalArgumentException("--ctx must be at least 16 for an importance matrix (llama-imatrix sums no batch of fewer tokens), got " + ctx);
        if (maxChunks < 1) throw new IllegalArgumentException("--chunks must be at least 1, got " + maxChunks);
        ImportanceCollector collector = new ImportanceCollector(output, model.model().config.expertCount());
        List<String> datasets = List.of(dataset);
        Perplexity.Result r = Perplexity.compute(model, null, text, ctx, kvType, collector, maxChunks,
                chunk -> progress.chunkDone(chunk + 1, () -> collector.result(datasets, chunk + 1, ctx)));
        return new Collected(collector.result(datasets, r.chunks(), ctx), r);
    }

    /**
     * What was summed, as a matrix made over {@code chunks} chunks of {@code chunkSize} tokens of {@code datasets} (its
     * sums the collector's own arrays, which later chunks add to).
     */
    ImportanceMatrix result(List<String> datasets, int chunks, int chunkSize) {
        Map<String, ImportanceMatrix.Entry> entries = new LinkedHashMap<>();
        sums.forEach((name, sum) -> entries.put(name, new ImportanceMatrix.Entry(sum, counts.get(name))));
        return new ImportanceMatrix(null, entries, datasets, chunks, chunkSize, false);
    }
}
