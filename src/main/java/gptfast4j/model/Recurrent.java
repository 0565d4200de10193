package gptfast4j.model;

/**
 * A sequence's recurrent layers' state ({@link RecurrentMixer}: Qwen3.5's gated delta nets, Granite 4.0-H's Mamba-2):
 * per such layer its convolution's last {@code taps - 1} inputs ({@code [row][convChannels]}, the oldest row first) and
 * its heads' matrices ({@link RecurrentMixer#stateFloats}: a delta net's [valueHeads][headWidth][headWidth], head h's S
 * transposed, row j holding S[.][j], as ggml keeps it; a Mamba-2's [heads][stateSize][headWidth], head h's S
 * transposed), as of {@link #position} tokens. Unlike keys and values, these cannot be had again for an earlier
 * position, so a run may start only where a state is: at 0 (zeros), at {@link #position}, or at a kept copy's
 * position. The last run of several tokens (a prompt) keeps two: from before its last token (the prompt run again but
 * for its last token: a server's repeated prompt) and from its end (the samples of {@code --num-samples}, each going
 * on from the prompt); a speculative verification ({@link Llama#verify}) keeps one after each of its tokens, so that
 * the generation goes on after the drafts it accepted. {@link #resumableAt} says where a run can start; a run
 * elsewhere is refused.
 */
final class Recurrent {
    /** The copies a prompt's run keeps: before its last token, and at its end; a verification's follow, from {@link #STEPS}. */
    static final int BEFORE_LAST = 0, AT_END = 1, STEPS = 2;

    /** Per layer (null but for recurrent layers): the convolution's last inputs, and the heads' matrices. */
    final float[][] conv, matrices;
    /** The kept copies, [copy][layer]; a verification's made at its first run (up to {@code steps} of them). */
    final float[][][] savedConv, savedMatrices;
    /** Tokens the state has taken in; -1 while a run is under way (or after one failed): only 0 is then a start. */
    int position;
    /** The position each kept copy is of, or -1 for none. */
    final int[] savedPositions;
    /** During a verification's run, the copy that token t's state goes to ({@link #beginSteps}). */
    final int[] stepCopies;
    /** The verification copy written last (they are used in turn). */
    private int lastStep = STEPS - 1;

    Recurrent(Layer[] layers, int steps) {
        conv = new float[layers.length][];
        matrices = new float[layers.length][];
        savedConv = new float[STEPS + steps][][];
        savedMatrices = new float[STEPS + steps][][];
        savedPositions = new int[STEPS + steps];
        java.util.Arrays.fill(savedPositions, -1);
        stepCopies = new int[steps];
        for (int l = 0; l < layers.length; l++) {
            RecurrentMixer m = layers[l].recurrent();
            if (m == null) continue;
            conv[l] = new float[(m.taps() - 1) * m.convChannels()];
            matrices[l] = new float[m.stateFloats()];
        }
        for (int i = 0; i < STEPS; i++) allocate(i);
    }

    private void allocate(int copy) {
        savedConv[copy] = new float[conv.length][];
        savedMatrices[copy] = new float[conv.length][];
        for (int l = 0; l < conv.length; l++) {
            if (conv[l] == null) continue;
            savedConv[copy][l] = new float[conv[l].length];
            savedMatrices[copy][l] = new float[matrices[l].length];
        }
    }

    /** The greatest position from {@code 0 .. wanted} that a run can start at. */
    int resumableAt(int wanted) {
        int best = position >= 0 && position <= wanted ? position : 0;
        for (int p : savedPositions) if (p >= 0 && p <= wanted) best = Math.max(best, p);
        return best;
    }

