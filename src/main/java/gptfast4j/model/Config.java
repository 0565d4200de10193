package gptfast4j.model;

/**
 * Hyperparameters of a Llama-family transformer, always read from the checkpoint's own metadata.
 *
 * @param ropeFreqFactors per rotary pair i, the divisor of its frequency (Llama-3.1 rope scaling), or null for none
 * @param ropeStyle       which elements a rotary pair joins: adjacent ones (GGUF, llama2.c) or halves (Hugging Face)
 * @param expertCount     0 for a dense model, else the experts per layer; {@code expertsUsed} of them run per token
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
        int expertsUsed) {

    public enum RopeStyle {
        /** Rotates (x[2i], x[2i+1]): llama.cpp's NORM mode, Meta's original layout. */
        INTERLEAVED,
        /** Rotates (x[i], x[i + headDim/2]): the Hugging Face "rotate_half" layout. */
        HALVES
    }

    public Config {
        if (dim <= 0 || nLayers <= 0 || nHeads <= 0 || nKvHeads <= 0 || vocabSize <= 0 || hiddenDim <= 0) {
            throw new IllegalArgumentException("invalid model dimensions");
        }
        if (dim % nHeads != 0) throw new IllegalArgumentException("dim " + dim + " is not a multiple of head count " + nHeads);
        if (nHeads % nKvHeads != 0) throw new IllegalArgumentException("head count " + nHeads + " is not a multiple of kv head count " + nKvHeads);
    }

    /** Value equality, the rope factors included (a record compares arrays by reference). */
    @Override
    public boolean equals(Object o) {
        return o instanceof Config c && java.util.Arrays.equals(ropeFreqFactors, c.ropeFreqFactors)
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
                + c.ropeTheta + " " + c.ropeStyle + (c.ropeFreqFactors == null ? "" : " " + java.util.Arrays.toString(c.ropeFreqFactors))
                + (c.expertCount > 0 ? ", experts " + c.expertsUsed + "/" + c.expertCount : "") + "]";
    }

    public int headDim() { return dim / nHeads; }

    public int kvDim() { return nKvHeads * headDim(); }

    public boolean isMoE() { return expertCount > 0; }
}
