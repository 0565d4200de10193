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
    public final Advanced advanced;
    /** With DRY: its scratch; null without. */
    private final Dry.Scratch dryScratch;
    /** Mirostat's running maximum surprise, in bits. */
    private float mu;

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

    /**
     * llama.cpp's other samplers, each off by default. In this sampler's order (transformers', temperature first, as
     * for top-p and min-p): top-n-sigma keeps the logits within {@code topNSigma} standard deviations of the largest
     * (with top-k); locally typical sampling keeps the tokens whose surprise is nearest the distribution's entropy until
     * their probabilities sum past {@code typicalP} (after top-k, before top-p); XTC ("exclude top choices"), with
     * probability {@code xtcProbability}, drops every token at or above {@code xtcThreshold} but the least likely of
     * them (last); dynamic temperature draws at a temperature within {@code dynatempRange} of the set one, higher as
     * the kept tokens' entropy (at temperature 1, normalized by its most) raised to {@code dynatempExponent} is;
     * Mirostat (1, or 2 for 2.0) replaces top-k, top-p, min-p and the rest, keeping the surprise of the tokens drawn
     * near {@code mirostatTau} bits by a running limit it adjusts by {@code mirostatEta} per token; DRY lowers the
     * logits of tokens that would extend a repetition (with the penalties).
     */
    public record Advanced(float typicalP, float topNSigma, float xtcProbability, float xtcThreshold, float dynatempRange, float dynatempExponent,
                           int mirostat, float mirostatTau, float mirostatEta, Dry dry) {
        public static final Advanced NONE = new Advanced(1, -1, 0, 0.1f, 0, 1, 0, 5, 0.1f, null);
        /** Mirostat 1.0's count of most likely tokens its estimate of the distribution's Zipf exponent reads. */
        private static final int MIROSTAT_M = 100;

        public Advanced {
            if (!(typicalP > 0 && typicalP <= 1)) throw new IllegalArgumentException("--typical must be in (0, 1] (1 disables it), got " + typicalP);
            if (Float.isNaN(topNSigma) || Float.isInfinite(topNSigma)) throw new IllegalArgumentException("--top-nsigma must be a number (<= 0 disables it), got " + topNSigma);
            if (!(xtcProbability >= 0 && xtcProbability <= 1)) throw new IllegalArgumentException("--xtc-probability must be in [0, 1] (0 disables it), got " + xtcProbability);
            if (!(xtcThreshold >= 0 && xtcThreshold <= 1)) throw new IllegalArgumentException("--xtc-threshold must be in [0, 1] (above 0.5 disables XTC), got " + xtcThreshold);
            if (!(dynatempRange >= 0) || Float.isInfinite(dynatempRange)) throw new IllegalArgumentException("--dynatemp-range must be >= 0 (0 disables it), got " + dynatempRange);
            if (!(dynatempExponent > 0) || Float.isInfinite(dynatempExponent)) throw new IllegalArgumentException("--dynatemp-exp must be > 0, got " + dynatempExponent);
            if (mirostat < 0 || mirostat > 2) throw new IllegalArgumentException("--mirostat must be 0 (off), 1 (Mirostat) or 2 (Mirostat 2.0), got " + mirostat);
            if (!(mirostatTau > 0) || Float.isInfinite(mirostatTau)) throw new IllegalArgumentException("--mirostat-ent must be > 0, got " + mirostatTau);
            if (!(mirostatEta > 0) || Float.isInfinite(mirostatEta)) throw new IllegalArgumentException("--mirostat-lr must be > 0, got " + mirostatEta);
            if (dry != null && !dry.active()) dry = null;
        }

        /** The same with {@code dry} (null or inactive: none). */
        public Advanced withDry(Dry dry) {
            return new Advanced(typicalP, topNSigma, xtcProbability, xtcThreshold, dynatempRange, dynatempExponent, mirostat, mirostatTau, mirostatEta, dry);
        }

        boolean xtc() {
            return xtcProbability > 0 && xtcThreshold <= 0.5f;
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

    /** A sampler without llama.cpp's other samplers. */
    public Sampler(int vocabSize, float temperature, int topK, float topP, float minP, Penalties penalties, LogitBias bias, long seed) {
        this(vocabSize, temperature, topK, topP, minP, penalties, bias, Advanced.NONE, seed);
    }

    public Sampler(int vocabSize, float temperature, int topK, float topP, float minP, Penalties penalties, LogitBias bias, Advanced advanced, long seed) {
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
        this.order = topP < 1 || advanced.typicalP() < 1 || advanced.mirostat() == 1 ? new long[vocabSize] : null;
        this.advanced = advanced;
        this.dryScratch = advanced.dry() != null ? new Dry.Scratch(vocabSize) : null;
        restart();
    }

    /** Starts a new text: Mirostat's running limit back at twice its target surprise. */
    public void restart() {
        mu = 2 * advanced.mirostatTau();
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
            // Mirostat: the limit moves by how far the surprise drawn was from the target
            if (advanced.mirostat() != 0) mu -= advanced.mirostatEta() * ((float) -log2(probs[token]) - advanced.mirostatTau());
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
        return readsSequence() || bias.active() || grammar != null;
    }

    /** Whether {@link #penalties} or DRY change anything: only then do the sequence-taking methods need the sequence. */
    public boolean readsSequence() {
        return counts != null || dryScratch != null;
    }

    /**
     * The logits at {@code offset} in a buffer of this sampler's, the bias added, then the penalties applied once per
     * distinct token of the window (llama.cpp's order; ids outside the vocabulary, a position whose token is not
     * known, are skipped), then DRY's, then the tokens the grammar does not allow set to -infinity.
     */
    private float[] adjust(float[] logits, int offset, int[] sequence, int length) {
        float[] adjusted = this.adjusted;
        int n = adjusted.length;
        System.arraycopy(logits, offset, adjusted, 0, n);
        int[] biased = bias.tokens();
        for (int i = 0; i < biased.length; i++) adjusted[biased[i]] += bias.biases()[i];
        if (counts != null) penalize(adjusted, sequence, length);
        if (dryScratch != null && sequence != null) advanced.dry().apply(adjusted, sequence, length, dryScratch);
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
        boolean mirostat = advanced.mirostat() != 0;
        float threshold = topK < n && !mirostat ? kthLargest(logits, offset, n) : Float.NEGATIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[offset + i]); // NaN if any logit is
        if (!Float.isFinite(max)) throw notFinite();
        if (advanced.topNSigma() > 0 && !mirostat) threshold = Math.max(threshold, max - advanced.topNSigma() * deviation(logits, offset, n));
        softmax(logits, offset, max, threshold, temperature, out);
        if (mirostat) {
            if (advanced.mirostat() == 1) mirostat(out);
            else keepAtLeast(out, (float) Math.pow(2, -mu)); // surprise -log2(p) at most mu
            return;
        }
        if (advanced.typicalP() < 1) typical(out);
        if (topP < 1) nucleus(out);
        if (minP > 0) minP(out);
        if (advanced.xtc() && random.nextDouble() < advanced.xtcProbability()) excludeTopChoices(out);
        if (advanced.dynatempRange() > 0) dynamicTemperature(logits, offset, max, out);
    }

    /** {@code out} the softmax of {@code logits / temperature} over the logits at or above {@code threshold}, zero elsewhere. */
    private static void softmax(float[] logits, int offset, float max, float threshold, float temperature, float[] out) {
        double sum = 0;
        for (int i = 0; i < out.length; i++) {
            float l = logits[offset + i];
            float p = l >= threshold ? (float) Math.exp((l - max) / temperature) : 0f;
            out[i] = p;
            sum += p;
        }
        normalize(out, sum);
    }

    private static void normalize(float[] p, double sum) {
        float inv = (float) (1 / sum);
        for (int i = 0; i < p.length; i++) p[i] *= inv;
    }

    private static double log2(double p) {
        return Math.log(p) / Math.log(2);
    }

    /** The standard deviation of the finite logits (top-n-sigma's, as llama.cpp's: -infinity ones left out). */
    private static float deviation(float[] logits, int offset, int n) {
        double sum = 0;
        int count = 0;
        for (int i = 0; i < n; i++) {
            float l = logits[offset + i];
            if (l != Float.NEGATIVE_INFINITY) {
                sum += l;
                count++;
            }
        }
        double mean = sum / count, squares = 0;
        for (int i = 0; i < n; i++) {
            float l = logits[offset + i];
            if (l != Float.NEGATIVE_INFINITY) squares += (l - mean) * (l - mean);
        }
        return (float) Math.sqrt(squares / count);
    }

    /** Keeps the tokens of probability at least {@code least} (the most likely one where none is), and renormalizes. */
    private static void keepAtLeast(float[] p, float least) {
        int best = 0;
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > p[best]) best = i;
            if (p[i] < least) p[i] = 0;
            sum += p[i];
        }
        if (sum == 0) {
            p[best] = 1;
            return;
        }
        normalize(p, sum);
    }

    /**
     * Locally typical sampling (Meister et al.): the tokens ordered by how far their surprise {@code -ln p} lies from
     * the entropy, kept in that order until their probabilities sum past {@code typicalP}; renormalized.
     */
    private void typical(float[] p) {
        double entropy = 0;
        for (float v : p) if (v > 0) entropy -= v * Math.log(v);
        int count = 0;
        for (int i = 0; i < p.length; i++) {
            // the smallest distance first: its complement's bits order as the float does (non-negative), above the id
            if (p[i] > 0) order[count++] = (long) ~Float.floatToIntBits((float) Math.abs(-Math.log(p[i]) - entropy)) << 32 | ~i & 0xFFFF_FFFFL;
        }
        popUntil(p, count, advanced.typicalP(), true);
    }

    /**
     * Mirostat 1.0 (Basu et al.): the distribution's Zipf exponent estimated from its 100 most likely tokens, from it
     * the top-k whose expected surprise is the running limit {@code mu}, and that top-k kept; renormalized.
     */
    private void mirostat(float[] p) {
        int count = 0;
        for (int i = 0; i < p.length; i++) if (p[i] > 0) order[count++] = (long) Float.floatToIntBits(p[i]) << 32 | ~i & 0xFFFF_FFFFL;
        for (int i = count / 2 - 1; i >= 0; i--) siftDown(i, count);
        // the m most likely, in order, popped to the heap's end
        int m = Math.min(Advanced.MIROSTAT_M, count), unkept = count;
        for (int i = 0; i < m; i++) {
            long top = order[0];
            order[0] = order[--unkept];
            order[unkept] = top;
            siftDown(0, unkept);
        }
        float tiBi = 0, tiSquared = 0;
        for (int i = 0; i < m - 1; i++) {
            float ti = (float) Math.log((float) (i + 2) / (i + 1)), bi = (float) Math.log(p[id(count - 1 - i)] / p[id(count - 2 - i)]);
            tiBi += ti * bi;
            tiSquared += ti * ti;
        }
        float s = tiBi / tiSquared, epsilon = s - 1;
        float k = (float) Math.pow(epsilon * Math.pow(2, mu) / (1 - Math.pow(p.length, -epsilon)), 1 / s);
        int keep = Float.isNaN(k) ? 1 : (int) Math.max(1, Math.min(k, count));
        for (int i = m; i < keep; i++) { // more than the m popped: pop on
            long top = order[0];
            order[0] = order[--unkept];
            order[unkept] = top;
            siftDown(0, unkept);
        }
        // the kept are the last `keep` of order, the most likely last
        double sum = 0;
        for (int i = 0; i < count - keep; i++) p[id(i)] = 0;
        for (int i = count - keep; i < count; i++) sum += p[id(i)];
        normalize(p, sum);
    }

    /**
     * XTC: drops every token whose probability is at least {@code xtcThreshold} but the least likely of them, where
     * there are two or more; renormalized.
     */
    private void excludeTopChoices(float[] p) {
        float threshold = advanced.xtcThreshold();
        int above = 0, kept = -1;
        for (int i = 0; i < p.length; i++) {
            if (p[i] >= threshold) {
                above++;
                if (kept < 0 || p[i] < p[kept] || p[i] == p[kept] && i > kept) kept = i; // ties: the higher id is later in a stable sort
            }
        }
        if (above < 2) return;
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] >= threshold && i != kept) p[i] = 0;
            sum += p[i];
        }
        normalize(p, sum);
    }

    /**
     * Dynamic temperature: the kept tokens' entropy at temperature 1 over its most ({@code ln} of their count), raised
     * to {@code dynatempExponent}, places the temperature between {@code temperature - dynatempRange} (at least 0) and
     * {@code temperature + dynatempRange}; the kept tokens' probabilities at it.
     */
    private void dynamicTemperature(float[] logits, int offset, float max, float[] out) {
        int kept = 0;
        double sum = 0;
        for (int i = 0; i < out.length; i++) {
            if (out[i] > 0) {
                kept++;
                sum += Math.exp(logits[offset + i] - max);
            }
        }
        if (kept <= 1) return;
        double entropy = 0;
        for (int i = 0; i < out.length; i++) {
            if (out[i] > 0) {
                double q = Math.exp(logits[offset + i] - max) / sum;
                if (q > 0) entropy -= q * Math.log(q);
            }
        }
        float low = Math.max(0, temperature - advanced.dynatempRange()), high = temperature + advanced.dynatempRange();
        float t = low + (high - low) * (float) Math.pow(entropy / Math.log(kept), advanced.dynatempExponent());
        if (t <= 0) { // llama.cpp's temperature 0: the most likely alone
            int best = -1;
            for (int i = 0; i < out.length; i++) if (out[i] > 0 && (best < 0 || logits[offset + i] > logits[offset + best])) best = i;
            Arrays.fill(out, 0f);
            out[best] = 1f;
            return;
        }
        double total = 0;
        for (int i = 0; i < out.length; i++) {
            if (out[i] > 0) total += out[i] = (float) Math.exp((logits[offset + i] - max) / t);
        }
        normalize(out, total);
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
        popUntil(p, count, topP, false);
    }

    /**
     * Keeps the tokens of {@link #order}{@code [0 .. count)}, the largest key first, until their probabilities sum to
     * {@code target} (past it where {@code past}), zeroes the others and renormalizes: the keys form a max-heap, popped to
     * its end.
     */
    private void popUntil(float[] p, int count, float target, boolean past) {
        for (int i = count / 2 - 1; i >= 0; i--) siftDown(i, count);
        double cumulative = 0;
        int unkept = count; // order[0 .. unkept) is the max-heap, order[unkept .. count) the kept tokens, the first popped last
        while (unkept > 0 && (past ? cumulative <= target : cumulative < target)) {
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
