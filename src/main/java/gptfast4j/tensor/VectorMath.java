package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The small float operations of a forward pass besides matrix products: on float arrays, with offsets.
 * <p>
 * The lanes are summed by {@code reduceLanes(ADD)}, here and in the kernels, each calling it itself (a helper of ours
 * taking the vector, which C2 left out of line at 128 bits, boxed it: the file layouts' decode of Q8_0, Q4_0 and Q4_1
 * allocated about 100 KB per step of the mini models). Compiled code adds the lanes in another order than interpreted
 * code, so the first calls of a process (before the JIT compiles a kernel) can differ from later ones in the last
 * bits; the thread count never changes a result. Fixed-order alternatives were measured and dropped: halving with
 * {@code reinterpretShape} cost 19% of Q8_0 decode speed and 25% of prefill, halving with {@code rearrange} 30% of
 * prefill, a {@code lane(i)} loop half of decode.
 */
public final class VectorMath {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Doubles in vectors of S's size: a float vector converts to two of them. */
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    private VectorMath() {
    }

    public static float dot(float[] a, int aOffset, float[] b, int bOffset, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            acc = FloatVector.fromArray(S, a, aOffset + i).fma(FloatVector.fromArray(S, b, bOffset + i), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
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

    /** {@code x[offset .. + n) *= a}. */
    public static void scale(float[] x, int offset, int n, float a) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector.fromArray(S, x, offset + i).mul(a).intoArray(x, offset + i);
        }
        for (; i < n; i++) x[offset + i] *= a;
    }

