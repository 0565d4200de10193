package gptfast4j.generate;

import gptfast4j.io.ModelFormatException;
import gptfast4j.tensor.VectorMath;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Turns logits into a token: greedy argmax when the temperature is 0, else a draw from
 * {@code softmax(logits / temperature)} restricted to the top-k logits (ties at the k-th value kept, as gpt-fast's
 * {@code torch.topk} threshold does) and then to the smallest set of most likely tokens whose probability reaches
 * top-p, then to the tokens at least min-p times as likely as the most likely one: transformers' order of its
 * temperature, top-k, top-p and min-p warpers (llama.cpp applies top-p and min-p before the temperature).
 * {@link #distribution} exposes the filtered distribution itself, which speculative decoding needs. Before all that,
 * as llama.cpp's sampler chain has them and also at temperature 0: a {@link LogitBias} raises or lowers chosen tokens'
 * logits, then, where {@link Penalties} are set and the sequence so far is given, the logits of the tokens it holds
 * are penalized as llama.cpp's penalties sampler does, then a {@link #constrain}ing grammar sets the logits of the
 * tokens it does not allow to -infinity. Buffers are sized once per vocabulary; sampling without a grammar allocates
 * nothing (a grammar's state is new objects at each token).
 */
public final class Sampler {
    public final float temperature;
    public final int topK;
    public final float topP;
    public final float minP;
    private final SplittableRandom random;
    private final float[] probs;
    private final float[] heap;
    /** Top-p's sort keys: a kept token's probability bits above its id, complemented (see {@link #nucleus}). */
    private final long[] order;
    public final Penalties penalties;
    public final LogitBias bias;
    /** What a {@link #constrain}ed sampler draws from; null without one. */
    private GrammarConstraint grammar;
    private Observer observer;
    /** The logits adjusted by the bias, the penalties and the grammar (see {@link #adjust}). */
    private final float[] adjusted;
    /** With penalties: each token's count in the window (zero between calls). */
    private final int[] counts;

    /**
     * llama.cpp's penalties on the tokens among the sequence's last {@code lastN} (-1: all of it, 0: none): a token
     * seen there has its logit divided by {@code repeat} (multiplied where it is not positive), then lowered by
     * {@code frequency} per time it was seen and by {@code presence} once. 1, 0 and 0 leave the logits as they are.
     */
    public record Penalties(float repeat, float frequency, float presence, int lastN) {
        public static final Penalties NONE = new Penalties(1, 0, 0, 64);

        /** Refuses values llama.cpp's sampler would not take, by their command-line names. */
        public Penalties {
            if (!(repeat > 0) || Float.isInfinite(repeat)) throw new IllegalArgumentException("--repeat-penalty must be > 0 (1 disables it), got " + repeat);
            if (!Float.isFinite(frequency)) throw new IllegalArgumentException("--frequency-penalty must be a number, got " + frequency);
            if (!Float.isFinite(presence)) throw new IllegalArgumentException("--presence-penalty must be a number, got " + presence);
            if (lastN < -1) throw new IllegalArgumentException("--repeat-last-n must be -1 (the whole sequence), 0 (none) or more, got " + lastN);
        }

        public boolean active() {
            return lastN != 0 && (repeat != 1 || frequency != 0 || presence != 0);
        }
    }

    /**
     * llama.cpp's {@code --logit-bias}, OpenAI's {@code logit_bias}: {@code biases[i]} added to the logit of token
     * {@code tokens[i]} (a token named twice gets both); -infinity bans the token. A bias of +infinity is refused: the
     * softmax of an infinite logit is not defined (a large finite bias, such as 100, makes a token all but certain).
     */
    public record LogitBias(int[] tokens, float[] biases) {
        public static final LogitBias NONE = new LogitBias(new int[0], new float[0]);

        public LogitBias {
            if (tokens.length != biases.length) throw new IllegalArgumentException(tokens.length + " tokens but " + biases.length + " biases");
            for (int i = 0; i < tokens.length; i++) {
                if (tokens[i] < 0) throw new IllegalArgumentException("--logit-bias: a token id must be >= 0, got " + tokens[i]);
                if (Float.isNaN(biases[i])) throw new IllegalArgumentException("--logit-bias: token " + tokens[i] + "'s bias is not a number");
                if (biases[i] == Float.POSITIVE_INFINITY) {
                    throw new IllegalArgumentException("--logit-bias: token " + tokens[i] + "'s bias is +infinity, whose softmax is not defined; a large finite one (such as +100) makes the token all but certain");
                }
            }
        }

        public boolean active() {
            return tokens.length > 0;
        }

        /** Refuses a bias a vocabulary of {@code vocabSize} tokens cannot take: an id past it, or every token banned. */
        void check(int vocabSize) {
            java.util.BitSet banned = new java.util.BitSet(vocabSize);
            for (int i = 0; i < tokens.length; i++) {
                if (tokens[i] >= vocabSize) throw new IllegalArgumentException("--logit-bias: token " + tokens[i] + " is not in the vocabulary (ids 0.." + (vocabSize - 1) + ")");
                if (biases[i] == Float.NEGATIVE_INFINITY) banned.set(tokens[i]);
            }
            if (banned.cardinality() == vocabSize) throw new IllegalArgumentException("--logit-bias bans every token of the vocabulary");
        }
    }

    /** A sampler without min-p. */
    public Sampler(int vocabSize, float temperature, int topK, float topP, long seed) {
        this(vocabSize, temperature, topK, topP, 0, seed);
    }

    /** A sampler without penalties. */
    public Sampler(int vocabSize, float temperature, int topK, float topP, float minP, long seed) {
        this(vocabSize, temperature, topK, topP, minP, Penalties.NONE, seed);
    }

    /** A sampler without a logit bias. */
    public Sampler(int vocabSize, float temperature, int topK, float topP, float minP, Penalties penalties, long seed) {
        this(vocabSize, temperature, topK, topP, minP, penalties, LogitBias.NONE, seed);
    }

    public Sampler(int vocabSize, float temperature, int topK, float topP, float minP, Penalties penalties, LogitBias bias, long seed) {
        check(temperature, topK, topP, minP);
        bias.check(vocabSize);
        this.penalties = penalties;
        this.bias = bias;
        this.adjusted = new float[vocabSize];
        this.counts = penalties.active() ? new int[vocabSize] : null;
        this.temperature = temperature;
        this.topK = topK == 0 ? vocabSize : Math.min(topK, vocabSize);
        this.topP = topP;
        this.minP = minP;
        this.random = new SplittableRandom(seed);
        this.probs = new float[vocabSize];
        this.heap = new float[this.topK];
        this.order = topP < 1 ? new long[vocabSize] : null;
    }

    /** Refuses settings no sampler takes, by their command-line names: before a model is loaded for them. */
    public static void check(float temperature, int topK, float topP, float minP) {
        if (temperature < 0 || Float.isNaN(temperature)) throw new IllegalArgumentException("--temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("--top-k must be >= 0 (0 disables it), got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("--top-p must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("--min-p must be in [0, 1] (0 disables it), got " + minP);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    /** A token for the logits at {@code offset}, after the {@link #bias} (penalties need the sequence). */
    public int sample(float[] logits, int offset) {
        return sample(logits, offset, null, 0);
    }

    /**
     * {@link #sample(float[], int)} also after the {@link #penalties} on {@code sequence[0 .. length)}, the tokens so
     * far. The token drawn is the text's next: a {@link #constrain}ing grammar takes it.
     */
    public int sample(float[] logits, int offset, int[] sequence, int length) {
        if (adjusts()) {
            logits = adjust(logits, offset, sequence, length);
            offset = 0;
        }
        int token;
        if (isGreedy()) {
            token = greedy(logits, offset, probs.length);
        } else {
            filter(logits, offset, probs);
            token = draw(probs);
        }
        if (observer != null) observer.chosen(logits, offset, token);
        if (grammar != null) grammar.accept(token);
        return token;
    }

    /** Told of each token {@link #sample} draws, with the logits it was drawn from (after the bias, penalties and grammar). */
    public interface Observer {
        /** {@code token} drawn from {@code logits[offset .. offset + vocab)}, which are valid only during the call. */
        void chosen(float[] logits, int offset, int token);
    }

    /** Tells {@code observer} of each token {@link #sample} draws (null: none), as a server's log-probabilities need. */
    public void observe(Observer observer) {
        this.observer = observer;
    }

    /**
     * Draws only tokens {@code grammar} allows, and advances it by each token {@link #sample} draws (null: none); the
     * caller {@link GrammarConstraint#restart}s it for a new text. {@link #distribution} masks by the grammar's state
     * as it is: speculative decoding moves it along the draft tokens ({@link GrammarConstraint#lookAhead}) and takes
     * the tokens it emits itself.
     */
    public void constrain(GrammarConstraint grammar) {
        this.grammar = grammar;
    }

    /** The grammar that {@link #constrain}s this sampler, or null. */
    GrammarConstraint grammar() {
        return grammar;
    }

    private boolean adjusts() {
        return counts != null || bias.active() || grammar != null;
    }

    /** Whether {@link #penalties} change anything: only then do the sequence-taking methods need the sequence. */
    public boolean penalizes() {
        return counts != null;
    }

    /**
     * The logits at {@code offset} in a buffer of this sampler's, the bias added, then the penalties applied once per
     * distinct token of the window (llama.cpp's order; ids outside the vocabulary, a position whose token is not
     * known, are skipped), then the tokens the grammar does not allow set to -infinity.
     */
    private float[] adjust(float[] logits, int offset, int[] sequence, int length) {
        float[] adjusted = this.adjusted;
        int n = adjusted.length;
        System.arraycopy(logits, offset, adjusted, 0, n);
        int[] biased = bias.tokens();
        for (int i = 0; i < biased.length; i++) adjusted[biased[i]] += bias.biases()[i];
        if (penalizes()) penalize(adjusted, sequence, length);
        if (grammar != null) grammar.mask(adjusted);
        return adjusted;
    }

    private void penalize(float[] adjusted, int[] sequence, int length) {
        int n = adjusted.length;
        int from = penalties.lastN() < 0 ? 0 : Math.max(0, length - penalties.lastN());
        for (int i = from; i < length; i++) {
            int t = sequence[i];
            if (t >= 0 && t < n) counts[t]++;
        }
        for (int i = from; i < length; i++) {
            int t = sequence[i];
            if (t < 0 || t >= n || counts[t] == 0) continue; // penalized already
            float l = adjusted[t];
            l = l <= 0 ? l * penalties.repeat() : l / penalties.repeat();
            adjusted[t] = l - counts[t] * penalties.frequency() - penalties.presence();
            counts[t] = 0;
        }
    }

    /** The argmax, which skips NaN logits past the first; where it is NaN itself, every logit compared was. */
    private static int greedy(float[] logits, int offset, int n) {
        int best = VectorMath.argmax(logits, offset, n);
        if (Float.isNaN(logits[offset + best])) throw notFinite();
        return best;
    }

    /**
     * NaN logits, or an infinite one in a draw (whose softmax it makes NaN), come from weights or arithmetic that are
     * not finite: refused by name, where a draw returned the last id and greedy the first, so that a corrupt file
     * printed one token over and over.
     */
    private static ModelFormatException notFinite() {
        return new ModelFormatException("the model's logits are not finite (NaN or infinite): its weights may hold NaN or infinite values (a corrupt file?)");
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
     * Writes the filtered sampling distribution over the vocabulary into {@code out} (zero outside the kept set), after
     * the {@link #bias}. At temperature 0 it is the one-hot distribution of the argmax.
     */
    public void distribution(float[] logits, int offset, float[] out) {
        distribution(logits, offset, out, null, 0);
    }

    /** {@link #distribution(float[], int, float[])} also after the {@link #penalties} on {@code sequence[0 .. length)}. */
    public void distribution(float[] logits, int offset, float[] out, int[] sequence, int length) {
        if (adjusts()) filter(adjust(logits, offset, sequence, length), 0, out);
        else filter(logits, offset, out);
    }

    /** The distribution of {@code logits} as they are (adjusted already). */
    private void filter(float[] logits, int offset, float[] out) {
        int n = out.length;
        if (isGreedy()) {
            Arrays.fill(out, 0f);
            out[greedy(logits, offset, n)] = 1f;
            return;
        }
        float threshold = topK < n ? kthLargest(logits, offset, n) : Float.NEGATIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[offset + i]); // NaN if any logit is
        if (!Float.isFinite(max)) throw notFinite();
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
        if (minP > 0) minP(out);
    }

    /**
     * Keeps the tokens whose probability is at least {@code minP} times the largest one's, and renormalizes
     * (transformers' MinPLogitsWarper, after top-p as there).
     */
    private void minP(float[] p) {
        float largest = 0;
        for (float v : p) largest = Math.max(largest, v);
        float threshold = minP * largest;
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] < threshold) p[i] = 0;
            sum += p[i];
        }
        float inv = (float) (1 / sum);
        for (int i = 0; i < p.length; i++) p[i] *= inv;
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

    /**
     * Keeps the most likely tokens, the lower id first among equals, until their cumulative probability reaches
     * top-p; renormalizes. The kept tokens' keys (a probability's bits, which order as the floats do, all positive,
     * above the complemented id) form a max-heap in {@link #order}, popped to its end until top-p is reached: no boxed
     * ids, no comparator and no sort (the boxed sort allocated 4.5 KB per sample of a 32000-token vocabulary at top-k
     * 200, and {@code Arrays.sort(long[])} some 78 bytes a call), and only as many pops as tokens kept.
     */
    private void nucleus(float[] p) {
        int count = 0;
        for (int i = 0; i < p.length; i++) if (p[i] > 0) order[count++] = (long) Float.floatToIntBits(p[i]) << 32 | ~i & 0xFFFF_FFFFL;
        for (int i = count / 2 - 1; i >= 0; i--) siftDown(i, count);
        double cumulative = 0;
        int unkept = count; // order[0 .. unkept) is the max-heap, order[unkept .. count) the kept tokens, the most likely last
        while (unkept > 0 && cumulative < topP) {
            long top = order[0];
            order[0] = order[--unkept];
            order[unkept] = top;
            siftDown(0, unkept);
            cumulative += p[id(unkept)];
        }
        for (int i = 0; i < unkept; i++) p[id(i)] = 0;
        float inv = (float) (1 / Math.min(1.0, cumulative));
        for (int i = unkept; i < count; i++) p[id(i)] *= inv;
    }

    /** Restores the max-heap property of {@code order[0 .. size)} below {@code at}. */
    private void siftDown(int at, int size) {
        long key = order[at];
        while (true) {
            int child = 2 * at + 1;
            if (child >= size) break;
            if (child + 1 < size && order[child + 1] > order[child]) child++;
            if (order[child] <= key) break;
            order[at] = order[child];
            at = child;
        }
        order[at] = key;
    }

    /** The token id in {@link #order}{@code [at]}. */
    private int id(int at) {
        return ~(int) order[at];
    }
}
