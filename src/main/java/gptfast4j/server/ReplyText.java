package gptfast4j.server;

import gptfast4j.generate.TextStream;
import gptfast4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * A reply's text as its tokens come, for a client: cut before the first stop string (OpenAI's {@code stop}: the string
 * itself is not part of the text), and given out in pieces that end on whole characters and hold back a tail that may
 * be the start of a stop string, so that a streamed reply never shows text it would then take back. Matched on the
 * UTF-8 bytes, so a stop string may end inside a token's text or span several tokens.
 */
final class ReplyText {
    private final Tokenizer tokenizer;
    private final byte[][] stops;
    private byte[] bytes = new byte[256];
    private int length, given;
    /** Where the first stop string starts; -1 while none is in the text. */
    private int stopAt = -1;
    /** Which stop string starts there. */
    private int stopWord;
    private boolean stripLeadingSpace;

    /** Special tokens whose text the reply keeps (a tool syntax's markers, a few): their ids and texts; control tokens give no text otherwise. */
    private final int[] keptIds;
    private final byte[][] keptTexts;

    /**
     * @param stripLeadingSpace drop a space that starts the text (SentencePiece's dummy prefix before an answer)
     * @param keptSpecials      special tokens whose text is the reply's where drawn (those the vocabulary has)
     */
    ReplyText(Tokenizer tokenizer, List<String> stops, boolean stripLeadingSpace, List<String> keptSpecials) {
        this.tokenizer = tokenizer;
        List<String> present = keptSpecials.stream().filter(t -> tokenizer.special(t).isPresent()).toList();
        keptIds = present.stream().mapToInt(t -> tokenizer.special(t).getAsInt()).toArray();
        keptTexts = present.stream().map(t -> t.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
        this.stops = stops.stream().map(s -> s.getBytes(StandardCharsets.UTF_8)).toArray(byte[][]::new);
        this.stripLeadingSpace = stripLeadingSpace;
    }

    /** Adds {@code token}'s text; true once the text holds a stop string (the generation should end). */
    boolean add(int token) {
        if (stopAt >= 0) return true;
        byte[] added = tokenizer.bytes(token);
        for (int i = 0; i < keptIds.length; i++) if (keptIds[i] == token) added = keptTexts[i];
        int skip = stripLeadingSpace && added.length > 0 && added[0] == ' ' ? 1 : 0;
        if (added.length > 0) stripLeadingSpace = false;
        if (length + added.length > bytes.length) bytes = Arrays.copyOf(bytes, Math.max(2 * bytes.length, length + added.length));
        System.arraycopy(added, skip, bytes, length, added.length - skip);
        int before = length;
        length += added.length - skip;
        for (int s = 0; s < stops.length; s++) {
            byte[] stop = stops[s];
            // the earliest occurrence that ends within the new bytes, before any found so far
            int last = Math.min(length - stop.length, stopAt >= 0 ? stopAt - 1 : Integer.MAX_VALUE);
            for (int at = Math.max(0, before - stop.length + 1); at <= last; at++) {
                if (Arrays.equals(bytes, at, at + stop.length, stop, 0, stop.length)) {
                    stopAt = at;
                    stopWord = s;
                    break;
                }
            }
        }
        return stopAt >= 0;
    }

    /**
     * The text not given out yet that is certain: up to a stop string, or short of a tail that may begin one and of a
     * character not yet whole. Empty when there is none.
     */
    String take() {
        int end = stopAt >= 0 ? stopAt : TextStream.completeEnd(bytes, given, length - possibleStopStart());
        return give(Math.max(given, end));
    }

    /** The rest of the text at the generation's end (a character left unfinished as U+FFFD). */
    String finish() {
        return give(stopAt >= 0 ? stopAt : length);
    }

    boolean stopped() {
        return stopAt >= 0;
    }

    /** The stop string the text ends before (llama.cpp's {@code stopping_word}); empty where none ended it. */
    String stopWord() {
        return stopAt >= 0 ? new String(stops[stopWord], StandardCharsets.UTF_8) : "";
    }

    private String give(int end) {
        String text = new String(bytes, given, end - given, StandardCharsets.UTF_8);
        given = end;
        return text;
    }

    /** The longest tail of the text (after what was given) that is a stop string's beginning, which more text may complete. */
    private int possibleStopStart() {
        int longest = 0;
        for (byte[] stop : stops) {
            for (int n = Math.min(stop.length - 1, length - given); n > longest; n--) {
                if (Arrays.equals(bytes, length - n, length, stop, 0, n)) {
                    longest = n;
                    break;
                }
            }
        }
        return longest;
    }
}