    /** {@code y += x}. */
    public static void add(float[] y, int yOffset, float[] x, int xOffset, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector.fromArray(S, y, yOffset + i).add(FloatVector.fromArray(S, x, xOffset + i)).intoArray(y, yOffset + i);
        }
        for (; i < n; i++) y[yOffset + i] += x[xOffset + i];
    }

    /**
     * {@code out = x / sqrt(mean(x^2) + eps) * weight}; the squares (in float) are summed in double, as llama.cpp does
     * (in lanes, as in {@link #softmax}); a scalar loop took 0.7% of a TinyLlama prefill.
     */
    public static void rmsnorm(float[] out, int outOffset, float[] x, int xOffset, float[] weight, int n, float eps) {
        rmsnorm(out, outOffset, x, xOffset, weight, 0, n, eps);
    }

    /** {@link #rmsnorm} with the weights from {@code weightOffset} (a group's of a grouped norm). */
    public static void rmsnorm(float[] out, int outOffset, float[] x, int xOffset, float[] weight, int weightOffset, int n, float eps) {
        DoubleVector sums = DoubleVector.zero(D);
        for (int i = 0; i < n; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, xOffset + i, S.indexInRange(i, n));
            v = v.mul(v);
            // the loop's running sum is the argument, never the receiver (ARCHITECTURE, Invariants: a call on it
            // boxes where C2 has no type profile for it)
            sums = ((DoubleVector) v.convertShape(VectorOperators.F2D, D, 0)).add(sums).add((DoubleVector) v.convertShape(VectorOperators.F2D, D, 1));
        }
        float scale = (float) (1.0 / Math.sqrt((float) (sums.reduceLanes(VectorOperators.ADD) / n) + eps));
        for (int i = 0; i < n; i += S.length()) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector.fromArray(S, x, xOffset + i, m).mul(scale).mul(FloatVector.fromArray(S, weight, weightOffset + i, m)).intoArray(out, outOffset + i, m);
        }
    }

    /**
     * {@code out = (x - mean(x)) / sqrt(var(x) + eps) * weight}: LayerNorm without a bias (Command-R's, and an
     * encoder's before its bias), as llama.cpp's {@code ggml_norm} computes it, its sums in double (in lanes, as in
     * {@link #rmsnorm}); a scalar loop took about 5% of an encoder's pass.
     */
    public static void layernorm(float[] out, int outOffset, float[] x, int xOffset, float[] weight, int n, float eps) {
        DoubleVector sums = DoubleVector.zero(D);
        for (int i = 0; i < n; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, xOffset + i, S.indexInRange(i, n));
            sums = ((DoubleVector) v.convertShape(VectorOperators.F2D, D, 0)).add(sums).add((DoubleVector) v.convertShape(VectorOperators.F2D, D, 1));
        }
        float mean = (float) (sums.reduceLanes(VectorOperators.ADD) / n);
        DoubleVector squares = DoubleVector.zero(D);
        for (int i = 0; i < n; i += S.length()) {
            VectorMask<Float> m = S.indexInRange(i, n);
            // lanes past n are zero in v, so their squares are zero too
            FloatVector v = FloatVector.fromArray(S, x, xOffset + i, m).sub(mean, m);
            v = v.mul(v);
            squares = ((DoubleVector) v.convertShape(VectorOperators.F2D, D, 0)).add(squares).add((DoubleVector) v.convertShape(VectorOperators.F2D, D, 1));
        }
        float scale = (float) (1.0 / Math.sqrt((float) (squares.reduceLanes(VectorOperators.ADD) / n) + eps));
        for (int i = 0; i < n; i += S.length()) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector.fromArray(S, x, xOffset + i, m).sub(mean).mul(scale).mul(FloatVector.fromArray(S, weight, i, m)).intoArray(out, outOffset + i, m);
        }
    }

    /**
     * In-place softmax of {@code x[offset .. offset + n)}: the exponentials with the Vector API's {@code EXP} (as in
     * {@link #swiglu}), summed in double as llama.cpp sums them (in lanes, so in another order than its index order:
     * at double precision that changes no float result but in rare last bits). Vector loops with a masked last
     * vector: a scalar tail of up to 15 elements, latency-bound, cost about as much as the vectors at short contexts.
     */
    public static void softmax(float[] x, int offset, int n) {
        softmax(x, offset, n, Float.NEGATIVE_INFINITY);
    }

    /**
     * {@link #softmax(float[], int, int)} with one more logit, {@code sink}, in the sum but not written (gpt-oss's
     * attention sinks: the weights sum to less than one); {@code -Infinity} for none.
     */
    public static void softmax(float[] x, int offset, int n, float sink) {
        FloatVector minusInfinity = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY), maxes = minusInfinity;
        for (int i = 0; i < n; i += S.length()) {
            VectorMask<Float> m = S.indexInRange(i, n);
            maxes = minusInfinity.blend(FloatVector.fromArray(S, x, offset + i, m), m).max(maxes);
        }
        float max = Math.max(maxes.reduceLanes(VectorOperators.MAX), sink);
        DoubleVector sums = DoubleVector.zero(D);
        FloatVector zero = FloatVector.zero(S);
        for (int i = 0; i < n; i += S.length()) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector e = FloatVector.fromArray(S, x, offset + i, m).sub(max).lanewise(VectorOperators.EXP);
            e.intoArray(x, offset + i, m);
            e = zero.blend(e, m);
            sums = ((DoubleVector) e.convertShape(VectorOperators.F2D, D, 0)).add(sums).add((DoubleVector) e.convertShape(VectorOperators.F2D, D, 1));
        }
        double sum = sums.reduceLanes(VectorOperators.ADD);
        if (sink != Float.NEGATIVE_INFINITY) sum += (float) Math.exp(sink - max);
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i += S.length()) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector.fromArray(S, x, offset + i, m).mul(inv).intoArray(x, offset + i, m);
        }
    }

    /**
     * gpt-oss's gate (llama.cpp's {@code swiglu_oai}, alpha 1.702, limit 7): {@code gate = g * sigmoid(1.702 g) * (u +
     * 1)} with {@code g = min(gate, 7)} and {@code u} the up projection clamped to [-7, 7].
     */
    public static void swigluOai(float[] gate, float[] up, int offset, int n) {
        int i = offset;
        for (int bound = offset + S.loopBound(n); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, gate, i).min(7f), u = FloatVector.fromArray(S, up, i).max(-7f).min(7f);
            g.div(g.neg().mul(1.702f).lanewise(VectorOperators.EXP).add(1f)).mul(u.add(1f)).intoArray(gate, i);
        }
        for (; i < offset + n; i++) {
            float g = Math.min(gate[i], 7f), u = Math.min(Math.max(up[i], -7f), 7f);
            gate[i] = g / (1f + (float) Math.exp(-g * 1.702f)) * (u + 1f);
        }
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

    /**
     * One step of a causal convolution over {@code n} channels: {@code x[i]} joins its channel's {@code taps - 1} last
     * inputs ({@code rows[r * stride + i]}, the oldest row first, which move on by one), and becomes {@code silu(sum)},
     * sum the taps' products oldest first ({@code kernel[j * stride + i]}), each product added as ggml's ssm_conv adds it
     * (a multiply, then an add; no fused multiply-add), then {@code bias[i]} where there is one (null: none). Offsets:
     * {@code x} from {@code xOffset}, the rows, the kernel and the bias from {@code channel}. In vector lanes for 4 taps
     * (Qwen3.5's and Mamba-2's), written out: a vector carried through a loop over the taps was boxed by C2 without type profiles (40
     * KB a decode step of the mini model, DecodeAllocationTest).
     */
    public static void convolveStep(float[] x, int xOffset, float[] rows, float[] kernel, float[] bias, int stride, int channel, int taps, int n) {
        int i = 0;
        for (int bound = taps == 4 ? S.loopBound(n) : 0; i < bound; i += S.length()) {
            int c = channel + i;
            FloatVector in = FloatVector.fromArray(S, x, xOffset + i), r0 = FloatVector.fromArray(S, rows, c),
                    r1 = FloatVector.fromArray(S, rows, stride + c), r2 = FloatVector.fromArray(S, rows, 2 * stride + c);
            FloatVector sum = FloatVector.zero(S).add(r0.mul(FloatVector.fromArray(S, kernel, c))).add(r1.mul(FloatVector.fromArray(S, kernel, stride + c)))
                    .add(r2.mul(FloatVector.fromArray(S, kernel, 2 * stride + c))).add(in.mul(FloatVector.fromArray(S, kernel, 3 * stride + c)));
            if (bias != null) sum = sum.add(FloatVector.fromArray(S, bias, c));
            r1.intoArray(rows, c);
            r2.intoArray(rows, stride + c);
            in.intoArray(rows, 2 * stride + c);
            sum.div(sum.neg().lanewise(VectorOperators.EXP).add(1f)).intoArray(x, xOffset + i);
        }
        for (; i < n; i++) {
            int c = channel + i;
            float in = x[xOffset + i], sum = 0f;
            for (int j = 0; j < taps - 1; j++) sum += rows[j * stride + c] * kernel[j * stride + c];
            sum += in * kernel[(taps - 1) * stride + c];
            if (bias != null) sum += bias[c];
            for (int j = 0; j < taps - 2; j++) rows[j * stride + c] = rows[(j + 1) * stride + c];
            rows[(taps - 2) * stride + c] = in;
            x[xOffset + i] = sum / (1f + (float) Math.exp(-sum));
        }
    }

    /**
     * One token's step of a Mamba-2 head, its matrix held by state ({@code [states][width]} from {@code sOffset}: row k
     * holds column k of every row i): {@code s[k][i] = s[k][i] * decay + b[k] * (x[i] * dt)}, as ggml's ssm_scan
     * computes each element (two products and their sum), and {@code y[i] = sum over k of s[k][i] * c[k] + x[i] * d}
     * (the sum in k's order; ggml's in lanes of k). Rows i are vector lanes, so no lanes are summed (each row's lanes
     * summed: 330 ms against 270 for a Granite 4.0-H-Micro prompt's 128 tokens, on one thread). Offsets: x and y from
     * theirs, b and c, both in {@code bc}, from theirs.
     */
    public static void ssmStep(float[] s, int sOffset, int width, int states, float decay, float dt, float d, float[] x, int xOffset,
                               float[] bc, int bOffset, int cOffset, float[] y, int yOffset) {
        int i = 0;
        for (int bound = S.loopBound(width); i < bound; i += S.length()) {
            FloatVector in = FloatVector.fromArray(S, x, xOffset + i), xdt = in.mul(dt), sum = FloatVector.zero(S);
            for (int k = 0, at = sOffset + i; k < states; k++, at += width) {
                FloatVector next = FloatVector.fromArray(S, s, at).mul(decay).add(xdt.mul(bc[bOffset + k]));
                next.intoArray(s, at);
                // the loop's running sum is the argument, never the receiver (ARCHITECTURE, Invariants)
                sum = next.fma(FloatVector.broadcast(S, bc[cOffset + k]), sum);
            }
            sum.add(in.mul(d)).intoArray(y, yOffset + i);
        }
        for (; i < width; i++) {
            float xdt = x[xOffset + i] * dt, sum = 0f;
            for (int k = 0, at = sOffset + i; k < states; k++, at += width) {
                float next = s[at] * decay + bc[bOffset + k] * xdt;
                s[at] = next;
                sum += next * bc[cOffset + k];
            }
            y[yOffset + i] = sum + x[xOffset + i] * d;
        }
    }

    /**
     * One token's step of channels {@code c0 .. c1} of a Mamba (Mamba-1) scan, each channel's row of states held by
     * state ({@code s} and {@code a} both {@code [states][channels]}: state k of channel c at {@code k * channels + c}):
     * {@code step = softplus(dt[c])} (ggml's: {@code dt > 20 ? dt : log(1 + exp(dt))}), {@code s[k][c] = s[k][c] *
     * exp(step * a[k][c]) + b[k] * (x[c] * step)}, as ggml's ssm_scan computes each element, and {@code y[c] = sum over
     * k of s[k][c] * c[k] + x[c] * d[c]} (the sum in k's order, as ggml's). Channels are vector lanes, so no lanes are
     * summed. Offsets: x, dt and y from theirs (channel c at offset + c), b and c, both in {@code bc}, from theirs.
     */
    public static void selectiveScanStep(float[] s, float[] a, int channels, int states, int c0, int c1, float[] x, int xOffset, float[] dt, int dtOffset,
                                         float[] bc, int bOffset, int cOffset, float[] d, float[] y, int yOffset) {
        int i = c0;
        for (int bound = c0 + S.loopBound(c1 - c0); i < bound; i += S.length()) {
            FloatVector raw = FloatVector.fromArray(S, dt, dtOffset + i);
            FloatVector step = raw.lanewise(VectorOperators.EXP).add(1f).lanewise(VectorOperators.LOG).blend(raw, raw.compare(VectorOperators.GT, 20f));
            FloatVector in = FloatVector.fromArray(S, x, xOffset + i), xStep = in.mul(step), sum = FloatVector.zero(S);
            for (int k = 0, at = i; k < states; k++, at += channels) {
                FloatVector decay = step.mul(FloatVector.fromArray(S, a, at)).lanewise(VectorOperators.EXP);
                FloatVector next = FloatVector.fromArray(S, s, at).mul(decay).add(xStep.mul(bc[bOffset + k]));
                next.intoArray(s, at);
                // the loop's running sum is the argument, never the receiver (ARCHITECTURE, Invariants)
                sum = next.fma(FloatVector.broadcast(S, bc[cOffset + k]), sum);
            }
            sum.add(in.mul(FloatVector.fromArray(S, d, i))).intoArray(y, yOffset + i);
        }
        for (; i < c1; i++) {
            float raw = dt[dtOffset + i], step = raw > 20f ? raw : (float) Math.log(1f + (float) Math.exp(raw)), xStep = x[xOffset + i] * step, sum = 0f;
            for (int k = 0, at = i; k < states; k++, at += channels) {
                float next = s[at] * (float) Math.exp(step * a[at]) + bc[bOffset + k] * xStep;
                s[at] = next;
                sum += next * bc[cOffset + k];
            }
            y[yOffset + i] = sum + x[xOffset + i] * d[i];
        }
    }

    /**
     * A gated RMS norm's last step: {@code x[i] = x[i] * scale * weight[i] * silu(z[i])} for {@code i < n} (x from
     * {@code xOffset}, z from {@code zOffset}, the weights from 0), in that order, as ggml multiplies them.
     */
    public static void gatedNorm(float[] x, int xOffset, float scale, float[] weight, float[] z, int zOffset, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, z, zOffset + i);
            FloatVector.fromArray(S, x, xOffset + i).mul(scale).mul(FloatVector.fromArray(S, weight, i))
                    .mul(g.div(g.neg().lanewise(VectorOperators.EXP).add(1f))).intoArray(x, xOffset + i);
        }
        for (; i < n; i++) {
            float g = z[zOffset + i];
            x[xOffset + i] = x[xOffset + i] * scale * weight[i] * (g / (1f + (float) Math.exp(-g)));
        }
    }

    /** Arcee's ungated activation: {@code gate = max(up, 0)²} (llama.cpp's {@code relu_sqr}). */
    public static void reluSquared(float[] gate, float[] up, int offset, int n) {
        int i = offset;
        for (int bound = offset + S.loopBound(n); i < bound; i += S.length()) {
            FloatVector u = FloatVector.fromArray(S, up, i).max(0f);
            u.mul(u).intoArray(gate, i);
        }
        for (; i < offset + n; i++) {
            float u = Math.max(up[i], 0f);
            gate[i] = u * u;
        }
    }

    /**
     * Apertus's ungated activation, xIELU of the up projection: {@code gate = alphaP * u^2 + beta * u} where {@code u >
     * 0}, else {@code (expm1(min(u, eps)) - u) * alphaN + beta * u} (llama.cpp's {@code xielu}, whose alphaN and alphaP
     * are already its parameters' softplus, beta added to alphaN's). The exponential the Vector API's ({@code EXPM1}).
     */
    public static void xielu(float[] gate, float[] up, int offset, int n, float alphaN, float alphaP, float beta, float eps) {
        int i = offset;
        for (int bound = offset + S.loopBound(n); i < bound; i += S.length()) {
            FloatVector u = FloatVector.fromArray(S, up, i), linear = u.mul(beta);
            FloatVector negative = u.min(eps).lanewise(VectorOperators.EXPM1).sub(u).mul(alphaN).add(linear);
            u.mul(alphaP).mul(u).add(linear).blend(negative, u.compare(VectorOperators.LE, 0f)).intoArray(gate, i);
        }
        for (; i < offset + n; i++) {
            float u = up[i];
            gate[i] = u > 0f ? alphaP * u * u + beta * u : ((float) Math.expm1(Math.min(u, eps)) - u) * alphaN + beta * u;
        }
    }

    /**
     * GeGLU's gate: {@code gate = gelu(gate) * up}, GELU's tanh approximation {@code 0.5 x (1 + tanh(sqrt(2/pi) x (1 +
     * 0.044715 x^2)))} (Gemma's, PyTorch's {@code gelu_pytorch_tanh}) in floats, the tanh the Vector API's ({@code
     * TANH}, as {@link #swiglu}'s exponential). llama.cpp's CPU backend looks GELU up in a table of half floats instead
     * (the input and the result rounded to F16): a GeGLU model's figures differ from its by that rounding.
     */
    public static void geglu(float[] gate, float[] up, int offset, int n) {
        int i = offset;
        for (int bound = offset + S.loopBound(n); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, gate, i);
            FloatVector inner = g.mul(g).fma(GELU_A, 1f).mul(g).mul(SQRT_2_OVER_PI);
            g.mul(0.5f).mul(inner.lanewise(VectorOperators.TANH).add(1f)).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
        }
        for (; i < offset + n; i++) {
            float g = gate[i];
            gate[i] = 0.5f * g * (1f + (float) Math.tanh((g * g * GELU_A + 1f) * g * SQRT_2_OVER_PI)) * up[i];
        }
    }

    /**
     * {@code x = gelu(x)}, ungated (BERT's feed-forward): {@link #geglu}'s tanh approximation without the product,
     * which llama.cpp's CPU backend also looks up in its half-float table.
     */
    public static void gelu(float[] x, int offset, int n) {
        int i = offset;
        for (int bound = offset + S.loopBound(n); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, x, i);
            FloatVector inner = g.mul(g).fma(GELU_A, 1f).mul(g).mul(SQRT_2_OVER_PI);
            g.mul(0.5f).mul(inner.lanewise(VectorOperators.TANH).add(1f)).intoArray(x, i);
        }
        for (; i < offset + n; i++) {
            float g = x[i];
            x[i] = 0.5f * g * (1f + (float) Math.tanh((g * g * GELU_A + 1f) * g * SQRT_2_OVER_PI));
        }
    }

    private static final float GELU_A = 0.044715f, SQRT_2_OVER_PI = 0.79788456080286535587989211986876f;

    /** {@code x = cap * tanh(x / cap)} over {@code x[offset .. offset + n)}, as llama.cpp caps logits (Gemma 2's). */
    public static void softcap(float[] x, int offset, int n, float cap) {
        float inverse = 1f / cap;
        for (int i = 0; i < n; i += S.length()) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector.fromArray(S, x, offset + i, m).mul(inverse).lanewise(VectorOperators.TANH).mul(cap).intoArray(x, offset + i, m);
        }
    }

    /**
     * Attention scores of one query over {@code positions} cached keys stored transposed ({@code keys[kBase + d *
     * stride + p]} is element d of the key at position p): {@code out[outOffset + p] = scale * sum_d q[qOffset + d] *
     * key_p[d]}. Vectors run over positions, so there is no lane reduction per position (a dot product per position
     * took about 70 cycles with its reduction and call). Four vectors of positions at a time, so that each key row is
     * read four lines in a row and each broadcast of q serves four FMAs: 12 layers of 12 heads of 64 at 900 positions
     * (stories110M's decode step at depth 900, from memory, one thread) 2.6-3.4 ms against 4.3-5.5 one vector at a time.
     * The last vector is masked: a scalar tail (up to 15 positions, each a chain of headDim dependent adds) cost more
     * than the vectors below a few hundred positions.
     */
    public static void scores(float[] q, int qOffset, float[] keys, int kBase, int stride, int headDim, int positions,
                              float scale, float[] out, int outOffset) {
        int lanes = S.length();
        for (int p = rowChunks(q, qOffset, keys, kBase, stride, headDim, positions, scale, out, outOffset); p < positions; p += lanes) {
            // the last positions a vector at a time, four partial sums over d
            VectorMask<Float> m = S.indexInRange(p, positions);
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            int d = 0, k = kBase + p;
            for (; d + 4 <= headDim; d += 4, k += 4 * stride) {
                a0 = FloatVector.fromArray(S, keys, k, m).fma(FloatVector.broadcast(S, q[qOffset + d]), a0);
                a1 = FloatVector.fromArray(S, keys, k + stride, m).fma(FloatVector.broadcast(S, q[qOffset + d + 1]), a1);
                a2 = FloatVector.fromArray(S, keys, k + 2 * stride, m).fma(FloatVector.broadcast(S, q[qOffset + d + 2]), a2);
                a3 = FloatVector.fromArray(S, keys, k + 3 * stride, m).fma(FloatVector.broadcast(S, q[qOffset + d + 3]), a3);
            }
            for (; d < headDim; d++, k += stride) a0 = FloatVector.fromArray(S, keys, k, m).fma(FloatVector.broadcast(S, q[qOffset + d]), a0);
            a0.add(a1).add(a2.add(a3)).mul(scale).intoArray(out, outOffset + p, m);
        }
    }

    /**
     * One row of a small matrix product over whole chunks of four vectors of columns, {@code out[outOffset + c] = scale
     * * sum_k a[aOffset + k] * b[bOffset + k * bStride + c]} for k < {@code depth}, two partial sums over k each; returns
     * the first column not done. {@link #scores} (a the query, b the transposed keys, over positions) and {@link
     * #weightedSum} (a the weights, b the values, over a head's elements) take their whole chunks here. A method of its
     * own: with the scores' masked tail in the same method, C1's compilation for on-stack replacement ran out of virtual
     * registers, and the method stayed in code whose vectors are objects (40 positions: 1.3 ms against 0.04 for the
     * weighted sums of the same heads; see {@link #product4}).
     */
    private static int rowChunks(float[] a, int aOffset, float[] b, int bOffset, int bStride, int depth, int cols,
                                 float scale, float[] out, int outOffset) {
        int lanes = S.length(), c = 0;
        for (; c + 4 * lanes <= cols; c += 4 * lanes) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            int k = 0, at = bOffset + c;
            for (; k + 2 <= depth; k += 2, at += 2 * bStride) {
                FloatVector x = FloatVector.broadcast(S, a[aOffset + k]), y = FloatVector.broadcast(S, a[aOffset + k + 1]);
                a0 = FloatVector.fromArray(S, b, at).fma(x, a0);
                a1 = FloatVector.fromArray(S, b, at + lanes).fma(x, a1);
                a2 = FloatVector.fromArray(S, b, at + 2 * lanes).fma(x, a2);
                a3 = FloatVector.fromArray(S, b, at + 3 * lanes).fma(x, a3);
                b0 = FloatVector.fromArray(S, b, at + bStride).fma(y, b0);
                b1 = FloatVector.fromArray(S, b, at + bStride + lanes).fma(y, b1);
                b2 = FloatVector.fromArray(S, b, at + bStride + 2 * lanes).fma(y, b2);
                b3 = FloatVector.fromArray(S, b, at + bStride + 3 * lanes).fma(y, b3);
            }
            if (k < depth) {
                FloatVector x = FloatVector.broadcast(S, a[aOffset + k]);
                a0 = FloatVector.fromArray(S, b, at).fma(x, a0);
                a1 = FloatVector.fromArray(S, b, at + lanes).fma(x, a1);
                a2 = FloatVector.fromArray(S, b, at + 2 * lanes).fma(x, a2);
                a3 = FloatVector.fromArray(S, b, at + 3 * lanes).fma(x, a3);
            }
            a0.add(b0).mul(scale).intoArray(out, outOffset + c);
            a1.add(b1).mul(scale).intoArray(out, outOffset + c + lanes);
            a2.add(b2).mul(scale).intoArray(out, outOffset + c + 2 * lanes);
            a3.add(b3).mul(scale).intoArray(out, outOffset + c + 3 * lanes);
        }
        return c;
    }

    /** Rows of a per call of {@link #product4}: the queries attention takes at a time. */
    public static final int QUERIES = 4;

    /** Floats past b's last row that {@link #product4} may read: two vectors. */
    public static final int PRODUCT_SLACK = 2 * S.length();

    /**
     * Four rows at once of a small matrix product, {@code out[j][c] = scale * sum_k a[j][k] * b[k][c]} for j < 4, k <
     * {@code depth}, c < {@code cols}: row j of a at {@code a[aOffset + j * aStride ..]}, row k of b at {@code b[bOffset
     * + k * bStride ..]}, row j of out at {@code out[outOffset + j * outStride ..]}. Attention's two products are this:
     * four queries' scores (a the queries, b the transposed keys, over positions) and their weighted sums of values (a
     * the weights, b the values, over a head's elements). Each vector of b is loaded once for the four rows (one query
     * per load, prefill's scores ran at 0.8 G FMAs/s, bound by reading the keys from L2), and each broadcast element of
     * a serves two vectors of b.
     * <p>
     * b's rows are read in whole pairs of vectors, up to two vectors past {@code cols} (into the next row, or past the
     * last row: b must hold {@link #PRODUCT_SLACK} floats more); what lies there reaches only sums of columns that are
     * never stored. Masked loads here made the method too large for C1: its compilation of the loop for on-stack
     * replacement ran out of virtual registers, and a JVM where that happened never compiled the method past C1's
     * first tier, whose vectors are objects (0.03 G FMAs/s against 2).
     */
    public static void product4(float[] a, int aOffset, int aStride, float[] b, int bOffset, int bStride, int depth,
                                int cols, float scale, float[] out, int outOffset, int outStride) {
        int lanes = S.length(), a1 = aOffset + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
        for (int c = 0; c < cols; c += 2 * lanes) {
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
            for (int k = 0, row = bOffset + c; k < depth; k++, row += bStride) {
                FloatVector v = FloatVector.fromArray(S, b, row), next = FloatVector.fromArray(S, b, row + lanes);
                FloatVector x0 = FloatVector.broadcast(S, a[aOffset + k]), x1 = FloatVector.broadcast(S, a[a1 + k]),
                        x2 = FloatVector.broadcast(S, a[a2 + k]), x3 = FloatVector.broadcast(S, a[a3 + k]);
                s0 = v.fma(x0, s0);
                s1 = v.fma(x1, s1);
                s2 = v.fma(x2, s2);
                s3 = v.fma(x3, s3);
                t0 = next.fma(x0, t0);
                t1 = next.fma(x1, t1);
                t2 = next.fma(x2, t2);
                t3 = next.fma(x3, t3);
            }
            VectorMask<Float> m = S.indexInRange(c, cols), n = S.indexInRange(c + lanes, cols);
            int o = outOffset + c;
            s0.mul(scale).intoArray(out, o, m);
            s1.mul(scale).intoArray(out, o + outStride, m);
            s2.mul(scale).intoArray(out, o + 2 * outStride, m);
            s3.mul(scale).intoArray(out, o + 3 * outStride, m);
            t0.mul(scale).intoArray(out, o + lanes, n);
            t1.mul(scale).intoArray(out, o + lanes + outStride, n);
            t2.mul(scale).intoArray(out, o + lanes + 2 * outStride, n);
            t3.mul(scale).intoArray(out, o + lanes + 3 * outStride, n);
        }
    }

    /**
     * {@code out[outOffset + i] = sum_p weights[wOffset + p] * values[vOffset + p * stride + i]} for {@code i < n}: an
     * attention head's output, summed in registers rather than by an axpy per position into memory. Four vectors of
     * the output at a time ({@link #rowChunks}), so that each position's values are read once per four vectors (one
     * pass per vector thrashed L1 over long contexts), each with two partial sums over positions to keep eight FMA
     * chains in flight.
     */
    public static void weightedSum(float[] weights, int wOffset, float[] values, int vOffset, int stride, int positions,
                                   float[] out, int outOffset, int n) {
        int lanes = S.length(), i = rowChunks(weights, wOffset, values, vOffset, stride, positions, n, 1f, out, outOffset);
        for (; i + lanes <= n; i += lanes) {
            FloatVector a = FloatVector.zero(S);
            for (int p = 0, v = vOffset + i; p < positions; p++, v += stride) a = FloatVector.fromArray(S, values, v).fma(FloatVector.broadcast(S, weights[wOffset + p]), a);
            a.intoArray(out, outOffset + i);
        }
        for (; i < n; i++) {
            float sum = 0;
            for (int p = 0; p < positions; p++) sum += weights[wOffset + p] * values[vOffset + p * stride + i];
            out[outOffset + i] = sum;
        }
    }

    /**
     * Weighted sums of the rows of keys stored transposed in blocks, as the key cache holds them: {@code out[outOffset + j *
     * outStride + i] = sum_p w[wOffset + j * wStride + p] * keys[kBase + p / block * blockStride + i * block + p % block]}
     * for {@code p} in {@code [from, to)}, {@code i < n} and the {@code queries} rows of weights j (one or {@link
     * #QUERIES}): a latent attention's weighted sums of values, which are its keys' latent parts (the key cache's only
     * copy of them). {@code from} a multiple of {@code block}, itself a multiple of the vector length; each row of
     * weights must hold zeros from {@code to} to the end of its block (the last vector may reach there). Vectors run
     * over positions, each row's lanes summed at its end; two rows of keys at a time, each vector of keys loaded once
     * for all the rows of weights.
     */
    public static void columnSums(float[] w, int wOffset, int wStride, int queries, float[] keys, int kBase, int blockStride,
                                  int block, int from, int to, int n, float[] out, int outOffset, int outStride) {
        if (queries == QUERIES) columnSums4(w, wOffset, wStride, keys, kBase, blockStride, block, from, to, n, out, outOffset, outStride);
        else if (queries == 1) columnSums1(w, wOffset, keys, kBase, blockStride, block, from, to, n, out, outOffset);
        else throw new IllegalArgumentException("one or " + QUERIES + " rows of weights, not " + queries);
    }

    private static void columnSums4(float[] w, int wOffset, int wStride, float[] keys, int kBase, int blockStride,
                                    int block, int from, int to, int n, float[] out, int outOffset, int outStride) {
        int lanes = S.length(), end = (to + lanes - 1) / lanes * lanes, w1 = wOffset + wStride, w2 = w1 + wStride, w3 = w2 + wStride;
        for (int i = 0; i < n; i += 2) {
            // an odd last row pairs with itself (its sums stored twice, the same)
            int second = i + 1 < n ? block : 0;
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int p = from, row = kBase + from / block * blockStride + i * block; p < end; p += block, row += blockStride) {
                for (int c = 0, count = Math.min(block, end - p); c < count; c += lanes) {
                    FloatVector x = FloatVector.fromArray(S, keys, row + c), y = FloatVector.fromArray(S, keys, row + second + c);
                    FloatVector v0 = FloatVector.fromArray(S, w, wOffset + p + c), v1 = FloatVector.fromArray(S, w, w1 + p + c),
                            v2 = FloatVector.fromArray(S, w, w2 + p + c), v3 = FloatVector.fromArray(S, w, w3 + p + c);
                    a0 = x.fma(v0, a0);
                    a1 = x.fma(v1, a1);
                    a2 = x.fma(v2, a2);
                    a3 = x.fma(v3, a3);
                    b0 = y.fma(v0, b0);
                    b1 = y.fma(v1, b1);
                    b2 = y.fma(v2, b2);
                    b3 = y.fma(v3, b3);
                }
            }
            int o = outOffset + i, o2 = Math.min(i + 1, n - 1) + outOffset;
            out[o] = a0.reduceLanes(VectorOperators.ADD);
            out[o + outStride] = a1.reduceLanes(VectorOperators.ADD);
            out[o + 2 * outStride] = a2.reduceLanes(VectorOperators.ADD);
            out[o + 3 * outStride] = a3.reduceLanes(VectorOperators.ADD);
            out[o2] = b0.reduceLanes(VectorOperators.ADD);
            out[o2 + outStride] = b1.reduceLanes(VectorOperators.ADD);
            out[o2 + 2 * outStride] = b2.reduceLanes(VectorOperators.ADD);
            out[o2 + 3 * outStride] = b3.reduceLanes(VectorOperators.ADD);
        }
    }

    private static void columnSums1(float[] w, int wOffset, float[] keys, int kBase, int blockStride, int block, int from,
                                    int to, int n, float[] out, int outOffset) {
        int lanes = S.length(), end = (to + lanes - 1) / lanes * lanes;
        for (int i = 0; i < n; i += 2) {
            int second = i + 1 < n ? block : 0;
            FloatVector a = FloatVector.zero(S), b = a;
            for (int p = from, row = kBase + from / block * blockStride + i * block; p < end; p += block, row += blockStride) {
                for (int c = 0, count = Math.min(block, end - p); c < count; c += lanes) {
                    FloatVector v = FloatVector.fromArray(S, w, wOffset + p + c);
                    a = FloatVector.fromArray(S, keys, row + c).fma(v, a);
                    b = FloatVector.fromArray(S, keys, row + second + c).fma(v, b);
                }
            }
            out[outOffset + i] = a.reduceLanes(VectorOperators.ADD);
            out[outOffset + Math.min(i + 1, n - 1)] = b.reduceLanes(VectorOperators.ADD);
        }
    }

    /**
     * {@code out[outOffset + i]} = the half float at index {@code hIndex + i} of {@code halves}, for {@code i < n}. A
     * plain loop: C2 compiles it to the CPU's conversion instruction (16 halves per {@code vcvtph2ps} with AVX-512),
     * which the Vector API has no operation for (0.08 ns per half from a segment as from a {@code short[]}, against
     * about 1 one at a time).
     */
    public static void fromHalves(MemorySegment halves, long hIndex, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) out[outOffset + i] = Float.float16ToFloat(halves.getAtIndex(HALF, hIndex + i));
    }

    /** The half floats at index {@code outIndex ..} of {@code out} = {@code x[xOffset ..]}, rounded to nearest even ({@link #fromHalves}' inverse). */
    public static void toHalves(float[] x, int xOffset, MemorySegment out, long outIndex, int n) {
        for (int i = 0; i < n; i++) out.setAtIndex(HALF, outIndex + i, Float.floatToFloat16(x[xOffset + i]));
    }

    /** Bytes in vectors of twice S's lanes: one converts to two float vectors. */
    private static final VectorSpecies<Byte> B2 = ByteVector.SPECIES_PREFERRED.withShape(
            VectorShape.forBitSize(2 * S.length() * Byte.SIZE));

    /**
     * {@code out[outOffset + i]} = {@code scales[sOffset + i]} times the int8 at byte {@code qOffset + i} of {@code q},
     * for {@code i < n}, n a multiple of 32 (a Q8_0 KV cache's keys: each position its own scale).
     */
    public static void scaleBytes(MemorySegment q, long qOffset, float[] scales, int sOffset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i += B2.length()) {
            ByteVector b = ByteVector.fromMemorySegment(B2, q, qOffset + i, ByteOrder.nativeOrder());
            ((FloatVector) b.convertShape(VectorOperators.B2F, S, 0)).mul(FloatVector.fromArray(S, scales, sOffset + i)).intoArray(out, outOffset + i);
            ((FloatVector) b.convertShape(VectorOperators.B2F, S, 1)).mul(FloatVector.fromArray(S, scales, sOffset + i + S.length())).intoArray(out, outOffset + i + S.length());
        }
    }

    /** {@code out[outOffset + i]} = {@code scale} times the int8 at byte {@code qOffset + i} of {@code q}, for {@code i < n}, n a multiple of 32. */
    public static void scaleBytes(MemorySegment q, long qOffset, float scale, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i += B2.length()) {
            ByteVector b = ByteVector.fromMemorySegment(B2, q, qOffset + i, ByteOrder.nativeOrder());
            ((FloatVector) b.convertShape(VectorOperators.B2F, S, 0)).mul(scale).intoArray(out, outOffset + i);
            ((FloatVector) b.convertShape(VectorOperators.B2F, S, 1)).mul(scale).intoArray(out, outOffset + i + S.length());
        }
    }

    /** A half float's 16 bits in native order, aligned to 2 bytes. */
    public static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT;

    /** {@code x[offset .. offset + n)} rounded in place to the nearest half floats. */
    public static void roundToHalf(float[] x, int offset, int n) {
        for (int i = offset; i < offset + n; i++) x[i] = roundToHalf(x[i]);
    }

    /** {@code v} rounded to the nearest half float, as a float. */
    public static float roundToHalf(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    public static int argmax(float[] x, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
        return best;
    }
}
