package gptfast4j.model;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Llama#decodeEach}: several sequences' decode steps in one pass give each sequence exactly the logits of its
 * own decode steps, whichever sequences share the pass (they join and leave at different steps, at different
 * positions): dense F32 and Q4_0 weights, a mixture of experts, F32 and F16 caches.
 */
class DecodeEachTest {
    /**
     * Prompts of at most {@link Llama#EXACT_BATCH} tokens, which run the decode kernels token by token: a longer
     * prompt's tiles, whose sums of lanes a kernel interpreted and a kernel compiled order differently, gave stories260K
     * logits that changed in their last bit over a process's first hundred prompts.
     */
    private static final String[] PROMPTS = {"Once upon a time", "Lily and Tom", "The dog", "She said", "One day"};
    private static final int STEPS = 24;
    private static final int WARM_RUNS = 12;

    @Test
    void eachSequenceGetsItsOwnDecodeStepsLogits() {
        for (Path file : List.of(Shared.MODELS.resolve("stories260K.gguf"), Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf"),
                Shared.REFERENCE.resolve("models/mini-mixtral-Q4_K.gguf"))) {
            assertEachGetsItsOwn(file, "f32", "f16", "q8_0", "f16/q8_0", "q8_0/f16", "q4_0", "bf16/q5_1");
        }
    }

    /**
     * The same of mixtures with a shared expert (Qwen2-MoE's, gated) and of Llama 4's (its experts' inputs weighed, its
     * queries and keys normalized, a dense layer between), in an F16 cache.
     */
    @Test
    void sharedExpertsAndWeighedInputsToo(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path qwen = dir.resolve("qwen2moe.gguf"), llama4 = dir.resolve("llama4.gguf");
        SharedExpertTest.writeQwen2Moe(dir.resolve("mixtral.gguf"), qwen);
        Llama4Test.write(dir.resolve("mixtral.gguf"), llama4, 4, 96);
        for (Path file : List.of(qwen, llama4)) assertEachGetsItsOwn(file, "f16");
    }

    /** The same of DeepSeek-V2's latent attention, its up-projection split and whole, in an F16 cache. */
    @Test
    void latentAttentionToo(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path v3 = dir.resolve("v3.gguf"), lite = dir.resolve("lite.gguf");
        LatentAttentionTest.write(dir, v3, true);
        LatentAttentionTest.write(dir, lite, false);
        for (Path file : List.of(v3, lite)) assertEachGetsItsOwn(file, "f16");
    }

    /** Each prompt's decode steps' logits, in caches of each of {@code options}, are its own in a batch of sequences' steps. */
    /**
     * Two sequences of {@code text} (its first 30 tokens, and 17 from its 11th) stepped together by {@link
     * Llama#decodeEach} six times: each step's logits are each sequence's own decode step's, bit for bit (a model whose
     * layers keep a sequence's state apart from the cache: LFM2's convolutions, Qwen3.5's delta nets).
     */
    static void assertSequencesGetTheirOwnSteps(Llama m, int[] text) {
        warmUp(m);
        Llama.State a = m.newState(128, 64, 1, KvCache.Type.F16), b = m.newState(128, 64, 1, KvCache.Type.F16);
        Llama.State aAlone = m.newState(128, 64, 1, KvCache.Type.F16), bAlone = m.newState(128, 64, 1, KvCache.Type.F16);
        m.forward(a, text, 0, 30, 0, null);
        m.forward(aAlone, text, 0, 30, 0, null);
        m.forward(b, text, 10, 17, 0, null);
        m.forward(bAlone, text, 10, 17, 0, null);
        Llama.State batch = m.newState(128, 8, 8, KvCache.Type.F16);
        int vocab = m.config.vocabSize();
        for (int step = 0; step < 6; step++) {
            int[] tokens = {text[30 + step], text[27 + step]}, positions = {30 + step, 17 + step};
            float[] both = m.decodeEach(batch, new Llama.State[]{a, b}, tokens, positions, 2);
            assertArrayEquals(m.forward(aAlone, tokens[0], positions[0]), Arrays.copyOfRange(both, 0, vocab), "step " + step);
            assertArrayEquals(m.forward(bAlone, tokens[1], positions[1]), Arrays.copyOfRange(both, vocab, 2 * vocab), "step " + step);
        }
    }

    /**
     * Decode steps, alone and batched, enough for the JIT to compile {@code m}'s kernels: interpreted, a vector's lanes
     * are summed in another order (VectorMath), and a comparison of logits bit for bit then fails in the last bit.
     */
    static void warmUp(Llama m) {
        Llama.State s = m.newState(256, 8, 1, KvCache.Type.F16), batch = m.newState(256, 8, 8, KvCache.Type.F16);
        for (int p = 0; p < 500; p++) m.forward(s, 1 + p % 100, p % 250);
        for (int p = 0; p < 100; p++) m.decodeEach(batch, new Llama.State[]{s}, new int[]{7}, new int[]{p}, 1);
    }

