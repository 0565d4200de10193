package gptfast4j.jinja;

import gptfast4j.jinja.Lexer.Kind;
import gptfast4j.jinja.Lexer.Token;
import gptfast4j.jinja.Node.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Tokens into statements and expressions, by Jinja's grammar and operator precedence (its parser.py's order). */
final class Parser {
    private static final Set<String> COMPARISONS = Set.of("==", "!=", "<", ">", "<=", ">=");

    private final List<Token> tokens;
    private int at;

    private Parser(List<Token> tokens) {
        this.tokens = tokens;
    }

    static List<Stmt> parse(String source) {
        Parser p = new Parser(Lexer.tokenize(source));
        List<Stmt> body = p.body(List.of());
        if (p.peek().kind() != Kind.EOF) throw p.error("unexpected '" + p.peek().text() + "'");
        return body;
    }

    // ---- statements

    /** Statements up to a block whose keyword is one of {@code ends} (left at that keyword) or the end. */
    private List<Stmt> body(List<String> ends) {
        List<Stmt> body = new ArrayList<>();
        while (true) {
            Token t = next();
            switch (t.kind()) {
                case EOF -> {
                    if (!ends.isEmpty()) throw new TemplateException("a block is not closed (expected " + String.join(" or ", ends) + ")", t.line());
                    return body;
                }
                case TEXT -> body.add(new Text(t.text(), t.line()));
                case VAR_BEGIN -> {
                    Expr e = tuple(true);
                    expect(Kind.VAR_END, "}}");
                    body.add(new Output(e, t.line()));
                }
                case BLOCK_BEGIN -> {
                    Token keyword = peek();
                    if (keyword.kind() != Kind.NAME) throw error("a block must start with a keyword");
                    if (ends.contains(keyword.text())) return body;
                    at++;
                    if (keyword.text().equals("generation")) { // transformers' marker of an assistant's text: renders its body
                        blockEnd();
                        body.addAll(body(List.of("endgeneration")));
                        closeBlock();
                    } else {
                        body.add(statement(keyword));
                    }
                }
                default -> throw new TemplateException("unexpected '" + t.text() + "'", t.line());
            }
        }
    }

    private Stmt statement(Token keyword) {
        int line = keyword.line();
        switch (keyword.text()) {
            case "if" -> {
                List<Expr> conditions = new ArrayList<>();
                List<List<Stmt>> bodies = new ArrayList<>();
                List<Stmt> otherwise = List.of();
                conditions.add(tuple(true));
                blockEnd();
                while (true) {
                    bodies.add(body(List.of("elif", "else", "endif")));
                    String end = next().text();
                    if (end.equals("elif")) {
                        conditions.add(tuple(true));
                        blockEnd();
                    } else if (end.equals("else")) {
                        blockEnd();
                        otherwise = body(List.of("endif"));
                        closeBlock();
                        break;
                    } else {
                        blockEnd();
                        break;
                    }
                }
                return new If(conditions, bodies, otherwise, line);
            }
            case "for" -> {
                List<String> targets = targets();
                if (!next().is(Kind.NAME, "in")) throw error("expected 'in' after the for loop's names");
                Expr iterable = tuple(false);
                Expr filter = null;
                if (peek().is(Kind.NAME, "if")) {
                    at++;
                    filter = expression(true);
                }
                if (peek().is(Kind.NAME, "recursive")) throw error("recursive for loops are not supported");
                blockEnd();
                List<Stmt> body = body(List.of("else", "endfor"));
                List<Stmt> otherwise = List.of();
                if (next().text().equals("else")) {
                    blockEnd();
                    otherwise = body(List.of("endfor"));
                    at++;
                }
                blockEnd();
                return new For(targets, iterable, filter, body, otherwise, line);
            }
            case "set" -> {
                Token first = peek();
                String attribute = null;
                List<String> targets;
                if (first.kind() == Kind.NAME && tokens.get(at + 1).is(Kind.OP, ".")) { // set ns.attr = ...
                    at += 2;
                    targets = List.of(first.text());
                    attribute = name();
                } else {
                    targets = targets();
                }
                if (peek().is(Kind.OP, "=")) {
                    at++;
                    Expr value = tuple(true);
                    blockEnd();
                    return new Node.Set(targets, attribute, value, null, line);
                }
                if (attribute != null || targets.size() != 1) throw error("expected '=' in set");
                blockEnd();
                List<Stmt> body = body(List.of("endset"));
                closeBlock();
                return new Node.Set(targets, null, null, body, line);
            }
            case "macro" -> {
                String name = name();
                expect(Kind.OP, "(");
                List<String> params = new ArrayList<>();
                List<Expr> defaults = new ArrayList<>();
                while (!peek().is(Kind.OP, ")")) {
                    params.add(name());
                    if (peek().is(Kind.OP, "=")) {
                        at++;
                        defaults.add(expression(true));
                    } else {
                        defaults.add(null);
                    }
                    if (!peek().is(Kind.OP, ")")) expect(Kind.OP, ",");
                }
                at++;
                blockEnd();
                List<Stmt> body = body(List.of("endmacro"));
                closeBlock();
                return new Macro(name, params, defaults, body, line);
            }
            case "filter" -> {
                Filter filter = filter(new Literal(""));
                blockEnd();
                List<Stmt> body = body(List.of("endfilter"));
                closeBlock();
                return new FilterBlock(filter, body, line);
            }
            case "break" -> {
                blockEnd();
                return new Break(line);
            }
            case "continue" -> {
                blockEnd();
                return new Continue(line);
            }
            default -> throw new TemplateException("unknown block '" + keyword.text() + "'", line);
        }
    }

