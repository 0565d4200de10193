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
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "bf16", "q8_0", "f16/q8_0", "q8_0/f16", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1", "q4_0/bf16"})
    void decodeStepsAllocateNothingOnTheCallingThread(KvCache.Type kvType) {
        // a quantized cache's blocks of 32 need heads that wide: mini-llama2's, not stories260K's 8
        boolean blocks = Math.max(blockSize(kvType.keys()), blockSize(kvType.values())) > 1;
        java.nio.file.Path model = blocks ? gptfast4j.Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf") : Stories260KTest.GGUF;
        assertDecodeAllocatesNothing(Checkpoint.load(model, null).model(), kvType);
    }

    /**
     * The same with each weight format's kernel, on the reference mini models (rows of 64 to 512 weights), all in
     * this one JVM, as a service that loads several files would. Before session 18, F16 allocated 1440 bytes per 500
     * steps, Q8_0 up to 1.5 MB and Q4_K and Q5_K 100-270 MB, in some JVMs or after other formats: C2 had passed its
     * inlining budget in their kernels (profiles that saw both mapped and native segments, and helpers of ours
     * parsed late) and boxed their vectors.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"})
    void decodeStepsAllocateNothingWithEachKernel(String type) {
        assertDecodeAllocatesNothing(Checkpoint.load(gptfast4j.Shared.REFERENCE.resolve("models/mini-llama2-" + type + ".gguf"), null).model());
    }

    /**
     * The same in the files' layouts, which decode reads where memory is too short for the decode layouts' copies (and
     * which the last logits of a prompt read before the first decode step): at 128 bits their dot products boxed in
     * every JVM (about 100 KB per step) while they passed vectors to a helper of ours (VectorMath.sum, since removed).
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"})
    void decodeStepsInTheFileLayoutAllocateNothing(String type) {
        Llama model = Checkpoint.load(gptfast4j.Shared.REFERENCE.resolve("models/mini-llama2-" + type + ".gguf"), null).model();
        assertEquals(false, model.useDecodeLayouts(java.util.OptionalLong.of(0))); // as if no memory were free for the copies
        assertDecodeAllocatesNothing(model);
    }

    /**
     * The same for the formats of llama.cpp's files that ours never hold (Q2_K, Q3_K, Q5_0, Q5_1, IQ4_NL, IQ4_XS), on
     * BlockFormatsTest's file: with their decode copies (Q3_K's, Q5_0's, IQ4_NL's and IQ4_XS's), and in the files' layout;
     * the grid i-quants (IQ1_S ... IQ3_S, no decode copies) on IQuantsTest's; the ternary types (TQ1_0, TQ2_0) on
     * TernaryTest's; and MXFP4 (no decode copies; a mixture of experts) on MXFP4Test's.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"block-formats/mini-llama2-mixed.gguf", "i-quants/mini-llama2-iq.gguf", "ternary/mini-llama2-tq.gguf", "mxfp4/mini-mixtral-mxfp4.gguf"})
    void decodeStepsOfTheBlockFormatsAllocateNothing(String fixture) {
        java.nio.file.Path file = java.nio.file.Path.of("src/test/resources").resolve(fixture);
        assertDecodeAllocatesNothing(Checkpoint.load(file, null).model());
        Llama fileLayout = Checkpoint.load(file, null).model();
        assertEquals(false, fileLayout.useDecodeLayouts(java.util.OptionalLong.of(0)));
        assertDecodeAllocatesNothing(fileLayout);
    }

    /**
     * DeepSeek-V2's latent attention (LatentAttentionTest's models), whose per-head products run on the pool's threads
     * from their own tasks ({@code Tensor#matvecHere}) and whose cache holds keys only: its up-projection split in F32,
     * and whole in Q8_0 (its key rows read one by one from the decode layout) with an F16 cache.
     */
    @Test
    void decodeStepsOfLatentAttentionAllocateNothing(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path v3 = dir.resolve("v3.gguf"), lite = dir.resolve("lite.gguf");
        LatentAttentionTest.write(dir, v3, true);
        LatentAttentionTest.write(dir, lite, false);
        assertDecodeAllocatesNothing(Checkpoint.load(v3, null).model());
        assertDecodeAllocatesNothing(Checkpoint.load(lite, null).model().quantize(gptfast4j.tensor.GGMLType.Q8_0), KvCache.Type.F16);
    }

    /** Apertus's xIELU (a blend of two branches, one an exponential) in every decode step (LlamaLikeTest's model). */
    @Test
    void decodeStepsOfXieluAllocateNothing(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("apertus.gguf");
        LlamaLikeTest.writeApertus(dir.resolve("llama.gguf"), file);
        assertDecodeAllocatesNothing(Checkpoint.load(file, null).model());
    }

    private static int blockSize(KvCache.Type.Element e) {
        return gptfast4j.tensor.GGMLType.valueOf(e.name()).blockSize;
    }

    /**
     * The hybrid families' decode steps allocate nothing either: LFM2's convolution layers (their inputs stored, their
     * taps summed), Qwen3.5's delta nets (convolution, delta rule, gated norm) and gated queries, Granite 4.0-H's Mamba-2
     * (convolution with its bias, the heads' scan, the grouped norm), Nemotron-H's blocks of a mixer alone and of a
     * feed-forward alone, and its mixture's experts without a gate, and Mamba-2's and Mamba's blocks of a mixer alone (Falcon-Mamba's norms), Jamba's Mamba mixers beside attention and experts, Falcon-H1's Mamba-2 beside attention in one layer; and StarCoder2's and Phi-2's biases of their
     * norms, projections and logits, Falcon-40B's and GPT-NeoX's parallel blocks with a norm each, GPT-2's
     * learned positions, BLOOM's and MPT's ALiBi (MPT's clamp).
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"lfm2", "qwen35", "qwen3next", "qwen3next-fused", "granitehybrid", "nemotron_h", "nemotron_h_moe", "mamba2", "mamba", "jamba", "falcon-h1", "starcoder2", "phi2", "falcon", "gptneox", "gpt2", "bloom", "mpt", "deci", "bitnet"})
    void decodeStepsOfHybridFamiliesAllocateNothing(String family, @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve(family + "-mini.gguf"), scratch = dir.resolve("llama.gguf");
        FamilyFiles.writeFamily(family, scratch, file);
        assertDecodeAllocatesNothing(Checkpoint.load(file, null).model());
    }

    private static void assertDecodeAllocatesNothing(Llama model) {
        assertDecodeAllocatesNothing(model, KvCache.Type.F32);
    }

    private static void assertDecodeAllocatesNothing(Llama model, KvCache.Type kvType) {
        Llama.State state = model.newState(256, 8, 8, kvType);
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int vocab = model.config.vocabSize();
        // Rounds of a context's 256 positions until one allocates nothing: the first rounds run C1's code (its vector
        // operations allocate) until C2 has compiled the step (a kernel's first model here takes 1000 to 1500 steps,
        // later ones one or two rounds), a later round may catch a one-off allocation (a recompilation); code that
        // allocates on every step allocates in every round. (Warming up for 3000 steps first took a third longer.)
        long fewest = Long.MAX_VALUE;
        for (int round = 0; round < 80 && fewest > 0; round++) {
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 256; i++) model.forward(state, (i * 11) % vocab, i);
            fewest = Math.min(fewest, threads.getCurrentThreadAllocatedBytes() - before);
        }
        assertEquals(0, fewest, "bytes allocated by 256 decode steps");
        // a decode from position 0 into a longer context than the thread has seen: each step attends to one
        // position more, which must not grow the F16 cache's scratch step by step. Each round on a new thread, whose
        // scratches start empty (on a thread that has run such a decode they are full-sized already), measured after
        // its first step, which makes them: a round may catch a one-off allocation (a recompilation: one in 2824
        // bytes failed this once), a scratch that grows with the positions allocates in every round.
        fewest = Long.MAX_VALUE;
        for (int round = 0; round < 5 && fewest > 0; round++) {
            long[] allocated = new long[1];
            Throwable[] failure = new Throwable[1];
            Thread decoder = new Thread(() -> {
                try {
                    Llama.State longer = model.newState(512, 8, 8, kvType);
                    model.forward(longer, 1, 0);
                    long before = threads.getCurrentThreadAllocatedBytes();
                    for (int pos = 1; pos < 512; pos++) model.forward(longer, (pos * 13) % vocab, pos);
                    allocated[0] = threads.getCurrentThreadAllocatedBytes() - before;
                } catch (Throwable t) {
                    failure[0] = t;
                }
            });
            decoder.start();
            try {
                decoder.join();
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            if (failure[0] != null) throw new AssertionError(failure[0]);
            fewest = Math.min(fewest, allocated[0]);
        }
        assertEquals(0, fewest, "bytes allocated by a decode from position 1 to 511");
    }

    /**
     * This test's JVMs run with the launcher's C2 limits (the pom's jvm.flags), without which the Q4 kernels boxed in
     * about one JVM in four; an embedding program with the defaults is told when it loads a model.
     */
    @Test
    void theTestsRunWithTheLaunchersJitLimitsAndOthersAreTold() {
        com.sun.management.HotSpotDiagnosticMXBean hotSpot = ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
        assertEquals(null, JvmChecks.note(Long.parseLong(hotSpot.getVMOption("PerMethodTrapLimit").getValue()),
                Long.parseLong(hotSpot.getVMOption("PerMethodRecompilationCutoff").getValue())));
        String note = JvmChecks.note(100, 400); // HotSpot's defaults
        org.junit.jupiter.api.Assertions.assertTrue(note.contains("-XX:PerMethodTrapLimit=100000 -XX:PerMethodRecompilationCutoff=100000"), note);
        org.junit.jupiter.api.Assertions.assertNotNull(JvmChecks.note(100_000, 400));
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
