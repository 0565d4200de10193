package gptfast4j.quant;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The statistics' definitions on a matrix small enough to work out by hand (llama-imatrix's own tables are matched
 * in ImatrixCommandTest): experts without a token and tensors without any left out, the layer before's namesake for
 * the similarity, tensors outside the blocks in no layer.
 */
class ImportanceStatisticsTest {
    @Test
    void figuresWorkedOutByHand() {
        Map<String, ImportanceMatrix.Entry> entries = new LinkedHashMap<>();
        entries.put("blk.0.ffn_up.weight", new ImportanceMatrix.Entry(new float[]{1, 2, 3, 4}, new long[]{2}));
        entries.put("blk.1.ffn_up.weight", new ImportanceMatrix.Entry(new float[]{2, 4, 6, 8}, new long[]{2}));
        entries.put("blk.1.ffn_down_exps.weight", new ImportanceMatrix.Entry(new float[]{9, 9, 4, 0}, new long[]{0, 4}));
        entries.put("blk.0.attn_q.weight", new ImportanceMatrix.Entry(new float[]{1, 1}, new long[]{0}));
        entries.put("output.weight", new ImportanceMatrix.Entry(new float[]{3, 1}, new long[]{1}));
        ImportanceStatistics s = ImportanceStatistics.of(new ImportanceMatrix(null, entries, List.of(), 1, 4, false));

        assertEquals(List.of("blk.0.attn_q.weight"), s.skipped());
        // by short name, the greater sum first
        assertEquals(List.of("blk.1.ffn_down_exps.weight", "blk.1.ffn_up.weight", "blk.0.ffn_up.weight", "output.weight"),
                s.tensors().stream().map(ImportanceStatistics.Tensor::name).toList());

        // means 0.5, 1, 1.5, 2: p = 0.1 ... 0.4; one column more than a deviation (0.559) above the mean (1.25)
        ImportanceStatistics.Tensor up0 = s.tensors().get(2);
        assertEquals("0", up0.layer());
        assertEquals("ffn_up", up0.tensor());
        assertEquals(5, up0.total(), 1e-6);
        assertEquals(0.5, up0.min(), 1e-6);
        assertEquals(2, up0.max(), 1e-6);
        assertEquals(1.25, up0.mean(), 1e-6);
        assertEquals(Math.sqrt(0.3125), up0.stddev(), 1e-6);
        assertEquals(1, up0.active(), 1e-6);
        assertEquals(4, up0.elements());
        double h = 0;
        for (double p : new double[]{0.1, 0.2, 0.3, 0.4}) h -= p * Math.log(p) / Math.log(2);
        assertEquals(h, up0.entropy(), 1e-5);
        assertEquals(h / 2, up0.normalizedEntropy(), 1e-5);
        assertEquals(0.25, up0.zd(), 1e-6);
        assertEquals(0, up0.cosineSimilarity());

        // twice layer 0's sums: similarity 1
        assertEquals(1, s.tensors().get(1).cosineSimilarity(), 1e-6);
        // the expert without a token left out: means 1 and 0, one of them inactive; no namesake in layer 0
        ImportanceStatistics.Tensor down = s.tensors().getFirst();
        assertEquals(2, down.elements());
        assertEquals(1, down.total(), 1e-6);
        assertEquals(0.5, down.active(), 1e-6);
        assertEquals(0, down.cosineSimilarity());
        assertEquals("-", s.tensors().get(3).layer());

        assertEquals(2, s.layers().size());
        ImportanceStatistics.Layer l0 = s.layers().get(0), l1 = s.layers().get(1);
        assertEquals(0, l0.layer());
        assertEquals(5, l0.total(), 1e-6);
        assertEquals(1, l1.layer());
        // weighted by columns: (4 * 10 + 2 * 1) / 6, similarity (4 * 1 + 2 * 0) / 6
        assertEquals(7, l1.total(), 1e-5);
        assertEquals(4.0 / 6, l1.cosineSimilarity(), 1e-6);
    }
}
