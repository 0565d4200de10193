package gptfast4j.server;

import java.util.ArrayList;
import java.util.List;

/**
 * A JSON Schema {@code pattern} (an ECMA-262 regular expression) as a GBNF expression of the JSON string text whose
 * value it matches: the characters between the quotes, escaped as JSON needs ({@code \"}, {@code \\}, control
 * characters as {@code \n} or a backslash, u and four hexadecimal digits).
 * <p>
 * As JSON Schema has it, a pattern matches anywhere in the string unless anchored: {@code ^} at the start of the
 * pattern (or of one of its top-level alternatives), {@code $} at its end. Taken: literals, {@code .} (any character
 * but a line break: {@code \n \r}, U+2028, U+2029), classes {@code [a-z_]} and {@code [^"]}, {@code \d \w \s} and their
 * complements (ECMA's sets: {@code \s} includes the Unicode spaces), escapes {@code \t \n \r \f \v \0 \xHH}, a backslash, u and four hexadecimal digits,
 * and escaped punctuation, groups {@code (...)}, {@code (?:...)} and {@code (?<name>...)}, alternation {@code |},
 * quantifiers {@code * + ? {n} {n,} {n,m}} (lazy ones alike: they match the same strings). Characters are code
 * points (as with ECMA's {@code u} flag and Java's regular expressions). Lookarounds, backreferences, word
 * boundaries, Unicode properties and anchors inside the pattern are refused by name.
 */
final class PatternGrammar {
    /** A set of code points as sorted, disjoint, non-adjacent inclusive pairs, a sequence, alternatives, a repetition. */
    private sealed interface Node permits Chars, Seq, Alt, Repeat {}

    private record Chars(int[] ranges) implements Node {}

    private record Seq(List<Node> parts) implements Node {}

    private record Alt(List<Node> options) implements Node {}

    /** {@code max} -1: unbounded. */
    private record Repeat(Node item, int min, int max) implements Node {}

    private static final int MAX_REPEAT = 1000;
    private static final Chars ANY = new Chars(new int[]{0, 0xD7FF, 0xE000, Character.MAX_CODE_POINT});
    private static final Chars DOT = new Chars(subtract(ANY.ranges, new int[]{'\n', '\n', '\r', '\r', 0x2028, 0x2029}));
    private static final Chars DIGIT = new Chars(new int[]{'0', '9'});
    private static final Chars WORD = new Chars(new int[]{'0', '9', 'A', 'Z', '_', '_', 'a', 'z'});
    private static final Chars SPACE = new Chars(normalize(new int[]{'\t', '\r', ' ', ' ', 0xA0, 0xA0, 0x1680, 0x1680, 0x2000, 0x200A,
            0x2028, 0x2029, 0x202F, 0x202F, 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF}));

    private final String pattern;
    private final String where;
    private final int[] cps;
    private int at;

    private PatternGrammar(String pattern, String where) {
        this.pattern = pattern;
        this.where = where;
        this.cps = pattern.codePoints().toArray();
    }

    /** The GBNF expression of the string text (without its quotes) whose value {@code pattern} matches; {@code where} names it in errors. */
    static String convert(String pattern, String where) {
        return gbnf(new PatternGrammar(pattern, where).top());
    }

    /** Top-level alternatives, each anchored at either end or free to start and end anywhere in the string. */
    private Node top() {
        List<Node> options = new ArrayList<>();
        while (true) {
            List<Node> parts = new ArrayList<>();
            if (peek('^')) at++;
            else parts.add(new Repeat(ANY, 0, -1));
            parts.add(alternative(0));
            if (peek('$')) at++;
            else parts.add(new Repeat(ANY, 0, -1));
            options.add(new Seq(parts));
            if (at == cps.length) return options.size() == 1 ? options.getFirst() : new Alt(options);
            if (cps[at++] != '|') throw error("')' without its '('"); // alternative(0) stops at '|' or ')' only
        }
    }

    private Node disjunction(int depth) {
        List<Node> options = new ArrayList<>();
        options.add(alternative(depth));
        while (peek('|')) {
            at++;
            options.add(alternative(depth));
        }
        return options.size() == 1 ? options.getFirst() : new Alt(options);
    }

    /** Terms up to a {@code |}, a {@code )}, or (at the top, depth 0) a {@code $} that ends the pattern or an alternative. */
    private Node alternative(int depth) {
        List<Node> parts = new ArrayList<>();
        while (at < cps.length && cps[at] != '|' && cps[at] != ')') {
            if (cps[at] == '$' && depth == 0 && (at + 1 == cps.length || cps[at + 1] == '|')) break;
            if (cps[at] == '^' || cps[at] == '$') throw error("'" + (char) cps[at] + "' inside the pattern (anchors are taken at its ends only)");
            parts.add(quantified(atom(depth)));
        }
        return parts.size() == 1 ? parts.getFirst() : new Seq(parts);
    }

