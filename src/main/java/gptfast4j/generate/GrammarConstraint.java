package gptfast4j.generate;

import gptfast4j.generate.Grammar.Stack;

import java.util.BitSet;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.IntFunction;

/**
 * A {@link Grammar} over a vocabulary, for a {@link Sampler}: which tokens may come next ({@link #mask}) and the
 * grammar's state after the one drawn ({@link #accept}), as llama.cpp's grammar sampler. A token is its bytes; a
 * character split across tokens (a byte-fallback token, a byte-level BPE piece) is carried as an incomplete UTF-8
 * sequence, and a token that leaves one is allowed where some character starting with those bytes could follow. An
 * end-of-text token is allowed only where the text so far matches the whole grammar, and there, where nothing more
 * can follow, it is the only one.
 * <p>
 * Checking every token of a vocabulary runs its bytes through the grammar's stacks, so {@link #mask} keeps the tokens
 * allowed in the last {@link #CACHED} states (the set of stacks, between whole characters): a grammar such as JSON's
 * comes back to a few states again and again (inside a string, after a comma). A new state's tokens are walked through
 * cached transitions ({@link #advance}), after a first byte only where some character starting with it may follow.
 */
public final class GrammarConstraint {
    private static final int CACHED = 64;
    private final Grammar grammar;
    /** Each id's bytes (none for control tokens and ids past the tokenizer's vocabulary). */
    private final byte[][] tokens;
    private final BitSet endOfText = new BitSet();
    /** The expanded stacks after the text so far. */
    private Set<Stack> stacks;
    /**
     * An incomplete UTF-8 sequence at the text's end: the bits of its bytes so far, the continuation bytes it still
     * needs, and its length in bytes.
     */
    private int pendingBits, pendingNeed, pendingLength;
    /** The smallest code point a sequence of 1 to 4 bytes may hold (below it, an overlong form: not UTF-8). */
    private static final int[] SMALLEST = {0, 0, 0x80, 0x800, 0x10000};
    private final Map<Set<Stack>, BitSet> allowedByState = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Set<Stack>, BitSet> eldest) {
            return size() > CACHED;
        }
    };

    private static final int TRANSITIONS = 200_000;
    /** The transitions taken, by the (canonical) state they leave, and the states they reach, each once. */
    private final Map<Set<Stack>, Map<Integer, Set<Stack>>> transitions = new IdentityHashMap<>();
    private final Map<Set<Stack>, Set<Stack>> states = new HashMap<>();
    private int transitionCount;

    /** The state after some text: the stacks, and an incomplete UTF-8 sequence at its end. */
    record State(Set<Stack> stacks, int bits, int need, int length) {}

    /**
     * Set where {@link #lookAhead} met a token the grammar does not allow: the positions after it are not the text's
     * (a verification rejects that token), so {@link #mask} leaves their logits as they are.
     */
    private boolean lost;

    /**
     * @param bytes each token's bytes ({@link gptfast4j.tokenizer.Tokenizer#bytes}: none for control tokens and ids past
     *              the tokenizer's vocabulary), for the model's {@code vocabSize} ids
     * @param eos   the end-of-text tokens
     */
    public GrammarConstraint(Grammar grammar, IntFunction<byte[]> bytes, int vocabSize, int[] eos) {
        this.grammar = grammar;
        this.tokens = new byte[vocabSize][];
        for (int id = 0; id < vocabSize; id++) tokens[id] = bytes.apply(id);
        for (int id : eos) if (id >= 0 && id < vocabSize) endOfText.set(id);
        restart();
    }

    /** Back to the grammar's start, for a new text. */
    public void restart() {
        rewind(new State(canonical(grammar.start()), 0, 0, 0));
    }

    /** The state now, to {@link #rewind} to after a {@link #lookAhead}. */
    State mark() {
        return new State(stacks, pendingBits, pendingNeed, pendingLength);
    }

    void rewind(State state) {
        stacks = state.stacks;
        pendingBits = state.bits;
        pendingNeed = state.need;
        pendingLength = state.length;
        lost = false;
    }

    /**
     * Takes {@code token} as the next for a look ahead (speculative decoding's draft tokens, each position's
     * distribution after those before it); one the grammar does not allow there loses the text until {@link #rewind}.
     */
    void lookAhead(int token) {
        if (lost || endOfText.get(token)) {
            lost = true;
            return;
        }
        State next = step(token);
        if (next == null) lost = true;
        else rewind(next);
    }

    /** Whether the text so far matches the whole grammar. */
    public boolean complete() {
        return pendingNeed == 0 && stacks.contains(Stack.EMPTY);
    }

    /** Whether {@code token} may come next. */
    public boolean allows(int token) {
        return endOfText.get(token) ? complete() : step(token) != null;
    }

    /**
     * Sets the logits (of the vocabulary, from 0) of the tokens that may not come next to -infinity. Refuses a state
     * the vocabulary cannot go on from: a grammar asking for a character that no token starts, text the grammar ends
     * on without an end-of-text token to end it, or only tokens whose logits are -infinity already (banned).
     */
    public void mask(float[] logits) {
        if (lost) return;
        BitSet allowed = pendingNeed == 0 ? allowedByState.get(stacks) : null;
        if (allowed == null) {
            // between whole characters, each first byte is tried once: most tokens go no further (after a comma or a
            // brace only a few bytes can start what follows), without the stack sets a token's step makes
            boolean[] firstByte = new boolean[256];
            for (int b = 0; b < 256; b++) firstByte[b] = pendingNeed != 0 || canStart(b);
            allowed = new BitSet(tokens.length);
            for (int id = 0; id < tokens.length; id++) {
                byte[] bytes = tokens[id];
                if (bytes.length > 0 && firstByte[bytes[0] & 0xFF] && !endOfText.get(id) && step(id) != null) allowed.set(id);
            }
            if (pendingNeed == 0) allowedByState.put(stacks, allowed);
        }
        boolean end = complete(), any = false;
        for (int id = 0; id < tokens.length; id++) {
            if (allowed.get(id) || end && endOfText.get(id)) any |= logits[id] != Float.NEGATIVE_INFINITY;
            else logits[id] = Float.NEGATIVE_INFINITY;
        }
        if (!any) {
            throw new IllegalArgumentException(allowed.isEmpty() && !(end && !endOfText.isEmpty())
                    ? "the grammar allows no token of the vocabulary here" + (end ? " (it is complete, but the model has no end-of-text token)" : "")
                    : "every token the grammar allows here is banned (--logit-bias)");
        }
    }

    /** Takes {@code token} as the text's next; refuses one the grammar does not allow there. */
    public void accept(int token) {
        if (endOfText.get(token) && complete()) return;
        State next = endOfText.get(token) ? null : step(token);
        if (next == null) throw new IllegalStateException("token " + token + " is not allowed by the grammar here");
        rewind(next);
    }

    /**
     * The grammar's state after code point {@code c} from {@code from} (a {@link #canonical} set), from a cache of
     * the transitions taken so far: a vocabulary's tokens walk through a few states again and again (inside a JSON
     * string, every ordinary character leads back to the same one), and each expansion makes sets of stacks. Emptied
     * past {@link #TRANSITIONS}, which a long text over many states would otherwise fill without bound.
     */
    private Set<Stack> advance(Set<Stack> from, int c) {
        Map<Integer, Set<Stack>> byChar = transitions.computeIfAbsent(from, k -> new HashMap<>());
        Set<Stack> to = byChar.get(c);
        if (to == null) {
            if (++transitionCount > TRANSITIONS) {
                transitions.clear();
                states.clear();
                transitionCount = 0;
                byChar = new HashMap<>();
                transitions.put(canonical(from), byChar);
            }
            to = canonical(grammar.advance(from, c));
            byChar.put(c, to);
        }
        return to;
    }

    /** The one set of stacks equal to {@code stacks} that this constraint keeps, so that transitions are found by identity. */
    private Set<Stack> canonical(Set<Stack> stacks) {
        return states.computeIfAbsent(stacks, k -> k);
    }

    /** Whether a character starting with byte {@code b} may come next, at a character's start. */
    private boolean canStart(int b) {
        if (b < 0x80) return !advance(stacks, b).isEmpty();
        if (b >= 0xC2 && b <= 0xDF) return couldFollow(stacks, b & 0x1F, 1, 2);
        if (b >= 0xE0 && b <= 0xEF) return couldFollow(stacks, b & 0x0F, 2, 3);
        if (b >= 0xF0 && b <= 0xF4) return couldFollow(stacks, b & 0x07, 3, 4);
        return false;
    }

    /** The state after {@code token}'s bytes, or null where the grammar does not take them (or they are not UTF-8). */
    private State step(int token) {
        byte[] bytes = tokens[token];
        if (bytes.length == 0) return null; // a control token: no text to match
        Set<Stack> s = stacks;
        int bits = pendingBits, need = pendingNeed, length = pendingLength;
        for (byte b : bytes) {
            int u = b & 0xFF;
            if (need == 0) {
                if (u < 0x80) {
                    s = advance(s, u);
                    if (s.isEmpty()) return null;
                    continue;
                }
                if (u >= 0xC2 && u <= 0xDF) { bits = u & 0x1F; need = 1; }
                else if (u >= 0xE0 && u <= 0xEF) { bits = u & 0x0F; need = 2; }
                else if (u >= 0xF0 && u <= 0xF4) { bits = u & 0x07; need = 3; }
                else return null; // a continuation byte without a lead, or not UTF-8 at all
                length = need + 1;
                if (!couldFollow(s, bits, need, length)) return null;
            } else {
                if ((u & 0xC0) != 0x80) return null;
                bits = bits << 6 | u & 0x3F;
                if (--need == 0) {
                    if (bits < SMALLEST[length] || bits > Character.MAX_CODE_POINT || bits >= 0xD800 && bits <= 0xDFFF) return null;
                    s = advance(s, bits);
                    if (s.isEmpty()) return null;
                } else if (!couldFollow(s, bits, need, length)) {
                    return null;
                }
            }
        }
        return need == 0 ? new State(s, 0, 0, 0) : new State(s, bits, need, length);
    }

    /**
     * Whether a character of {@code length} bytes whose first ones gave {@code bits}, {@code need} bytes still to
     * come, may come next.
     */
    private boolean couldFollow(Set<Stack> s, int bits, int need, int length) {
        int lo = Math.max(bits << 6 * need, SMALLEST[length]), hi = Math.min(bits << 6 * need | (1 << 6 * need) - 1, Character.MAX_CODE_POINT);
        if (lo > hi) return false;
        for (Stack stack : s) if (stack.top() != null && grammar.next(stack).matchesSome(lo, hi)) return true;
        return false;
    }
}
