package gptfast4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The random-weight mini models against llama.cpp. F32 files against llama.cpp's native run; the other weight types
 * against {@code logits-dequant/} (llama.cpp's F32 run on the exact dequantization of the file's weights), which is
 * the arithmetic we use: F32 activations times the file's weights.
 */
public class ReferenceLogitsTest {

    @ParameterizedTest
    @ValueSource(strings = {"mini-llama2-F32", "mini-llama3-F32", "mini-mixtral-F32"})
    void f32MatchesLlamaCpp(String model) {
        check(model, Shared.REFERENCE.resolve("logits/" + model + ".json.gz"));
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "mini-llama2-F16", "mini-llama2-BF16", "mini-llama2-Q8_0", "mini-llama2-Q4_1",
            "mini-llama3-F16", "mini-llama3-BF16", "mini-llama3-Q8_0", "mini-llama3-Q4_1",
            "mini-llama2-Q5_K", "mini-llama2-Q6_K", "mini-llama3-Q5_K", "mini-llama3-Q6_K", "mini-mixtral-Q8_0", "mini-mixtral-Q6_K"})
    void otherTypesMatchDequantizedReference(String model) {
        check(model, Shared.REFERENCE.resolve("logits-dequant/" + model + ".json.gz"));
    }

    /**
     * Experts whose gates and ups are one tensor ({@code ffn_gate_up_exps} [dim, 2 * width, experts], each expert's gate
     * rows then its up rows: Granite's conversions', llama.cpp's {@code --fuse-gate-up-exps}) read as their parts: the
     * mini Mixtral's F32 and Q8_0 files so fused give the references' logits.
     */
    @ParameterizedTest
    @ValueSource(strings = {"mini-mixtral-F32", "mini-mixtral-Q8_0"})
    void fusedGateUpExpertsMatchTheirReference(String model, @org.junit.jupiter.api.io.TempDir Path dir) {
        Path fused = dir.resolve(model + "-gate-up.gguf");
        writeGateUpFused(Shared.REFERENCE.resolve("models/" + model + ".gguf"), fused);
        Checkpoint c = Checkpoint.load(fused, null);
        assertTrue(c.tensors().containsKey("blk.0.ffn_gate_up_exps.weight") && !c.tensors().containsKey("blk.0.ffn_gate_exps.weight"));
        JsonNode ref = Shared.json(Shared.REFERENCE.resolve((model.endsWith("F32") ? "logits/" : "logits-dequant/") + model + ".json.gz"));
        assertTrue(ReferenceCheck.check(c, ref) >= 4);
    }

    /** Writes {@code in} (a mixture's file) to {@code out} with each layer's ffn_gate_exps and ffn_up_exps in one ffn_gate_up_exps, as llama.cpp's converter fuses them. */
    public static void writeGateUpFused(Path in, Path out) {
        FamilyFiles.rewrite(in, out, md -> { }, name -> !name.contains("ffn_gate_exps") && !name.contains("ffn_up_exps"), (all, tensors) -> {
            for (int l = 0; all.containsKey("blk." + l + ".ffn_gate_exps.weight"); l++) {
                gptfast4j.io.TensorData gate = all.get("blk." + l + ".ffn_gate_exps.weight"), up = all.get("blk." + l + ".ffn_up_exps.weight");
                long experts = gate.shape()[2], slab = gate.data().byteSize() / experts;
                tensors.add(new gptfast4j.io.GGUFWriter.TensorSpec("blk." + l + ".ffn_gate_up_exps.weight", gate.type(),
                        new long[]{gate.shape()[0], 2 * gate.shape()[1], experts}, target -> {
                    for (long e = 0; e < experts; e++) {
                        java.lang.foreign.MemorySegment.copy(gate.data(), e * slab, target, 2 * e * slab, slab);
                        java.lang.foreign.MemorySegment.copy(up.data(), e * slab, target, (2 * e + 1) * slab, slab);
                    }
                }));
            }
        });
    }

    /**
     * Q4_0's decode steps take llama.cpp's own arithmetic (activations rounded to int8 as Q8_0, Q4_0Tensor), so every
     * prompt position run as a decode step, and every teacher-forced step after it, is held to the native run at the
     * F32 tolerance; the dequantized-F32 run is 0.1-0.4 away. The mixture of experts included: its experts' products
     * with one token are Q4_0's too. Measured: every position of the two dense models within 5e-7; the mixture's
     * within 4e-6 but for position 36 of the longest prompt (0.054 away, its neighbours within 5e-7). Traced (session
     * 40): there the last layer's attention output, rounded as Q8_0 for wo, has a block whose scale max|x| / 127 =
     * 0.017539972 lies 1.8e-7 (relative) from the midpoint of two halves, 0.017532349 and 0.017547607; ours rounds
     * down, llama.cpp's, from activations that differ in their last bits, up. Given the upper half, position 36 is
     * within 5e-7 too; the experts' routing there is no near-tie (top-2 against third 0.11 apart or more). One such
     * isolated position is allowed for the mixture. (Prompt batches of 9 to 63 tokens are F32 arithmetic: KernelTest holds them.)
     */
    @ParameterizedTest
    @ValueSource(strings = {"mini-llama2-Q4_0", "mini-llama3-Q4_0", "mini-mixtral-Q4_0"})
    void q4_0DecodeMatchesTheNativeRun(String model) {
        Path reference = Shared.REFERENCE.resolve("logits/" + model + ".json.gz");
        JsonNode ref = Shared.json(reference);
        assertEquals("native", ref.path("reference_kind").asText());
        int compared = ReferenceCheck.check(Checkpoint.load(Shared.REFERENCE.resolve("models/" + model + ".gguf"), null), ref, true,
                model.contains("mixtral") ? 1 : 0);
        assertTrue(compared >= 4, "compared only " + compared + " greedy tokens");
    }

    /**
     * Q4_K's decode steps take llama.cpp's arithmetic too: activations rounded as its Q8_K (one scale per 256), each
     * super-block's integer sums scaled by {@code d * dx} and {@code dmin * dx} (Q4_KTensor). Measured: every prompt
     * position run as a decode step within 6e-6 of the native run but one per model, of the two dense models' longest
     * prompt (llama2 position 6, 0.06 away; llama3 position 41, 0.01), its neighbours within 4e-6: an activation whose
     * {@code x * 127 / max|x|} lies within a few ulps of a half rounds the other way from llama.cpp's, whose activations
     * differ in their last bits (traced: at an earlier form's position 12, values 78.5000229 and 8.5000124 for
     * blk.0's wo and blk.1's w2). One such isolated position is allowed, and as a flip moves logits by up to 0.06 the
     * greedy tokens are compared while their reference margin is at least 0.15 rather than 1e-3 (steps 9 and 28 of
     * two continuations, margins 0.09 and 0.12, chose otherwise).
     */
    @ParameterizedTest
    @ValueSource(strings = {"mini-llama2-Q4_K", "mini-llama3-Q4_K", "mini-mixtral-Q4_K"})
    void q4_KDecodeMatchesTheNativeRun(String model) {
        JsonNode ref = Shared.json(Shared.REFERENCE.resolve("logits/" + model + ".json.gz"));
        assertEquals("native", ref.path("reference_kind").asText());
        int compared = ReferenceCheck.check(Checkpoint.load(Shared.REFERENCE.resolve("models/" + model + ".gguf"), null), ref, true, 1, 0.15);
        assertTrue(compared >= 4, "compared only " + compared + " greedy tokens");
    }

    /**
     * Batches of 64 tokens or more of the 4-bit formats are F32 arithmetic on the dequantized weights, so every position
     * of the longest prompt, run as the first tokens of a 64-token batch (attention is causal, so its positions' logits
     * are those of the prompt alone), matches the dequantized-F32 run. Q4_K's batches took activations rounded as
     * llama.cpp's Q8_K until session 43 (15 and 42 of the 43 positions matched the native run then), Q4_0's and Q4_1's
     * rounded as its Q8_0 and Q8_1 until session 47 (43 and 43, and 29 and 15, of the native run's).
     */
    @ParameterizedTest
    @ValueSource(strings = {"mini-llama2-Q4_0", "mini-llama3-Q4_0", "mini-llama2-Q4_1", "mini-llama3-Q4_1", "mini-llama2-Q4_K", "mini-llama3-Q4_K"})
    void int4BatchesMatchTheDequantizedRun(String model) {
        int matching = batchPositionsMatching(model, Shared.json(Shared.REFERENCE.resolve("logits-dequant/" + model + ".json.gz")));
        assertEquals(43, matching, model + ": positions of 43 that match the dequantized-F32 run");
    }

    /** Positions of {@code ref}'s longest prompt (43 tokens) whose logits match, run as the first of a 64-token batch. */
    private static int batchPositionsMatching(String model, JsonNode ref) {
        JsonNode longest = null;
        for (JsonNode c : ref.path("cases")) if (longest == null || c.path("prompt_ids").size() > longest.path("prompt_ids").size()) longest = c;
        int[] prompt = Shared.ints(longest.path("prompt_ids"));
        assertEquals(43, prompt.length);
        int[] batch = new int[64];
        for (int i = 0; i < batch.length; i++) batch[i] = prompt[i % prompt.length];
        Llama llama = Checkpoint.load(Shared.REFERENCE.resolve("models/" + model + ".gguf"), null).model();
        int vocab = llama.config.vocabSize();
        JsonNode expected = longest.path("prompt_logits");
        int[] matching = {0};
        llama.forward(llama.newState(batch.length, batch.length), batch, 0, batch.length, 0, (pos, logits, offset) -> {
            if (pos < prompt.length && ReferenceCheck.within(expected.get(pos), logits, offset, vocab)) matching[0]++;
        });
        return matching[0];
    }

    private static void check(String model, Path reference) {
        Path file = Shared.REFERENCE.resolve("models/" + model + ".gguf");
        assertTrue(Files.exists(reference), reference.toString());
        JsonNode ref = Shared.json(reference);
        assertEquals(file.getFileName().toString(), ref.path("model_file").asText());
        Checkpoint ckpt = Checkpoint.load(file, null);
        int compared = ReferenceCheck.check(ckpt, ref);
        assertTrue(compared >= 4, "compared only " + compared + " greedy tokens");
    }
}
