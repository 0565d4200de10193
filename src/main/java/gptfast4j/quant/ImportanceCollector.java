package gptfast4j.quant;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Sums the squares of each matrix product's inputs, column by column, as llama-imatrix does: for every layer's
 * matrices ({@code blk.*}, the MoE router included) and, where asked ({@code --process-output}), the output head; an
 * expert of a merged expert tensor ({@code <tensor>[e]}), or one stored apart ({@code ffn_gate.E.weight}, entered
 * under the merged tensor's name), into its own row of the tensor's entry, counted apart. Sums
 * are floats added token after token, as llama-imatrix keeps them. Earlier matrices may be added first
 * ({@link #add}, llama-imatrix's {@code --in-file}): their sums and counts go on growing.
 */
public final class ImportanceCollector implements Llama.InputObserver {
    private final boolean output;
    private final int experts;
    private final Map<String, float[]> sums = new LinkedHashMap<>();
    private final Map<String, long[]> counts = new LinkedHashMap<>();
    private final List<String> datasets = new ArrayList<>();
    /** Tokens per chunk: what a legacy matrix's calls are worth, and the chunk count's unit. */
    private final int chunkSize;

    /**
     * {@code output}: the output head's inputs too; {@code experts}: the model's experts (0 for a dense model, or for
     * matrices only combined); {@code chunkSize}: the tokens of a chunk.
     */
    public ImportanceCollector(boolean output, int experts, int chunkSize) {
        if (chunkSize < 16) throw new IllegalArgumentException("--ctx must be at least 16 for an importance matrix (llama-imatrix sums no batch of fewer tokens), got " + chunkSize);
        this.output = output;
        this.experts = experts;
        this.chunkSize = chunkSize;
    }

    /**
     * Adds an earlier matrix's sums and counts, as llama-imatrix's {@code --in-file} does (a legacy matrix's means
     * times {@link #chunkSize} tokens per call); a tensor of another size than the sums so far is a one-line error.
     */
    public void add(ImportanceMatrix m) {
        for (var e : m.entries().entrySet()) {
            String name = e.getKey();
            float[] values = e.getValue().sums().clone();
            long[] n = e.getValue().counts().clone();
            if (m.legacy()) {
                for (int i = 0; i < values.length; i++) values[i] *= chunkSize;
                n[0] *= chunkSize;
            }
            float[] sum = sums.get(name);
            if (sum == null) {
                sums.put(name, values);
                counts.put(name, n);
                continue;
            }
            if (sum.length != values.length) {
                throw new IllegalArgumentException(source(m) + " has " + values.length + " values for " + name + ", the matrices before it " + sum.length);
            }
            long[] count = broadcast(name, n.length);
            if (count.length != n.length && !m.legacy()) {
                throw new IllegalArgumentException(source(m) + " counts " + name + " in " + n.length + " matrices, the matrices before it in " + count.length);
            }
            for (int i = 0; i < sum.length; i++) sum[i] += values[i];
            for (int j = 0; j < count.length; j++) count[j] += m.legacy() ? n[0] : n[j];
        }
        datasets.addAll(m.datasets());
    }

    private static String source(ImportanceMatrix m) {
        return m.source() != null ? m.source() : "a matrix";
    }

    /** {@code name}'s counts, one count spread over {@code matrices} (an old matrix's one count for a tensor of experts). */
    private long[] broadcast(String name, int matrices) {
        long[] count = counts.get(name);
        if (count.length == 1 && matrices > 1) {
            count = new long[matrices];
            java.util.Arrays.fill(count, counts.get(name)[0]);
            counts.put(name, count);
        }
        return count;
    }

    private static final java.util.regex.Pattern EXPERT_APART = java.util.regex.Pattern.compile("blk\\.(\\d+)\\.(ffn_gate|ffn_up|ffn_down)\\.(\\d+)\\.weight");

    @Override
    public void inputs(String weight, int cols, float[] x, int rows) {
        String name = weight;
        int expert = 0, matrices = 1;
        int bracket = name.lastIndexOf('[');
        java.util.regex.Matcher apart;
        if (bracket > 0 && name.endsWith("]")) {
            expert = Integer.parseInt(name.substring(bracket + 1, name.length() - 1));
            name = name.substring(0, bracket);
            matrices = experts;
        } else if (experts > 0 && (apart = EXPERT_APART.matcher(name)).matches()) {
            // an expert stored as a tensor of its own (a Hugging Face Mixtral's): under the merged tensor's name, as
            // llama-imatrix names it from the GGUF, which quantize looks up for either
            expert = Integer.parseInt(apart.group(3));
            name = "blk." + apart.group(1) + "." + apart.group(2) + "_exps.weight";
            matrices = experts;
        }
        if (!name.startsWith("blk.") && !(output && name.equals("output.weight"))) return;
        int m = matrices;
        float[] sum = sums.computeIfAbsent(name, k -> new float[m * cols]);
        counts.computeIfAbsent(name, k -> new long[m]);
        long[] count = broadcast(name, m);
        if (sum.length != m * cols || count.length != m) {
            throw new IllegalArgumentException("the matrices added hold " + sum.length + " values for " + name + (count.length > 1 ? " in " + count.length + " experts" : "")
                    + ", where this model has " + m * cols + (m > 1 ? " in " + m + " experts" : "") + " (another model's?)");
        }
        int at = expert * cols;
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < cols; j++) sum[at + j] += x[t * cols + j] * x[t * cols + j];
        }
        for (int j = 0; j < cols; j++) {
            if (!Float.isFinite(sum[at + j])) throw new IllegalArgumentException("the inputs of " + name + " are not finite (a model with NaN or infinite weights?)");
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
        return new ImportanceCollector(output, model.model().config.expertCount(), ctx).run(model, text, false, dataset, 0, maxChunks, kvType, progress);
    }

    /**
     * {@link #collect} into this collector, after what was {@linkplain #add added} to it, from chunk
     * {@code firstChunk} of the text on (llama-imatrix's {@code --chunk}: a run cut short goes on from the matrix it
     * left, added first, and the chunk it had reached); {@code specials}: the text's special tokens parsed
     * (llama-imatrix's {@code --parse-special}).
     */
    public Collected run(Checkpoint model, String text, boolean specials, String dataset, int firstChunk, int maxChunks, KvCache.Type kvType, Progress progress) {
        int ctx = chunkSize;
        if (maxChunks < 1) throw new IllegalArgumentException("--chunks must be at least 1, got " + maxChunks);
        if (model.model().config.expertCount() != experts) throw new IllegalArgumentException("a collector for " + experts + " experts, a model of " + model.model().config.expertCount());
        datasets.add(dataset);
        if (firstChunk < 0) throw new IllegalArgumentException("--chunk must be 0 or more, got " + firstChunk);
        Perplexity.Result r = Perplexity.compute(model, null, text, Perplexity.Options.ctx(ctx).kvType(kvType).specials(specials).chunks(firstChunk, maxChunks).inputs(this),
                chunk -> progress.chunkDone(chunk + 1, this::result));
        return new Collected(result(), r);
    }

    /**
     * What was summed and added, as a matrix (its sums the collector's own arrays, which later chunks add to): its
     * datasets those of the matrices added and the text's, its chunks the most tokens any tensor saw over the chunk
     * size (llama-imatrix's count).
     */
    public ImportanceMatrix result() {
        Map<String, ImportanceMatrix.Entry> entries = new LinkedHashMap<>();
        long most = 0;
        for (var e : sums.entrySet()) {
            long[] count = counts.get(e.getKey());
            entries.put(e.getKey(), new ImportanceMatrix.Entry(e.getValue(), count));
            for (long n : count) most = Math.max(most, n);
        }
        return new ImportanceMatrix(null, entries, List.copyOf(datasets), (int) (most / chunkSize), chunkSize, false);
    }
}
