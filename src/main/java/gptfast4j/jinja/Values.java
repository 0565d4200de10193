package gptfast4j.jinja;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A template's values are Python's, as Jinja sees them: {@code null} is None, {@link Long} int, {@link Double} float,
 * {@link Boolean}, {@link String}, {@link List} (lists and tuples), {@link Map} (dicts, insertion ordered),
 * {@link Undefined}, {@link Namespace} and callables. Here: their truth, equality, order, arithmetic and text as
 * Python has them.
 */
final class Values {
    private Values() {}

    /** A name or item that is not there: renders as nothing, is false and empty; any other use is an error. */
    record Undefined(String name) {
        TemplateException error() {
            return new TemplateException(name + " is undefined");
        }
    }

    /** Jinja's {@code namespace()}: attributes a {@code set ns.x = ...} in a loop can change. */
    static final class Namespace {
        final Map<String, Object> attributes;

        Namespace(Map<String, Object> attributes) {
            this.attributes = attributes;
        }
    }

    /** A tuple: a list that Python shows in parentheses. */
    static final class Tuple extends ArrayList<Object> {
        Tuple(List<?> items) {
            super(items);
        }
    }

    /** A function, macro or bound method. */
    interface Callable {
        Object call(List<Object> args, Map<String, Object> keywords);
    }

