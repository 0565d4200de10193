package gptfast4j.jinja;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A template's source as tokens, with the whitespace rules Hugging Face renders chat templates with: {@code trim_blocks}
 * (a block's or comment's end takes the newline after it), {@code lstrip_blocks} (a block or comment alone on its line
 * takes the spaces and tabs before it), a {@code -} at a tag's edge takes all the whitespace on that side ({@code +}
 * keeps it), one newline at the very end dropped, line ends made {@code \n}.
 */
final class Lexer {
    enum Kind { TEXT, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, NUMBER, OP, EOF }

    record Token(Kind kind, String text, Object value, int line) {
        boolean is(Kind k, String t) {
            return kind == k && text.equals(t);
        }
    }

    private static final String[] OPERATORS = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
            "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"};
    private static final Pattern NUMBER = Pattern.compile("\\d[\\d_]*(\\.\\d+)?([eE][+-]?\\d+)?");
    private static final Pattern ENDRAW = Pattern.compile("\\{%([-+]?)\\s*endraw\\s*([-+]?)%}");

    private final String src;
    private final List<Token> tokens = new ArrayList<>();
    private int pos;
    private int line = 1;
    /** Whether the text that follows a tag loses its leading whitespace (the tag ended with {@code -}). */
    private boolean stripNext;

    private Lexer(String source) {
        String s = source.replace("\r\n", "\n").replace('\r', '\n');
        this.src = s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
    }

    static List<Token> tokenize(String source) {
        Lexer lexer = new Lexer(source);
        lexer.run();
        return lexer.tokens;
    }

    private void run() {
        while (pos < src.length()) {
            int start = nextTag(pos);
            String text = src.substring(pos, start);
            if (stripNext) text = text.stripLeading();
            if (start == src.length()) {
                text(text);
                break;
            }
            char kind = src.charAt(start + 1);
            char edge = start + 2 < src.length() ? src.charAt(start + 2) : ' ';
            if (edge == '-') {
                text = text.stripTrailing();
            } else if (edge != '+' && kind != '{') { // lstrip_blocks: a block or comment alone on its line
                int lineStart = text.lastIndexOf('\n') + 1;
                boolean atLineStart = lineStart > 0 || pos == 0 || src.charAt(pos - 1) == '\n';
                if (atLineStart && text.substring(lineStart).chars().allMatch(c -> c == ' ' || c == '\t')) text = text.substring(0, lineStart);
            }
            text(text);
            line += count(src, pos, start);
            pos = start + 2 + (edge == '-' || edge == '+' ? 1 : 0);
            switch (kind) {
                case '#' -> comment();
                case '{' -> expression(Kind.VAR_BEGIN, Kind.VAR_END, '}');
                default -> block();
            }
        }
        tokens.add(new Token(Kind.EOF, "", null, line));
    }

    /** Where the next {@code {{}, {@code {%} or <code>{#</code> starts, or the end. */
    private int nextTag(int from) {
        for (int i = src.indexOf('{', from); i >= 0 && i + 1 < src.length(); i = src.indexOf('{', i + 1)) {
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return src.length();
    }

    private void text(String text) {
        if (!text.isEmpty()) tokens.add(new Token(Kind.TEXT, text, text, line));
        stripNext = false;
    }

    private void comment() {
        int end = src.indexOf("#}", pos);
        if (end < 0) throw new TemplateException("a comment is not closed", line);
        boolean minus = end > pos && src.charAt(end - 1) == '-', plus = end > pos && src.charAt(end - 1) == '+';
        line += count(src, pos, end);
        pos = end + 2;
        afterBlockEnd(minus, plus);
    }

    /** trim_blocks after a block or comment's end, or all whitespace after a {@code -}. */
    private void afterBlockEnd(boolean minus, boolean plus) {
        if (minus) stripNext = true;
        else if (!plus && pos < src.length() && src.charAt(pos) == '\n') {
            pos++;
            line++;
        }
    }

    private void block() {
        int first = tokens.size();
        expression(Kind.BLOCK_BEGIN, Kind.BLOCK_END, '%');
        if (tokens.size() == first + 3 && tokens.get(first + 1).is(Kind.NAME, "raw")) { // {% raw %}: text up to {% endraw %}
            tokens.subList(first, tokens.size()).clear();
            Matcher m = ENDRAW.matcher(src);
            if (!m.find(pos)) throw new TemplateException("a raw block is not closed", line);
            String text = src.substring(pos, m.start());
            if (m.group(1).equals("-")) text = text.stripTrailing();
            text(text);
            line += count(src, pos, m.end());
            pos = m.end();
            afterBlockEnd(m.group(2).equals("-"), m.group(2).equals("+"));
        }
    }

    /** The tokens of a tag's inside, between its begin and end tokens; {@code close} is the end's first character. */
    private void expression(Kind begin, Kind end, char close) {
        tokens.add(new Token(begin, "", null, line));
        int depth = 0; // open brackets: "}}" inside {'a': {}} closes a dict, not the tag
        while (true) {
            while (pos < src.length() && Character.isWhitespace(src.charAt(pos))) {
                if (src.charAt(pos) == '\n') line++;
                pos++;
            }
            if (pos >= src.length()) throw new TemplateException("a tag is not closed", line);
            char c = src.charAt(pos);
            boolean minus = c == '-' && src.startsWith(close + "}", pos + 1);
            if (depth == 0 && (minus || c == '+' && src.startsWith(close + "}", pos + 1) || src.startsWith(close + "}", pos))) {
                boolean plus = c == '+';
                pos += minus || plus ? 3 : 2;
                tokens.add(new Token(end, "", null, line));
                if (end == Kind.BLOCK_END) afterBlockEnd(minus, plus);
                else stripNext = minus;
                return;
            }
            if (Character.isLetter(c) || c == '_') {
                int s = pos;
                while (pos < src.length() && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '_')) pos++;
                tokens.add(new Token(Kind.NAME, src.substring(s, pos), null, line));
            } else if (Character.isDigit(c)) {
                Matcher m = NUMBER.matcher(src).region(pos, src.length());
                m.lookingAt();
                String digits = m.group().replace("_", "");
                Object value = m.group(1) != null || m.group(2) != null ? (Object) Double.parseDouble(digits) : (Object) Long.parseLong(digits);
                tokens.add(new Token(Kind.NUMBER, m.group(), value, line));
                pos = m.end();
            } else if (c == '\'' || c == '"') {
                tokens.add(new Token(Kind.STRING, "", string(c), line));
            } else {
                String op = null;
                for (String o : OPERATORS) {
                    if (src.startsWith(o, pos)) {
                        op = o;
                        break;
                    }
                }
                if (op == null) throw new TemplateException("unexpected character '" + c + "'", line);
                if (op.equals("(") || op.equals("[") || op.equals("{")) depth++;
                if ((op.equals(")") || op.equals("]") || op.equals("}")) && depth > 0) depth--;
                tokens.add(new Token(Kind.OP, op, null, line));
                pos += op.length();
            }
        }
    }

    /** A string literal from its opening quote, with Python's escapes. */
    private String string(char quote) {
        StringBuilder s = new StringBuilder();
        int startLine = line;
        pos++;
        while (true) {
            if (pos >= src.length()) throw new TemplateException("a string is not closed", startLine);
            char c = src.charAt(pos++);
            if (c == quote) return s.toString();
            if (c == '\n') line++;
            if (c != '\\' || pos >= src.length()) {
                s.append(c);
                continue;
            }
            char e = src.charAt(pos++);
            switch (e) {
                case 'n' -> s.append('\n');
                case 't' -> s.append('\t');
                case 'r' -> s.append('\r');
                case '0' -> s.append('\0');
                case 'b' -> s.append('\b');
                case 'f' -> s.append('\f');
                case '\\', '\'', '"' -> s.append(e);
                case '\n' -> line++; // a line continuation
                case 'x', 'u', 'U' -> {
                    int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (pos + digits > src.length()) throw new TemplateException("a bad \\" + e + " escape", line);
                    s.appendCodePoint(Integer.parseInt(src.substring(pos, pos + digits), 16));
                    pos += digits;
                }
                default -> s.append('\\').append(e);
            }
        }
    }

    private static int count(String s, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) if (s.charAt(i) == '\n') n++;
        return n;
    }
}
