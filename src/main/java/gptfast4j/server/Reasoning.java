package gptfast4j.server;

/**
 * A reply's text split, as its pieces come, into its thinking and its answer, as llama.cpp's server splits a
 * reasoning model's reply ({@code --reasoning-format deepseek}): a {@code <think>...</think>} block at the reply's start
 * (DeepSeek-R1's and its distillations') is OpenAI's {@code reasoning_content}, the rest {@code content}. Both are
 * trimmed of the whitespace around them (the thinking's ends, the answer's start), as llama.cpp trims them; text that
 * may still become the block's opening or closing tag is held back. A reply that does not open with the tag is all
 * answer, unless its prompt opened the thinking ({@code opened}: DeepSeek-R1's template ends with {@code <think>\n}),
 * where the reply starts in it (an opening tag it writes anyway left out).
 * <p>
 * gpt-oss's harmony replies ({@link #harmony}) are messages instead, each {@code <|channel|>NAME<|message|>TEXT<|end|>}
 * (the later ones after {@code <|start|>assistant}): the {@code analysis} channel's text is the thinking, the others'
 * (the {@code final} answer, a {@code commentary} preamble) the answer, as llama.cpp's gpt-oss parser parts them; a
 * message to a function ({@code to=functions.NAME} in its header) a call ({@link #calls}); the markers, which the
 * reply's text keeps for this ({@link gptfast4j.tokenizer.Tokenizer#HARMONY_MARKERS}), are neither.
 */
final class Reasoning {
    private final boolean opened, harmony;

    /** @param opened whether the prompt opened the thinking, so that the reply starts in it */
    Reasoning(boolean opened) {
        this(opened, false);
    }

    private Reasoning(boolean opened, boolean harmony) {
        this.opened = opened;
        this.harmony = harmony;
    }

    /** A harmony reply's parts (gpt-oss's). */
    static Reasoning harmony() {
        return new Reasoning(false, true);
    }

    private static final String CHANNEL = "<|channel|>", MESSAGE = "<|message|>", END = "<|end|>";
    /** In a harmony reply: whether the text is in a message's body, and whether that message is the thinking. */
    private boolean inBody, bodyThinks;
    /** The function the message in hand calls ({@code to=functions.NAME}), null for none, and its arguments so far. */
    private String calling;
    private final StringBuilder arguments = new StringBuilder();
    /** A harmony reply's calls, whole (their arguments a JSON object). */
    private final java.util.List<Tools.Call> calls = new java.util.ArrayList<>();

    /** A harmony reply's calls to the request's functions (none in another reply). */
    java.util.List<Tools.Call> calls() {
        return calls;
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
        if (harmony) return advanceHarmony(end);
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

    /**
     * A harmony reply: a message's header (up to {@code <|message|>}, its channel named after {@code <|channel|>}) is
     * held until whole and given to neither; its body goes to the thinking or the answer up to {@code <|end|>}, a tail
     * that may begin that held back. Text that does not open with a marker (a reply outside harmony's frame) is answer.
     */
    private Piece advanceHarmony(boolean end) {
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        while (true) {
            if (!inBody) {
                if (given == text.length()) return piece(reasoning, content);
                int message = text.indexOf(MESSAGE, given);
                if (message < 0) {
                    // a header still to come, or no header at all
                    String rest = text.substring(given);
                    if (rest.startsWith("<|") || "<|".startsWith(rest)) {
                        if (end) given = text.length(); // a header cut short: nothing of it is text
                        return piece(reasoning, content);
                    }
                    inBody = true;
                    bodyThinks = false;
                    continue;
                }
                int channel = text.indexOf(CHANNEL, given);
                // the channel's name: its header's first word after the marker ("commentary to=functions.f <|constrain|>json");
                // a call's recipient, in the channel's header or the role's before it ("<|start|>assistant to=functions.f")
                String header = channel >= 0 && channel < message ? text.substring(channel + CHANNEL.length(), message).strip() : "";
                bodyThinks = header.split("[\\s<]", 2)[0].equals("analysis");
                int to = text.indexOf(" to=functions.", given);
                calling = to >= 0 && to < message ? text.substring(to + " to=functions.".length(), message).split("[\\s<]", 2)[0] : null;
                given = message + MESSAGE.length();
                inBody = true;
            } else {
                int close = text.indexOf(END, given);
                int upTo = close >= 0 ? close : end ? text.length() : text.length() - heldTagStart(END);
                (calling != null ? arguments : bodyThinks ? reasoning : content).append(text, given, upTo);
                given = upTo;
                if (close < 0 && !end) return piece(reasoning, content);
                if (calling != null) called(content);
                if (close < 0) return piece(reasoning, content);
                given = close + END.length();
                inBody = false;
            }
        }
    }

    /** The call in hand is whole: a call where its arguments are a JSON object, else its text is answer. */
    private void called(StringBuilder content) {
        try {
            com.fasterxml.jackson.databind.JsonNode args = Server.JSON.readTree(arguments.toString());
            if (args != null && args.isObject()) calls.add(new Tools.Call(Tools.newId(Tools.Syntax.HARMONY), calling, args.toString()));
            else content.append(arguments);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            content.append(arguments);
        }
        calling = null;
        arguments.setLength(0);
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
        return heldTagStart(CLOSE);
    }

    /** How many of the text's last characters (after what was given) may begin {@code tag}. */
    private int heldTagStart(String tag) {
        for (int n = Math.min(tag.length() - 1, text.length() - given); n > 0; n--) {
            if (tag.startsWith(text.substring(text.length() - n))) return n;
        }
        return 0;
    }
}
