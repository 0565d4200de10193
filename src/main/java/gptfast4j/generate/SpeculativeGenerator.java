package gptfast4j.generate;

import gptfast4j.model.Llama;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Speculative decoding (Leviathan et al. 2023; Chen et al. 2023; gpt-fast's {@code speculative_decode}): a drafter
 * proposes k tokens, the target verifies the current token and all k in batched forward passes ({@link Llama#verify}:
 * one where k + 1 is at most {@link Llama#EXACT_BATCH}, each token's logits its decode step's), and each draft token
 * d_i is kept with probability {@code min(1, p_i(d_i) / q_i(d_i))}. At the first rejection the token is drawn from
 * {@code normalize(max(p_i - q_i, 0))}; when all k are kept a bonus token is drawn from the target's next
 * distribution. The output distribution is exactly the target's; at temperature 0 this is exact greedy verification.
 * Rejected positions of either KV cache are simply overwritten later, since every position is written before it is
 * attended to.
 */
public final class SpeculativeGenerator implements Generation {
    /** Decides whether draft token {@code token} is accepted given target probabilities p and draft probabilities q. */
    @FunctionalInterface
    public interface AcceptanceRule {
        boolean accept(float p, float q, double uniform);
    }

    /** The rule that keeps the target's distribution. */
    public static final AcceptanceRule LOSSLESS = (p, q, u) -> u * q < p;

    private final Llama target;
    private final Llama.State state;
    private final Drafter drafter;
    private final Generator plain;
    private final int k;
    private final AcceptanceRule rule;
    private final int[] draft;
    private final float[][] q;
    private final float[][] p;
    private final int[] batch;
    private final long[] histogram;
    /** The sequence so far, for the drafter: {@link #held} tokens, up to the context and one chosen past it. */
    private final int[] history;
    private int held;
    private final PromptMemory memory;

    public SpeculativeGenerator(Llama target, Llama.State state, int[] eos, Drafter drafter, int k, AcceptanceRule rule) {
        if (k < 1) throw new IllegalArgumentException("--speculate-k must be at least 1, got " + k);
        if (state.maxBatch < k + 1) throw new IllegalArgumentException("the target state's batch must hold k + 1 tokens");
        this.target = target;
        this.state = state;
        this.drafter = drafter;
        this.plain = new Generator(target, state, eos);
        this.k = k;
        this.rule = rule;
        int vocab = target.config.vocabSize();
        draft = new int[k];
        q = new float[k][vocab];
        p = new float[k + 1][vocab];
        batch = new int[k + 1];
        // position P's logits follow the sequence's tokens 0 .. P, the draft's among them (step puts them in place)
        // and, with a grammar, its state after them: the positions come in order, and the grammar moves on by the token
        // each runs (batch[i], draft token i - 1) before the distribution of position verifiedFrom + i
        distributions = (position, logits, offset) -> {
            int i = position - verifiedFrom;
            if (verifyingGrammar != null && i > 0) verifyingGrammar.lookAhead(batch[i]);
            verifying.distribution(logits, offset, p[i], verifyingSequence, position + 1);
        };
        histogram = new long[k + 1];
        history = new int[state.contextLength + 1];
        memory = new PromptMemory(vocab);
    }

    /** How many verification steps accepted 0, 1, ..., k draft tokens (since construction). */
    public long[] acceptanceHistogram() {
        return histogram.clone();
    }

    public double meanAccepted() {
        long steps = 0, accepted = 0;
        for (int a = 0; a <= k; a++) {
            steps += histogram[a];
            accepted += a * histogram[a];
        }
        return steps == 0 ? 0 : (double) accepted / steps;
    }

    /**
     * {@link Generation#generate}: continues the sequence whose first {@code startPos} positions are in the
     * target's KV cache with {@code prompt}. Those positions' tokens are the ones this generator's earlier calls put
     * there (their prompts and output), which it keeps for its drafter, so {@code startPos} may not pass the tokens it
     * holds (the last call's prompt and output, and what came before); what it holds past {@code startPos} is replaced
     * by the prompt.
     */
    @Override
    public Generator.Result generate(int[] prompt, int startPos, int maxNewTokens, Sampler sampler, IntPredicate onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt must hold at least one token (BOS)");
        if (startPos < 0 || startPos > held) {
            throw new IllegalArgumentException("start position " + startPos + " is past the " + held + " tokens this generator holds");
        }
        if (startPos + prompt.length > state.contextLength) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens does not fit the context length "
                    + (state.contextLength - startPos));
        }
        System.arraycopy(prompt, 0, history, startPos, prompt.length);
        held = startPos; // until the prompt has run
        boolean reused = memory.holds(state, prompt, startPos);
        // a prompt of one token runs as a decode step, which moves the target's weights first: timed apart (Generator)
        long promptLayoutNanos = !reused && prompt.length == 1 ? Generator.timeStartDecoding(target, null) : 0;
        long t0 = System.nanoTime();
        float[] logits = memory.run(target, state, prompt, startPos);
        int first = startPos + prompt.length, length = first;
        int current = maxNewTokens > 0 ? sampler.sample(logits, 0, history, first) : -1; // 0: the prompt into the cache, nothing drawn
        long t1 = System.nanoTime();
        int generated = 0;
        boolean eosSeen = false;
        long layoutNanos = 0;
        outer:
        while (generated < maxNewTokens) {
            // `current` is chosen but not yet in the target's cache; it sits at position `length`
            if (plain.isEos(current)) {
                eosSeen = true;
                break;
            }
            history[length++] = current;
            generated++;
            if (!onToken.test(current) || generated == maxNewTokens || length >= state.contextLength) break;
            if (generated == 1) layoutNanos = Generator.timeStartDecoding(target, drafter);
            int budget = Math.min(Math.min(k, maxNewTokens - generated), state.contextLength - length);
            int proposed = budget <= 0 ? 0 : drafter.propose(history, length, budget, draft, q, sampler);
            int next = step(history, length, proposed, sampler);
            for (int i = 0; i < acceptedLast; i++) {
                int token = draft[i];
                if (plain.isEos(token)) {
                    eosSeen = true;
                    break outer;
                }
                history[length++] = token;
                generated++;
                if (!onToken.test(token) || generated == maxNewTokens) break outer;
            }
            current = next;
        }
        long t2 = System.nanoTime();
        held = length;
        // tokens/s counts the tokens the decode phase produced (the first one came from prefill), not forward passes
        // the last token counts as not cached unless an EOS followed it, as plain decoding leaves it (the verification
        // may have run it, and a continuation runs it again), so that a chat continues from the same positions and
        // arithmetic with and without speculation
        return new Generator.Result(Arrays.copyOfRange(history, first, length), prompt.length, t1 - t0,
                Math.max(0, generated - 1), t2 - t1 - layoutNanos, promptLayoutNanos + layoutNanos, eosSeen,
                eosSeen ? generated : Math.max(0, generated - 1), reused);
    }

    /**
     * {@link Llama#shift} of the target's cache, whose first {@code end} positions hold the sequence, and of the
     * drafter's: the sequence this generator holds loses its tokens {@code keep .. keep + discard}, and a later
     * {@link #generate} starts at most {@code discard} positions lower.
     */
    @Override
    public void shift(int keep, int discard, int end) {
        if (end > held) throw new IllegalArgumentException("position " + end + " is past the " + held + " tokens this generator holds");
        memory.forget();
        target.shift(state, keep, discard, end);
        drafter.shift(keep, discard);
        System.arraycopy(history, keep + discard, history, keep, held - keep - discard);
        held -= discard;
    }

    /** {@link Generation#prefill}: the target's cache and this generator's sequence; the drafter catches up when it next proposes. */
    @Override
    public void prefill(int[] tokens) {
        memory.forget(); // before the cache changes, should the pass fail
        target.forward(state, tokens, 0, tokens.length, 0, null);
        restored(tokens);
    }

    /** {@link Generation#restored}: this generator's sequence; the drafter catches up when it next proposes. */
    @Override
    public void restored(int[] tokens) {
        memory.forget();
        System.arraycopy(tokens, 0, history, 0, tokens.length);
        held = tokens.length;
    }

    private int acceptedLast;
    /** The sampler, first position and sequence of the verification under way, for {@link #distributions}. */
    private Sampler verifying;
    private int verifiedFrom;
    private int[] verifyingSequence;
    private GrammarConstraint verifyingGrammar;
    /** The target's distributions of a verification's positions into p: bound once, as a step allocates nothing. */
    private final Llama.LogitsSink distributions;

    /** Draft tokens accepted by the last {@link #step}. */
    int acceptedLast() {
        return acceptedLast;
    }

    /** Puts a proposal made outside {@link #generate} into place for {@link #step} (tests drive steps directly). */
    void load(int[] tokens, float[][] probs, int proposed) {
        System.arraycopy(tokens, 0, draft, 0, proposed);
        for (int i = 0; i < proposed; i++) System.arraycopy(probs[i], 0, q[i], 0, probs[i].length);
    }

    /**
     * Verifies {@code proposed} draft tokens after {@code sequence[0 .. length)} (whose last token is not yet in the
     * target's cache). Sets {@link #acceptedLast} and returns the token that follows the accepted ones.
     */
    int step(int[] sequence, int length, int proposed, Sampler sampler) {
        target.startDecoding();
        int pos = length - 1;
        batch[0] = sequence[pos];
        System.arraycopy(draft, 0, batch, 1, proposed);
        // a penalizing sampler sees each position's sequence: the draft's tokens go after it, where the accepted ones
        // will stand (the sequence has room: a draft never runs past the context)
        if (sampler.readsSequence()) System.arraycopy(draft, 0, sequence, length, proposed);
        // computed exactly as the target would decode the tokens one by one, so that greedy output is token-identical
        // to plain decoding for every k, near-ties included
        verifying = sampler;
        verifiedFrom = pos;
        verifyingSequence = sequence;
        GrammarConstraint grammar = sampler.grammar();
        GrammarConstraint.State before = grammar != null ? grammar.mark() : null;
        verifyingGrammar = grammar;
        target.verify(state, batch, 0, proposed + 1, pos, distributions);
        verifying = null;
        verifyingSequence = null;
        verifyingGrammar = null;
        if (grammar != null) grammar.rewind(before);
        int accepted = 0;
        int next = -1;
        for (int i = 0; i < proposed; i++) {
            int d = draft[i];
            float qd = drafter.deterministic() ? 1f : q[i][d];
            boolean keep = sampler.isGreedy() ? p[i][d] == 1f : rule.accept(p[i][d], qd, sampler.nextUniform());
            if (!keep) {
                next = sampler.isGreedy() ? argmax(p[i]) : sampler.draw(residual(p[i], i, d));
                break;
            }
            accepted++;
        }
        if (next < 0) next = sampler.isGreedy() ? argmax(p[proposed]) : sampler.draw(p[proposed]);
        if (grammar != null) { // the tokens this step emits, to an end-of-text token, in the grammar's state
            boolean ended = false;
            for (int i = 0; i < accepted && !ended; i++) {
                grammar.accept(draft[i]);
                ended = plain.isEos(draft[i]);
            }
            if (!ended) grammar.accept(next);
        }
        histogram[accepted]++;
        acceptedLast = accepted;
        return next;
    }

    /** {@code max(p - q, 0)} in place of p (draw normalizes); for a deterministic draft q is one-hot at d. */
    private float[] residual(float[] pi, int i, int d) {
        if (drafter.deterministic()) {
            pi[d] = 0;
        } else {
            float[] qi = q[i];
            for (int t = 0; t < pi.length; t++) pi[t] = Math.max(pi[t] - qi[t], 0f);
        }
        return pi;
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
