package gptfast4j.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.management.ManagementFactory;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A compiled prefill allocates only per matrix call, never per weight or per token: a kernel whose vectors box
 * (DecodeAllocationTest's defect, in a matrix x matrix kernel) allocates megabytes per pass. Measured per 128-token
 * pass of the reference mini models on the calling thread, once compiled: 1344 bytes (the float formats, Q8_0,
 * Q6_K), 1456 (Q4_0), 5184 (Q4_1, Q4_K, Q5_K); in the decode layouts 9.8-10.6 KB; while C1's code still
 * ran, 0.3-1.1 MB. Its first runs found Q4_0's int16 product (removed in session 47) boxing in some JVMs (13 MB per
 * pass, a helper of ours returning a vector left out of line) and Q6_K at 128 bits (1.2-1.6 MB per pass: the same in its
 * file layout's dot product, which the last position's logits take before any decode step, KQuantTensor.floats).
 */
class PrefillAllocationTest {
    private static final long BOUND = 64 * 1024;

    @ParameterizedTest
    @ValueSource(strings = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"})
    void aCompiledPrefillAllocatesOnlyPerMatrixCall(String type) {
        assertFewBytesPerPass(load(type));
    }

    /**
     * The same after the first decode step, with the weights in the decode layouts (a chat's next turn, a speculative
     * check): Q4_0 at 128 bits allocated 3 MB per pass here in 2 of 3 runs (11.7 MB in one run of session 20), the
     * Vector API's I2S conversion compiled as its Java fallback in the conversion of the weights to int16 for the int16
     * product of those days.
     */
    @ParameterizedTest
    @ValueSource(strings = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"})
    void aCompiledPrefillInTheDecodeLayoutsAllocatesOnlyPerMatrixCall(String type) {
        Llama model = load(type);
        assertTrue(model.useDecodeLayouts(OptionalLong.empty()));
        assertFewBytesPerPass(model);
    }

    /**
     * A 16-token batch in the decode layouts, a chat turn's size: the quantized and half-float formats make their
     * weights in registers ({@code Tensor.panelProduct}), whose kernels a boxing C2 compile would make allocate per column.
     */
    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"})
    void aCompiledShortBatchInTheDecodeLayoutsAllocatesOnlyPerMatrixCall(String type) {
        Llama model = load(type);
        assertTrue(model.useDecodeLayouts(OptionalLong.empty()));
        assertFewBytesPerPass(model, KvCache.Type.F32, 16);
    }

    /** With an F16 KV cache, whose kv heads are converted into each thread's scratch (kept between calls). */
    @ParameterizedTest
    @ValueSource(strings = {"F32", "Q4_0"})
    void aCompiledPrefillWithAnF16CacheAllocatesOnlyPerMatrixCall(String type) {
        assertFewBytesPerPass(load(type), KvCache.Type.F16);
    }

    private static Llama load(String type) {
        return Checkpoint.load(gptfast4j.Shared.REFERENCE.resolve("models/mini-llama2-" + type + ".gguf"), null).model();
    }

    private static void assertFewBytesPerPass(Llama model) {
        assertFewBytesPerPass(model, KvCache.Type.F32);
    }

    private static void assertFewBytesPerPass(Llama model, KvCache.Type kvType) {
        assertFewBytesPerPass(model, kvType, 128);
    }

    private static void assertFewBytesPerPass(Llama model, KvCache.Type kvType, int batch) {
        Llama.State state = model.newState(256, batch, 1, kvType);
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int[] tokens = new int[batch]; // a prompt's batch: the files' group product, the decode layouts' pair kernel
        for (int i = 0; i < tokens.length; i++) tokens[i] = (i * 7) % model.config.vocabSize();
        // rounds until one is under the bound, as in DecodeAllocationTest: the JIT may be slow on a busy machine
        long fewest = Long.MAX_VALUE;
        for (int round = 0; round < 40 && fewest > BOUND; round++) {
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 20; i++) model.forward(state, tokens, 0, tokens.length, 0, null);
            fewest = Math.min(fewest, (threads.getCurrentThreadAllocatedBytes() - before) / 20);
        }
        assertTrue(fewest <= BOUND, "bytes allocated per " + batch + "-token pass: " + fewest);
    }
}