    private Node quantified(Node item) {
        if (at >= cps.length) return item;
        int min, max;
        int c = cps[at];
        if (c == '*') { min = 0; max = -1; at++; }
        else if (c == '+') { min = 1; max = -1; at++; }
        else if (c == '?') { min = 0; max = 1; at++; }
        else if (c == '{' && braces() != null) {
            int[] b = braces();
            min = b[0];
            max = b[1];
            at = b[2];
        } else return item;
        if (peek('?')) at++; // lazy: the same strings
        if (at < cps.length && (cps[at] == '*' || cps[at] == '+' || cps[at] == '?' || cps[at] == '{' && braces() != null)) throw error("a quantifier after a quantifier");
        if (max >= 0 && max < min) throw error("a repetition's maximum below its minimum");
        if (Math.max(min, max) > MAX_REPEAT) throw error("a repetition count above " + MAX_REPEAT);
        return repeat(item, min, max);
    }

    /** {@code {n}}, {@code {n,}} or {@code {n,m}} at {@code at}: min, max (-1 unbounded), the index after it; null if not one (a literal brace). */
    private int[] braces() {
        int i = at + 1, min = 0, max;
        int start = i;
        while (i < cps.length && Character.isDigit(cps[i]) && cps[i] < 128) min = Math.min(min * 10 + cps[i++] - '0', 100_000);
        if (i == start) return null;
        max = min;
        if (i < cps.length && cps[i] == ',') {
            i++;
            int s2 = i;
            max = 0;
            while (i < cps.length && Character.isDigit(cps[i]) && cps[i] < 128) max = Math.min(max * 10 + cps[i++] - '0', 100_000);
            if (i == s2) max = -1;
        }
        if (i >= cps.length || cps[i] != '}') return null;
        return new int[]{min, max, i + 1};
    }

    private Node atom(int depth) {
        int c = cps[at++];
        switch (c) {
            case '.':
                return DOT;
            case '[':
                return charClass();
            case '\\':
                return escape(false);
            case '(': {
                if (peek('?')) {
                    at++;
                    if (peek(':')) at++;
                    else if (peek('<') && at + 1 < cps.length && cps[at + 1] != '=' && cps[at + 1] != '!') {
                        while (at < cps.length && cps[at] != '>') at++;
                        if (at++ >= cps.length) throw error("a group name without its '>'");
                    } else if (peek('=') || peek('!') || peek('<')) {
                        throw error("lookaround '(?" + Character.toString(cps[at]) + (cps[at] == '<' && at + 1 < cps.length ? Character.toString(cps[at + 1]) : "") + "' is not supported");
                    } else {
                        throw error("'(?' other than (?: and (?<name> is not supported");
                    }
                }
                Node inner = disjunction(depth + 1);
                if (!peek(')')) throw error("'(' without its ')'");
                at++;
                return inner;
            }
            case '*', '+', '?':
                throw error("nothing to repeat before '" + (char) c + "'");
            case '{':
                at--;
                if (braces() != null) throw error("nothing to repeat before '{'");
                at++;
                return single(c);
            default:
                return single(c);
        }
    }

    /** After {@code [}: the class up to its {@code ]}. */
    private Chars charClass() {
        boolean negated = peek('^');
        if (negated) at++;
        List<int[]> sets = new ArrayList<>();
        while (true) {
            if (at >= cps.length) throw error("'[' without its ']'");
            if (cps[at] == ']') {
                at++;
                break;
            }
            Chars first = classAtom();
            if (peek('-') && at + 1 < cps.length && cps[at + 1] != ']') {
                at++;
                Chars last = classAtom();
                if (!isSingle(first) || !isSingle(last)) throw error("a range with a class escape (\\d, \\w, \\s) at an end");
                if (first.ranges[0] > last.ranges[0]) throw error("a range out of order in a class");
                sets.add(new int[]{first.ranges[0], last.ranges[0]});
            } else {
                sets.add(first.ranges);
            }
        }
        int[] all = normalize(sets.stream().flatMapToInt(java.util.Arrays::stream).toArray());
        if (negated) all = subtract(ANY.ranges, all);
        if (all.length == 0) throw error("a class that matches no character");
        return new Chars(all);
    }

    private Chars classAtom() {
        int c = cps[at++];
        return c == '\\' ? escape(true) : single(c);
    }

