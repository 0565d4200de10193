package gptfast4j.generate;

import gptfast4j.model.Llama;

/**
 * A small model of the same vocabulary as draft: it catches up on the committed tokens it has not seen (one batched
 * forward pass), then samples k tokens one by one with the same sampling settings as the target.
 */
public final class DraftModel implements Drafter {
    private final Llama model;
    private final Llama.State state;
    private final Sampler sampler;
    /** Positions of the committed sequence held in the draft's KV cache; later entries are stale drafts. */
    private int cached;

    public DraftModel(Llama model, Llama.State state, Sampler sampler) {
        this.model = model;
        this.state = state;
        this.sampler = sampler;
    }

    @Override
    public boolean startDecoding() {
        return model.startDecoding();
    }

    @Override
    public boolean deterministic() {
        return false;
    }

    @Override
    public int propose(int[] sequence, int length, int k, int[] tokens, float[][] probs) {
        k = Math.min(k, state.contextLength - length);
        if (k <= 0) return 0;
        // positions past the last commit may hold rejected drafts: run everything from there again
        cached = Math.min(cached, length - 1);
        float[] logits = model.forward(state, sequence, cached, length - cached, cached, null);
        cached = length;
        for (int i = 0; i < k; i++) {
            sampler.distribution(logits, 0, probs[i]);
            tokens[i] = sampler.isGreedy() ? argmax(probs[i]) : sampler.draw(probs[i]);
            if (i + 1 < k) logits = model.forward(state, tokens[i], length + i);
        }
        return k;
    }

    private static int argmax(float[] p) {
        int best = 0;
        for (int i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
        return best;
    }
}
