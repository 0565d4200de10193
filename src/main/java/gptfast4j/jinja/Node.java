package gptfast4j.jinja;

import java.util.List;

/** A parsed template: statements (what is written) and expressions (what is computed), Jinja's node kinds. */
sealed interface Node {

    /** Something that computes a value. */
    sealed interface Expr extends Node {}

    record Literal(Object value) implements Expr {}

    record Name(String name) implements Expr {}

    /** A list literal, or a tuple (shown in parentheses; Python's immutability is not kept). */
    record ListExpr(List<Expr> items, boolean tuple) implements Expr {}

    record DictExpr(List<Expr> keys, List<Expr> values) implements Expr {}

    /** {@code object.name}: an attribute, else the item of that name. */
    record Attribute(Expr object, String name) implements Expr {}

    /** {@code object[key]}: the item, else the attribute of that name. */
    record Item(Expr object, Expr key) implements Expr {}

    /** {@code object[start:stop:step]}, each part optional (null). */
    record Slice(Expr object, Expr start, Expr stop, Expr step) implements Expr {}

    record Call(Expr function, List<Expr> args, List<String> keywords, List<Expr> keywordValues) implements Expr {}

    /** {@code value | name(args)}. */
    record Filter(Expr value, String name, List<Expr> args, List<String> keywords, List<Expr> keywordValues) implements Expr {}

    /** {@code value is [not] name(args)}. */
    record Test(Expr value, String name, List<Expr> args, boolean negated) implements Expr {}

    record Unary(String op, Expr operand) implements Expr {}

    /** Arithmetic, {@code ~}, comparisons and {@code in}; {@code and}/{@code or} short-circuit. */
    record Binary(String op, Expr left, Expr right) implements Expr {}

    /** {@code then if condition else otherwise} (otherwise null: undefined). */
    record Conditional(Expr condition, Expr then, Expr otherwise) implements Expr {}

    /** Something that writes (or declares); {@code line} places its errors. */
    sealed interface Stmt extends Node {
        int line();
    }

    record Text(String text, int line) implements Stmt {}

    record Output(Expr value, int line) implements Stmt {}

    record If(List<Expr> conditions, List<List<Stmt>> bodies, List<Stmt> otherwise, int line) implements Stmt {}

    /** {@code for targets in iterable [if filter]}; {@code otherwise} when nothing was iterated. */
    record For(List<String> targets, Expr iterable, Expr filter, List<Stmt> body, List<Stmt> otherwise, int line) implements Stmt {}

    /** {@code set a = v}, {@code set a, b = v}, {@code set ns.a = v}, or a block {@code set a}...{@code endset} (value null). */
    record Set(List<String> targets, String attribute, Expr value, List<Stmt> body, int line) implements Stmt {}

    record Macro(String name, List<String> params, List<Expr> defaults, List<Stmt> body, int line) implements Stmt {}

    /** {@code filter name(args)}...{@code endfilter}: the body's text through a filter. */
    record FilterBlock(Filter filter, List<Stmt> body, int line) implements Stmt {}

    record Break(int line) implements Stmt {}

    record Continue(int line) implements Stmt {}
}
