package gptfast4j.model;

import gptfast4j.io.Metadata.Value;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hyperparameters of a Llama-family transformer, always read from the checkpoint's own metadata.
 *
 * @param ropeFreqFactors per rotary pair i, the divisor of its frequency (Llama-3.1 rope scaling, a linear scaling's
 *                        factor), or null for none
 * @param ropeStyle       which elements a rotary pair joins: adjacent ones (GGUF, llama2.c) or halves (Hugging Face)
 * @param expertCount     0 for a dense model, else the experts per layer; {@code expertsUsed} of them run per token
 * @param headDim         each attention head's width: {@code dim / nHeads} in most models; others say their own (GGUF's
 *                        {@code attention.key_length}, Hugging Face's {@code head_dim}: Mistral Nemo's 128 at a width of
 *                        5120 and 32 heads), the queries then {@code nHeads * headDim} wide rather than {@code dim}
 */
public record Config(
        String architecture,
        int dim,
        int hiddenDim,
        int nLayers,
        int nHeads,
        int nKvHeads,
        int vocabSize,
        int contextLength,
        float rmsNormEps,
        float ropeTheta,
        float[] ropeFreqFactors,
        RopeStyle ropeStyle,
        int expertCount,
        int expertsUsed,
        int headDim) {

    public enum RopeStyle {
        /** Rotates (x[2i], x[2i+1]): llama.cpp's NORM mode, Meta's original layout. */
        INTERLEAVED,
        /** Rotates (x[i], x[i + headDim/2]): the Hugging Face "rotate_half" layout. */
        HALVES
    }

    /** Refuses hyperparameters no model can have, naming the first one wrong (a file's corrupt or mistyped metadata). */
    public Config {
        positive("embedding length", dim);
        positive("feed-forward length", hiddenDim);
        positive("layer count", nLayers);
        positive("head count", nHeads);
        positive("kv head count", nKvHeads);
        positive("vocabulary size", vocabSize);
        positive("context length", contextLength);
        positive("head dimension", headDim);
        if (nHeads % nKvHeads != 0) throw new IllegalArgumentException("head count " + nHeads + " is not a multiple of kv head count " + nKvHeads);
        if (!(rmsNormEps >= 0 && rmsNormEps < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("RMS norm epsilon " + rmsNormEps + " is not a finite number >= 0");
        if (!(ropeTheta > 0 && ropeTheta < Float.POSITIVE_INFINITY)) throw new IllegalArgumentException("RoPE frequency base " + ropeTheta + " is not a finite number > 0");
        if (expertCount < 0) throw new IllegalArgumentException("expert count " + expertCount + " is negative");
        if (expertCount > 0 && (expertsUsed < 1 || expertsUsed > expertCount)) {
            throw new IllegalArgumentException("experts used per token " + expertsUsed + " is not in 1.." + expertCount);
        }
    }

    /** Hyperparameters whose heads are {@code dim / nHeads} wide, as most models' are. */
    public Config(String architecture, int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize, int contextLength,
                  float rmsNormEps, float ropeTheta, float[] ropeFreqFactors, RopeStyle ropeStyle, int expertCount, int expertsUsed) {
        this(architecture, dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, rmsNormEps, ropeTheta, ropeFreqFactors,
                ropeStyle, expertCount, expertsUsed, derivedHeadDim(dim, nHeads));
    }

    /** {@code dim / nHeads}, refusing a width the heads do not divide (0 where the head count is not positive, which the record refuses). */
    public static int derivedHeadDim(int dim, int nHeads) {
        if (nHeads <= 0) return 0;
        if (dim % nHeads != 0) throw new IllegalArgumentException("embedding length " + dim + " is not a multiple of head count " + nHeads);
        return dim / nHeads;
    }

    private static void positive(String what, int value) {
        if (value <= 0) throw new IllegalArgumentException(what + " " + value + " is not positive");
    }

    /** Value equality, the rope factors included (a record compares arrays by reference). */
    @Override
    public boolean equals(Object o) {
        return o instanceof Config c && Arrays.equals(ropeFreqFactors, c.ropeFreqFactors)
                && toString(this).equals(toString(c));
    }

    @Override
    public int hashCode() {
        return toString(this).hashCode();
    }

    @Override
    public String toString() {
        return toString(this);
    }

    private static String toString(Config c) {
        return "Config[" + c.architecture + ", dim " + c.dim + ", hidden " + c.hiddenDim + ", layers " + c.nLayers + ", heads " + c.nHeads
                + "/" + c.nKvHeads + ", vocab " + c.vocabSize + ", context " + c.contextLength + ", eps " + c.rmsNormEps + ", rope "
                + c.ropeTheta + " " + c.ropeStyle + (c.ropeFreqFactors == null ? "" : " " + Arrays.toString(c.ropeFreqFactors))
                + (c.expertCount > 0 ? ", experts " + c.expertsUsed + "/" + c.expertCount : "")
                + (c.headDim * c.nHeads != c.dim ? ", head dim " + c.headDim : "") + "]";
    }

    /**
     * These hyperparameters under llama.cpp's GGUF keys ({@code general.architecture} "llama", whose tensor names all
     * our files use), for files written from a model that did not come from GGUF.
     */
    public Map<String, Value> ggufMetadata(String name) {
        Map<String, Value> md = new LinkedHashMap<>();
        String arch = "llama";
        md.put("general.architecture", Value.string(arch));
        md.put("general.name", Value.string(name));
        md.put(arch + ".vocab_size", Value.uint32(vocabSize));
        md.put(arch + ".context_length", Value.uint32(contextLength));
        md.put(arch + ".embedding_length", Value.uint32(dim));
        md.put(arch + ".block_count", Value.uint32(nLayers));
        md.put(arch + ".feed_forward_length", Value.uint32(hiddenDim));
        md.put(arch + ".attention.head_count", Value.uint32(nHeads));
        md.put(arch + ".attention.head_count_kv", Value.uint32(nKvHeads));
        if (headDim * nHeads != dim) { // llama.cpp's default is dim / heads
            md.put(arch + ".attention.key_length", Value.uint32(headDim));
            md.put(arch + ".attention.value_length", Value.uint32(headDim));
        }
        md.put(arch + ".attention.layer_norm_rms_epsilon", Value.float32(rmsNormEps));
        md.put(arch + ".rope.dimension_count", Value.uint32(headDim()));
        md.put(arch + ".rope.freq_base", Value.float32(ropeTheta));
        if (isMoE()) {
            md.put(arch + ".expert_count", Value.uint32(expertCount));
            md.put(arch + ".expert_used_count", Value.uint32(expertsUsed));
        }
        return md;
    }

    /** The queries' width, all heads': {@code dim} but where the heads say their own width ({@link #headDim}). */
    public int qDim() { return nHeads * headDim; }

    public int kvDim() { return nKvHeads * headDim; }

    public boolean isMoE() { return expertCount > 0; }
}
