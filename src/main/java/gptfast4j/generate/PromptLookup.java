package gptfast4j.generate;

/**
 * Draft-free speculation (prompt lookup decoding): find the most recent earlier occurrence of the sequence's last
 * n-gram (n from {@code maxNgram} down to 1) and propose the tokens that followed it.
 */
public final class PromptLookup implements Drafter {
    /**
     * The longest n-gram looked up. Each proposal scans the sequence once per length, so a draft step costs
     * {@code maxNgram} times the context; llama.cpp's n-gram lookup keeps to 4 (LLAMA_NGRAM_MAX).
     */
    public static final int MAX_NGRAM = 16;
    private final int maxNgram;

    public PromptLookup(int maxNgram) {
        if (maxNgram < 1 || maxNgram > MAX_NGRAM) throw new IllegalArgumentException("--lookup must be in 1.." + MAX_NGRAM + ", got " + maxNgram);
        this.maxNgram = maxNgram;
    }

    @Override
    public boolean deterministic() {
        return true;
    }

    @Override
    public int propose(int[] sequence, int length, int k, int[] tokens, float[][] probs, Sampler sampler) {
        for (int n = Math.min(maxNgram, length - 1); n >= 1; n--) {
            // candidate starts: the n-gram at [start, start + n) equals the last n tokens
            for (int start = length - n - 1; start >= 0; start--) {
                if (matches(sequence, start, length - n, n)) {
                    int count = Math.min(k, length - (start + n));
                    System.arraycopy(sequence, start + n, tokens, 0, count);
                    return count;
                }
            }
        }
        return 0;
    }

    private static boolean matches(int[] s, int a, int b, int n) {
        for (int i = 0; i < n; i++) if (s[a + i] != s[b + i]) return false;
        return true;
    }
}
