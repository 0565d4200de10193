package gptfast4j.model;

/**
 * Rotary position embedding with precomputed cos/sin tables, [contextLength, rotaryDim / 2]. The angle of pair i at
 * position p is {@code p * base^(-2i/rotaryDim) / freqFactor[i]}, computed as llama.cpp does (the power by repeated
 * float multiplication) so that logits agree with it closely; the cosines and sines are scaled by the variant's
 * {@link Config.Variant#ropeAttnFactor} as llama.cpp scales them. Under YaRN ({@link Config.Variant#yarn}) the angles
 * are ggml's {@code rope_yarn}'s and the scale its magnitude too. A head's elements past {@link Config#rotaryDim}
 * are not rotated.
 */
final class Rope {
    private final int half, headDim;
    private final Config.RopeStyle style;
    private final float[] cos, sin;
    private final float attnFactor;

    /**
     * The rotations of {@code c}'s layers, or of its sliding ones ({@code sliding}: their base, unscaled), for a state of
     * {@code contextLength} positions (which chooses Phi-3's long factors past the original context, as llama.cpp does).
     */
    Rope(Config c, int contextLength, boolean sliding) {
        Config.Variant v = c.variant();
        Config.Yarn yarn = sliding ? null : v.yarn();
        float[] factors = sliding ? null : v.longRopeFactors() != null && contextLength > v.longRopeContext() ? v.longRopeFactors() : c.ropeFreqFactors();
        this(c.rotaryDim(), c.headDim(), c.ropeStyle(), sliding ? v.slidingRopeTheta() : c.ropeTheta(), factors, yarn,
                yarn == null ? v.ropeAttnFactor() : yarn.magnitude(v.ropeAttnFactor()), contextLength);
    }

    /** Plain RoPE of whole heads of {@code headDim} in {@code style}, for {@code contextLength} positions: an encoder's (nomic-bert's). */
    Rope(int headDim, float base, Config.RopeStyle style, int contextLength) {
        this(headDim, headDim, style, base, null, null, 1f, contextLength);
    }

    private Rope(int rotaryDim, int headDim, Config.RopeStyle style, float base, float[] factors, Config.Yarn yarn, float attnFactor, int contextLength) {
        half = rotaryDim / 2;
        this.headDim = headDim;
        this.style = style;
        this.attnFactor = attnFactor;
        cos = new float[contextLength * half];
        sin = new float[contextLength * half];
        float thetaScale = (float) Math.pow(base, -2.0f / rotaryDim);
        // YaRN: the pairs below ramp[0] keep their angles, those past ramp[1] are interpolated, those between mixed
        float freqScale = yarn == null ? 1f : 1f / yarn.factor();
        float[] ramp = yarn == null ? null : correctionRange(rotaryDim, yarn, base);
        for (int p = 0; p < contextLength; p++) {
            float theta = p;
            for (int i = 0; i < half; i++) {
                float angle = factors == null ? theta : theta / factors[i];
                if (yarn != null) {
                    float kept = 1 - Math.min(1, Math.max(0, (i - ramp[0]) / Math.max(0.001f, ramp[1] - ramp[0])));
                    angle = freqScale * angle * (1 - kept) + angle * kept;
                }
                cos[p * half + i] = (float) Math.cos(angle) * attnFactor;
                sin[p * half + i] = (float) Math.sin(angle) * attnFactor;
                theta *= thetaScale;
            }
        }
    }

    /**
     * YaRN's ramp (ggml's {@code ggml_rope_yarn_corr_dims}): the pair indices whose wavelengths fit {@code betaFast}
     * and {@code betaSlow} times into the original context, rounded outwards and clamped to the rotary pairs.
     */
    private static float[] correctionRange(int rotaryDim, Config.Yarn yarn, float base) {
        float start = (float) Math.floor(correctionDim(rotaryDim, yarn.originalContext(), yarn.betaFast(), base));
        float end = (float) Math.ceil(correctionDim(rotaryDim, yarn.originalContext(), yarn.betaSlow(), base));
        return new float[]{Math.max(0, start), Math.min(rotaryDim - 1, end)};
    }

    /** The (fractional) pair index whose wavelength fits {@code rotations} times into {@code context} positions. */
    private static float correctionDim(int rotaryDim, int context, float rotations, float base) {
        return rotaryDim * (float) Math.log(context / (rotations * 2 * (float) Math.PI)) / (2 * (float) Math.log(base));
    }

    /** Rotates {@code heads} consecutive heads of {@code x} starting at {@code offset}, for position {@code pos}. */
    void rotate(float[] x, int offset, int heads, int pos) {
        turn(x, offset, heads, pos, 1f, 1f);
    }

    /**
     * Rotates {@code heads} consecutive heads of {@code x} back by the angles of position {@code delta}: a key rotated
     * for position p becomes one rotated for p - delta, up to rounding (llama.cpp's context shift rotates its cached
     * keys the same way; the attention factor, which scaled the key once, is divided out rather than applied again).
     */
    void rotateBack(float[] x, int offset, int heads, int delta) {
        turn(x, offset, heads, delta, -1f, 1f / attnFactor);
    }

    /**
     * Each pair by position {@code pos}'s angle, forwards ({@code direction} 1) or back (-1: the sine negated,
     * exactly), the tables' values times {@code scale}.
     */
    private void turn(float[] x, int offset, int heads, int pos, float direction, float scale) {
        int table = pos * half;
        for (int h = 0; h < heads; h++) {
            int base = offset + h * headDim;
            for (int i = 0; i < half; i++) {
                int a = style == Config.RopeStyle.INTERLEAVED ? base + 2 * i : base + i;
                int b = style == Config.RopeStyle.INTERLEAVED ? a + 1 : a + half;
                float c = cos[table + i], s = direction * sin[table + i];
                if (scale != 1f) {
                    c *= scale;
                    s *= scale;
                }
                float x0 = x[a], x1 = x[b];
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }
}
