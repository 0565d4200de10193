package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.distributed.SocketGroup;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tensor parallelism ({@link TensorParallel}) over loopback TCP ({@link SocketGroup}), the followers threads of this
 * JVM: a model split across 2 and 4 processes computes the one-process logits bit for bit (prompts as batches, decode
 * steps, an exact verification, several sequences' steps at once, a context shift; dense models and a mixture of
 * experts; Qwen's, Gemma 2's, Phi-3's, Granite's, SmolLM3's and Command-R's blocks), as each output is still one row's dot product over its whole input.
 */
class TensorParallelTest {
    /** At most {@link Llama#EXACT_BATCH} tokens, which run the decode kernels token by token (see {@link #WARM_ROUNDS}). */
    private static final String PROMPT = "Once upon a time";
    /** A prompt the matrix tiles run. */
    private static final String LONG_PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park";
    /**
     * Rounds before the one compared bit for bit, so that the JIT has compiled the kernels both ways run: a vector's
     * lanes summed by reduceLanes come out in another order interpreted than compiled (DecodeEachTest), and a long
     * prompt's tiles change their last bits over a process's first hundred or so prompts, so the long prompt is
     * compared within a rounding's tolerance.
     */
    private static final int WARM_ROUNDS = 12;

    /** A group of {@code size}: followers serving shares of their own loads of {@code file} on threads; the leader's share. */
    private static Llama leader(Path file, GGMLType quantize, int size, List<Thread> followers, ConcurrentLinkedQueue<Throwable> faults) throws IOException {
        List<String> addresses = new ArrayList<>();
        for (int r = 1; r < size; r++) {
            ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
            addresses.add("127.0.0.1:" + ((InetSocketAddress) server.getLocalAddress()).getPort());
            Llama whole = Checkpoint.load(file, null).model();
            Thread t = Thread.ofPlatform().daemon().start(() -> {
                try (server) {
                    SocketGroup g = SocketGroup.follow(server, null, print -> print.equals(whole.fingerprint()) ? null : "another model", log -> faults.add(new AssertionError(log)));
                    try (g) {
                        Llama share = whole.split(g);
                        (quantize == null ? share : share.quantize(quantize)).follow();
                    }
                } catch (Throwable e) {
                    faults.add(e);
                }
            });
            followers.add(t);
        }
        Llama whole = Checkpoint.load(file, null).model();
        Llama share = whole.split(SocketGroup.lead(addresses, whole.fingerprint(), null));
        return quantize == null ? share : share.quantize(quantize);
    }

