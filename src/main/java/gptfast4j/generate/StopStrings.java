package gptfast4j.generate;

import gptfast4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Stop strings (llama.cpp's reverse prompts, OpenAI's {@code stop}): told each generated token, says when the text
 * holds one of the strings in the bytes that token added, or across its start, as llama-cli looks for its reverse
 * prompts in the text it has just printed. Matched on the UTF-8 bytes, so a string may end inside a token's text or
 * span several tokens.
 */
public final class StopStrings {
    private final Tokenizer tokenizer;
    private final String[] texts;
    private final byte[][] stops;
    /** The text's last bytes: the longest token's and the longest string's, so that a string may start before it. */
    private final byte[] tail;
    private int length;

    public StopStrings(Tokenizer tokenizer, List<String> texts) {
        this.tokenizer = tokenizer;
        this.texts = texts.toArray(String[]::new);
        this.stops = new byte[texts.size()][];
        int longest = 0;
        for (int i = 0; i < stops.length; i++) {
            if (texts.get(i).isEmpty()) throw new IllegalArgumentException("a stop string must not be empty");
            stops[i] = texts.get(i).getBytes(StandardCharsets.UTF_8);
            longest = Math.max(longest, stops[i].length);
        }
        int longestToken = 0;
        for (int id = 0; stops.length > 0 && id < tokenizer.vocabSize(); id++) longestToken = Math.max(longestToken, tokenizer.bytes(id).length);
        this.tail = new byte[longest + longestToken];
    }

    /** Forgets the text so far: a new generation, or a new reply in a chat. */
    public void reset() {
        length = 0;
    }

    /** Adds {@code token}'s text; returns the stop string the newest bytes complete, or null. */
    public String accept(int token) {
        if (stops.length == 0) return null;
        byte[] added = tokenizer.bytes(token);
        int keep = tail.length - added.length; // at least the longest string's length before the new bytes
        if (length > keep) {
            System.arraycopy(tail, length - keep, tail, 0, keep);
            length = keep;
        }
        System.arraycopy(added, 0, tail, length, added.length);
        int start = length;
        length += added.length;
        for (int s = 0; s < stops.length; s++) {
            byte[] stop = stops[s];
            // an occurrence that ends within the new bytes
            for (int end = Math.max(start + 1, stop.length); end <= length; end++) {
                if (matches(stop, end - stop.length)) return texts[s];
            }
        }
        return null;
    }

    private boolean matches(byte[] stop, int at) {
        for (int i = 0; i < stop.length; i++) if (tail[at + i] != stop[i]) return false;
        return true;
    }
}
