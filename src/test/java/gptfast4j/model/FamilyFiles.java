package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.bench.ModelShape;
import gptfast4j.bench.RandomModel;
import gptfast4j.io.GGUF;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;
import gptfast4j.tensor.GGMLType;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * Random-weight models of other families for comparison with llama.cpp: a Llama file (RandomModel, F32) with its
 * {@code llama.*} keys under the family's name and its tensors changed as the family's converter writes them.
 */
final class FamilyFiles {
    private FamilyFiles() {
    }

    /**
     * Writes to {@code out} the Llama file of {@code shape} made at {@code scratch}, its keys renamed {@code arch.*} and
     * then changed by {@code edit}, its tensors that {@code keep} names copied, and those {@code add} puts in the list
     * it is given (with the Llama file's tensors by name) after them.
     */
    static void write(ModelShape shape, String arch, Path scratch, Path out, Consumer<Map<String, Metadata.Value>> edit,
                      Predicate<String> keep, BiConsumer<Map<String, TensorData>, List<GGUFWriter.TensorSpec>> add) {
        RandomModel.write(shape, GGMLType.F32, scratch, Shared.TOKENIZERS, b -> { });
        rewrite(scratch, out, md -> {
            Map<String, Metadata.Value> renamed = new LinkedHashMap<>();
            md.forEach((k, v) -> renamed.put(k.startsWith("llama.") ? arch + "." + k.substring(6) : k, v));
            renamed.put("general.architecture", Metadata.Value.string(arch));
            edit.accept(renamed);
            md.clear();
            md.putAll(renamed);
        }, keep, add);
    }

    /**
     * Writes to {@code out} the mini model of a family with recurrent or convolution layers, by its architecture's name
     * ({@code scratch}: the Llama or Mixtral file it is made from): each family test's own file (Lfm2Test's, Qwen35Test's and its Qwen3-Next,
     * GraniteHybridTest's, NemotronHTest's and its mixture, Mamba2Test's, MambaTest's Falcon-Mamba kind, JambaTest's,
     * FalconH1Test's), or of a family LayerNormFamiliesTest writes (StarCoder2's, Phi-2's, Falcon-40B's, GPT-NeoX's in parallel, GPT-2's, BLOOM's, MPT's), or DeciTest's.
     */
    static void writeFamily(String family, Path scratch, Path out) {
        switch (family) {
            case "lfm2" -> Lfm2Test.write(scratch, out);
            case "qwen35" -> Qwen35Test.write(scratch, out);
            case "qwen3next" -> Qwen35Test.writeNext(scratch, out);
            case "qwen3next-fused" -> {
                // an early conversion's fused ssm_in
                Path next = out.resolveSibling("split-" + out.getFileName());
                Qwen35Test.writeNext(scratch, next);
                Qwen35Test.writeNextFused(next, out);
            }
            case "granitehybrid" -> GraniteHybridTest.write(scratch, out);
            case "nemotron_h" -> NemotronHTest.write(scratch, out);
            case "nemotron_h_moe" -> NemotronHTest.writeMixture(scratch, out);
            case "mamba2" -> Mamba2Test.write(scratch, out);
            case "mamba" -> MambaTest.write(scratch, out, true);
            case "jamba" -> JambaTest.write(scratch, out);
            case "falcon-h1" -> FalconH1Test.write(scratch, out);
            case "starcoder2" -> LayerNormFamiliesTest.writeStarCoder2(scratch, out);
            case "phi2" -> LayerNormFamiliesTest.writePhi2(scratch, out);
            case "falcon" -> LayerNormFamiliesTest.writeFalcon(scratch, out, true);
            case "gptneox" -> LayerNormFamiliesTest.writeGptNeox(scratch, out, true);
            case "gpt2" -> LayerNormFamiliesTest.writeGpt2("gpt2", scratch, out);
            case "bloom" -> LayerNormFamiliesTest.writeBloom(scratch, out);
            case "mpt" -> LayerNormFamiliesTest.writeMpt(scratch, out, 0.5f);
            case "deci" -> DeciTest.write(scratch, out);
            case "bitnet" -> LlamaLikeTest.writeBitnet(scratch, out);
            default -> throw new IllegalArgumentException("no mini model of " + family);
        }
    }

    /**
     * Writes to {@code out} the model file {@code in} with its keys changed by {@code edit}, its tensors that {@code
     * keep} names copied, and those {@code add} puts in the list it is given (with the file's tensors by name) after them.
     */
    static void rewrite(Path in, Path out, Consumer<Map<String, Metadata.Value>> edit, Predicate<String> keep,
                        BiConsumer<Map<String, TensorData>, List<GGUFWriter.TensorSpec>> add) {
        GGUF llama = GGUF.read(in);
        Map<String, Metadata.Value> md = new LinkedHashMap<>(llama.metadata().asMap());
        edit.accept(md);
        List<GGUFWriter.TensorSpec> tensors = new ArrayList<>();
        for (TensorData t : llama.tensors().values()) {
            if (keep.test(t.name())) tensors.add(new GGUFWriter.TensorSpec(t.name(), t.type(), t.shape(), target -> target.copyFrom(t.data())));
        }
        add.accept(llama.tensors(), tensors);
        GGUFWriter.write(out, md, tensors, n -> { });
    }