    @Test
    void splitModelsComputeTheOneProcessLogits(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        // The tanh of Gemma 2's caps and GeGLU (and gpt-oss's gate's exponential) is the Vector API's, whose interpreted
        // form (Math.tanh per lane) and C2's (the CPU's math library) differ in last bits; a cap over a short prompt's few
        // scores runs too few loops to be compiled within the warm rounds, so its kernels are compiled first (a run
        // without this failed once in about eight; gpt-oss's, once its model came later in the list)
        float[] warm = new float[64], up = new float[64];
        for (int i = 0; i < 64; i++) warm[i] = up[i] = i / 16f - 2;
        for (int i = 0; i < 50_000; i++) {
            gptfast4j.tensor.VectorMath.softcap(warm, 0, 64, 3f);
            gptfast4j.tensor.VectorMath.geglu(warm, up, 0, 64);
            gptfast4j.tensor.VectorMath.swigluOai(warm, up, 0, 64); // gpt-oss's exponential likewise
        }
        // heads of their own width (attention.key_length 24 at dim 64, 4 heads): the queries wider than the model
        Path wideHeads = dir.resolve("wide-heads.gguf");
        gptfast4j.bench.RandomModel.write(HeadWidthTest.WIDE_HEADS, GGMLType.F32, wideHeads, Shared.TOKENIZERS, b -> { });
        // Qwen3's per-head query and key norms, Qwen2's biases: each process its own heads' part
        Path qwen3 = dir.resolve("qwen3-mini.gguf"), qwen3moe = dir.resolve("qwen3moe-mini.gguf"), qwen2 = dir.resolve("qwen2-mini.gguf");
        QwenTest.write(QwenTest.SHAPE, "qwen2", dir.resolve("qwen2-llama.gguf"), qwen2);
        QwenTest.write(dir.resolve("qwen3-llama.gguf"), qwen3);
        QwenTest.write(QwenTest.MOE, "qwen3moe", dir.resolve("qwen3-mixtral.gguf"), qwen3moe);
        // Gemma 2's post norms, sliding window (of 8) and capped scores and logits; Phi-3's fused projections (each
        // process its rows of the views) and RoPE on 12 of 16 elements
        Path gemma2 = dir.resolve("gemma2-mini.gguf"), phi3 = dir.resolve("phi3-mini.gguf");
        gptfast4j.bench.ModelShape twoKvHeads = new gptfast4j.bench.ModelShape("gemma-mini", 64, 160, 3, 4, 2, 32000, 256, 10000f, 1e-6f, true, 0, 0, 0, 32);
        GemmaTest.write(twoKvHeads, "gemma2", dir.resolve("gemma2-llama.gguf"), gemma2, md -> {
            md.put("gemma2.attention.sliding_window", gptfast4j.io.Metadata.Value.uint32(8));
            md.put("gemma2.attn_logit_softcapping", gptfast4j.io.Metadata.Value.float32(3f));
            md.put("gemma2.final_logit_softcapping", gptfast4j.io.Metadata.Value.float32(5f));
        });
        PhiTest.write(dir.resolve("phi3-llama.gguf"), phi3, 12, md -> { });
        // Granite's multipliers (its mixture's too); SmolLM3's layers without RoPE (whose cached keys a context shift leaves as they are)
        Path granite = dir.resolve("granite-mini.gguf"), smollm3 = dir.resolve("smollm3-mini.gguf");
        LlamaLikeTest.write("granite", dir.resolve("granite-llama.gguf"), granite, md -> LlamaLikeTest.graniteScales("granite", md));
        Path graniteMoe = dir.resolve("granitemoe-mini.gguf");
        LlamaLikeTest.writeGraniteMoe(dir.resolve("granitemoe-mixtral.gguf"), graniteMoe);
        // Cohere2's sliding layers and those without RoPE; Ministral 3's YaRN and attention temperature (each process
        // its heads' queries scaled by position)
        Path cohere2 = dir.resolve("cohere2-mini.gguf"), ministral = dir.resolve("ministral-mini.gguf");
        FamilyFiles.write(LlamaLikeTest.SHAPE, "cohere2", dir.resolve("cohere2-llama.gguf"), cohere2, md -> {
            md.put("cohere2.attention.layer_norm_epsilon", md.remove("cohere2.attention.layer_norm_rms_epsilon"));
            md.put("cohere2.attention.sliding_window", gptfast4j.io.Metadata.Value.uint32(8));
        }, name -> !name.endsWith("ffn_norm.weight") && !name.equals("output.weight"), (llama, tensors) -> { });
        LlamaLikeTest.write("mistral3", dir.resolve("ministral-llama.gguf"), ministral, md -> {
            md.put("mistral3.rope.scaling.type", gptfast4j.io.Metadata.Value.string("yarn"));
            md.put("mistral3.rope.scaling.factor", gptfast4j.io.Metadata.Value.float32(16f));
            md.put("mistral3.rope.scaling.original_context_length", gptfast4j.io.Metadata.Value.uint32(8));
            md.put("mistral3.attention.temperature_scale", gptfast4j.io.Metadata.Value.float32(0.3f));
        });
        // gpt-oss: each process its heads' sinks and its rows of the experts' gate and up biases
        Path gptOss = dir.resolve("gpt-oss-mini.gguf");
        GptOssTest.write(dir.resolve("gpt-oss-mixtral.gguf"), gptOss, md -> { });
        // shared experts: Qwen2-MoE's gated; ERNIE 4.5's beside a dense layer, three widths each split apart
        Path qwen2moe = dir.resolve("qwen2moe-mini.gguf"), ernieMoe = dir.resolve("ernie-moe-mini.gguf");
        SharedExpertTest.writeQwen2Moe(dir.resolve("qwen2moe-mixtral.gguf"), qwen2moe);
        SharedExpertTest.writeErnieMoe(dir.resolve("ernie-moe-mixtral.gguf"), ernieMoe);
        // GLM-4: each process its heads' biases and its rows of the fused gate and up projections
        Path glm4 = dir.resolve("glm4-mini.gguf");
        LlamaLikeTest.writeGlm4(dir.resolve("glm4-llama.gguf"), glm4);
        // GLM-4.5: sigmoid gating with a selection bias, q/k/v biases, RoPE on part of each head, an MTP layer not run
        Path glm45 = dir.resolve("glm45-mini.gguf");
        SharedExpertTest.writeGlm45(dir.resolve("glm45-mixtral.gguf"), glm45, true);
        // Ling 2.0: each process its rows of the fused projections' views, its heads' norms, experts chosen in groups
        Path ling2 = dir.resolve("ling2-mini.gguf");
        SharedExpertTest.writeLing2(dir.resolve("ling2-mixtral.gguf"), ling2);
        // experts' gates and ups in one tensor: each process its rows of each expert's gate and up views
        Path gateUp = dir.resolve("mixtral-gate-up.gguf");
        ReferenceLogitsTest.writeGateUpFused(Shared.REFERENCE.resolve("models/mini-mixtral-Q4_K.gguf"), gateUp);
        // Arcee: each process its rows of the up projection, no gate
        Path arcee = dir.resolve("arcee-mini.gguf");
        LlamaLikeTest.writeArcee(dir.resolve("arcee-llama.gguf"), arcee);
        // Llama 4: each process its heads' unit norms, its rows of experts whose inputs are weighed
        Path llama4 = dir.resolve("llama4-mini.gguf");
        Llama4Test.write(dir.resolve("llama4-mixtral.gguf"), llama4, 4, 96);
        LlamaLikeTest.write("smollm3", dir.resolve("smollm3-llama.gguf"), smollm3, md -> { });
        // Command-R's parallel blocks: each process keeps the FFN's input through the attention
        Path commandR = dir.resolve("command-r-mini.gguf");
        FamilyFiles.write(LlamaLikeTest.SHAPE, "command-r", dir.resolve("command-r-llama.gguf"), commandR, md -> {
            md.put("command-r.attention.layer_norm_epsilon", md.remove("command-r.attention.layer_norm_rms_epsilon"));
            md.put("command-r.logit_scale", gptfast4j.io.Metadata.Value.float32(0.5f));
        }, name -> !name.endsWith("ffn_norm.weight") && !name.equals("output.weight"), (llama, tensors) -> { });
        // StarCoder2 and Phi-2: each process its rows of the up projection's bias, the down projection's and the
        // logits' biases added once gathered; Phi-2's fused q/k/v bias split with its heads
        Path starcoder2 = dir.resolve("starcoder2-mini.gguf"), phi2 = dir.resolve("phi2-mini.gguf"), falcon = dir.resolve("falcon-mini.gguf"), neox = dir.resolve("gptneox-mini.gguf");
        LayerNormFamiliesTest.writeStarCoder2(dir.resolve("starcoder2-llama.gguf"), starcoder2);
        LayerNormFamiliesTest.writePhi2(dir.resolve("phi2-llama.gguf"), phi2);
        // Falcon-40B's and GPT-NeoX's parallel blocks with a norm each: each process normalizes the FFN's input itself
        LayerNormFamiliesTest.writeFalcon(dir.resolve("falcon-llama.gguf"), falcon, true);
        LayerNormFamiliesTest.writeGptNeox(dir.resolve("gptneox-llama.gguf"), neox, true);
        // GPT-2's learned positions: each process adds them to its embeddings
        Path gpt2 = dir.resolve("gpt2-mini.gguf");
        LayerNormFamiliesTest.writeGpt2("gpt2", dir.resolve("gpt2-llama.gguf"), gpt2);
        // BLOOM's ALiBi: each process its heads' slopes (3 of 6 each, so the second's from the other series); MPT's clamp
        Path bloom = dir.resolve("bloom-mini.gguf"), mpt = dir.resolve("mpt-mini.gguf");
        LayerNormFamiliesTest.writeBloom(dir.resolve("bloom-llama.gguf"), bloom);
        LayerNormFamiliesTest.writeMpt(dir.resolve("mpt-llama.gguf"), mpt, 0.5f);
        // JAIS's gate bias: each process its rows; BitNet's norms of wo's and w2's gathered inputs; a deci model's
        // layers of their own shapes (a feed-forward alone, wo alone, neither)
        Path jais = dir.resolve("jais-mini.gguf"), bitnet = dir.resolve("bitnet-mini.gguf"), deci = dir.resolve("deci-mini.gguf");
        DeciTest.write(dir.resolve("deci-llama.gguf"), deci);
        LayerNormFamiliesTest.writeJais(dir.resolve("jais-llama.gguf"), jais);
        LlamaLikeTest.writeBitnet(dir.resolve("bitnet-llama.gguf"), bitnet);
        for (Path file : List.of(Shared.MODELS.resolve("stories260K.gguf"), Shared.REFERENCE.resolve("models/mini-llama3-Q4_K.gguf"),
                Shared.REFERENCE.resolve("models/mini-mixtral-Q4_K.gguf"), Path.of("src/test/resources/i-quants/mini-llama2-iq.gguf"),
                Path.of("src/test/resources/ternary/mini-llama2-tq.gguf"), wideHeads, qwen3, qwen3moe, qwen2, gemma2, phi3, granite, graniteMoe, smollm3, commandR, cohere2, ministral, gptOss,
                qwen2moe, ernieMoe, llama4, glm4, arcee, glm45, ling2, gateUp, starcoder2, phi2, falcon, neox, gpt2, bloom, mpt, jais, bitnet, deci)) {
            for (GGMLType quantize : new GGMLType[]{null, GGMLType.Q4_0}) {
                Checkpoint c = Checkpoint.load(file, null, quantize);
                int[] prompt = c.promptTokens(PROMPT), longPrompt = c.promptTokens(LONG_PROMPT);
                assertTrue(prompt.length <= Llama.EXACT_BATCH && longPrompt.length > 2 * Llama.EXACT_BATCH);
                for (int size : new int[]{2, 4}) {
                    if (c.model().config.nKvHeads() % size != 0) continue;
                    String what = file.getFileName() + " " + quantize + " over " + size;
                    List<Thread> followers = new ArrayList<>();
                    ConcurrentLinkedQueue<Throwable> faults = new ConcurrentLinkedQueue<>();
                    Llama split = leader(file, quantize, size, followers, faults);
                    Llama whole = Checkpoint.load(file, null, quantize).model();
                    for (int round = 0; round <= WARM_ROUNDS; round++) {
                        List<float[]> a = run(whole, prompt), b = run(split, prompt);
                        assertEquals(a.size(), b.size());
                        if (round == WARM_ROUNDS) for (int i = 0; i < a.size(); i++) assertArrayEquals(a.get(i), b.get(i), what + " logits " + i);
                    }
                    int vocab = whole.config.vocabSize();
                    float[] a = whole.forward(whole.newState(128, 128, 1, KvCache.Type.F16), longPrompt, 0, longPrompt.length, 0, null);
                    float[] b = split.forward(split.newState(128, 128, 1, KvCache.Type.F16), longPrompt, 0, longPrompt.length, 0, null);
                    for (int i = 0; i < vocab; i++) assertEquals(a[i], b[i], 1e-5 * Math.max(1, Math.abs(a[i])), what + " long prompt's logit " + i);
                    assertEquals(argmax(a, vocab), argmax(b, vocab), what);
                    // hidden states only (an embedding): the followers leave the output head out too, and the group
                    // goes on in step (the runs below)
                    float[] ea = Pooling.MEAN.embed(whole, whole.newState(128, 128, 1, KvCache.Type.F16), longPrompt, Pooling.EUCLIDEAN);
                    float[] eb = Pooling.MEAN.embed(split, split.newState(128, 128, 1, KvCache.Type.F16), longPrompt, Pooling.EUCLIDEAN);
                    assertArrayEquals(ea, eb, 1e-5f, what + " embedding");
                    if (whole.config.headDim() % 32 == 0) {
                        // quantized caches: each process its own heads' blocks, the queries rounded alike; keys and
                        // values of two types, as the followers are told them
                        for (KvCache.Type type : new KvCache.Type[]{KvCache.Type.Q8_0, KvCache.Type.parse("q4_0/f16")}) {
                            float[] a8 = whole.forward(whole.newState(128, 128, 1, type), longPrompt, 0, longPrompt.length, 0, null);
                            float[] b8 = split.forward(split.newState(128, 128, 1, type), longPrompt, 0, longPrompt.length, 0, null);
                            for (int i = 0; i < vocab; i++) assertEquals(a8[i], b8[i], 1e-5 * Math.max(1, Math.abs(a8[i])), what + " long prompt's logit " + i + ", " + type.option() + " cache");
                        }
                    }
                    split.parallel.group.close();
                    for (Thread t : followers) t.join(10_000);
                    assertTrue(faults.isEmpty(), what + ": " + faults);
                }
            }
        }
    }

