package gptfast4j.generate;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * llama.cpp's DRY ("don't repeat yourself") penalty, Koboldcpp's design: where the text's last tokens repeat an earlier
 * run of at least {@code allowedLength} tokens, the token that followed that run is made less likely, by
 * {@code multiplier * base^(length - allowedLength)} off its logit for the longest such run. A run does not reach back
 * past the last sequence breaker (a newline, a colon, ...: a token whose text holds the breaker, or a token that begins
 * it followed by the tokens of its rest), and a token that is a breaker by itself is never penalized.
 *
 * @param window the last tokens looked at; -1 all of them
 */
public record Dry(float multiplier, float base, int allowedLength, int window, Breakers breakers) {
    /** llama.cpp's default sequence breakers. */
    public static final List<String> DEFAULT_BREAKERS = List.of("\n", ":", "\"", "*");
    /** The longest tail of a breaker kept, and the longest breaker text, in bytes: llama.cpp's limits. */
    private static final int MAX_TAIL = 20, MAX_BREAKER_BYTES = 40;
    /** ln(Float.MAX_VALUE): the exponent is capped so that {@code base^exponent} stays finite. */
    private static final float FLOAT_MAX_LOG = 88.7228391f;

    public Dry {
        if (!(multiplier >= 0) || Float.isInfinite(multiplier)) throw new IllegalArgumentException("--dry-multiplier must be >= 0 (0 disables it), got " + multiplier);
        if (!(base >= 1) || Float.isInfinite(base)) throw new IllegalArgumentException("--dry-base must be >= 1, got " + base);
        if (allowedLength < 1) throw new IllegalArgumentException("--dry-allowed-length must be >= 1, got " + allowedLength);
        if (window < -1) throw new IllegalArgumentException("--dry-penalty-last-n must be >= -1 (-1: the whole text, 0 disables it), got " + window);
    }

    /** Whether it changes anything: a multiplier and a window. */
    public boolean active() {
        return multiplier != 0 && window != 0;
    }

    /**
     * The sequence breakers over a vocabulary: for each token, whether its text ({@code bytes}) holds a breaker (then
     * the token breaks alone), and for each place where its text ends with the start of a breaker, the tokens
     * {@code encode} gives the breaker's rest (at most 20), which must follow it.
     */
    public static Breakers breakers(List<String> texts, int vocabSize, IntFunction<byte[]> bytes, Function<String, int[]> encode) {
        List<List<int[]>> tails = new ArrayList<>(vocabSize);
        for (int id = 0; id < vocabSize; id++) tails.add(null);
        for (String text : texts) {
            byte[] breaker = text.getBytes(StandardCharsets.UTF_8);
            if (breaker.length == 0) throw new IllegalArgumentException("--dry-sequence-breaker: a breaker must not be empty");
            if (breaker.length > MAX_BREAKER_BYTES) breaker = Arrays.copyOf(breaker, MAX_BREAKER_BYTES);
            for (int id = 0; id < vocabSize; id++) {
                byte[] word = bytes.apply(id);
                if (indexOf(word, breaker) >= 0) {
                    add(tails, id, new int[0]);
                    continue;
                }
                for (int pos = 0; pos < word.length; pos++) {
                    int i = 0;
                    while (i < breaker.length && pos + i < word.length && word[pos + i] == breaker[i]) i++;
                    if (i == 0 || pos + i < word.length) continue; // the word must end inside the breaker
                    int[] rest = encode.apply(new String(breaker, i, breaker.length - i, StandardCharsets.UTF_8));
                    add(tails, id, rest.length > MAX_TAIL ? Arrays.copyOf(rest, MAX_TAIL) : rest);
                }
            }
        }
        return new Breakers(tails);
    }

    private static void add(List<List<int[]>> tails, int id, int[] tail) {
        List<int[]> list = tails.get(id);
        if (list == null) tails.set(id, list = new ArrayList<>(1));
        for (int[] t : list) if (Arrays.equals(t, tail)) return;
        list.add(tail);
    }

    private static int indexOf(byte[] word, byte[] part) {
        outer:
        for (int i = 0; i + part.length <= word.length; i++) {
            for (int j = 0; j < part.length; j++) if (word[i + j] != part[j]) continue outer;
            return i;
        }
        return -1;
    }