    /** A for loop's or set's names: {@code a}, {@code a, b} or {@code (a, b)}. */
    private List<String> targets() {
        boolean parens = peek().is(Kind.OP, "(");
        if (parens) at++;
        List<String> names = new ArrayList<>(List.of(name()));
        while (peek().is(Kind.OP, ",")) {
            at++;
            names.add(name());
        }
        if (parens) expect(Kind.OP, ")");
        return names;
    }

    private void blockEnd() {
        expect(Kind.BLOCK_END, "%}");
    }

    /** The end keyword {@link #body} stopped at, and its block's end. */
    private void closeBlock() {
        at++;
        blockEnd();
    }

    // ---- expressions

    /** An expression, or several separated by commas (a tuple, as {@code {{ a, b }}} or {@code set x = 1, 2}). */
    private Expr tuple(boolean conditional) {
        Expr first = expression(conditional);
        if (!peek().is(Kind.OP, ",")) return first;
        List<Expr> items = new ArrayList<>(List.of(first));
        while (peek().is(Kind.OP, ",")) {
            at++;
            items.add(expression(conditional));
        }
        return new ListExpr(items, true);
    }

    private Expr expression(boolean conditional) {
        Expr e = or();
        if (conditional && peek().is(Kind.NAME, "if")) {
            at++;
            Expr condition = or();
            Expr otherwise = null;
            if (peek().is(Kind.NAME, "else")) {
                at++;
                otherwise = expression(true);
            }
            return new Conditional(condition, e, otherwise);
        }
        return e;
    }

    private Expr or() {
        Expr e = and();
        while (peek().is(Kind.NAME, "or")) {
            at++;
            e = new Binary("or", e, and());
        }
        return e;
    }

    private Expr and() {
        Expr e = not();
        while (peek().is(Kind.NAME, "and")) {
            at++;
            e = new Binary("and", e, not());
        }
        return e;
    }

    private Expr not() {
        if (peek().is(Kind.NAME, "not")) {
            at++;
            return new Unary("not", not());
        }
        return compare();
    }

    private Expr compare() {
        Expr e = math1();
        while (true) {
            Token t = peek();
            if (t.kind() == Kind.OP && COMPARISONS.contains(t.text())) {
                at++;
                e = new Binary(t.text(), e, math1());
            } else if (t.is(Kind.NAME, "in")) {
                at++;
                e = new Binary("in", e, math1());
            } else if (t.is(Kind.NAME, "not") && tokens.get(at + 1).is(Kind.NAME, "in")) {
                at += 2;
                e = new Binary("not in", e, math1());
            } else {
                return e;
            }
        }
    }

