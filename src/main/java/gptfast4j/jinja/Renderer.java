package gptfast4j.jinja;

import gptfast4j.jinja.Node.*;
import gptfast4j.jinja.Values.Callable;
import gptfast4j.jinja.Values.Namespace;
import gptfast4j.jinja.Values.Undefined;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One rendering: statements written to a buffer, expressions evaluated, in Jinja's scopes (a for loop's and a macro's
 * body have their own; an if's does not).
 */
final class Renderer {
    /** A scope's names, looked up through its parents. */
    static final class Frame {
        final Map<String, Object> names = new HashMap<>();
        final Frame parent;

        Frame(Frame parent) {
            this.parent = parent;
        }

        Object get(String name) {
            for (Frame f = this; f != null; f = f.parent) {
                Object v = f.names.get(name);
                if (v != null || f.names.containsKey(name)) return v;
            }
            return new Undefined("'" + name + "'");
        }
    }

    /** {@code break} and {@code continue}, thrown to the loop (no stack trace: they are control flow). */
    private static final class LoopControl extends RuntimeException {
        static final LoopControl BREAK = new LoopControl(), CONTINUE = new LoopControl();

        private LoopControl() {
            super(null, null, false, false);
        }
    }

    /** A macro with the scope it was defined in; a call renders its body and returns the text. */
    private final class MacroValue implements Callable {
        final Macro macro;
        final Frame scope;

        MacroValue(Macro macro, Frame scope) {
            this.macro = macro;
            this.scope = scope;
        }

        @Override
        public Object call(List<Object> args, Map<String, Object> keywords) {
            List<String> params = macro.params();
            if (args.size() > params.size()) throw new TemplateException("macro '" + macro.name() + "' takes " + params.size() + " arguments, got " + args.size());
            Frame frame = new Frame(scope);
            for (int i = 0; i < params.size(); i++) {
                String p = params.get(i);
                Object v;
                if (i < args.size()) v = args.get(i);
                else if (keywords.containsKey(p)) v = keywords.get(p);
                else if (macro.defaults().get(i) != null) v = eval(macro.defaults().get(i), frame);
                else v = new Undefined("'" + p + "'");
                frame.names.put(p, v);
            }
            for (String k : keywords.keySet()) {
                if (!params.contains(k)) throw new TemplateException("macro '" + macro.name() + "' has no parameter '" + k + "'");
            }
            StringBuilder text = new StringBuilder();
            render(macro.body(), frame, text);
            return text.toString();
        }
    }

    /** Jinja's {@code loop}: where a for loop is. */
    static final class Loop {
        final List<Object> items;
        int index;

        Loop(List<Object> items) {
            this.items = items;
        }

        Object attribute(String name) {
            int n = items.size();
            return switch (name) {
                case "index" -> (long) index + 1;
                case "index0" -> (long) index;
                case "revindex" -> (long) (n - index);
                case "revindex0" -> (long) (n - index - 1);
                case "first" -> index == 0;
                case "last" -> index == n - 1;
                case "length" -> (long) n;
                case "previtem" -> index > 0 ? items.get(index - 1) : new Undefined("loop.previtem");
                case "nextitem" -> index < n - 1 ? items.get(index + 1) : new Undefined("loop.nextitem");
                case "cycle" -> (Callable) (args, kw) -> args.isEmpty() ? new Undefined("loop.cycle()") : args.get(index % args.size());
                default -> new Undefined("loop." + name);
            };
        }
    }

    private final Builtins builtins;

    Renderer(Builtins builtins) {
        this.builtins = builtins;
    }

    void render(List<Stmt> body, Frame frame, StringBuilder out) {
        for (Stmt s : body) {
            try {
                render(s, frame, out);
            } catch (TemplateException e) {
                throw e.at(s.line());
            }
        }
    }

    private void render(Stmt stmt, Frame frame, StringBuilder out) {
        switch (stmt) {
            case Text t -> out.append(t.text());
            case Output o -> out.append(Values.str(eval(o.value(), frame)));
            case If i -> {
                for (int k = 0; k < i.conditions().size(); k++) {
                    if (Values.truthy(eval(i.conditions().get(k), frame))) {
                        render(i.bodies().get(k), frame, out);
                        return;
                    }
                }
                render(i.otherwise(), frame, out);
            }
            case For f -> loop(f, frame, out);
            case Node.Set s -> {
                Object value;
                if (s.value() == null) {
                    StringBuilder text = new StringBuilder();
                    render(s.body(), frame, text);
                    value = text.toString();
                } else {
                    value = eval(s.value(), frame);
                }
                if (s.attribute() != null) {
                    if (!(frame.get(s.targets().getFirst()) instanceof Namespace ns)) {
                        throw new TemplateException("cannot set an attribute of " + s.targets().getFirst() + ", which is not a namespace");
                    }
                    ns.attributes.put(s.attribute(), value);
                } else {
                    assign(s.targets(), value, frame);
                }
            }
            case Macro m -> frame.names.put(m.name(), new MacroValue(m, frame));
            case FilterBlock fb -> {
                StringBuilder text = new StringBuilder();
                render(fb.body(), frame, text);
                Filter f = fb.filter();
                out.append(Values.str(applyFilter(new Filter(new Literal(text.toString()), f.name(), f.args(), f.keywords(), f.keywordValues()), frame)));
            }
            case Break b -> throw LoopControl.BREAK;
            case Continue c -> throw LoopControl.CONTINUE;
        }
    }