    /** Per token (by id), the tails after it that complete a breaker (an empty one: the token alone is one); null: none. */
    public record Breakers(List<List<int[]>> tails) {
        public static final Breakers NONE = new Breakers(List.of());

        /** Token breakers given as token sequences (a head and its tail), as llama.cpp's tests give them. */
        public static Breakers ofTokens(int vocabSize, int[]... sequences) {
            List<List<int[]>> tails = new ArrayList<>(vocabSize);
            for (int id = 0; id < vocabSize; id++) tails.add(null);
            for (int[] s : sequences) add(tails, s[0], Arrays.copyOfRange(s, 1, s.length));
            return new Breakers(tails);
        }

        List<int[]> of(int token) {
            return token < tails.size() ? tails.get(token) : null;
        }

        boolean alone(int token) {
            List<int[]> list = of(token);
            for (int i = 0; list != null && i < list.size(); i++) if (list.get(i).length == 0) return true; // indexed: no iterator per token
            return false;
        }

        @Override
        public String toString() {
            return "Breakers[" + tails.stream().filter(java.util.Objects::nonNull).count() + " tokens]";
        }
    }

    /** What one application needs, kept between tokens: the reversed window, its Z-array and each token's longest run. */
    static final class Scratch {
        int[] last = new int[0], z = new int[0];
        final int[] longest;
        int[] touched = new int[0];

        Scratch(int vocabSize) {
            longest = new int[vocabSize];
        }
    }

    /** Lowers {@code logits}' entries as {@link Dry} says, for the text {@code sequence[0 .. length)}. */
    void apply(float[] logits, int[] sequence, int length, Scratch s) {
        int n = window < 0 ? length : Math.min(window, length);
        if (n <= allowedLength) return;
        if (s.last.length < n) {
            s.last = new int[Math.max(n, 2 * s.last.length)];
            s.z = new int[s.last.length];
        }
        int[] last = s.last, z = s.z; // last[i]: the token i before the end
        for (int i = 0; i < n; i++) last[i] = sequence[length - 1 - i];
        // a run reaches back no further than the most recent breaker: a head whose tail follows it
        int limit = n;
        for (int i = 0; i < n && limit == n; i++) {
            List<int[]> tails = breakers.of(last[i]);
            if (tails == null) continue;
            int longest = -1;
            for (int j = 0; j < tails.size(); j++) {
                int[] tail = tails.get(j);
                if (tail.length <= longest || tail.length > i) continue;
                boolean match = true;
                for (int o = 0; o < tail.length && match; o++) match = tail[o] == last[i - o - 1];
                if (match) longest = tail.length;
            }
            if (longest >= 0) limit = i - longest;
        }
        if (limit < allowedLength) return;
        // z[k]: how many of the last tokens the run ending k tokens before the end repeats (the Z-algorithm over last)
        for (int k = 1, left = 0, right = 0; k < n; k++) {
            int m = k < right ? Math.min(right - k, z[k - left]) : 0;
            while (k + m < n && last[m] == last[k + m]) m++;
            if (k + m > right) {
                left = k;
                right = k + m;
            }
            z[k] = m;
        }
        int touched = 0;
        if (s.touched.length < n) s.touched = new int[n];
        for (int k = 1; k < n; k++) {
            int run = Math.min(z[k], limit);
            if (run < allowedLength) continue;
            int next = last[k - 1]; // the token that followed the earlier run
            if (next < 0 || next >= s.longest.length) continue;
            if (s.longest[next] == 0) s.touched[touched++] = next;
            s.longest[next] = Math.max(s.longest[next], run);
        }
        int maxExponent = base > 1.000001f ? (int) (FLOAT_MAX_LOG / (float) Math.log(base)) : 0;
        for (int i = 0; i < touched; i++) {
            int token = s.touched[i], run = s.longest[token];
            s.longest[token] = 0;
            if (breakers.alone(token)) continue;
            int exponent = run - allowedLength;
            if (maxExponent > 0) exponent = Math.min(exponent, maxExponent);
            logits[token] -= multiplier * (float) Math.pow(base, exponent);
        }
    }
}
