package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** The small float operations of a forward pass besides matrix products: on float arrays, with offsets. */
public final class VectorMath {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private VectorMath() {
    }

    /**
     * The sum of the lanes ({@code reduceLanes(ADD)}), the one place kernels reduce a vector. Compiled code adds the
     * lanes in another order than interpreted code, so the first calls of a process (before the JIT compiles a kernel)
     * can differ from later ones in the last bits; the thread count never changes a result. Fixed-order alternatives
     * were measured and dropped: halving with {@code reinterpretShape} cost 19% of Q8_0 decode speed and 25% of
     * prefill, halving with {@code rearrange} 30% of prefill, a {@code lane(i)} loop half of decode.
     */
    public static float sum(FloatVector v) {
        return v.reduceLanes(VectorOperators.ADD);
    }

    public static float dot(float[] a, int aOffset, float[] b, int bOffset, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            acc = FloatVector.fromArray(S, a, aOffset + i).fma(FloatVector.fromArray(S, b, bOffset + i), acc);
        }
        float sum = sum(acc);
        for (; i < n; i++) sum += a[aOffset + i] * b[bOffset + i];
        return sum;
    }

    /** {@code y += a * x}. */
    public static void axpy(float a, float[] x, int xOffset, float[] y, int yOffset, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector.fromArray(S, x, xOffset + i).fma(FloatVector.broadcast(S, a), FloatVector.fromArray(S, y, yOffset + i)).intoArray(y, yOffset + i);
        }
        for (; i < n; i++) y[yOffset + i] += a * x[xOffset + i];
    }

    /** {@code y += x}. */
    public static void add(float[] y, int yOffset, float[] x, int xOffset, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector.fromArray(S, y, yOffset + i).add(FloatVector.fromArray(S, x, xOffset + i)).intoArray(y, yOffset + i);
        }
        for (; i < n; i++) y[yOffset + i] += x[xOffset + i];
    }

    /** {@code out = x / sqrt(mean(x^2) + eps) * weight}; the mean is summed in double, as llama.cpp does. */
    public static void rmsnorm(float[] out, int outOffset, float[] x, int xOffset, float[] weight, int n, float eps) {
        double ss = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xOffset + i];
            ss += v * v;
        }
        float scale = (float) (1.0 / Math.sqrt((float) (ss / n) + eps));
        for (int i = 0; i < n; i++) out[outOffset + i] = x[xOffset + i] * scale * weight[i];
    }

    /**
     * In-place softmax of {@code x[offset .. offset + n)}: the exponentials with the Vector API's {@code EXP} (as in
     * {@link #swiglu}), summed in double in index order as llama.cpp sums them.
     */
    public static void softmax(float[] x, int offset, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[offset + i]);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector.fromArray(S, x, offset + i).sub(max).lanewise(VectorOperators.EXP).intoArray(x, offset + i);
        }
        for (; i < n; i++) x[offset + i] = (float) Math.exp(x[offset + i] - max);
        double sum = 0;
        for (i = 0; i < n; i++) sum += x[offset + i];
        float inv = (float) (1.0 / sum);
        for (i = 0; i < n; i++) x[offset + i] *= inv;
    }

    /**
     * SwiGLU's gate: {@code gate = silu(gate) * up}, with {@code silu(x) = x / (1 + e^-x)}. The exponential is the
     * Vector API's ({@code EXP}, within 1 ulp of {@code Math.exp}), which C2 compiles to a call into a short-vector
     * math library: a scalar {@code Math.exp} per element took 4% of a TinyLlama prefill.
     */
    public static void swiglu(float[] gate, float[] up, int offset, int n) {
        int i = offset;
        for (int bound = offset + S.loopBound(n); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, gate, i);
            g.div(g.neg().lanewise(VectorOperators.EXP).add(1f)).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
        }
        for (; i < offset + n; i++) {
            float g = gate[i];
            gate[i] = g / (1.0f + (float) Math.exp(-g)) * up[i];
        }
    }

    public static int argmax(float[] x, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
        return best;
    }
}
