package gptfast4j.generate;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GBNF grammars against independent references: grammars without recursion are regular, so random ones are checked
 * against the same language written as a {@link java.util.regex} pattern (a whole text matches, or a text is the start
 * of one that does: the engine wanted more input, {@link Matcher#hitEnd}); a recursive one against a counter. Then a
 * grammar over a vocabulary ({@link GrammarConstraint}) by hand and against the grammar on the texts.
 */
class GrammarTest {
    /** Letters of one, two, three and four UTF-8 bytes (the last outside the BMP). */
    private static final String[] ALPHABET = {"a", "b", "c", "é", "中", "😀"};

    /**
     * A piece of grammar, the same language as a regular expression, and whether it matches the empty text (then it is
     * not repeated without bound: that is left recursion, refused, as llama.cpp refuses it).
     */
    private record Piece(String gbnf, String regex, boolean nullable) {}

    private static String letter(SplittableRandom r) {
        return ALPHABET[r.nextInt(ALPHABET.length)];
    }

    private static Piece element(SplittableRandom r, int depth, List<Piece> rules) {
        Piece p;
        int kind = r.nextInt(depth < 2 ? 5 : 4);
        if (kind == 0) {
            StringBuilder s = new StringBuilder();
            for (int i = 0, n = 1 + r.nextInt(3); i < n; i++) s.append(letter(r));
            p = new Piece("\"" + s + "\"", Pattern.quote(s.toString()), false);
        } else if (kind == 1) {
            StringBuilder s = new StringBuilder();
            for (int i = 0, n = 1 + r.nextInt(3); i < n; i++) s.append(letter(r));
            String negated = r.nextInt(3) == 0 ? "^" : "";
            p = new Piece("[" + negated + s + "]", "[" + negated + s + "]", false);
        } else if (kind == 2) {
            p = new Piece(".", ".", false);
        } else if (kind == 3 && !rules.isEmpty()) {
            int i = r.nextInt(rules.size());
            p = new Piece("rule" + i, "(?:" + rules.get(i).regex + ")", rules.get(i).nullable);
        } else if (kind == 4) {
            Piece inner = alternatives(r, depth + 1, rules);
            p = new Piece("(" + inner.gbnf + ")", "(?:" + inner.regex + ")", inner.nullable);
        } else {
            p = new Piece("\"a\"", "a", false);
        }
        int kindOfRepeat = r.nextInt(10);
        // an unbounded repetition of what can be empty is left recursion, refused (as llama.cpp refuses it)
        if (p.nullable && (kindOfRepeat <= 1 || kindOfRepeat == 4)) kindOfRepeat = 2;
        String repeat = switch (kindOfRepeat) {
            case 0 -> "*";
            case 1 -> "+";
            case 2 -> "?";
            case 3 -> "{" + r.nextInt(3) + "}";
            case 4 -> "{" + r.nextInt(3) + ",}";
            case 5 -> {
                int m = r.nextInt(3);
                yield "{" + m + "," + (m + r.nextInt(3)) + "}";
            }
            default -> "";
        };
        boolean nullable = p.nullable || repeat.equals("*") || repeat.equals("?") || repeat.startsWith("{0");
        return repeat.isEmpty() ? p : new Piece(p.gbnf + repeat, "(?:" + p.regex + ")" + repeat, nullable);
    }

    private static Piece alternatives(SplittableRandom r, int depth, List<Piece> rules) {
        List<String> g = new ArrayList<>(), x = new ArrayList<>();
        boolean nullable = false;
        for (int a = 0, n = 1 + r.nextInt(3); a < n; a++) {
            StringBuilder gs = new StringBuilder(), xs = new StringBuilder();
            boolean empty = true;
            for (int e = 0, m = 1 + r.nextInt(3); e < m; e++) {
                Piece p = element(r, depth, rules);
                gs.append(' ').append(p.gbnf);
                xs.append(p.regex);
                empty &= p.nullable;
            }
            g.add(gs.toString());
            x.add(xs.toString());
            nullable |= empty;
        }
        return new Piece(String.join(" |", g), String.join("|", x), nullable);
    }

    @Test
    void randomRegularGrammarsAgreeWithJavaRegex() {
        SplittableRandom r = new SplittableRandom(11);
        int viable = 0, whole = 0;
        for (int c = 0; c < 1000; c++) {
            // rules that use only rules made before them: no recursion, so the language is regular
            List<Piece> rules = new ArrayList<>();
            StringBuilder text = new StringBuilder();
            for (int i = 0, n = r.nextInt(3); i < n; i++) {
                Piece rule = alternatives(r, 0, rules);
                text.append("rule").append(i).append(" ::=").append(rule.gbnf).append('\n');
                rules.add(rule);
            }
            Piece root = alternatives(r, 0, rules);
            text.insert(0, "root ::=" + root.gbnf + "\n");
            Grammar grammar = Grammar.parse(text.toString());
            Pattern pattern = Pattern.compile(root.regex, Pattern.DOTALL);
            for (int s = 0; s < 40; s++) {
                StringBuilder input = new StringBuilder();
                for (int i = 0, n = r.nextInt(7); i < n; i++) input.append(letter(r));
                Matcher m = pattern.matcher(input);
                boolean matches = m.matches(), prefix = matches || m.hitEnd();
                String what = text + "on '" + input + "' (" + root.regex + ")";
                assertEquals(matches, grammar.matches(input.toString()), what);
                assertEquals(prefix, grammar.allowsPrefix(input.toString()), what);
                if (matches) whole++;
                if (prefix) viable++;
            }
        }
        assertTrue(whole > 1000 && viable > 5000, whole + " whole matches, " + viable + " viable prefixes of 40000");
    }

    /** A recursive grammar: balanced parentheses, against a counter. */
    @Test
    void balancedParentheses() {
        Grammar g = Grammar.parse("root ::= ( \"(\" root \")\" root )?");
        SplittableRandom r = new SplittableRandom(5);
        for (int c = 0; c < 2000; c++) {
            StringBuilder s = new StringBuilder();
            for (int i = 0, n = r.nextInt(12); i < n; i++) s.append(r.nextBoolean() ? '(' : ')');
            int depth = 0;
            boolean neverBelow = true;
            for (char ch : s.toString().toCharArray()) {
                depth += ch == '(' ? 1 : -1;
                neverBelow &= depth >= 0;
            }
            assertEquals(neverBelow && depth == 0, g.matches(s.toString()), s.toString());
            assertEquals(neverBelow, g.allowsPrefix(s.toString()), s.toString());
        }
    }

    @Test
    void syntaxByHand() {
        Grammar g = Grammar.parse("""
                # a comment line
                root ::= greeting ws name   # rules may come in any order
                greeting ::= "hi" | "hello" |
                    "hey"
                name ::= ( [A-Z] [a-z]{1,3}
                  ) "!"?
                ws ::= [ \\t]+
                """);
        for (String yes : new String[]{"hi Bob", "hey\tAnn!", "hello  Zoe"}) assertTrue(g.matches(yes), yes);
        for (String no : new String[]{"hi bob", "hi B", "hi Bobby", "hi Bob!!", "hiBob"}) assertFalse(g.matches(no), no);
        // escapes in literals and classes
        Grammar e = Grammar.parse("root ::= \"\\x41\\u00e9\\U0001F600\\n\\\"\\\\\" [\\]\\[-]");
        assertTrue(e.matches("Aé😀\n\"\\]") && e.matches("Aé😀\n\"\\[") && e.matches("Aé😀\n\"\\-"));
        assertFalse(e.matches("Aé😀\n\"\\x"));
        Grammar dot = Grammar.parse("root ::= [^a-c]. \"x\"{2}");
        assertTrue(dot.matches("d\nxx") && dot.matches("中😀xx"));
        assertFalse(dot.matches("b xx") || dot.matches("dexxx"));
        Grammar counts = Grammar.parse("root ::= \"a\"{2,3} \"b\"{2,} \"c\"{0}");
        assertTrue(counts.matches("aabb") && counts.matches("aaabbbbb"));
        assertFalse(counts.matches("abb") || counts.matches("aaaabb") || counts.matches("aab") || counts.matches("aabbc"));
    }

    @Test
    void errorsSayWhatAndWhere() {
        String[][] cases = {
                {"rot ::= \"a\"", "grammar: no root rule (root ::= ...)"},
                {"root ::= value", "grammar: rule 'value' is used but not defined"},
                {"root ::= \"a\"\nroot ::= \"b\"", "grammar: rule 'root' is defined twice (line 2, column 1)"},
                {"root ::= \"abc", "grammar: a string literal is not closed (line 1, column 14)"},
                {"root ::= [abc", "grammar: a character class is not closed (line 1, column 14)"},
                {"root ::= \"\\q\"", "grammar: unknown escape '\\q' (line 1, column 13)"},
                {"root ::= \"a\"{3,1}", "grammar: the repetition's maximum is below its minimum (line 1, column 18)"},
                {"root ::= * \"a\"", "grammar: '*' repeats nothing (line 1, column 10)"},
                {"root ::= \"a\" )", "grammar: unexpected ')' (line 1, column 14)"},
                {"root = \"a\"", "grammar: expected ::= after the rule name 'root' (line 1, column 6)"},
                {"root ::= [z-a]", "grammar: the range's end is below its start (line 1, column 14)"},
                {"root ::= x \"a\"\nx ::= root \"b\" | \"c\"", "grammar: rule 'root' is left-recursive: it can reach itself before matching a character (a rule that starts with itself, or a repetition of what can be empty)"},
                {"root ::= e* \"a\"\ne ::= \"b\"?", "grammar: rule 'root' is left-recursive: it can reach itself before matching a character (a rule that starts with itself, or a repetition of what can be empty)"},
        };
        for (String[] c : cases) assertEquals(c[1], assertThrows(IllegalArgumentException.class, () -> Grammar.parse(c[0]), c[0]).getMessage(), c[0]);
        // each a opens a b or a c to come: 2^n stacks after n, refused by name past MAX_EXPANSIONS rather than left to run
        Grammar doubling = Grammar.parse("root ::= (\"a\" root \"b\" | \"a\" root \"c\")?");
        assertTrue(doubling.allowsPrefix("a".repeat(10) + "bcb") && !doubling.allowsPrefix("a".repeat(10) + "d"));
        assertEquals("grammar: too ambiguous (more than 200000 ways to go on at one character); make its alternatives and repetitions exclusive",
                assertThrows(IllegalArgumentException.class, () -> doubling.allowsPrefix("a".repeat(20))).getMessage());
    }

    // ---- over a vocabulary ----

    private static final byte[] E_ACUTE = "é".getBytes(StandardCharsets.UTF_8); // C3 A9
    /** a, b, ab, é's two bytes apart, é whole, a control token (no bytes), EOS (no bytes), 中. */
    private static final byte[][] VOCAB = {bytes("a"), bytes("b"), bytes("ab"), {E_ACUTE[0]}, {E_ACUTE[1]}, E_ACUTE, {}, {}, bytes("中")};
    private static final int EOS = 7;

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static boolean[] allowed(GrammarConstraint c) {
        float[] logits = new float[VOCAB.length];
        c.mask(logits);
        boolean[] out = new boolean[VOCAB.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = logits[i] == 0;
            assertEquals(out[i], c.allows(i), "token " + i);
        }
        return out;
    }

    private static boolean[] only(int... ids) {
        boolean[] out = new boolean[VOCAB.length];
        for (int id : ids) out[id] = true;
        return out;
    }

    @Test
    void tokensByHand() {
        GrammarConstraint c = new GrammarConstraint(Grammar.parse("root ::= \"a\"+ \"é\" \"b\"?"), id -> VOCAB[id], VOCAB.length, new int[]{EOS});
        assertArrayEquals(only(0), allowed(c), "a first: not ab (b cannot follow a), not é's first byte");
        c.accept(0);
        assertArrayEquals(only(0, 3, 5), allowed(c), "another a, é whole or its first byte; not yet EOS");
        c.accept(3);
        assertFalse(c.complete());
        assertArrayEquals(only(4), allowed(c), "é's second byte alone");
        c.accept(4);
        assertTrue(c.complete());
        assertArrayEquals(only(1, EOS), allowed(c), "b, or the end");
        c.accept(1);
        assertArrayEquals(only(EOS), allowed(c), "nothing more can follow: the end only");
        assertThrows(IllegalStateException.class, () -> c.accept(0));
        c.restart();
        assertArrayEquals(only(0), allowed(c), "restarted");
        // é's first byte where only 中 (E4 B8 AD) may come: no character starting C3 can follow
        GrammarConstraint han = new GrammarConstraint(Grammar.parse("root ::= [^a-z]"), id -> VOCAB[id], VOCAB.length, new int[]{EOS});
        assertArrayEquals(only(3, 5, 8), allowed(han));
        GrammarConstraint none = new GrammarConstraint(Grammar.parse("root ::= \"z\""), id -> VOCAB[id], VOCAB.length, new int[]{EOS});
        assertEquals("the grammar allows no token of the vocabulary here", assertThrows(IllegalArgumentException.class, () -> none.mask(new float[VOCAB.length])).getMessage());
    }

    /**
     * A random walk over stories260K's real vocabulary under a grammar, a uniformly drawn allowed token a step: each
     * step's allowed tokens (those of whole characters) are those after which the text so far is still the start of a
     * match, and every text is one the same language's regular expression accepts as such.
     */
    @Test
    void randomWalksOverARealVocabulary() throws Exception {
        gptfast4j.tokenizer.Tokenizer tok = gptfast4j.model.Checkpoint.load(gptfast4j.Shared.MODELS.resolve("stories260K.gguf"), null).tokenizer();
        int n = tok.vocabSize();
        Grammar g = Grammar.parse("root ::= \" {\" ( [a-z ]+ \",\" )* \" }\"");
        Pattern regex = Pattern.compile(" \\{(?:[a-z ]+,)* }");
        GrammarConstraint c = new GrammarConstraint(g, tok::bytes, n, new int[]{2});
        SplittableRandom r = new SplittableRandom(3);
        float[] logits = new float[n];
        for (int walk = 0; walk < 3; walk++) {
            c.restart();
            StringBuilder text = new StringBuilder();
            for (int step = 0; step < 30; step++) {
                Arrays.fill(logits, 0);
                c.mask(logits);
                List<Integer> allowed = new ArrayList<>();
                for (int id = 0; id < n; id++) {
                    if (logits[id] == 0) allowed.add(id);
                    String piece = new String(tok.bytes(id), StandardCharsets.UTF_8);
                    boolean expected = id == 2 ? regex.matcher(text).matches() : tok.bytes(id).length > 0 && g.allowsPrefix(text + piece);
                    if (!piece.contains("\uFFFD")) assertEquals(expected, logits[id] == 0, "'" + text + "' + '" + piece + "' " + id + " " + Arrays.toString(tok.bytes(id)));
                }
                int token = allowed.get(r.nextInt(allowed.size()));
                assertFalse(new String(tok.bytes(token), StandardCharsets.UTF_8).contains("\uFFFD"), token + " " + Arrays.toString(tok.bytes(token)));
                if (token == 2) break;
                c.accept(token);
                text.append(new String(tok.bytes(token), StandardCharsets.UTF_8));
                Matcher m = regex.matcher(text);
                assertTrue(m.matches() || m.hitEnd(), "'" + text + "'");
            }
        }
    }
}