    /** After a backslash: a character or a set ({@code inClass}: {@code \b} is a backspace, {@code \-} a hyphen). */
    private Chars escape(boolean inClass) {
        if (at >= cps.length) throw error("a backslash at the pattern's end");
        int e = cps[at++];
        return switch (e) {
            case 'd' -> DIGIT;
            case 'D' -> new Chars(subtract(ANY.ranges, DIGIT.ranges));
            case 'w' -> WORD;
            case 'W' -> new Chars(subtract(ANY.ranges, WORD.ranges));
            case 's' -> SPACE;
            case 'S' -> new Chars(subtract(ANY.ranges, SPACE.ranges));
            case 't' -> single('\t');
            case 'n' -> single('\n');
            case 'r' -> single('\r');
            case 'f' -> single('\f');
            case 'v' -> single(0x0B);
            case 'x' -> single(hex(2));
            case 'u' -> {
                int u = hex(4);
                // a surrogate pair written as two escapes is one character
                if (Character.isHighSurrogate((char) u) && at + 5 < cps.length && cps[at] == '\\' && cps[at + 1] == 'u') {
                    int save = at;
                    at += 2;
                    int low = hex(4);
                    if (Character.isLowSurrogate((char) low)) yield single(Character.toCodePoint((char) u, (char) low));
                    at = save;
                }
                if (Character.isSurrogate((char) u)) throw error("a lone surrogate \\u" + Integer.toHexString(u));
                yield single(u);
            }
            case '0' -> {
                if (at < cps.length && Character.isDigit(cps[at])) throw error("an octal escape is not supported");
                yield single(0);
            }
            case 'b' -> {
                if (inClass) yield single(8);
                throw error("word boundary \\b is not supported");
            }
            case 'B' -> throw error("word boundary \\B is not supported");
            case 'p', 'P' -> throw error("Unicode property \\" + (char) e + " is not supported");
            case 'k' -> throw error("backreference \\k is not supported");
            case 'c' -> throw error("control escape \\c is not supported");
            default -> {
                if (e >= '1' && e <= '9') throw error("backreference \\" + (char) e + " is not supported");
                if (Character.isLetterOrDigit(e)) throw error("unknown escape \\" + Character.toString(e));
                yield single(e);
            }
        };
    }

    private int hex(int digits) {
        if (at + digits > cps.length) throw error("expected " + digits + " hexadecimal digits");
        int value = 0;
        for (int i = 0; i < digits; i++) {
            int d = Character.digit(cps[at + i], 16);
            if (d < 0) throw error("expected " + digits + " hexadecimal digits");
            value = value * 16 + d;
        }
        at += digits;
        return value;
    }

    private boolean peek(int c) {
        return at < cps.length && cps[at] == c;
    }

    private static Chars single(int c) {
        return new Chars(new int[]{c, c});
    }

    private static boolean isSingle(Chars c) {
        return c.ranges.length == 2 && c.ranges[0] == c.ranges[1];
    }

    private IllegalArgumentException error(String what) {
        String text = com.fasterxml.jackson.databind.node.TextNode.valueOf(pattern).toString();
        return new IllegalArgumentException("--json-schema: pattern " + text + " (at " + where + "): " + what);
    }

    /**
     * {@code item{min,max}}, where a repetition without end of what can match the empty string (which GBNF would take
     * as left recursion) becomes one of the non-empty strings it matches: the same strings.
     */
    private static Node repeat(Node item, int min, int max) {
        if (max < 0 && nullable(item)) {
            Node nonEmpty = nonEmpty(item);
            return nonEmpty == null ? new Seq(List.of()) : new Repeat(nonEmpty, 0, -1);
        }
        return new Repeat(item, min, max);
    }

    private static boolean nullable(Node n) {
        return switch (n) {
            case Chars c -> false;
            case Seq s -> s.parts.stream().allMatch(PatternGrammar::nullable);
            case Alt a -> a.options.stream().anyMatch(PatternGrammar::nullable);
            case Repeat r -> r.min == 0 || nullable(r.item);
        };
    }

    /** The non-empty strings {@code n} matches, or null if none. */
    private static Node nonEmpty(Node n) {
        if (!nullable(n)) return n;
        return switch (n) {
            case Chars c -> c;
            case Alt a -> {
                List<Node> options = new ArrayList<>();
                for (Node o : a.options) {
                    Node e = nonEmpty(o);
                    if (e != null) options.add(e);
                }
                yield options.isEmpty() ? null : options.size() == 1 ? options.getFirst() : new Alt(options);
            }
            case Seq s -> {
                // every part can be empty: the first non-empty part is part i, those before it empty
                List<Node> options = new ArrayList<>();
                for (int i = 0; i < s.parts.size(); i++) {
                    Node e = nonEmpty(s.parts.get(i));
                    if (e == null) continue;
                    List<Node> parts = new ArrayList<>(List.of(e));
                    parts.addAll(s.parts.subList(i + 1, s.parts.size()));
                    options.add(parts.size() == 1 ? e : new Seq(parts));
                }
                yield options.isEmpty() ? null : options.size() == 1 ? options.getFirst() : new Alt(options);
            }
            case Repeat r -> {
                // a nullable item repeated: its first non-empty occurrence, then up to max - 1 more
                if (r.max == 0) yield null;
                Node e = nonEmpty(r.item);
                yield e == null ? null : new Seq(List.of(e, repeat(r.item, 0, r.max < 0 ? -1 : r.max - 1)));
            }
        };
    }

