package gptfast4j.generate;

import gptfast4j.model.Llama;

import java.util.Arrays;

/**
 * A small model of the same vocabulary as draft: it catches up on the committed tokens it has not run (one batched
 * forward pass from the first position where its cache and the sequence differ), then samples k tokens one by one with
 * the target's sampler.
 */
public final class DraftModel implements Drafter {
    private final Llama model;
    private final Llama.State state;
    /** The tokens the draft's KV cache holds, at positions {@code 0 .. cached}: committed ones and drafts. */
    private final int[] ran;
    private int cached;

    public DraftModel(Llama model, Llama.State state) {
        this.model = model;
        this.state = state;
        this.ran = new int[state.contextLength];
    }

    @Override
    public boolean startDecoding() {
        return model.startDecoding();
    }

    @Override
    public void shift(int keep, int discard) {
        if (cached > keep + discard) {
            model.shift(state, keep, discard, cached);
            System.arraycopy(ran, keep + discard, ran, keep, cached - keep - discard);
            cached -= discard;
        } else {
            cached = Math.min(cached, keep);
        }
    }

    @Override
    public boolean deterministic() {
        return false;
    }

    @Override
    public int propose(int[] sequence, int length, int k, int[] tokens, float[][] probs, Sampler sampler) {
        k = Math.min(k, state.contextLength - length);
        if (k <= 0) return 0;
        // run again from the first position whose token is not the sequence's (a rejected draft, or a chat's next turn
        // after the last reply), and at least the last token, whose logits draw the first draft
        int from = Math.min(cached, length - 1);
        int differs = Arrays.mismatch(ran, 0, from, sequence, 0, from);
        if (differs >= 0) from = differs;
        float[] logits = model.forward(state, sequence, from, length - from, from, null);
        System.arraycopy(sequence, from, ran, from, length - from);
        cached = length;
        // a grammar's state moved along the proposal, so that each draft token is drawn where the grammar allows it
        GrammarConstraint grammar = sampler.grammar();
        GrammarConstraint.State before = grammar != null ? grammar.mark() : null;
        for (int i = 0; i < k; i++) {
            sampler.distribution(logits, 0, probs[i]);
            tokens[i] = sampler.isGreedy() ? argmax(probs[i]) : sampler.draw(probs[i]);
            if (grammar != null) grammar.lookAhead(tokens[i]);
            if (i + 1 < k) {
                logits = model.forward(state, tokens[i], length + i);
                ran[cached++] = tokens[i];
            }
        }
        if (grammar != null) grammar.rewind(before);
        return k;
    }

    private static int argmax(float[] p) {
        int best = 0;
        for (int i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
        return best;
    }
}
