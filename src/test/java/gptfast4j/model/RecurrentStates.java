package gptfast4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a model with recurrent layers ({@link Recurrent}: Qwen3.5's delta nets, Granite 4.0-H's Mamba-2) must do with
 * their state, whatever the mixer: go on only where a state is kept, keep one after each verified token, and travel in
 * cache files. Each check runs a model over {@code text} (48 tokens).
 */
final class RecurrentStates {
    private RecurrentStates() {
    }

    /**
     * The same computation's logits, run at another time: equal but for the last bits where the JIT compiled a kernel
     * in between (a vector's lanes summed in another order, the vector exponential's last bit: 1.2e-5 seen; a wrong
     * state moves them by 1e-2 and more).
     */
    static final float SAME = 1e-4f;

    /**
     * The recurrent state goes on where it is, and from the two copies a prompt's run keeps (before its last token,
     * and its end), each giving the logits a fresh state gives there; decode steps give a batch's; a start anywhere else
     * is refused, and {@code resumableAt} says where a run can start instead (logits compared to {@link #SAME}).
     */
    static void assertStateGoesOnOnlyWhereItIsKept(Llama m, int[] text) {
        int vocab = m.config.vocabSize();
        Llama.State batch = m.newState(128, 64, 1, KvCache.Type.F32), steps = m.newState(128, 64, 1, KvCache.Type.F32);
        float[] whole = m.forward(batch, text, 0, 40, 0, null).clone();
        float[] last = null;
        for (int p = 0; p < 40; p++) last = m.forward(steps, text[p], p).clone();
        assertArrayEquals(whole, java.util.Arrays.copyOf(last, vocab), 2e-4f);

        Llama.State s = m.newState(128, 64, 1, KvCache.Type.F32);
        float[] prompt = m.forward(s, text, 0, 30, 0, null).clone();
        float[][] decoded = new float[5][];
        for (int p = 30; p < 35; p++) decoded[p - 30] = m.forward(s, text[p], p).clone();
        assertEquals(35, s.resumableAt(40));
        assertEquals(35, s.resumableAt(35));
        assertEquals(30, s.resumableAt(34));
        assertEquals(29, s.resumableAt(29));
        assertEquals(0, s.resumableAt(28));
        IllegalStateException refused = assertThrows(IllegalStateException.class, () -> m.forward(s, text, 20, 5, 20, null));
        assertTrue(refused.getMessage().contains("cannot go back to an earlier position"), refused.getMessage());
        // from the prompt's end, the same decode steps again: the same logits
        m.forward(s, text, 0, 30, 0, null); // the refusal left the state of no position: run again from 0
        for (int p = 30; p < 33; p++) m.forward(s, text[40 + p - 30], p);
        for (int p = 30; p < 35; p++) assertArrayEquals(decoded[p - 30], m.forward(s, text[p], p), SAME, "position " + p);
        // from before the prompt's last token: its logits again (a decode step's arithmetic, not the batch's)
        assertArrayEquals(prompt, m.forward(s, text, 29, 1, 29, null), 2e-4f);
    }

    /**
     * A speculative verification keeps the recurrent state after each of its tokens: each position's logits are its
     * decode step's, and a generation that accepts some of the drafts goes on from the state after the last one
     * accepted, as plain decoding (to {@link #SAME}), over several rounds (the copies used in turn), a round of more tokens
     * than {@link Llama#EXACT_BATCH} among them.
     */
    static void assertVerificationsKeepTheStateAfterEachToken(Llama m, int[] text) {
        int vocab = m.config.vocabSize();
        Llama.State plain = m.newState(128, 64, 1, KvCache.Type.F16), spec = m.newState(128, 12, 12, KvCache.Type.F16);
        m.forward(plain, text, 0, 10, 0, null);
        m.forward(spec, text, 0, 10, 0, null);
        float[][] decoded = new float[48][];
        for (int p = 10; p < 48; p++) decoded[p] = m.forward(plain, text[p], p).clone();
        // rounds of drafts: {first position, tokens verified, drafts accepted}
        int[][] rounds = {{10, 6, 2}, {13, 4, 0}, {14, 12, 10}, {25, 5, 4}, {30, 3, 2}, {33, 6, 5}};
        for (int[] round : rounds) {
            int from = round[0], n = round[1], accepted = round[2];
            float[][] got = new float[n][];
            m.verify(spec, text, from, n, from, (position, logits, offset) -> got[position - from] = java.util.Arrays.copyOfRange(logits, offset, offset + vocab));
            for (int i = 0; i < n; i++) assertArrayEquals(decoded[from + i], got[i], SAME, "position " + (from + i));
            assertEquals(from + accepted + 1, spec.resumableAt(from + accepted + 1), "round from " + from);
        }
        // after the last round (6 verified, 5 accepted), plain steps on from the accepted's end
        for (int p = 39; p < 45; p++) assertArrayEquals(decoded[p], java.util.Arrays.copyOf(m.forward(spec, text[p], p), vocab), SAME, "position " + p);
    }

    /**
     * A cache file holds the recurrent layers' state after the positions' keys and values: read into a fresh state, it
     * goes on as the state it was written from (to {@link #SAME}).
     */
    static void assertCacheFilesHoldTheState(Llama m, int[] text) throws java.io.IOException {
        Llama.State s = m.newState(128, 64, 1, KvCache.Type.F16), read = m.newState(128, 64, 1, KvCache.Type.F16);
        m.forward(s, text, 0, 30, 0, null);
        for (int p = 30; p < 33; p++) m.forward(s, text[p], p);
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        s.writeCache(java.nio.channels.Channels.newChannel(bytes), 33);
        assertEquals(33 * s.cacheBytesPerPosition() + s.cacheStateBytes(), bytes.size());
        read.readCache(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(bytes.toByteArray())), 33);
        assertEquals(33, read.resumableAt(40));
        for (int p = 33; p < 38; p++) assertArrayEquals(m.forward(s, text[p], p).clone(), m.forward(read, text[p], p), SAME, "position " + p);
    }
}