    private Expr math1() {
        Expr e = concat();
        while (peek().is(Kind.OP, "+") || peek().is(Kind.OP, "-")) e = new Binary(next().text(), e, concat());
        return e;
    }

    private Expr concat() {
        Expr e = math2();
        while (peek().is(Kind.OP, "~")) {
            at++;
            e = new Binary("~", e, math2());
        }
        return e;
    }

    private Expr math2() {
        Expr e = pow();
        while (peek().kind() == Kind.OP && Set.of("*", "/", "//", "%").contains(peek().text())) e = new Binary(next().text(), e, pow());
        return e;
    }

    private Expr pow() {
        Expr e = unary(true);
        while (peek().is(Kind.OP, "**")) {
            at++;
            e = new Binary("**", e, unary(true));
        }
        return e;
    }

    private Expr unary(boolean withFilters) {
        Expr e;
        if (peek().is(Kind.OP, "-") || peek().is(Kind.OP, "+")) {
            e = new Unary(next().text(), unary(false));
        } else {
            e = postfix(primary());
        }
        return withFilters ? filters(e) : e;
    }

    private Expr primary() {
        Token t = next();
        switch (t.kind()) {
            case NAME -> {
                return switch (t.text()) {
                    case "true", "True" -> new Literal(true);
                    case "false", "False" -> new Literal(false);
                    case "none", "None" -> new Literal(null);
                    default -> new Name(t.text());
                };
            }
            case STRING -> {
                StringBuilder s = new StringBuilder((String) t.value());
                while (peek().kind() == Kind.STRING) s.append((String) next().value());
                return new Literal(s.toString());
            }
            case NUMBER -> {
                return new Literal(t.value());
            }
            case OP -> {
                switch (t.text()) {
                    case "(" -> {
                        if (peek().is(Kind.OP, ")")) {
                            at++;
                            return new ListExpr(List.of(), true);
                        }
                        Expr e = expression(true);
                        if (peek().is(Kind.OP, ",")) {
                            List<Expr> items = new ArrayList<>(List.of(e));
                            while (peek().is(Kind.OP, ",")) {
                                at++;
                                if (peek().is(Kind.OP, ")")) break;
                                items.add(expression(true));
                            }
                            e = new ListExpr(items, true);
                        }
                        expect(Kind.OP, ")");
                        return e;
                    }
                    case "[" -> {
                        List<Expr> items = new ArrayList<>();
                        while (!peek().is(Kind.OP, "]")) {
                            items.add(expression(true));
                            if (!peek().is(Kind.OP, "]")) expect(Kind.OP, ",");
                        }
                        at++;
                        return new ListExpr(items, false);
                    }
                    case "{" -> {
                        List<Expr> keys = new ArrayList<>(), values = new ArrayList<>();
                        while (!peek().is(Kind.OP, "}")) {
                            keys.add(expression(true));
                            expect(Kind.OP, ":");
                            values.add(expression(true));
                            if (!peek().is(Kind.OP, "}")) expect(Kind.OP, ",");
                        }
                        at++;
                        return new DictExpr(keys, values);
                    }
                    default -> {
                    }
                }
            }
            default -> {
            }
        }
        throw new TemplateException("unexpected '" + (t.kind() == Kind.EOF ? "end of template" : t.text()) + "'", t.line());
    }

    /** Attributes, items, slices and calls after a primary. */
    private Expr postfix(Expr e) {
        while (true) {
            if (peek().is(Kind.OP, ".")) {
                at++;
                Token t = next();
                if (t.kind() == Kind.NAME) e = new Attribute(e, t.text());
                else if (t.kind() == Kind.NUMBER && t.value() instanceof Long) e = new Item(e, new Literal(t.value()));
                else throw new TemplateException("expected a name after '.'", t.line());
            } else if (peek().is(Kind.OP, "[")) {
                at++;
                e = subscript(e);
            } else if (peek().is(Kind.OP, "(")) {
                e = call(e);
            } else {
                return e;
            }
        }
    }