    /**
     * A split model's decode steps allocate nothing once compiled, in the leader's thread (its commands, its gathers)
     * and in the follower's (reading commands, gathering), as one process's do (DecodeAllocationTest).
     */
    @Test
    void decodeStepsOfASplitModelAllocateNothing() throws Exception {
        List<Thread> followers = new ArrayList<>();
        ConcurrentLinkedQueue<Throwable> faults = new ConcurrentLinkedQueue<>();
        Llama split = leader(Shared.MODELS.resolve("stories260K.gguf"), null, 2, followers, faults);
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        Llama.State state = split.newState(256, 8, 8, KvCache.Type.F16);
        int vocab = split.config.vocabSize();
        // rounds of the context's 256 positions until one allocates nothing, as in DecodeAllocationTest (the first
        // ones until C2 has compiled the step)
        long fewest = Long.MAX_VALUE, fewestFollowing = Long.MAX_VALUE;
        for (int round = 0; round < 80 && (fewest > 0 || fewestFollowing > 0); round++) {
            long before = threads.getCurrentThreadAllocatedBytes(), following = threads.getThreadAllocatedBytes(followers.getFirst().threadId());
            for (int i = 0; i < 256; i++) split.forward(state, (i * 11) % vocab, i);
            fewest = Math.min(fewest, threads.getCurrentThreadAllocatedBytes() - before);
            fewestFollowing = Math.min(fewestFollowing, threads.getThreadAllocatedBytes(followers.getFirst().threadId()) - following);
        }
        split.parallel.group.close();
        for (Thread t : followers) t.join(10_000);
        assertTrue(faults.isEmpty(), faults.toString());
        assertEquals(0, fewest, "bytes allocated by the leader's thread in 256 decode steps");
        assertEquals(0, fewestFollowing, "bytes allocated by the follower's thread in 256 decode steps");
    }

