package gptfast4j.model;

import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * A decode step allocates nothing once compiled: the pool's tasks are bound once (per tensor, per state), not made
 * per call. Before that, stories260K allocated 1920 bytes per step (a lambda per matrix call and per element-wise
 * step), TinyLlama about 8.5 KB.
 */
class DecodeAllocationTest {
    @Test
    void decodeStepsAllocateNothingOnTheCallingThread() {
        assertDecodeAllocatesNothing(Checkpoint.load(Stories260KTest.GGUF, null).model());
    }

    /**
     * The same for lane layouts that prepare scaled activations and block sums per call and walk rows in pairs
     * (Q4_0, Q4_1), on the reference mini models. F16, Q8_0 and Q4_K are not here: on these mini models (rows of 64
     * to 512 weights) F16 allocated 1440 bytes per 500 steps, Q8_0 0.8-1.5 MB (JFR: boxed vectors in
     * {@code Q8_0Tensor.laneDots}) and Q4_K 105-129 MB in some JVMs, all three also before session 17's changes; open.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"Q4_0", "Q4_1"})
    void decodeStepsAllocateNothingWithEachKernel(String type) {
        assertDecodeAllocatesNothing(Checkpoint.load(gptfast4j.Shared.REFERENCE.resolve("models/mini-llama2-" + type + ".gguf"), null).model());
    }

    private static void assertDecodeAllocatesNothing(Llama model) {
        Llama.State state = model.newState(256, 8);
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int vocab = model.config.vocabSize();
        for (int i = 0; i < 3000; i++) model.forward(state, (i * 7) % vocab, i % 256); // until C2 has compiled the step
        // the fewest bytes over a few rounds: a round may catch a one-off allocation (a recompilation), none every step
        long fewest = Long.MAX_VALUE;
        for (int round = 0; round < 5; round++) {
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 500; i++) model.forward(state, (i * 11) % vocab, i % 256);
            fewest = Math.min(fewest, threads.getCurrentThreadAllocatedBytes() - before);
        }
        assertEquals(0, fewest, "bytes allocated by 500 decode steps");
    }

    /** A state's tasks are bound to the model that made it, so another model refuses it rather than run the wrong weights. */
    @Test
    void aStateRunsOnlyOnTheModelThatMadeIt() {
        Llama one = Checkpoint.load(Stories260KTest.GGUF, null).model();
        Llama other = Checkpoint.load(Stories260KTest.GGUF, null).model();
        Llama.State state = one.newState(16, 1);
        one.forward(state, 1, 0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.forward(state, 1, 0));
        assertEquals("the state was made by another model (newState)", e.getMessage());
    }
}