    private Expr subscript(Expr object) {
        Expr[] parts = new Expr[3];
        int part = 0;
        boolean slice = false;
        while (!peek().is(Kind.OP, "]")) {
            if (peek().is(Kind.OP, ":")) {
                at++;
                slice = true;
                if (++part > 2) throw error("a slice has at most three parts");
            } else {
                parts[part] = expression(true);
            }
        }
        at++;
        if (slice) return new Slice(object, parts[0], parts[1], parts[2]);
        if (parts[0] == null) throw error("an empty subscript");
        return new Item(object, parts[0]);
    }

    private Call call(Expr function) {
        List<Expr> args = new ArrayList<>(), keywordValues = new ArrayList<>();
        List<String> keywords = new ArrayList<>();
        arguments(args, keywords, keywordValues);
        return new Call(function, args, keywords, keywordValues);
    }

    /** {@code (a, b, name=c)}, from its parenthesis. */
    private void arguments(List<Expr> args, List<String> keywords, List<Expr> keywordValues) {
        expect(Kind.OP, "(");
        while (!peek().is(Kind.OP, ")")) {
            if (peek().kind() == Kind.NAME && tokens.get(at + 1).is(Kind.OP, "=")) {
                keywords.add(next().text());
                at++;
                keywordValues.add(expression(true));
            } else {
                if (!keywords.isEmpty()) throw error("a positional argument follows a keyword argument");
                args.add(expression(true));
            }
            if (!peek().is(Kind.OP, ")")) expect(Kind.OP, ",");
        }
        at++;
    }

    /** Filters ({@code | name}), tests ({@code is name}) and calls after a value, left to right. */
    private Expr filters(Expr e) {
        while (true) {
            if (peek().is(Kind.OP, "|")) {
                at++;
                e = filter(e);
            } else if (peek().is(Kind.NAME, "is")) {
                at++;
                boolean negated = peek().is(Kind.NAME, "not");
                if (negated) at++;
                String name = name();
                List<Expr> args = new ArrayList<>();
                if (peek().is(Kind.OP, "(")) {
                    List<String> keywords = new ArrayList<>();
                    arguments(args, keywords, new ArrayList<>());
                    if (!keywords.isEmpty()) throw error("a test takes no keyword arguments");
                } else if (startsArgument(peek())) {
                    args.add(postfix(primary()));
                }
                e = new Test(e, name, args, negated);
            } else if (peek().is(Kind.OP, "(")) {
                e = call(e);
            } else {
                return e;
            }
        }
    }

    /** Whether a test's one argument without parentheses starts here ({@code is divisibleby 3}, {@code is sameas none}). */
    private static boolean startsArgument(Token t) {
        return switch (t.kind()) {
            case STRING, NUMBER -> true;
            case NAME -> !Set.of("else", "or", "and", "if", "is", "in", "not").contains(t.text());
            case OP -> t.text().equals("[") || t.text().equals("{");
            default -> false;
        };
    }

    private Filter filter(Expr value) {
        String name = name();
        List<Expr> args = new ArrayList<>(), keywordValues = new ArrayList<>();
        List<String> keywords = new ArrayList<>();
        if (peek().is(Kind.OP, "(")) arguments(args, keywords, keywordValues);
        return new Filter(value, name, args, keywords, keywordValues);
    }

    // ---- tokens

    private Token peek() {
        return tokens.get(at);
    }

    private Token next() {
        Token t = tokens.get(at);
        if (t.kind() != Kind.EOF) at++;
        return t;
    }

    private String name() {
        Token t = next();
        if (t.kind() != Kind.NAME) throw new TemplateException("expected a name, got '" + t.text() + "'", t.line());
        return t.text();
    }

    private void expect(Kind kind, String text) {
        Token t = next();
        boolean ok = kind == Kind.OP ? t.is(kind, text) : t.kind() == kind;
        if (!ok) throw new TemplateException("expected '" + text + "', got '" + (t.kind() == Kind.EOF ? "end of template" : t.kind() == Kind.BLOCK_END ? "%}" : t.kind() == Kind.VAR_END ? "}}" : t.text()) + "'", t.line());
    }

    private TemplateException error(String message) {
        return new TemplateException(message, peek().line());
    }
}
