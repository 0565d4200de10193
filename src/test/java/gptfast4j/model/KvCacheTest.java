package gptfast4j.model;

import gptfast4j.Shared;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The KV cache across its blocks of positions ({@code State.KEY_BLOCK}): decode steps, one token at a time, give the
 * logits that one batch of the same tokens gives at each position, over 150 positions (two whole key blocks and a
 * partial one, a context that is not a multiple of the block). The batch attends four queries at a time, decode one
 * query per head (mini-llama2: every head its own kv head) or four heads at a time (mini-llama3: four query heads per
 * kv head), so each path reads what the other wrote through a different kernel. The batch's logits are checked
 * against llama.cpp elsewhere (PerplexityTest, ReferenceLogitsTest).
 */
class KvCacheTest {
    @ParameterizedTest
    @ValueSource(strings = {"mini-llama2-F32", "mini-llama3-F32"})
    void decodeStepsAcrossKeyBlocksGiveTheBatchsLogits(String model) {
        Llama llama = Checkpoint.load(Shared.REFERENCE.resolve("models/" + model + ".gguf"), null).model();
        int n = 150, vocab = llama.config.vocabSize();
        Random random = new Random(5);
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = 3 + random.nextInt(vocab - 3);
        float[][] batch = new float[n][];
        llama.forward(llama.newState(n, n, n), tokens, 0, n, 0, (p, logits, o) -> batch[p] = Arrays.copyOfRange(logits, o, o + vocab));
        Llama.State state = llama.newState(n, 1, 1);
        for (int p = 0; p < n; p++) {
            float[] logits = llama.forward(state, tokens[p], p);
            assertArrayEquals(batch[p], Arrays.copyOf(logits, vocab), 1e-4f, model + ", position " + p);
        }
    }
}
