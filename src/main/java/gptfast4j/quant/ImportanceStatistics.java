package gptfast4j.quant;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What an importance matrix says about each tensor's inputs, as llama-imatrix {@code --show-statistics} computes it:
 * over a tensor's columns' mean squared inputs (every expert's that saw a token, one after another), their sum, least,
 * greatest, mean and standard deviation, the share above 1e-5 ("active"), the entropy of their distribution (in bits;
 * {@code log2(elements)} where all columns matter alike), the share more than one standard deviation above the mean
 * ("ZD"), and the cosine similarity of the tensor's sums to the same tensor's in the layer before (0 where there is
 * none). Per layer, those figures averaged weighted by each tensor's column count. A layer whose inputs have a low
 * similarity to the last layer's changes its input most, a hint of where a mix's extra bits matter.
 * <p>
 * The arithmetic is llama-imatrix's, in float and in its order, so that the figures print as its do.
 */
public record ImportanceStatistics(List<Tensor> tensors, List<Layer> layers, List<String> skipped) {
    private static final float ACTIVE_ABOVE = 1e-5f;
    private static final Pattern BLOCK = Pattern.compile("blk\\.(\\d+)\\.");

    /**
     * One tensor's figures; {@code layer} its block number ("-" outside the blocks) and {@code tensor} its short name
     * ({@code attn_q}), as the table shows them.
     */
    public record Tensor(String name, String layer, String tensor, float total, float min, float max, float mean, float stddev,
                         float active, int elements, float entropy, float zd, float cosineSimilarity) {
        /** The entropy as a share of its greatest, {@code log2(elements)}: 1 where every column matters alike. */
        public double normalizedEntropy() {
            return elements > 0 ? entropy / log2(elements) : 0;
        }
    }

    /** A block's figures, each tensor's weighted by its column count. */
    public record Layer(int layer, float total, float zd, float cosineSimilarity) {
    }

    /**
     * The figures of every tensor of {@code matrix}, sorted as llama-imatrix sorts them (by short name, then the
     * greatest sum first), and per block; {@code skipped}: tensors without a counted input, left out (with a matrix of
     * the form llama-imatrix writes, none).
     */
    public static ImportanceStatistics of(ImportanceMatrix matrix) {
        List<Tensor> tensors = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        Map<String, float[]> sums = new HashMap<>();
        matrix.entries().forEach((name, e) -> {
            Tensor t = tensor(name, e);
            if (t == null) {
                skipped.add(name);
            } else {
                tensors.add(t);
                sums.put(name, e.sums());
            }
        });
        List<Tensor> withSimilarity = tensors.stream().map(t -> withSimilarity(t, sums)).sorted(Comparator.comparing(Tensor::tensor)
                .thenComparing(Tensor::total, Comparator.reverseOrder())).toList();
        return new ImportanceStatistics(withSimilarity, layers(withSimilarity), skipped);
    }

    /** The tensor's figures over its experts' mean squared inputs, or null where no expert saw a token. */
    private static Tensor tensor(String name, ImportanceMatrix.Entry e) {
        int n = e.columns();
        float[] act = new float[e.sums().length];
        int count = 0;
        for (int m = 0; m < e.counts().length; m++) {
            if (e.counts()[m] == 0) continue;
            // llama-imatrix divides in float: a count as float, the legacy form's call count so too
            float c = e.counts()[m];
            for (int j = 0; j < n; j++) act[count++] = e.sums()[m * n + j] / c;
        }
        if (count == 0) return null;
        float total = 0, sumOfSquares = 0, max = Float.NEGATIVE_INFINITY, min = Float.POSITIVE_INFINITY;
        int inactive = 0;
        for (int i = 0; i < count; i++) {
            float a = act[i];
            total += a;
            sumOfSquares += a * a;
            max = Math.max(max, a);
            min = Math.min(min, a);
            if (Math.abs(a) <= ACTIVE_ABOVE) inactive++;
        }
        float mean = total / count;
        float stddev = (float) Math.sqrt(Math.max(0f, sumOfSquares / count - mean * mean));
        float entropy = 0;
        if (total > 0) {
            for (int i = 0; i < count; i++) {
                float p = act[i] / total;
                if (p > 0) entropy -= p * (float) log2(p);
            }
        }
        int aboveOneDeviation = 0;
        if (stddev > 0) {
            for (int i = 0; i < count; i++) if ((act[i] - mean) / stddev > 1) aboveOneDeviation++;
        }
        String[] parts = name.split("\\.");
        String layer = "-", tensor = name;
        for (int i = 0; i + 1 < parts.length; i++) {
            if (parts[i].equals("blk")) {
                layer = parts[i + 1];
                break;
            }
        }
        for (int i = 1; i < parts.length; i++) {
            if (parts[i].equals("weight")) {
                tensor = parts[i - 1];
                break;
            }
        }
        return new Tensor(name, layer, tensor, total, min, max, mean, stddev, 1 - (float) inactive / count, count, entropy,
                (float) aboveOneDeviation / count, 0);
    }

    /** The tensor with the cosine similarity of its sums to its namesake's in the block before, where there is one. */
    private static Tensor withSimilarity(Tensor t, Map<String, float[]> sums) {
        Matcher m = BLOCK.matcher(t.name());
        if (!m.find()) return t;
        float[] before = sums.get(t.name().substring(0, m.start(1)) + (Long.parseLong(m.group(1)) - 1) + t.name().substring(m.end(1)));
        float[] now = sums.get(t.name());
        if (before == null || before.length != now.length) return t;
        float dot = 0, nowSquares = 0, beforeSquares = 0;
        for (int i = 0; i < now.length; i++) dot += now[i] * before[i];
        for (float v : now) nowSquares += v * v;
        for (float v : before) beforeSquares += v * v;
        float similarity = dot / ((float) Math.sqrt(nowSquares) * (float) Math.sqrt(beforeSquares));
        return new Tensor(t.name(), t.layer(), t.tensor(), t.total(), t.min(), t.max(), t.mean(), t.stddev(), t.active(), t.elements(),
                t.entropy(), t.zd(), similarity);
    }

    /** Per block, in block order, its tensors' figures weighted by their column counts (tensors outside the blocks left out). */
    private static List<Layer> layers(List<Tensor> tensors) {
        Map<Integer, float[]> sums = new TreeMap<>(); // total, zd, similarity, each times elements; elements
        for (Tensor t : tensors) {
            int layer;
            try {
                layer = Integer.parseInt(t.layer());
            } catch (NumberFormatException e) {
                continue;
            }
            float[] s = sums.computeIfAbsent(layer, k -> new float[4]);
            s[0] += t.elements() * t.total();
            s[1] += t.elements() * t.zd();
            s[2] += t.elements() * t.cosineSimilarity();
            s[3] += t.elements();
        }
        List<Layer> layers = new ArrayList<>();
        sums.forEach((layer, s) -> {
            if (layer >= 0 && s[3] > 0) layers.add(new Layer(layer, s[0] / s[3], s[1] / s[3], s[2] / s[3]));
        });
        return layers;
    }

    private static double log2(double x) {
        return Math.log(x) / Math.log(2);
    }
}
