package gptfast4j.generate;

import gptfast4j.tensor.VectorMath;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Turns logits into a token: greedy argmax when the temperature is 0, else a draw from
 * {@code softmax(logits / temperature)} restricted to the top-k logits (ties at the k-th value kept, as gpt-fast's
 * {@code torch.topk} threshold does) and then to the smallest set of most likely tokens whose probability reaches
 * top-p. {@link #distribution} exposes the filtered distribution itself, which speculative decoding needs.
 * Buffers are sized once per vocabulary; sampling allocates nothing.
 */
public final class Sampler {
    public final float temperature;
    public final int topK;
    public final float topP;
    private final SplittableRandom random;
    private final float[] probs;
    private final float[] heap;
    private final Integer[] order;

    public Sampler(int vocabSize, float temperature, int topK, float topP, long seed) {
        if (temperature < 0 || Float.isNaN(temperature)) throw new IllegalArgumentException("--temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("--top-k must be >= 0 (0 disables it), got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("--top-p must be in (0, 1], got " + topP);
        this.temperature = temperature;
        this.topK = topK == 0 ? vocabSize : Math.min(topK, vocabSize);
        this.topP = topP;
        this.random = new SplittableRandom(seed);
        this.probs = new float[vocabSize];
        this.heap = new float[this.topK];
        this.order = topP < 1 ? new Integer[vocabSize] : null;
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    public int sample(float[] logits, int offset) {
        if (isGreedy()) return VectorMath.argmax(logits, offset, probs.length);
        distribution(logits, offset, probs);
        return draw(probs);
    }

    /** A uniform draw in [0, 1) from this sampler's generator. */
    public double nextUniform() {
        return random.nextDouble();
    }

    /** Draws an index from a probability vector (which needs not be normalized). */
    public int draw(float[] p) {
        double total = 0;
        for (float v : p) total += v;
        double r = random.nextDouble() * total;
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] <= 0) continue;
            cumulative += p[i];
            last = i;
            if (r < cumulative) return i;
        }
        return last;
    }

    /**
     * Writes the filtered sampling distribution over the vocabulary into {@code out} (zero outside the kept set).
     * At temperature 0 it is the one-hot distribution of the argmax.
     */
    public void distribution(float[] logits, int offset, float[] out) {
        int n = out.length;
        if (isGreedy()) {
            Arrays.fill(out, 0f);
            out[VectorMath.argmax(logits, offset, n)] = 1f;
            return;
        }
        float threshold = topK < n ? kthLargest(logits, offset, n) : Float.NEGATIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float l = logits[offset + i];
            float p = l >= threshold ? (float) Math.exp((l - max) / temperature) : 0f;
            out[i] = p;
            sum += p;
        }
        float inv = (float) (1 / sum);
        for (int i = 0; i < n; i++) out[i] *= inv;
        if (topP < 1) nucleus(out);
    }

    /** The k-th largest logit, with a min-heap of the k largest seen so far. */
    private float kthLargest(float[] logits, int offset, int n) {
        int size = 0;
        for (int i = 0; i < n; i++) {
            float v = logits[offset + i];
            if (size < topK) {
                int c = size++;
                heap[c] = v;
                while (c > 0 && heap[(c - 1) / 2] > heap[c]) {
                    float t = heap[c]; heap[c] = heap[(c - 1) / 2]; heap[(c - 1) / 2] = t;
                    c = (c - 1) / 2;
                }
            } else if (v > heap[0]) {
                heap[0] = v;
                int c = 0;
                while (true) {
                    int l = 2 * c + 1, r = l + 1, m = c;
                    if (l < size && heap[l] < heap[m]) m = l;
                    if (r < size && heap[r] < heap[m]) m = r;
                    if (m == c) break;
                    float t = heap[c]; heap[c] = heap[m]; heap[m] = t;
                    c = m;
                }
            }
        }
        return heap[0];
    }

    /** Keeps the most likely tokens until their cumulative probability reaches top-p; renormalizes. */
    private void nucleus(float[] p) {
        int count = 0;
        for (int i = 0; i < p.length; i++) if (p[i] > 0) order[count++] = i;
        Arrays.sort(order, 0, count, (a, b) -> Float.compare(p[b], p[a]));
        double cumulative = 0;
        int keep = count;
        for (int i = 0; i < count; i++) {
            cumulative += p[order[i]];
            if (cumulative >= topP) {
                keep = i + 1;
                break;
            }
        }
        for (int i = keep; i < count; i++) p[order[i]] = 0;
        float inv = (float) (1 / Math.min(1.0, cumulative));
        for (int i = 0; i < keep; i++) p[order[i]] *= inv;
    }
}