    private static void assertEachGetsItsOwn(Path file, String... options) {
        Checkpoint c = Checkpoint.load(file, null);
        Llama m = c.model();
        m.startDecoding(); // prompts in the decode layouts from the start, as after a first decode step
        int vocab = m.config.vocabSize();
        for (String option : options) {
            KvCache.Type type = KvCache.Type.parse(option);
            boolean blocks = !option.equals("f32") && !option.equals("f16");
            if (blocks && m.config.headDim() % 32 != 0) continue; // stories260K's heads of 8: no blocks of 32
            String what = file.getFileName() + " " + type;
            // alone: each prompt, then STEPS greedy decode steps, every step's logits kept; the last of WARM_RUNS
            // kept, so that the JIT has compiled the kernels (a vector's lanes summed by reduceLanes come out in
            // another order interpreted than compiled, and so may a logit's last bit: a process's first ten or so
            // prompts of stories260K differ there)
            List<float[][]> alone = new ArrayList<>();
            List<int[]> prompts = new ArrayList<>();
            for (int run = 0; run < WARM_RUNS * PROMPTS.length; run++) {
                if (run % PROMPTS.length == 0) {
                    alone.clear();
                    prompts.clear();
                }
                String text = PROMPTS[run % PROMPTS.length];
                int[] prompt = c.promptTokens(text);
                assertTrue(prompt.length <= Llama.EXACT_BATCH, text);
                prompts.add(prompt);
                Llama.State s = m.newState(64, 32, 1, type);
                float[] logits = m.forward(s, prompt, 0, prompt.length, 0, null);
                float[][] steps = new float[STEPS + 1][];
                steps[0] = logits.clone();
                for (int step = 1; step <= STEPS; step++) {
                    logits = m.forward(s, argmax(logits, 0, vocab), prompt.length + step - 1);
                    steps[step] = Arrays.copyOf(logits, vocab);
                }
                alone.add(steps);
            }
            // together: sequence i joins at step 2i (after its own prefill), so the batch grows and shrinks
            int n = PROMPTS.length;
            Llama.State batch = m.newState(64, Llama.EXACT_BATCH, Llama.EXACT_BATCH, type);
            Llama.State[] states = new Llama.State[n];
            int[] done = new int[n], last = new int[n];
            int batches = 0, most = 0;
            for (int tick = 0; Arrays.stream(done).anyMatch(d -> d < STEPS); tick++) {
                Llama.State[] seqs = new Llama.State[n];
                int[] tokens = new int[n], positions = new int[n], which = new int[n];
                int k = 0;
                for (int i = 0; i < n; i++) {
                    if (tick == 2 * i) {
                        states[i] = m.newState(64, 32, 1, type);
                        float[] logits = m.forward(states[i], prompts.get(i), 0, prompts.get(i).length, 0, null);
                        assertArrayEquals(alone.get(i)[0], Arrays.copyOf(logits, vocab), what + " prefill " + i);
                        last[i] = argmax(logits, 0, vocab);
                    } else if (states[i] != null && done[i] < STEPS) {
                        seqs[k] = states[i];
                        tokens[k] = last[i];
                        positions[k] = prompts.get(i).length + done[i];
                        which[k++] = i;
                    }
                }
                if (k == 0) continue;
                float[] logits = m.decodeEach(batch, seqs, tokens, positions, k);
                batches++;
                most = Math.max(most, k);
                for (int j = 0; j < k; j++) {
                    int i = which[j];
                    done[i]++;
                    assertArrayEquals(alone.get(i)[done[i]], Arrays.copyOfRange(logits, j * vocab, (j + 1) * vocab), what + " sequence " + i + " step " + done[i] + " of " + k);
                    last[i] = argmax(logits, j * vocab, vocab);
                }
            }
            assertEquals(n, most, what);
            assertTrue(batches < n * STEPS, what);
        }
    }

    @Test
    void refusesWhatItCannotRun() {
        Checkpoint c = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        Llama m = c.model();
        Llama.State batch = m.newState(64, 8, 8, KvCache.Type.F32), a = m.newState(64, 8, 1, KvCache.Type.F32);
        Llama.State f16 = m.newState(64, 8, 1, KvCache.Type.F16);
        assertThrows(IllegalArgumentException.class, () -> m.decodeEach(batch, new Llama.State[]{a, a}, new int[]{1, 1}, new int[]{0, 1}, 2));
        assertThrows(IllegalArgumentException.class, () -> m.decodeEach(batch, new Llama.State[]{f16}, new int[]{1}, new int[]{0}, 1));
        assertThrows(IllegalArgumentException.class, () -> m.decodeEach(batch, new Llama.State[]{a}, new int[]{1}, new int[]{64}, 1));
        assertThrows(IllegalArgumentException.class, () -> m.decodeEach(batch, new Llama.State[9], new int[9], new int[9], 9));
    }

    private static int argmax(float[] x, int from, int n) {
        int best = from;
        for (int i = from + 1; i < from + n; i++) if (x[i] > x[best]) best = i;
        return best - from;
    }
}
