package gptfast4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import gptfast4j.tensor.VectorMath;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Compares a checkpoint with a llama.cpp reference document (schema in ../shared/reference/README.md, section 2):
 * prompt token ids exactly; every prompt position's logits and the first gen_logits steps within
 * {@code |Δ| <= 1e-4 + 1e-5 |logit|} (the README's tolerance for F32 math); the greedy continuation token for token,
 * up to the first step whose top-1 margin is under 1e-3 (where F32 rounding may flip the argmax).
 */
final class ReferenceCheck {
    static final double ABS = 1e-4, REL = 1e-5, MARGIN = 1e-3;

    private ReferenceCheck() {
    }

    /** Returns the number of greedy tokens compared. */
    static int check(Checkpoint ckpt, JsonNode ref) {
        return check(ckpt, ref, false, 0);
    }

    /**
     * As {@link #check(Checkpoint, JsonNode)}; with {@code tokenByToken} the prompt runs as decode steps, one token
     * at a time, rather than as one batch, so that every logit compared is a decode step's, and up to
     * {@code isolatedMisses} prompt positions may be off if the position after each matches (a rounding that went
     * the other way at that position alone).
     */
    static int check(Checkpoint ckpt, JsonNode ref, boolean tokenByToken, int isolatedMisses) {
        return check(ckpt, ref, tokenByToken, isolatedMisses, MARGIN);
    }

    /** As above, the greedy tokens compared while the reference's top-1 margin is at least {@code margin}. */
    static int check(Checkpoint ckpt, JsonNode ref, boolean tokenByToken, int isolatedMisses, double margin) {
        Llama model = ckpt.model();
        int vocab = model.config.vocabSize();
        assertEquals(ref.path("n_vocab").asInt(), vocab, "vocab size");
        int compared = 0;
        for (JsonNode c : ref.path("cases")) {
            String prompt = c.path("prompt").asText();
            int[] expectedIds = Shared.ints(c.path("prompt_ids"));
            int[] text = ckpt.tokenizer().encode(prompt);
            int[] ids = new int[text.length + 1];
            ids[0] = ckpt.bos();
            System.arraycopy(text, 0, ids, 1, text.length);
            assertArrayEquals(expectedIds, ids, "prompt ids of '" + prompt + "'");

            int[] gen = Shared.ints(c.path("gen_ids"));
            Llama.State state = model.newState(ids.length + gen.length, 16);
            JsonNode promptLogits = c.path("prompt_logits");
            float[] last = new float[vocab];
            if (tokenByToken) {
                int missed = -2;
                for (int pos = 0; pos < ids.length; pos++) {
                    float[] logits = model.forward(state, ids[pos], pos);
                    String where = "'" + prompt + "' prompt position " + pos + ", decoded";
                    if (isolatedMisses > 0 && missed != pos - 1 && pos < ids.length - 1 && !within(promptLogits.get(pos), logits, 0, vocab)) {
                        isolatedMisses--;
                        missed = pos;
                    } else {
                        compare(promptLogits.get(pos), logits, 0, vocab, where);
                    }
                    System.arraycopy(logits, 0, last, 0, vocab);
                }
            } else {
                model.forward(state, ids, 0, ids.length, 0, (pos, logits, offset) ->
                        compare(promptLogits.get(pos), logits, offset, vocab, "'" + prompt + "' prompt position " + pos));
                System.arraycopy(state.logits, (ids.length - 1) % 16 * vocab, last, 0, vocab);
            }
            // the last prompt row chooses gen[0]; feed the reference tokens (teacher forcing) and compare each choice
            JsonNode margins = c.path("gen_top1_margin");
            JsonNode genLogits = c.path("gen_logits");
            boolean comparing = true;
            for (int j = 0; j < gen.length; j++) {
                if (margins.get(j).asDouble() < margin) comparing = false;
                if (comparing) {
                    assertEquals(gen[j], VectorMath.argmax(last, 0, vocab), "'" + prompt + "' greedy token " + j);
                    compared++;
                }
                if (j >= genLogits.size() && !comparing) break;
                float[] next = model.forward(state, gen[j], ids.length + j);
                if (j < genLogits.size()) compare(genLogits.get(j), next, 0, vocab, "'" + prompt + "' gen_logits " + j);
                System.arraycopy(next, 0, last, 0, vocab);
            }
        }
        return compared;
    }

    /** Whether all n logits at {@code actual[offset ..]} are within the tolerance of {@code expected}. */
    static boolean within(JsonNode expected, float[] actual, int offset, int n) {
        for (int i = 0; i < n; i++) {
            double e = expected.get(i).asDouble();
            if (!(Math.abs(actual[offset + i] - e) <= ABS + REL * Math.abs(e))) return false;
        }
        return n > 0;
    }

    static void compare(JsonNode expected, float[] actual, int offset, int n, String where) {
        for (int i = 0; i < n; i++) {
            double e = expected.get(i).asDouble();
            double a = actual[offset + i];
            if (!(Math.abs(a - e) <= ABS + REL * Math.abs(e))) {
                fail(where + ": logit " + i + " is " + a + ", reference " + e + " (|diff| " + Math.abs(a - e) + ")");
            }
        }
        assertTrue(n > 0);
    }
}
