package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A prompt's last layer runs its queries, attention and feed-forward for the last tokens only ({@link
 * Llama#lastLayerFrom}); the rest of the batch gets its keys and values there and nothing else. The logits must be
 * those of the whole layer, and the cache what the whole layer would have left for the next token.
 */
class LastLayerTest {
    /**
     * The part kept: none when no logits are wanted, all of a batch too small to split or of a mixture of experts,
     * else from the latest multiple of four that leaves the logits' tokens and at least {@link
     * Tensor#BATCH_INVARIANT_TOKENS}.
     */
    @Test
    void thePartKeptIsTheLogitsTokensAndAnInvariantBatchFromAMultipleOfFour() {
        int least = Tensor.BATCH_INVARIANT_TOKENS;
        for (int n = 1; n <= 80; n++) {
            for (int nLogits : new int[]{0, 1, 2, least + 3, n}) {
                if (nLogits > n) continue;
                int from = Llama.lastLayerFrom(n, nLogits, true);
                String what = n + " tokens, " + nLogits + " logits";
                assertEquals(nLogits == 0 ? n : 0, Llama.lastLayerFrom(n, nLogits, false), what + ", a mixture");
                if (nLogits == 0) {
                    assertEquals(n, from, what);
                    continue;
                }
                int kept = Math.max(nLogits, least);
                if (kept >= n) {
                    assertEquals(0, from, what);
                    continue;
                }
                assertEquals(0, from % 4, what);
                assertTrue(n - from >= kept && n - from < kept + 4, what + ": from " + from);
            }
        }
    }

    /**
     * A 45-token batch run in full (every position's logits), for its last 17 positions' logits (the last layer for
     * its last 17 tokens: the output head's batch then the same arithmetic as the whole one's, {@code
     * BATCH_INVARIANT_TOKENS} at 512 bits) and for the last position's; then one decode step each, which reads the
     * last layer's keys and values of every position. Within 1e-4, as Stories260KTest: a sum the Vector API reduces
     * across lanes (the attention's) may round differently interpreted and compiled, so the same pass gave stories260K
     * logits 1.0e-5 apart in one run at 256 bits, early in its JVM; a part run in other arithmetic (Q4_0's decode
     * kernel rounds x to int8) is 1e-3 away or more (6e-3 with a part of one token).
     */
    @ParameterizedTest
    @CsvSource({"stories260K.gguf", "reference/models/mini-llama3-Q4_0.gguf", "reference/models/mini-llama2-Q4_K.gguf"})
    void aBatchsLastLogitsAndItsCacheAreTheWholeLayers(String file) {
        Llama model = Checkpoint.load(path(file), null).model();
        int vocab = model.config.vocabSize(), n = 45, wanted = 17;
        int[] prompt = prompt(n, vocab);
        assertTrue(Llama.lastLayerFrom(n, wanted, true) > 0, "the last layer split");
        Llama.State whole = model.newState(64, n), part = model.newState(64, n);
        model.runBatch(whole, prompt, 0, n, 0, n, false, false);
        model.runBatch(part, prompt, 0, n, 0, wanted, false, false);
        assertArrayEquals(Arrays.copyOfRange(whole.logits, (n - wanted) * vocab, n * vocab), Arrays.copyOf(part.logits, wanted * vocab), 1e-4f, "the last positions' logits");
        // one position's logits (a prompt's): its output head another product, but its last hidden state the same
        Llama.State one = model.newState(64, n);
        model.runBatch(one, prompt, 0, n, 0, 1, false, false);
        int dim = model.config.dim(), kept = n - Llama.lastLayerFrom(n, 1, true);
        assertArrayEquals(Arrays.copyOfRange(whole.x, (n - 1) * dim, n * dim), Arrays.copyOfRange(one.x, (kept - 1) * dim, kept * dim), 1e-4f, "the last hidden state");
        float[] next = Arrays.copyOf(model.forward(whole, 7, n), vocab);
        assertArrayEquals(next, Arrays.copyOf(model.forward(part, 7, n), vocab), 1e-4f, "the next token's logits");
        assertArrayEquals(next, Arrays.copyOf(model.forward(one, 7, n), vocab), 1e-4f, "the next token's logits after one position's");
    }

    /**
     * A 45-token prompt in batches of 16, with a sink (every batch's logits, the whole last layer) and without (the
     * first two batches want no logits and stop after the last layer's keys and values): the next token's logits are
     * the same, within 1e-4 as above. A mixture of experts too.
     */
    @ParameterizedTest
    @CsvSource({"stories260K.gguf", "reference/models/mini-llama3-Q4_0.gguf", "reference/models/mini-mixtral-Q4_0.gguf"})
    void batchesThatWantNoLogitsLeaveTheWholeLayersCache(String file) {
        Llama model = Checkpoint.load(path(file), null).model();
        int vocab = model.config.vocabSize(), n = 45;
        int[] prompt = prompt(n, vocab);
        Llama.State whole = model.newState(64, 16), part = model.newState(64, 16, 1, KvCache.Type.F32);
        model.forward(whole, prompt, 0, n, 0, (p, logits, o) -> { });
        model.forward(part, prompt, 0, n, 0, null);
        assertArrayEquals(Arrays.copyOf(model.forward(whole, 7, n), vocab), Arrays.copyOf(model.forward(part, 7, n), vocab), 1e-4f, "the next token's logits");
    }

    /**
     * Logits wanted from a position on (perplexity's second half): those positions' logits as with every position's,
     * within 1e-4 as above, and none handed over for the earlier ones.
     */
    @ParameterizedTest
    @CsvSource({"stories260K.gguf, 20", "reference/models/mini-llama3-Q4_0.gguf, 22", "reference/models/mini-llama3-Q4_0.gguf, 44"})
    void logitsFromAPositionOnAreTheWholeLayers(String file, int firstWanted) {
        Llama model = Checkpoint.load(path(file), null).model();
        int vocab = model.config.vocabSize(), n = 45;
        int[] prompt = prompt(n, vocab);
        float[][] all = new float[n][], some = new float[n][];
        model.forward(model.newState(64, n), prompt, 0, n, 0, (p, logits, o) -> all[p] = Arrays.copyOfRange(logits, o, o + vocab));
        model.forward(model.newState(64, n), prompt, 0, n, 0, firstWanted, (p, logits, o) -> some[p] = Arrays.copyOfRange(logits, o, o + vocab));
        for (int p = 0; p < n; p++) {
            if (p < firstWanted) assertNull(some[p], "position " + p + " not wanted");
            else assertArrayEquals(all[p], some[p], 1e-4f, "position " + p);
        }
    }

    private static Path path(String file) {
        return file.startsWith("reference/") ? Shared.REFERENCE.resolve(file.substring("reference/".length())) : Shared.MODELS.resolve(file);
    }

    private static int[] prompt(int n, int vocab) {
        Random random = new Random(5);
        int[] prompt = new int[n];
        for (int i = 0; i < n; i++) prompt[i] = 1 + random.nextInt(vocab - 1);
        return prompt;
    }
}
