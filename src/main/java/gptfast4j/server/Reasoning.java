package gptfast4j.server;

/**
 * A reply's text split, as its pieces come, into its thinking and its answer, as llama.cpp's server splits a
 * reasoning model's reply ({@code --reasoning-format deepseek}): a {@code <think>...</think>} block at the reply's start
 * (DeepSeek-R1's and its distillations') is OpenAI's {@code reasoning_content}, the rest {@code content}. Both are
 * trimmed of the whitespace around them (the thinking's ends, the answer's start), as llama.cpp trims them; text that
 * may still become the block's opening or closing tag is held back. A reply that does not open with the tag is all
 * answer, unless its prompt opened the thinking ({@code opened}: DeepSeek-R1's template ends with {@code <think>\n}),
 * where the reply starts in it (an opening tag it writes anyway left out).
 */
final class Reasoning {
    private final boolean opened;

    /** @param opened whether the prompt opened the thinking, so that the reply starts in it */
    Reasoning(boolean opened) {
        this.opened = opened;
    }

    private static final String OPEN = "<think>", CLOSE = "</think>";

    /** Where the reply is: its start may still be the opening tag; in the thinking; before the answer's first character; in the answer. */
    private enum Part { START, THINKING, BEFORE_ANSWER, ANSWER }

    /** A piece of each: the thinking's and the answer's characters that an added piece of text completes (either may be empty). */
    record Piece(String reasoning, String content) {
    }

    private final StringBuilder text = new StringBuilder();
    private Part part = Part.START;
    /** Where the text not given out yet starts. */
    private int given;
    /** Whether any of the thinking was given out (its leading whitespace is not). */
    private boolean thinkingBegun;

    /** Adds a piece of the reply's text. */
    Piece add(String piece) {
        text.append(piece);
        return advance(false);
    }

    /** The reply has ended: what was held back, given out (a thinking never closed stays thinking). */
    Piece finish() {
        return advance(true);
    }

    private Piece advance(boolean end) {
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        while (true) {
            switch (part) {
                case START -> {
                    int first = firstNonSpace(0);
                    String rest = text.substring(first);
                    if (rest.startsWith(OPEN)) {
                        part = Part.THINKING;
                        given = first + OPEN.length();
                        continue;
                    }
                    if (!end && OPEN.startsWith(rest)) return piece(reasoning, content); // may still open
                    part = opened ? Part.THINKING : Part.ANSWER;
                    continue;
                }
                case THINKING -> {
                    if (!thinkingBegun) given = firstNonSpace(given);
                    int close = text.indexOf(CLOSE, given);
                    int upTo;
                    if (close >= 0) {
                        upTo = trimmedEnd(given, close);
                    } else {
                        // held back: a tail that may begin the closing tag, and trailing whitespace (it may end the thinking)
                        upTo = trimmedEnd(given, end ? text.length() : text.length() - heldTagStart());
                    }
                    reasoning.append(text, given, upTo);
                    thinkingBegun |= upTo > given;
                    given = upTo;
                    if (close < 0) return piece(reasoning, content);
                    given = close + CLOSE.length();
                    part = Part.BEFORE_ANSWER;
                }
                case BEFORE_ANSWER -> {
                    given = firstNonSpace(given);
                    if (given == text.length()) return piece(reasoning, content);
                    part = Part.ANSWER;
                }
                case ANSWER -> {
                    content.append(text, given, text.length());
                    given = text.length();
                    return piece(reasoning, content);
                }
            }
        }
    }

    private static Piece piece(StringBuilder reasoning, StringBuilder content) {
        return new Piece(reasoning.toString(), content.toString());
    }

    private int firstNonSpace(int from) {
        while (from < text.length() && Character.isWhitespace(text.charAt(from))) from++;
        return from;
    }

    /** The end of {@code [from, to)} without its trailing whitespace. */
    private int trimmedEnd(int from, int to) {
        while (to > from && Character.isWhitespace(text.charAt(to - 1))) to--;
        return to;
    }

    /** How many of the text's last characters may begin the closing tag. */
    private int heldTagStart() {
        for (int n = Math.min(CLOSE.length() - 1, text.length()); n > 0; n--) {
            if (CLOSE.startsWith(text.substring(text.length() - n))) return n;
        }
        return 0;
    }
}
