package gptfast4j.model;

/**
 * Rotary position embedding with precomputed cos/sin tables, [contextLength, headDim / 2]. The angle of pair i at
 * position p is {@code p * base^(-2i/headDim) / freqFactor[i]}, computed as llama.cpp does (the power by repeated
 * float multiplication) so that logits agree with it closely.
 */
final class Rope {
    private final int half;
    private final Config.RopeStyle style;
    private final float[] cos, sin;

    /** The rotations of {@code c}'s layers, or of its sliding ones ({@code sliding}: their base, unscaled). */
    Rope(Config c, int contextLength, boolean sliding) {
        int headDim = c.headDim();
        half = headDim / 2;
        style = c.ropeStyle();
        cos = new float[contextLength * half];
        sin = new float[contextLength * half];
        float thetaScale = (float) Math.pow(sliding ? c.variant().slidingRopeTheta() : c.ropeTheta(), -2.0f / headDim);
        float[] factors = sliding ? null : c.ropeFreqFactors();
        for (int p = 0; p < contextLength; p++) {
            float theta = p;
            for (int i = 0; i < half; i++) {
                float angle = factors == null ? theta : theta / factors[i];
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
                theta *= thetaScale;
            }
        }
    }

    /** Rotates {@code heads} consecutive heads of {@code x} starting at {@code offset}, for position {@code pos}. */
    void rotate(float[] x, int offset, int heads, int pos) {
        turn(x, offset, heads, pos, 1f);
    }

    /**
     * Rotates {@code heads} consecutive heads of {@code x} back by the angles of position {@code delta}: a key rotated
     * for position p becomes one rotated for p - delta, up to rounding (llama.cpp's context shift rotates its cached
     * keys the same way).
     */
    void rotateBack(float[] x, int offset, int heads, int delta) {
        turn(x, offset, heads, delta, -1f);
    }

    /** Each pair by position {@code pos}'s angle, forwards ({@code direction} 1) or back (-1: the sine negated, exactly). */
    private void turn(float[] x, int offset, int heads, int pos, float direction) {
        int headDim = 2 * half;
        int table = pos * half;
        for (int h = 0; h < heads; h++) {
            int base = offset + h * headDim;
            for (int i = 0; i < half; i++) {
                int a = style == Config.RopeStyle.INTERLEAVED ? base + 2 * i : base + i;
                int b = style == Config.RopeStyle.INTERLEAVED ? a + 1 : a + half;
                float c = cos[table + i], s = direction * sin[table + i];
                float x0 = x[a], x1 = x[b];
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }
}
