package gptfast4j.generate;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A grammar in llama.cpp's GBNF, over Unicode code points: {@code name ::= alternatives} rules, the text matched by
 * {@code root}. Elements: {@code "literal"}, character classes {@code [a-z_]} and {@code [^"\\]}, {@code .} (any
 * character), rule names, groups {@code ( ... )}, each optionally repeated by {@code *}, {@code +}, {@code ?},
 * {@code {m}}, {@code {m,}} or {@code {m,n}}; {@code #} comments. Literals and classes take {@code \n \r \t \\ \"
 * \[ \] \xHH \\uHHHH \UHHHHHHHH}. A rule ends at the line's end unless inside parentheses or after {@code |} or
 * {@code ::=}.
 * <p>
 * Repetitions become rules of their own, right-recursive as llama.cpp makes them ({@code x*} is {@code r ::= x r |}),
 * so that every rule is alternatives of sequences of character sets and rule references. Matching follows llama.cpp:
 * a set of {@link Stack}s, each the positions still to match, innermost first, expanded until a character set is on
 * top ({@link Expansion#expand}); {@link #advance} takes one code point. Left recursion, which that expansion would follow
 * forever, is refused when the grammar is parsed.
 */
public final class Grammar {
    /** Alternatives of element sequences, by rule id; {@link #ROOT} is 0. */
    private final Element[][][] rules;
    private static final int ROOT = 0;

    sealed interface Element permits Chars, Ref {}

    /** One code point in {@code ranges} (pairs of inclusive bounds), or, {@code negated}, in none of them. */
    record Chars(int[] ranges, boolean negated) implements Element {
        boolean matches(int c) {
            for (int i = 0; i < ranges.length; i += 2) if (c >= ranges[i] && c <= ranges[i + 1]) return !negated;
            return negated;
        }

        /** Whether some code point in {@code [lo, hi]} matches (a character of which only the first bytes are known). */
        boolean matchesSome(int lo, int hi) {
            if (!negated) {
                for (int i = 0; i < ranges.length; i += 2) if (ranges[i] <= hi && ranges[i + 1] >= lo) return true;
                return false;
            }
            // the first code point from lo not in a range, stepping over each range it falls in
            int c = lo;
            step:
            while (c <= hi) {
                for (int i = 0; i < ranges.length; i += 2) {
                    if (c >= ranges[i] && c <= ranges[i + 1]) {
                        c = ranges[i + 1] + 1;
                        continue step;
                    }
                }
                return true;
            }
            return false;
        }
    }

    record Ref(int rule) implements Element {}

    /** A position: element {@code index} of alternative {@code alt} of {@code rule}. */
    record Position(int rule, int alt, int index) {}

    /**
     * The positions still to match, innermost first; the empty stack ({@code null} top) has matched the whole root.
     * Its hash is kept: stacks are told apart in sets at every character, and share their rests.
     */
    static final class Stack {
        static final Stack EMPTY = new Stack(null, null);
        final Position top;
        final Stack rest;
        private final int hash;

        Stack(Position top, Stack rest) {
            this.top = top;
            this.rest = rest;
            // mixed, not 31 * top + rest: stacks that differ in which of two alternatives they return to at several
            // depths (2^n of them after n characters of an ambiguous grammar) collided in thousands under that sum
            this.hash = top == null ? 0 : mix(rest.hash * 0x9E3779B9 + ((top.rule() * 0x85EBCA77 + top.alt()) * 0xC2B2AE3D + top.index()));
        }

        /** MurmurHash3's finalizer: every input bit moves about half the output bits. */
        private static int mix(int h) {
            h ^= h >>> 16;
            h *= 0x85EBCA6B;
            h ^= h >>> 13;
            h *= 0xC2B2AE35;
            return h ^ h >>> 16;
        }

        Position top() {
            return top;
        }

        @Override
        public int hashCode() {
            return hash;
        }

        @Override
        public boolean equals(Object o) {
            if (this == o) return true;
            if (!(o instanceof Stack other) || other.hash != hash) return false;
            Stack a = this, b = other;
            while (a != b) {
                if (a == null || b == null || a.hash != b.hash || !java.util.Objects.equals(a.top, b.top)) return false;
                a = a.rest;
                b = b.rest;
            }
            return true;
        }
    }

    /**
     * The most stacks one character's expansion may reach. An ambiguous grammar (".* .* .*") can match a text in very
     * many ways, each a stack; past this it is refused rather than left to run for minutes.
     */
    static final int MAX_EXPANSIONS = 200_000;

    private Grammar(Element[][][] rules) {
        this.rules = rules;
    }

    /** Parses GBNF text; an error names what is wrong and the line it is on. */
    public static Grammar parse(String text) {
        return new Parser(text).grammar();
    }

    /** The expanded stacks the grammar starts from. */
    Set<Stack> start() {
        Expansion e = new Expansion();
        for (int alt = 0; alt < rules[ROOT].length; alt++) e.expand(new Stack(new Position(ROOT, alt, 0), Stack.EMPTY));
        return e.out;
    }

    /** The stacks one character leads to, and the steps taken to find them. */
    private final class Expansion {
        final Set<Stack> out = new LinkedHashSet<>();
        /**
         * Every stack this expansion has reached: one reached again expands to nothing new. Without this, optional
         * items within optional items reach the same stacks along exponentially many paths.
         */
        private final Set<Stack> seen = new java.util.HashSet<>();
        int steps;

        /**
         * Adds the stacks {@code stack} expands to: rule references on top replaced by each of their alternatives,
         * finished alternatives popped, until a character set is on top or the stack is empty.
         */
        void expand(Stack stack) {
            if (!seen.add(stack)) return;
            if (++steps > MAX_EXPANSIONS) {
                throw new IllegalArgumentException("grammar: too ambiguous (more than " + MAX_EXPANSIONS + " ways to go on at one character); make its alternatives and repetitions exclusive");
            }
            if (stack.top == null) {
                out.add(stack);
                return;
            }
            Position p = stack.top;
            Element[] sequence = rules[p.rule][p.alt];
            if (p.index == sequence.length) {
                expand(stack.rest);
            } else if (sequence[p.index] instanceof Ref(int rule)) {
                // a reference that ends its alternative returns to the rest directly: the stack of x* (r ::= x r |)
                // stays as deep however many x it has matched
                Stack after = p.index + 1 == sequence.length ? stack.rest : new Stack(new Position(p.rule, p.alt, p.index + 1), stack.rest);
                for (int alt = 0; alt < rules[rule].length; alt++) expand(new Stack(new Position(rule, alt, 0), after));
            } else {
                out.add(stack);
            }
        }
    }

    /** The character set on top of an expanded, non-empty stack. */
    Chars next(Stack stack) {
        Position p = stack.top;
        return (Chars) rules[p.rule][p.alt][p.index];
    }

    /** The expanded stacks after code point {@code c}; empty where no stack takes it. */
    Set<Stack> advance(Set<Stack> stacks, int c) {
        Expansion e = new Expansion();
        for (Stack s : stacks) {
            if (s.top != null && next(s).matches(c)) e.expand(new Stack(new Position(s.top.rule, s.top.alt, s.top.index + 1), s.rest));
        }
        return e.out;
    }

    /** Whether {@code text} as a whole matches the root rule. */
    public boolean matches(String text) {
        return after(text).contains(Stack.EMPTY);
    }

    /** Whether some text starting with {@code text} matches the root rule. */
    public boolean allowsPrefix(String text) {
        return !after(text).isEmpty();
    }

    /** The expanded stacks after {@code text}'s code points; empty where the grammar does not take them. */
    private Set<Stack> after(String text) {
        Set<Stack> stacks = start();
        for (int i = 0; i < text.length() && !stacks.isEmpty(); i += Character.charCount(text.codePointAt(i))) stacks = advance(stacks, text.codePointAt(i));
        return stacks;
    }

    /** A recursive-descent parser of GBNF, llama.cpp's grammar-parser in what it takes. */
    private static final class Parser {
        private final String src;
        private int at;
        private final Map<String, Integer> ids = new HashMap<>();
        private final List<Element[][]> rules = new ArrayList<>();
        /** Where each named rule is defined (-1: referenced, not yet defined). */
        private final List<Integer> definedAt = new ArrayList<>();
        private final List<String> names = new ArrayList<>();
        /** The rule being parsed. */
        private String current;
        /** Groups open at the parser's position: the parser recurses once per group. */
        private int depth;
        private static final int MAX_DEPTH = 500;

        Parser(String src) {
            this.src = src;
            id("root");
        }

        Grammar grammar() {
            skip(true);
            while (at < src.length()) {
                int start = at;
                String name = name();
                skip(false);
                if (!src.startsWith("::=", at)) throw error("expected ::= after the rule name '" + name + "'");
                at += 3;
                skip(true);
                int id = id(name);
                current = name;
                if (definedAt.get(id) >= 0) throw error("rule '" + name + "' is defined twice", start);
                definedAt.set(id, start);
                rules.set(id, alternatives(false));
                if (at < src.length() && src.charAt(at) != '\n' && src.charAt(at) != '\r') throw error("unexpected '" + src.charAt(at) + "'");
                skip(true);
            }
            for (int id = 0; id < names.size(); id++) {
                if (definedAt.get(id) < 0) throw new IllegalArgumentException(id == ROOT ? "grammar: no root rule (root ::= ...)" : "grammar: rule '" + names.get(id) + "' is used but not defined");
            }
            Element[][][] compiled = rules.toArray(Element[][][]::new);
            refuseLeftRecursion(compiled);
            return new Grammar(compiled);
        }

        /** A rule's id, made on first sight (a name may be used before its definition). */
        private int id(String name) {
            return ids.computeIfAbsent(name, n -> {
                names.add(n);
                rules.add(null);
                definedAt.add(-1);
                return names.size() - 1;
            });
        }

        /** A rule made for a group or a repetition, named (in errors) after the rule it is in. */
        private int generated(Element[][] alternatives) {
            names.add(current);
            rules.add(alternatives);
            definedAt.add(at);
            return names.size() - 1;
        }

        private Element[][] alternatives(boolean nested) {
            List<Element[]> alts = new ArrayList<>();
            alts.add(sequence(nested));
            while (at < src.length() && src.charAt(at) == '|') {
                at++;
                skip(true);
                alts.add(sequence(nested));
            }
            return alts.toArray(Element[][]::new);
        }

        private Element[] sequence(boolean nested) {
            List<Element> seq = new ArrayList<>();
            int last = 0; // where the last element's elements start in seq, for a repetition after it
            while (at < src.length()) {
                char c = src.charAt(at);
                if (c == '"') {
                    at++;
                    last = seq.size();
                    while (true) {
                        if (at >= src.length()) throw error("a string literal is not closed");
                        if (src.charAt(at) == '"') break;
                        int ch = character();
                        seq.add(new Chars(new int[]{ch, ch}, false));
                    }
                    at++;
                } else if (c == '[') {
                    at++;
                    last = seq.size();
                    boolean negated = at < src.length() && src.charAt(at) == '^';
                    if (negated) at++;
                    List<Integer> ranges = new ArrayList<>();
                    while (true) {
                        if (at >= src.length()) throw error("a character class is not closed");
                        if (src.charAt(at) == ']') break;
                        int lo = character(), hi = lo;
                        if (at + 1 < src.length() && src.charAt(at) == '-' && src.charAt(at + 1) != ']') {
                            at++;
                            hi = character();
                            if (hi < lo) throw error("the range's end is below its start");
                        }
                        ranges.add(lo);
                        ranges.add(hi);
                    }
                    at++;
                    seq.add(new Chars(ranges.stream().mapToInt(Integer::intValue).toArray(), negated));
                } else if (c == '.') {
                    at++;
                    last = seq.size();
                    seq.add(new Chars(new int[0], true));
                } else if (c == '(') {
                    if (++depth > MAX_DEPTH) throw error("groups nested more than " + MAX_DEPTH + " deep");
                    at++;
                    skip(true);
                    last = seq.size();
                    Element[][] group = alternatives(true);
                    if (at >= src.length() || src.charAt(at) != ')') throw error("expected ')'");
                    at++;
                    depth--;
                    seq.add(new Ref(generated(group)));
                } else if (isWordChar(c)) {
                    last = seq.size();
                    String name = name();
                    skip(nested);
                    if (src.startsWith("::=", at)) throw error("missing line break before the rule '" + name + "'");
                    seq.add(new Ref(id(name)));
                    continue; // spaces skipped already
                } else if (c == '*' || c == '+' || c == '?' || c == '{') {
                    if (last == seq.size()) throw error("'" + c + "' repeats nothing");
                    repeat(seq, last);
                } else {
                    break;
                }
                skip(nested);
            }
            return seq.toArray(Element[]::new);
        }

        /** Replaces the last element (from {@code from}) of {@code seq} by its repetition as the operator at {@code at} says. */
        private void repeat(List<Element> seq, int from) {
            List<Element> tail = seq.subList(from, seq.size());
            Element[] item = tail.toArray(Element[]::new);
            tail.clear();
            int min, max; // max -1: unbounded
            char op = src.charAt(at++);
            if (op == '*') { min = 0; max = -1; }
            else if (op == '+') { min = 1; max = -1; }
            else if (op == '?') { min = 0; max = 1; }
            else {
                skip(true);
                min = max = integer();
                skip(true);
                if (at < src.length() && src.charAt(at) == ',') {
                    at++;
                    skip(true);
                    max = at < src.length() && Character.isDigit(src.charAt(at)) ? integer() : -1;
                    skip(true);
                }
                if (at >= src.length() || src.charAt(at) != '}') throw error("expected '}'");
                at++;
                if (max >= 0 && max < min) throw error("the repetition's maximum is below its minimum");
            }
            for (int i = 0; i < min; i++) tail.addAll(List.of(item));
            if (max < 0) {
                // r ::= item r |
                int r = generated(null);
                rules.set(r, new Element[][]{concat(item, new Ref(r)), {}});
                tail.add(new Ref(r));
            } else if (max > min) {
                // (item (item (item)?)?)? for max - min optional items, innermost made first
                Element[] inner = {};
                for (int i = 0; i < max - min; i++) inner = new Element[]{new Ref(generated(new Element[][]{concat(item, inner), {}}))};
                tail.addAll(List.of(inner));
            }
        }

        private static Element[] concat(Element[] a, Element... b) {
            Element[] out = java.util.Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, out, a.length, b.length);
            return out;
        }

        private int integer() {
            int start = at;
            while (at < src.length() && Character.isDigit(src.charAt(at))) at++;
            if (start == at) throw error("expected a number");
            if (at - start > 4) throw error("a repetition count above 9999");
            return Integer.parseInt(src, start, at, 10);
        }

        /** One character of a literal or class, an escape taken. */
        private int character() {
            int c = src.codePointAt(at);
            at += Character.charCount(c);
            if (c != '\\') return c;
            if (at >= src.length()) throw error("an escape at the end of the grammar");
            char e = src.charAt(at++);
            return switch (e) {
                case 'n' -> '\n';
                case 'r' -> '\r';
                case 't' -> '\t';
                case '\\', '"', '[', ']' -> e;
                case 'x' -> hex(2);
                case 'u' -> hex(4);
                case 'U' -> hex(8);
                default -> throw error("unknown escape '\\" + e + "'");
            };
        }

        private int hex(int digits) {
            if (at + digits > src.length()) throw error("expected " + digits + " hexadecimal digits");
            int value;
            try {
                value = Integer.parseUnsignedInt(src, at, at + digits, 16);
            } catch (NumberFormatException e) {
                throw error("expected " + digits + " hexadecimal digits");
            }
            if (value < 0 || value > Character.MAX_CODE_POINT) throw error("not a Unicode code point");
            at += digits;
            return value;
        }

        private static boolean isWordChar(char c) {
            return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_';
        }

        private String name() {
            int start = at;
            while (at < src.length() && isWordChar(src.charAt(at))) at++;
            if (start == at) throw error(at < src.length() ? "expected a rule name at '" + src.charAt(at) + "'" : "expected a rule name");
            return src.substring(start, at);
        }

        /** Skips spaces, tabs and comments, and line breaks where {@code newlines}. */
        private void skip(boolean newlines) {
            while (at < src.length()) {
                char c = src.charAt(at);
                if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
                    at++;
                } else if (c == '#') {
                    while (at < src.length() && src.charAt(at) != '\n' && src.charAt(at) != '\r') at++;
                } else {
                    break;
                }
            }
        }

        private IllegalArgumentException error(String what) {
            return error(what, at);
        }

        private IllegalArgumentException error(String what, int where) {
            int line = 1, column = 1;
            for (int i = 0; i < Math.min(where, src.length()); i++) {
                if (src.charAt(i) == '\n') { line++; column = 1; } else column++;
            }
            return new IllegalArgumentException("grammar: " + what + " (line " + line + ", column " + column + ")");
        }

        /**
         * Refuses a rule that can reach itself before matching a character (through references each of whose preceding
         * elements can match the empty text): its expansion would never end.
         */
        private void refuseLeftRecursion(Element[][][] compiled) {
            int n = compiled.length;
            boolean[] nullable = new boolean[n];
            for (boolean changed = true; changed; ) {
                changed = false;
                for (int r = 0; r < n; r++) {
                    if (nullable[r]) continue;
                    for (Element[] alt : compiled[r]) {
                        if (allNullable(alt, alt.length, nullable)) {
                            nullable[r] = changed = true;
                            break;
                        }
                    }
                }
            }
            int[] state = new int[n]; // 0 unseen, 1 on the path, 2 done
            for (int r = 0; r < n; r++) if (state[r] == 0) visit(r, compiled, nullable, state);
        }

        private void visit(int r, Element[][][] compiled, boolean[] nullable, int[] state) {
            state[r] = 1;
            for (Element[] alt : compiled[r]) {
                for (int i = 0; i < alt.length; i++) {
                    if (alt[i] instanceof Ref(int next)) {
                        if (state[next] == 1) throw new IllegalArgumentException("grammar: rule '" + names.get(next) + "' is left-recursive: it can reach itself before matching a character (a rule that starts with itself, or a repetition of what can be empty)");
                        if (state[next] == 0) visit(next, compiled, nullable, state);
                    }
                    if (!allNullable(alt, i + 1, nullable)) break;
                }
            }
            state[r] = 2;
        }

        private static boolean allNullable(Element[] alt, int upTo, boolean[] nullable) {
            for (int i = 0; i < upTo; i++) if (!(alt[i] instanceof Ref(int r)) || !nullable[r]) return false;
            return true;
        }
    }
}
