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
        Llama model = Checkpoint.load(Stories260KTest.GGUF, null).model();
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