    /** A prompt as one batch, 20 decode steps, an exact verification of 5 tokens, two sequences at once, a shift: every logit. */
    private static List<float[]> run(Llama m, int[] prompt) {
        List<float[]> out = new ArrayList<>();
        Llama.State s = m.newState(128, 32, 8, KvCache.Type.F16);
        float[] logits = m.forward(s, prompt, 0, prompt.length, 0, null);
        out.add(java.util.Arrays.copyOf(logits, m.config.vocabSize()));
        int pos = prompt.length, token = argmax(logits, m.config.vocabSize());
        for (int i = 0; i < 20; i++, pos++) {
            logits = m.forward(s, token, pos);
            out.add(logits.clone());
            token = argmax(logits, m.config.vocabSize());
        }
        int[] speculated = {token, 5, 17, 300, 42};
        m.verify(s, speculated, 0, speculated.length, pos, (p, l, offset) -> out.add(java.util.Arrays.copyOfRange(l, offset, offset + m.config.vocabSize())));
        Llama.State other = m.newState(128, 32, 1, KvCache.Type.F16);
        m.forward(other, prompt, 0, 4, 0, null);
        Llama.State batch = m.newState(128, 8, 8, KvCache.Type.F16);
        float[] both = m.decodeEach(batch, new Llama.State[]{s, other}, new int[]{7, 9}, new int[]{pos, 4}, 2);
        out.add(java.util.Arrays.copyOf(both, 2 * m.config.vocabSize()));
        m.shift(s, 1, 10, pos);
        out.add(m.forward(s, 11, pos - 10).clone());
        return out;
    }

    private static int argmax(float[] logits, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