    /**
     * Makes this the state of position {@code start} (zeros at 0, as it is at {@link #position}, or a kept copy), or
     * refuses a start no state is kept for; until {@link #finish}, the state is of no position. {@code kept}: a run of
     * several tokens, which writes its two copies as it runs.
     */
    void start(int start, boolean kept) {
        if (start == 0) {
            for (float[] c : conv) if (c != null) java.util.Arrays.fill(c, 0f);
            for (float[] m : matrices) if (m != null) java.util.Arrays.fill(m, 0f);
        } else if (start != position) {
            int copy = -1;
            for (int i = 0; i < savedPositions.length && copy < 0; i++) if (savedPositions[i] == start) copy = i;
            if (copy < 0) {
                throw new IllegalStateException("this model's recurrent layers hold " + (position < 0 ? "no position (a run was cut short)" : "position " + position)
                        + ", not " + start + ": they cannot go back to an earlier position (run the text again from its start)");
            }
            copy(savedConv[copy], conv);
            copy(savedMatrices[copy], matrices);
        }
        // a copy past the start is of tokens that may change now
        for (int i = 0; i < savedPositions.length; i++) if (savedPositions[i] > start || kept && i < STEPS) savedPositions[i] = -1;
        position = -1;
    }

    /** Chooses the copies a verification's run of {@code n} tokens keeps, one after each token ({@link #stepCopies}). */
    void beginSteps(int n) {
        for (int t = 0; t < n; t++) {
            lastStep = lastStep + 1 < savedPositions.length ? lastStep + 1 : STEPS;
            if (savedConv[lastStep] == null) allocate(lastStep);
            savedPositions[lastStep] = -1; // written as the run goes
            stepCopies[t] = lastStep;
        }
    }

    /**
     * Ends a run of {@code n} tokens from {@code start}; {@code kept}: a run of several tokens, whose state before its
     * last token was copied as it ran ({@link #BEFORE_LAST}), and whose end is copied now; {@code steps}: a
     * verification's, whose state after each token was copied as it ran.
     */
    void finish(int start, int n, boolean kept, boolean steps) {
        position = start + n;
        if (steps) for (int t = 0; t < n; t++) savedPositions[stepCopies[t]] = start + t + 1;
        if (!kept) return;
        savedPositions[BEFORE_LAST] = start + n - 1;
        copy(conv, savedConv[AT_END]);
        copy(matrices, savedMatrices[AT_END]);
        savedPositions[AT_END] = start + n;
    }

    /** Bytes the state and the copies made so far hold. */
    long memoryBytes() {
        long copies = java.util.Arrays.stream(savedConv).filter(java.util.Objects::nonNull).count();
        return (1 + copies) * bytes();
    }

    /** Bytes {@link #write} writes: every recurrent layer's convolution rows and matrices, as floats. */
    long bytes() {
        long floats = 0;
        for (int l = 0; l < conv.length; l++) if (conv[l] != null) floats += conv[l].length + matrices[l].length;
        return 4 * floats;
    }

    /** The state to {@code out}, after the cache's positions in a cache file (little-endian floats, layer by layer). */
    void write(java.nio.channels.WritableByteChannel out) throws java.io.IOException {
        for (int l = 0; l < conv.length; l++) {
            if (conv[l] == null) continue;
            for (float[] part : new float[][]{conv[l], matrices[l]}) {
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(4 * part.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                bytes.asFloatBuffer().put(part);
                while (bytes.hasRemaining()) out.write(bytes);
            }
        }
    }

    /** {@link #write}'s inverse: the state of {@code position} tokens, read from {@code in}; no copies kept. */
    void read(java.nio.channels.ReadableByteChannel in, int position) throws java.io.IOException {
        this.position = -1;
        java.util.Arrays.fill(savedPositions, -1);
        for (int l = 0; l < conv.length; l++) {
            if (conv[l] == null) continue;
            for (float[] part : new float[][]{conv[l], matrices[l]}) {
                java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(4 * part.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                while (bytes.hasRemaining()) if (in.read(bytes) < 0) throw new java.io.EOFException("ends in the recurrent layers' state");
                bytes.flip();
                bytes.asFloatBuffer().get(part);
            }
        }
        this.position = position;
    }

    private static void copy(float[][] from, float[][] to) {
        for (int l = 0; l < from.length; l++) if (from[l] != null) System.arraycopy(from[l], 0, to[l], 0, from[l].length);
    }
}