    private void loop(For f, Frame frame, StringBuilder out) {
        Object iterable = eval(f.iterable(), frame);
        List<Object> items = Values.iterate(iterable);
        Frame scope = new Frame(frame);
        if (f.filter() != null) { // {% for x in xs if cond %}: the loop counts only the items that pass
            List<Object> kept = new ArrayList<>();
            for (Object item : items) {
                assign(f.targets(), item, scope);
                if (Values.truthy(eval(f.filter(), scope))) kept.add(item);
            }
            items = kept;
        }
        Loop loop = new Loop(items);
        scope.names.put("loop", loop);
        for (; loop.index < items.size(); loop.index++) {
            assign(f.targets(), items.get(loop.index), scope);
            try {
                render(f.body(), scope, out);
            } catch (LoopControl c) {
                if (c == LoopControl.BREAK) break;
            }
        }
        if (items.isEmpty()) render(f.otherwise(), frame, out);
    }

    /** {@code a = v}, or {@code a, b = v} unpacking a list of as many. */
    private static void assign(List<String> targets, Object value, Frame frame) {
        if (targets.size() == 1) {
            frame.names.put(targets.getFirst(), value);
            return;
        }
        List<Object> parts = Values.iterate(value);
        if (parts.size() != targets.size()) throw new TemplateException("cannot unpack " + parts.size() + " values into " + targets.size() + " names");
        for (int i = 0; i < targets.size(); i++) frame.names.put(targets.get(i), parts.get(i));
    }

    Object eval(Expr expr, Frame frame) {
        return switch (expr) {
            case Literal l -> l.value();
            case Name n -> {
                Object v = frame.get(n.name());
                yield v instanceof Undefined ? builtins.global(n.name(), v) : v;
            }
            case ListExpr l -> {
                List<Object> items = new ArrayList<>();
                for (Expr e : l.items()) items.add(eval(e, frame));
                yield l.tuple() ? new Values.Tuple(items) : items;
            }
            case DictExpr d -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (int i = 0; i < d.keys().size(); i++) map.put(eval(d.keys().get(i), frame), eval(d.values().get(i), frame));
                yield map;
            }
            case Attribute a -> builtins.attribute(eval(a.object(), frame), a.name());
            case Item i -> builtins.item(eval(i.object(), frame), eval(i.key(), frame));
            case Slice s -> Builtins.slice(eval(s.object(), frame), optional(s.start(), frame), optional(s.stop(), frame), optional(s.step(), frame));
            case Call c -> {
                Object function = eval(c.function(), frame);
                if (function instanceof Undefined u) throw new TemplateException(u.name() + " is undefined, not a function");
                if (!(function instanceof Callable callable)) throw new TemplateException("a " + Values.typeName(function) + " is not callable");
                yield callable.call(evalAll(c.args(), frame), keywords(c.keywords(), c.keywordValues(), frame));
            }
            case Filter f -> applyFilter(f, frame);
            case Test t -> {
                boolean result = builtins.test(t.name(), eval(t.value(), frame), evalAll(t.args(), frame));
                yield t.negated() != result;
            }
            case Unary u -> {
                Object v = eval(u.operand(), frame);
                yield switch (u.op()) {
                    case "not" -> !Values.truthy(v);
                    case "-" -> Values.arithmetic("-", 0L, v);
                    default -> Values.arithmetic("+", 0L, v);
                };
            }
            case Binary b -> binary(b, frame);
            case Conditional c -> Values.truthy(eval(c.condition(), frame)) ? eval(c.then(), frame)
                    : c.otherwise() != null ? eval(c.otherwise(), frame) : new Undefined("a conditional's missing else");
        };
    }

    private Object applyFilter(Filter f, Frame frame) {
        return builtins.filter(f.name(), eval(f.value(), frame), evalAll(f.args(), frame), keywords(f.keywords(), f.keywordValues(), frame));
    }

    private Object optional(Expr e, Frame frame) {
        return e == null ? null : eval(e, frame);
    }

    private List<Object> evalAll(List<Expr> exprs, Frame frame) {
        List<Object> values = new ArrayList<>(exprs.size());
        for (Expr e : exprs) values.add(eval(e, frame));
        return values;
    }

    private Map<String, Object> keywords(List<String> names, List<Expr> values, Frame frame) {
        if (names.isEmpty()) return Map.of();
        Map<String, Object> kw = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) kw.put(names.get(i), eval(values.get(i), frame));
        return kw;
    }

    private Object binary(Binary b, Frame frame) {
        Object left = eval(b.left(), frame);
        switch (b.op()) {
            case "and" -> {
                return Values.truthy(left) ? eval(b.right(), frame) : left;
            }
            case "or" -> {
                return Values.truthy(left) ? left : eval(b.right(), frame);
            }
            default -> {
            }
        }
        Object right = eval(b.right(), frame);
        return switch (b.op()) {
            case "~" -> Values.str(left) + Values.str(right);
            case "==" -> Values.equal(left, right);
            case "!=" -> !Values.equal(left, right);
            case "<" -> Values.compare(left, right) < 0;
            case ">" -> Values.compare(left, right) > 0;
            case "<=" -> Values.compare(left, right) <= 0;
            case ">=" -> Values.compare(left, right) >= 0;
            case "in" -> Builtins.contains(right, left);
            case "not in" -> !Builtins.contains(right, left);
            default -> Values.arithmetic(b.op(), left, right);
        };
    }
}