    /** A norm's weights, 0.5 to 1.5 (seeded so that each norm differs). */
    static void norm(List<GGUFWriter.TensorSpec> tensors, String name, int n, int seed) {
        tensors.add(new GGUFWriter.TensorSpec(name, GGMLType.F32, new long[]{n}, target -> {
            for (int i = 0; i < n; i++) target.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, 0.5f + ((i * 37 + seed * 11) % 101) / 100f);
        }));
    }

    /** A bias of {@code shape}, -0.5 to 0.5 (seeded so that each differs). */
    static void bias(List<GGUFWriter.TensorSpec> tensors, String name, long[] shape, int seed) {
        long n = java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        tensors.add(new GGUFWriter.TensorSpec(name, GGMLType.F32, shape, target -> {
            for (long i = 0; i < n; i++) target.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, ((i * 53 + seed * 7) % 101) / 100f - 0.5f);
        }));
    }

    /** Biases of the query, key and value projections of the layer named {@code p} ("blk.N."), seeded {@code seed} to {@code seed + 2}. */
    static void qkvBiases(List<GGUFWriter.TensorSpec> tensors, String p, int qDim, int kvDim, int seed) {
        bias(tensors, p + "attn_q.bias", new long[]{qDim}, seed);
        bias(tensors, p + "attn_k.bias", new long[]{kvDim}, seed + 1);
        bias(tensors, p + "attn_v.bias", new long[]{kvDim}, seed + 2);
    }

    /** A matrix of {@code shape} ([cols, rows] or [cols, rows, experts]), uniform in +-1/sqrt(cols) (seeded: java.util.Random's sequence). */
    static void matrix(List<GGUFWriter.TensorSpec> tensors, String name, long[] shape, int seed) {
        long n = java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        float scale = (float) (1 / Math.sqrt(shape[0]));
        tensors.add(new GGUFWriter.TensorSpec(name, GGMLType.F32, shape, target -> {
            java.util.Random random = new java.util.Random(seed);
            for (long i = 0; i < n; i++) target.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (2 * random.nextFloat() - 1) * scale);
        }));
    }

    /** The mini models' Mamba-2 mixers (GraniteHybridTest's, NemotronHTest's): 8 heads of 16 in 2 groups, states of 16, 4 taps. */
    static final int MAMBA_HEADS = 8, MAMBA_WIDTH = 16, MAMBA_GROUPS = 2, MAMBA_STATES = 16;

    /** The mini Mamba-2 mixers' keys under {@code arch}. */
    static void mamba2Metadata(Map<String, Metadata.Value> md, String arch) {
        md.put(arch + ".ssm.conv_kernel", Metadata.Value.uint32(4));
        md.put(arch + ".ssm.state_size", Metadata.Value.uint32(MAMBA_STATES));
        md.put(arch + ".ssm.group_count", Metadata.Value.uint32(MAMBA_GROUPS));
        md.put(arch + ".ssm.time_step_rank", Metadata.Value.uint32(MAMBA_HEADS));
        md.put(arch + ".ssm.inner_size", Metadata.Value.uint32(MAMBA_HEADS * MAMBA_WIDTH));
    }

    /**
     * Layer {@code l}'s mini Mamba-2 mixer in a model of width {@code dim}: ssm_in, the convolution (192 channels) and its
     * bias, dt's bias, A = -exp(A_log) as the converter writes it (negative: each head's state decaying), D, the grouped
     * norm and ssm_out, seeded by the layer.
     */
    static void mamba2(List<GGUFWriter.TensorSpec> tensors, int l, int dim) {
        String p = "blk." + l + ".";
        int heads = MAMBA_HEADS, inner = heads * MAMBA_WIDTH, channels = inner + 2 * MAMBA_GROUPS * MAMBA_STATES;
        matrix(tensors, p + "ssm_in.weight", new long[]{dim, inner + channels + heads}, 100 + l);
        matrix(tensors, p + "ssm_conv1d.weight", new long[]{4, channels}, 300 + l);
        bias(tensors, p + "ssm_conv1d.bias", new long[]{channels}, 350 + l);
        bias(tensors, p + "ssm_dt.bias", new long[]{heads}, 400 + l);
        int seed = 500 + l;
        tensors.add(new GGUFWriter.TensorSpec(p + "ssm_a", GGMLType.F32, new long[]{1, heads}, target -> {
            for (int h = 0; h < heads; h++) target.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, h, -(0.5f + ((h * 37 + seed * 11) % 101) / 50f));
        }));
        bias(tensors, p + "ssm_d", new long[]{1, heads}, 600 + l);
        bias(tensors, p + "ssm_norm.weight", new long[]{inner / MAMBA_GROUPS, MAMBA_GROUPS}, 800 + l);
        matrix(tensors, p + "ssm_out.weight", new long[]{inner, dim}, 900 + l);
    }

    /** {@code parts}' rows one after another in one F32 tensor, as llama.cpp's converter fuses Phi-3's projections (GLM-4's gate and up). */
    static void fused(List<GGUFWriter.TensorSpec> tensors, String name, TensorData... parts) {
        long rows = 0;
        for (TensorData part : parts) rows += part.shape()[1];
        tensors.add(new GGUFWriter.TensorSpec(name, GGMLType.F32, new long[]{parts[0].shape()[0], rows}, target -> {
            long at = 0;
            for (TensorData part : parts) {
                java.lang.foreign.MemorySegment.copy(part.data(), 0, target, at, part.data().byteSize());
                at += part.data().byteSize();
            }
        }));
    }
}