    static boolean truthy(Object v) {
        return switch (v) {
            case null -> false;
            case Boolean b -> b;
            case Long l -> l != 0;
            case Double d -> d != 0;
            case String s -> !s.isEmpty();
            case List<?> l -> !l.isEmpty();
            case Map<?, ?> m -> !m.isEmpty();
            case Undefined u -> false;
            default -> true;
        };
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    /** A number (or bool, which Python counts as one) as a double. */
    static double toDouble(Object v) {
        return switch (v) {
            case null -> throw new TemplateException("expected a number, got None");
            case Long l -> l;
            case Double d -> d;
            case Boolean b -> b ? 1 : 0;
            default -> throw new TemplateException("expected a number, got " + typeName(v));
        };
    }

    static long toLong(Object v) {
        return switch (v) {
            case null -> throw new TemplateException("expected a number, got None");
            case Long l -> l;
            case Boolean b -> b ? 1 : 0;
            default -> throw new TemplateException("expected an integer, got " + typeName(v));
        };
    }

    static boolean isIntegral(Object v) {
        return v instanceof Long || v instanceof Boolean;
    }

    /** Python's type names, for error messages. */
    static String typeName(Object v) {
        return switch (v) {
            case null -> "NoneType";
            case Boolean b -> "bool";
            case Long l -> "int";
            case Double d -> "float";
            case String s -> "str";
            case List<?> l -> "list";
            case Map<?, ?> m -> "dict";
            case Undefined u -> "undefined (" + u.name() + ")";
            case Namespace n -> "namespace";
            default -> "function";
        };
    }

    static boolean equal(Object a, Object b) {
        if (a == null || b == null) return a == b;
        if (isNumber(a) && isNumber(b)) return isIntegral(a) && isIntegral(b) ? toLong(a) == toLong(b) : toDouble(a) == toDouble(b);
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) return false;
            for (int i = 0; i < x.size(); i++) if (!equal(x.get(i), y.get(i))) return false;
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) return false;
            for (Map.Entry<?, ?> e : x.entrySet()) if (!y.containsKey(e.getKey()) || !equal(e.getValue(), y.get(e.getKey()))) return false;
            return true;
        }
        if (a instanceof Undefined && b instanceof Undefined) return true;
        return a.equals(b);
    }

    /** Python's order of two numbers, two strings or two lists; anything else is an error. */
    static int compare(Object a, Object b) {
        if (isNumber(a) && isNumber(b)) return isIntegral(a) && isIntegral(b) ? Long.compare(toLong(a), toLong(b)) : Double.compare(toDouble(a), toDouble(b));
        if (a instanceof String x && b instanceof String y) return x.compareTo(y);
        if (a instanceof List<?> x && b instanceof List<?> y) {
            for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                if (!equal(x.get(i), y.get(i))) return compare(x.get(i), y.get(i));
            }
            return Integer.compare(x.size(), y.size());
        }
        throw new TemplateException("cannot compare " + typeName(a) + " with " + typeName(b));
    }

    /** The items a for loop or a filter walks: a list's, a dict's keys, a string's characters; undefined is empty. */
    static List<Object> iterate(Object v) {
        return switch (v) {
            case null -> throw new TemplateException("None is not iterable");
            case List<?> l -> new ArrayList<>(l);
            case Map<?, ?> m -> new ArrayList<>(m.keySet());
            case String s -> {
                List<Object> chars = new ArrayList<>();
                s.codePoints().forEach(c -> chars.add(Character.toString(c)));
                yield chars;
            }
            case Undefined u -> new ArrayList<>();
            default -> throw new TemplateException(typeName(v) + " is not iterable");
        };
    }

    /** Python's {@code len}: a string's code points. */
    static int length(Object v) {
        return switch (v) {
            case null -> throw new TemplateException("None has no length");
            case String s -> s.codePointCount(0, s.length());
            case List<?> l -> l.size();
            case Map<?, ?> m -> m.size();
            case Undefined u -> 0;
            default -> throw new TemplateException(typeName(v) + " has no length");
        };
    }

    // ---- arithmetic

    static Object arithmetic(String op, Object a, Object b) {
        if (a instanceof Undefined u) throw u.error();
        if (b instanceof Undefined u) throw u.error();
        if (op.equals("+")) {
            if (a instanceof String x && b instanceof String y) return x + y;
            if (a instanceof List<?> x && b instanceof List<?> y) {
                List<Object> sum = new ArrayList<>(x);
                sum.addAll(y);
                return sum;
            }
        }
        if (op.equals("*")) {
            if (a instanceof String s && isIntegral(b)) return s.repeat((int) Math.max(0, toLong(b)));
            if (a instanceof List<?> l && isIntegral(b)) {
                List<Object> r = new ArrayList<>();
                for (long i = 0; i < toLong(b); i++) r.addAll(l);
                return r;
            }
        }
        if (!isNumber(a) || !isNumber(b)) throw new TemplateException("unsupported operand types for " + op + ": " + typeName(a) + " and " + typeName(b));
        boolean ints = isIntegral(a) && isIntegral(b);
        return switch (op) {
            case "+" -> ints ? (Object) (toLong(a) + toLong(b)) : (Object) (toDouble(a) + toDouble(b));
            case "-" -> ints ? (Object) (toLong(a) - toLong(b)) : (Object) (toDouble(a) - toDouble(b));
            case "*" -> ints ? (Object) (toLong(a) * toLong(b)) : (Object) (toDouble(a) * toDouble(b));
            case "/" -> {
                if (toDouble(b) == 0) throw new TemplateException("division by zero");
                yield toDouble(a) / toDouble(b);
            }
            case "//", "%" -> {
                if (toDouble(b) == 0) throw new TemplateException((op.equals("%") ? "modulo" : "division") + " by zero");
                if (ints) yield op.equals("//") ? Math.floorDiv(toLong(a), toLong(b)) : Math.floorMod(toLong(a), toLong(b));
                double q = Math.floor(toDouble(a) / toDouble(b));
                yield op.equals("//") ? q : toDouble(a) - q * toDouble(b);
            }
            case "**" -> ints && toLong(b) >= 0 ? (Object) (long) Math.pow(toLong(a), toLong(b)) : (Object) Math.pow(toDouble(a), toDouble(b));
            default -> throw new IllegalStateException(op);
        };
    }

    // ---- text

    /** Python's {@code str}: what {@code {{ v }}} writes (undefined: nothing). */
    static String str(Object v) {
        return switch (v) {
            case null -> "None";
            case String s -> s;
            case Undefined u -> "";
            default -> repr(v);
        };
    }

    /** Python's {@code repr}, as {@code str} of a list or dict shows its items. */
    static String repr(Object v) {
        return switch (v) {
            case null -> "None";
            case Boolean b -> b ? "True" : "False";
            case Long l -> l.toString();
            case Double d -> floatRepr(d);
            case String s -> stringRepr(s);
            case Undefined u -> "";
            case List<?> l -> {
                boolean tuple = l instanceof Tuple;
                StringBuilder s = new StringBuilder(tuple ? "(" : "[");
                for (Object o : l) s.append(s.length() > 1 ? ", " : "").append(repr(o));
                yield s.append(tuple && l.size() == 1 ? ",)" : tuple ? ")" : "]").toString();
            }
            case Map<?, ?> m -> {
                StringBuilder s = new StringBuilder("{");
                for (Map.Entry<?, ?> e : m.entrySet()) s.append(s.length() > 1 ? ", " : "").append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
                yield s.append('}').toString();
            }
            case Namespace n -> "<Namespace " + repr(n.attributes) + ">";
            default -> "<function>";
        };
    }

    /** Python's shortest round-trip text of a float: {@code 1.0}, {@code 0.1}, {@code 1e-05}, {@code 1e+16}. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) return "nan";
        if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal b = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros(); // Java's shortest digits (JDK 19+)
        String digits = b.unscaledValue().toString();
        int exponent = digits.length() - 1 - b.scale();
        String sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = b.toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() > 1 ? digits.charAt(0) + "." + digits.substring(1) : digits;
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
    }

    private static String stringRepr(String s) {
        char quote = s.contains("'") && !s.contains("\"") ? '"' : '\'';
        StringBuilder r = new StringBuilder().append(quote);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\' -> r.append("\\\\");
                case '\n' -> r.append("\\n");
                case '\r' -> r.append("\\r");
                case '\t' -> r.append("\\t");
                default -> {
                    if (c == quote) r.append('\\').append(c);
                    else if (c < 0x20 || c == 0x7f) r.append(String.format("\\x%02x", (int) c));
                    else r.append(c);
                }
            }
        }
        return r.append(quote).toString();
    }

    /**
     * Python's {@code json.dumps(v, ensure_ascii, indent, separators, sort_keys)}, which Hugging Face's {@code tojson}
     * is: {@code ", "} and {@code ": "} between items without an indent, {@code ","} and {@code ": "} with one.
     */
    static String json(Object v, boolean ensureAscii, String indent, String itemSeparator, String keySeparator, boolean sortKeys) {
        StringBuilder s = new StringBuilder();
        json(v, ensureAscii, indent, itemSeparator, keySeparator, sortKeys, 0, s);
        return s.toString();
    }

    private static void json(Object v, boolean ascii, String indent, String itemSep, String keySep, boolean sort, int depth, StringBuilder s) {
        switch (v) {
            case null -> s.append("null");
            case Boolean b -> s.append(b);
            case Long l -> s.append(l);
            case Double d -> s.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : floatRepr(d));
            case String str -> jsonString(str, ascii, s);
            case List<?> l -> {
                if (l.isEmpty()) {
                    s.append("[]");
                    return;
                }
                s.append('[');
                for (int i = 0; i < l.size(); i++) {
                    if (i > 0) s.append(itemSep);
                    newline(indent, depth + 1, s);
                    json(l.get(i), ascii, indent, itemSep, keySep, sort, depth + 1, s);
                }
                newline(indent, depth, s);
                s.append(']');
            }
            case Map<?, ?> m -> {
                if (m.isEmpty()) {
                    s.append("{}");
                    return;
                }
                List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
                if (sort) entries.sort((x, y) -> compare(x.getKey(), y.getKey()));
                s.append('{');
                for (Iterator<Map.Entry<?, ?>> it = entries.iterator(); it.hasNext(); ) {
                    Map.Entry<?, ?> e = it.next();
                    newline(indent, depth + 1, s);
                    Object key = e.getKey();
                    jsonString(key instanceof String k ? k : key == null ? "null" : repr(key), ascii, s);
                    s.append(keySep);
                    json(e.getValue(), ascii, indent, itemSep, keySep, sort, depth + 1, s);
                    if (it.hasNext()) s.append(itemSep);
                }
                newline(indent, depth, s);
                s.append('}');
            }
            case Namespace n -> json(n.attributes, ascii, indent, itemSep, keySep, sort, depth, s);
            default -> throw new TemplateException("a " + typeName(v) + " is not JSON serializable");
        }
    }

    private static void newline(String indent, int depth, StringBuilder s) {
        if (indent != null) s.append('\n').append(indent.repeat(depth));
    }

    private static void jsonString(String str, boolean ascii, StringBuilder s) {
        s.append('"');
        for (int i = 0; i < str.length(); i++) {
            char c = str.charAt(i);
            switch (c) {
                case '"' -> s.append("\\\"");
                case '\\' -> s.append("\\\\");
                case '\n' -> s.append("\\n");
                case '\r' -> s.append("\\r");
                case '\t' -> s.append("\\t");
                case '\b' -> s.append("\\b");
                case '\f' -> s.append("\\f");
                default -> {
                    if (c < 0x20 || ascii && c > 0x7f) s.append(String.format("\\u%04x", (int) c));
                    else s.append(c);
                }
            }
        }
        s.append('"');
    }
}
