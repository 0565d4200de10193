package gptfast4j.generate;

import gptfast4j.tokenizer.Tokenizer;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Writes generated tokens as text while they come. A character may span several tokens (byte-fallback pieces, or
 * byte-level BPE tokens that split a UTF-8 sequence), so bytes are held back until they end a whole character; an
 * ill-formed sequence becomes U+FFFD.
 */
public final class TextStream {
    private final Tokenizer tokenizer;
    private final PrintStream out;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private boolean stripLeadingSpace;
    /** Special tokens whose text is written (their ids), where control tokens write none. */
    private final int[] shown;

    /** @param stripLeadingSpace drop a space that starts the text (SentencePiece's dummy prefix after BOS) */
    public TextStream(Tokenizer tokenizer, PrintStream out, boolean stripLeadingSpace) {
        this.tokenizer = tokenizer;
        this.out = out;
        this.stripLeadingSpace = stripLeadingSpace;
        // gpt-oss's harmony frame (its channels and messages), which would otherwise run its thinking into its answer
        // ("analysisThe user greets...assistantfinalHello"); shown as llama.cpp shows them with --special
        shown = !tokenizer.speaksHarmony() ? new int[0] : Tokenizer.HARMONY_MARKERS.stream()
                .map(tokenizer::special).filter(java.util.OptionalInt::isPresent).mapToInt(java.util.OptionalInt::getAsInt).toArray();
    }

    public void accept(int token) {
        byte[] bytes = tokenizer.bytes(token);
        for (int id : shown) if (id == token) bytes = tokenizer.piece(token).getBytes(StandardCharsets.UTF_8);
        if (stripLeadingSpace && bytes.length > 0) {
            stripLeadingSpace = false;
            if (bytes[0] == ' ') pending.write(bytes, 1, bytes.length - 1);
            else pending.writeBytes(bytes);
        } else {
            pending.writeBytes(bytes);
        }
        byte[] buffer = pending.toByteArray();
        int complete = completePrefix(buffer);
        if (complete > 0) {
            out.print(new String(buffer, 0, complete, StandardCharsets.UTF_8));
            out.flush();
            pending.reset();
            pending.write(buffer, complete, buffer.length - complete);
        }
    }

    /** Writes whatever is held back (an unfinished character becomes U+FFFD). */
    public void finish() {
        if (pending.size() > 0) out.print(pending.toString(StandardCharsets.UTF_8));
        pending.reset();
        out.flush();
    }

    /** Length of the longest prefix that does not end inside a UTF-8 sequence that could still be completed. */
    static int completePrefix(byte[] b) {
        return completeEnd(b, 0, b.length);
    }

    /**
     * The end of the longest run {@code b[from..end)} of {@code b[from..to)} that does not end inside a UTF-8 sequence
     * that could still be completed (a lead byte without all its continuation bytes): what may be shown as text now.
     */
    public static int completeEnd(byte[] b, int from, int to) {
        for (int back = 1; back <= Math.min(3, to - from); back++) {
            int lead = b[to - back] & 0xFF;
            if ((lead & 0xC0) == 0x80) continue; // continuation byte: look further back
            int length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            return length > back && lead < 0xF8 ? to - back : to;
        }
        return to;
    }
}