    private static String gbnf(Node n) {
        return switch (n) {
            case Chars c -> c == ANY ? "char" : jsonChars(c.ranges); // the base grammar's: any character, escaped as JSON allows
            case Seq s -> {
                if (s.parts.isEmpty()) yield "\"\"";
                List<String> parts = new ArrayList<>();
                for (Node p : s.parts) parts.add(gbnf(p));
                yield parts.size() == 1 ? parts.getFirst() : "(" + String.join(" ", parts) + ")";
            }
            case Alt a -> {
                List<String> options = new ArrayList<>();
                for (Node o : a.options) options.add(gbnf(o));
                yield "(" + String.join(" | ", options) + ")";
            }
            case Repeat r -> {
                String item = gbnf(r.item);
                String suffix = r.min == 0 && r.max < 0 ? "*" : r.min == 1 && r.max < 0 ? "+" : r.min == 0 && r.max == 1 ? "?"
                        : r.max < 0 ? "{" + r.min + ",}" : "{" + r.min + "," + r.max + "}";
                yield "(" + item + ")" + suffix;
            }
        };
    }

    /** The JSON text of one character of the set: itself, or its escape where JSON needs one. */
    private static String jsonChars(int[] ranges) {
        List<String> options = new ArrayList<>();
        int[] plain = subtract(ranges, new int[]{0, 0x1F, '"', '"', '\\', '\\'});
        if (plain.length > 0) {
            StringBuilder cls = new StringBuilder("[");
            for (int i = 0; i < plain.length; i += 2) {
                cls.append(gbnfChar(plain[i]));
                if (plain[i + 1] != plain[i]) cls.append('-').append(gbnfChar(plain[i + 1]));
            }
            options.add(cls.append(']').toString());
        }
        if (contains(ranges, '"')) options.add("\"\\\\\\\"\"");
        if (contains(ranges, '\\')) options.add("\"\\\\\\\\\"");
        for (int c = 0; c < 0x20; c++) {
            if (!contains(ranges, c)) continue;
            String shortForm = switch (c) {
                case '\b' -> "b";
                case '\f' -> "f";
                case '\n' -> "n";
                case '\r' -> "r";
                case '\t' -> "t";
                default -> null;
            };
            if (shortForm != null) {
                options.add("\"\\\\" + shortForm + "\"");
            } else { // backslash u00HH, the digits in either case
                String low = Integer.toHexString(c & 0xF);
                String last = Character.isLetter(low.charAt(0)) ? "[" + low + low.toUpperCase() + "]" : "\"" + low + "\"";
                options.add("(\"\\\\u00" + (c >> 4) + "\" " + last + ")");
            }
        }
        return options.size() == 1 ? options.getFirst() : "(" + String.join(" | ", options) + ")";
    }

    /** A code point in a GBNF class: letters and digits as themselves, the rest as escapes. */
    private static String gbnfChar(int c) {
        if (c < 128 && Character.isLetterOrDigit(c)) return Character.toString(c);
        return c <= 0xFF ? String.format("\\x%02X", c) : c <= 0xFFFF ? String.format("\\u%04X", c) : String.format("\\U%08X", c);
    }

    private static boolean contains(int[] ranges, int c) {
        for (int i = 0; i < ranges.length; i += 2) if (c >= ranges[i] && c <= ranges[i + 1]) return true;
        return false;
    }

    /** Pairs of inclusive bounds sorted and merged where they overlap or touch. */
    private static int[] normalize(int[] pairs) {
        int n = pairs.length / 2;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> Integer.compare(pairs[2 * a], pairs[2 * b]));
        List<Integer> out = new ArrayList<>();
        for (int i : order) {
            int lo = pairs[2 * i], hi = pairs[2 * i + 1];
            if (!out.isEmpty() && lo <= out.getLast() + 1) out.set(out.size() - 1, Math.max(out.getLast(), hi));
            else { out.add(lo); out.add(hi); }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The code points of {@code a} not in {@code b} (both normalized). */
    private static int[] subtract(int[] a, int[] b) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < a.length; i += 2) {
            int lo = a[i], hi = a[i + 1];
            for (int j = 0; j < b.length && lo <= hi; j += 2) {
                if (b[j + 1] < lo || b[j] > hi) continue;
                if (b[j] > lo) { out.add(lo); out.add(b[j] - 1); }
                lo = b[j + 1] + 1;
            }
            if (lo <= hi) { out.add(lo); out.add(hi); }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }
}
