package gptfast4j.jinja;

import gptfast4j.jinja.Renderer.Loop;
import gptfast4j.jinja.Values.Callable;
import gptfast4j.jinja.Values.Namespace;
import gptfast4j.jinja.Values.Undefined;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.time.LocalDateTime;
import java.time.format.TextStyle;

/**
 * Jinja's filters, tests and global functions, and the Python methods of strings, lists and dicts that chat templates
 * call; with Hugging Face's additions ({@code raise_exception}, {@code strftime_now}, its {@code tojson}).
 */
final class Builtins {
    private static final Set<String> STRING_METHODS = Set.of("strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
            "replace", "upper", "lower", "title", "capitalize", "find", "rfind", "count", "join", "splitlines", "isdigit", "isalpha",
            "isalnum", "isspace", "islower", "isupper", "format");
    private static final Set<String> DICT_METHODS = Set.of("get", "items", "keys", "values", "pop", "copy", "update", "setdefault");
    private static final Set<String> LIST_METHODS = Set.of("append", "pop", "index", "count", "extend", "insert", "copy");

    /** The time {@code strftime_now(format)} formats. */
    private final LocalDateTime now;

    Builtins(LocalDateTime now) {
        this.now = now;
    }

    /** A global function by name, else {@code undefined} as it was. */
    Object global(String name, Object undefined) {
        return switch (name) {
            case "range" -> (Callable) (args, kw) -> range(args);
            case "namespace" -> (Callable) (args, kw) -> {
                Map<String, Object> attributes = new LinkedHashMap<>();
                for (Object a : args) {
                    if (!(a instanceof Map<?, ?> m)) throw new TemplateException("namespace() takes a dict or keyword arguments");
                    m.forEach((k, v) -> attributes.put(Values.str(k), v));
                }
                attributes.putAll(kw);
                return new Namespace(attributes);
            };
            case "dict" -> (Callable) (args, kw) -> {
                Map<Object, Object> d = new LinkedHashMap<>();
                for (Object a : args) if (a instanceof Map<?, ?> m) d.putAll(m);
                d.putAll(kw);
                return d;
            };
            case "raise_exception" -> (Callable) (args, kw) -> {
                throw new TemplateException(args.isEmpty() ? "raise_exception" : Values.str(args.getFirst()));
            };
            case "strftime_now" -> (Callable) (args, kw) -> strftime(Values.str(arg(args, 0, name)), now);
            default -> undefined;
        };
    }

    /** C's {@code strftime} (Python's, in the C locale) for the codes a date is written with. */
    static String strftime(String format, LocalDateTime t) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                s.append(c);
                continue;
            }
            char code = format.charAt(++i);
            switch (code) {
                case 'Y' -> s.append(t.getYear());
                case 'y' -> s.append(String.format("%02d", t.getYear() % 100));
                case 'm' -> s.append(String.format("%02d", t.getMonthValue()));
                case 'd' -> s.append(String.format("%02d", t.getDayOfMonth()));
                case 'e' -> s.append(String.format("%2d", t.getDayOfMonth()));
                case 'j' -> s.append(String.format("%03d", t.getDayOfYear()));
                case 'H' -> s.append(String.format("%02d", t.getHour()));
                case 'I' -> s.append(String.format("%02d", (t.getHour() + 11) % 12 + 1));
                case 'p' -> s.append(t.getHour() < 12 ? "AM" : "PM");
                case 'M' -> s.append(String.format("%02d", t.getMinute()));
                case 'S' -> s.append(String.format("%02d", t.getSecond()));
                case 'B' -> s.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'b', 'h' -> s.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> s.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> s.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case '%' -> s.append('%');
                default -> s.append('%').append(code);
            }
        }
        return s.toString();
    }

    private static List<Object> range(List<Object> args) {
        long start = 0, stop, step = 1;
        if (args.isEmpty() || args.size() > 3) throw new TemplateException("range() takes 1 to 3 arguments");
        if (args.size() == 1) stop = Values.toLong(args.getFirst());
        else {
            start = Values.toLong(args.get(0));
            stop = Values.toLong(args.get(1));
            if (args.size() == 3) step = Values.toLong(args.get(2));
        }
        if (step == 0) throw new TemplateException("range() step must not be zero");
        if ((stop - start) / step > 1_000_000) throw new TemplateException("range() too long");
        List<Object> r = new ArrayList<>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) r.add(i);
        return r;
    }

    // ---- attributes and items

    /** {@code object.name}: a method or the loop's attribute, else the item of that name; undefined where neither is. */
    Object attribute(Object object, String name) {
        switch (object) {
            case null -> {
                return new Undefined("None's attribute '" + name + "'");
            }
            case Undefined u -> throw new TemplateException(u.name() + " is undefined (reading ." + name + ")");
            case Loop l -> {
                return l.attribute(name);
            }
            case Namespace n -> {
                return n.attributes.containsKey(name) ? n.attributes.get(name) : new Undefined("namespace attribute '" + name + "'");
            }
            case String s when STRING_METHODS.contains(name) -> {
                return method(s, name);
            }
            case Map<?, ?> m when DICT_METHODS.contains(name) -> {
                return method(m, name);
            }
            case List<?> l when LIST_METHODS.contains(name) -> {
                return method(l, name);
            }
            default -> {
                return item(object, name);
            }
        }
    }

    /** {@code object[key]}: the item, else an attribute of that name; undefined where neither is. */
    Object item(Object object, Object key) {
        switch (object) {
            case null -> {
            }
            case Undefined u -> throw new TemplateException(u.name() + " is undefined (reading [" + Values.repr(key) + "])");
            case Map<?, ?> m -> {
                if (m.containsKey(key)) return m.get(key);
                if (key instanceof Long || key instanceof Double) { // JSON's keys are strings; a template's may be numbers
                    for (Map.Entry<?, ?> e : m.entrySet()) if (Values.equal(e.getKey(), key)) return e.getValue();
                }
            }
            case List<?> l when Values.isIntegral(key) -> {
                long i = Values.toLong(key);
                if (i < 0) i += l.size();
                if (i >= 0 && i < l.size()) return l.get((int) i);
            }
            case String s when Values.isIntegral(key) -> {
                int[] cps = s.codePoints().toArray();
                long i = Values.toLong(key);
                if (i < 0) i += cps.length;
                if (i >= 0 && i < cps.length) return Character.toString(cps[(int) i]);
            }
            default -> {
            }
        }
        if (key instanceof String name && !(object instanceof Map<?, ?>)) {
            Object a = switch (object) {
                case null -> null;
                case Loop l -> l.attribute(name);
                case Namespace n -> n.attributes.get(name);
                case String s when STRING_METHODS.contains(name) -> method(s, name);
                case List<?> l when LIST_METHODS.contains(name) -> method(l, name);
                default -> null;
            };
            if (a != null) return a;
        }
        return new Undefined((object instanceof Map<?, ?> ? "the dict's item " : Values.typeName(object) + "'s item ") + Values.repr(key));
    }

    /** Python's slice of a list or string. */
    static Object slice(Object object, Object start, Object stop, Object step) {
        List<Object> items = switch (object) {
            case null -> throw new TemplateException("None cannot be sliced");
            case List<?> l -> new ArrayList<>(l);
            case String s -> Values.iterate(s);
            case Undefined u -> throw u.error();
            default -> throw new TemplateException("a " + Values.typeName(object) + " cannot be sliced");
        };
        int n = items.size();
        long by = step == null ? 1 : Values.toLong(step);
        if (by == 0) throw new TemplateException("a slice's step must not be zero");
        long from = start == null ? (by > 0 ? 0 : n - 1) : bound(Values.toLong(start), n, by);
        long to = stop == null ? (by > 0 ? n : -1) : bound(Values.toLong(stop), n, by);
        List<Object> r = new ArrayList<>();
        for (long i = from; by > 0 ? i < to : i > to; i += by) r.add(items.get((int) i));
        if (object instanceof String) {
            StringBuilder s = new StringBuilder();
            for (Object c : r) s.append((String) c);
            return s.toString();
        }
        return r;
    }

    private static long bound(long i, int n, long step) {
        if (i < 0) i += n;
        if (step > 0) return Math.max(0, Math.min(i, n));
        return Math.max(-1, Math.min(i, n - 1));
    }

    /** Python's {@code needle in haystack}. */
    static boolean contains(Object haystack, Object needle) {
        return switch (haystack) {
            case null -> throw new TemplateException("'in' needs a string, list or dict, got None");
            case String s -> {
                if (!(needle instanceof String n)) throw new TemplateException("'in <string>' needs a string, got " + Values.typeName(needle));
                yield s.contains(n);
            }
            case List<?> l -> l.stream().anyMatch(x -> Values.equal(x, needle));
            case Map<?, ?> m -> m.containsKey(needle);
            case Undefined u -> false;
            case Namespace n -> n.attributes.containsKey(needle);
            default -> throw new TemplateException("'in' needs a string, list or dict, got " + Values.typeName(haystack));
        };
    }

    // ---- methods

    private static Callable method(Object self, String name) {
        return (args, kw) -> self instanceof String s && name.equals("format") ? format(s, args, kw) : call(self, name, args);
    }

    /** Python's {@code str.format} with plain fields: {@code {}}, {@code {0}}, {@code {name}}, and {@code {{ }}}. */
    private static String format(String s, List<Object> args, Map<String, Object> kw) {
        StringBuilder r = new StringBuilder();
        int next = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if ((c == '{' || c == '}') && i + 1 < s.length() && s.charAt(i + 1) == c) {
                r.append(c);
                i++;
            } else if (c == '{') {
                int end = s.indexOf('}', i);
                if (end < 0) throw new TemplateException("format(): a field is not closed");
                String field = s.substring(i + 1, end);
                Object v;
                if (field.isEmpty()) v = arg(args, next++, "format");
                else if (field.chars().allMatch(Character::isDigit)) v = arg(args, Integer.parseInt(field), "format");
                else if (kw.containsKey(field)) v = kw.get(field);
                else throw new TemplateException("format(): no argument '" + field + "'");
                r.append(Values.str(v));
                i = end;
            } else {
                r.append(c);
            }
        }
        return r.toString();
    }

    @SuppressWarnings("unchecked")
    private static Object call(Object self, String name, List<Object> args) {
        if (self instanceof String s) return stringMethod(s, name, args);
        if (self instanceof Map<?, ?> m) {
            Map<Object, Object> map = (Map<Object, Object>) m;
            return switch (name) {
                case "get" -> map.containsKey(arg(args, 0, name)) ? map.get(args.getFirst()) : args.size() > 1 ? args.get(1) : null;
                case "items" -> items(map);
                case "keys" -> new ArrayList<>(map.keySet());
                case "values" -> new ArrayList<>(map.values());
                case "pop" -> map.containsKey(arg(args, 0, name)) ? map.remove(args.getFirst()) : args.size() > 1 ? args.get(1) : new Undefined("the dict's item " + Values.repr(args.getFirst()));
                case "copy" -> new LinkedHashMap<>(map);
                case "update" -> {
                    if (arg(args, 0, name) instanceof Map<?, ?> other) map.putAll(other);
                    yield null;
                }
                case "setdefault" -> map.computeIfAbsent(arg(args, 0, name), k -> args.size() > 1 ? args.get(1) : null);
                default -> throw new IllegalStateException(name);
            };
        }
        List<Object> list = (List<Object>) self;
        return switch (name) {
            case "append" -> {
                list.add(arg(args, 0, name));
                yield null;
            }
            case "extend" -> {
                list.addAll(Values.iterate(arg(args, 0, name)));
                yield null;
            }
            case "insert" -> {
                long at = Values.toLong(arg(args, 0, name));
                list.add((int) Math.max(0, Math.min(at < 0 ? at + list.size() : at, list.size())), arg(args, 1, name));
                yield null;
            }
            case "pop" -> {
                if (list.isEmpty()) throw new TemplateException("pop from an empty list");
                long at = args.isEmpty() ? list.size() - 1 : Values.toLong(args.getFirst());
                if (at < 0) at += list.size();
                if (at < 0 || at >= list.size()) throw new TemplateException("pop index out of range");
                yield list.remove((int) at);
            }
            case "index" -> {
                for (int i = 0; i < list.size(); i++) if (Values.equal(list.get(i), arg(args, 0, name))) yield (long) i;
                throw new TemplateException(Values.repr(args.getFirst()) + " is not in the list");
            }
            case "count" -> list.stream().filter(x -> Values.equal(x, arg(args, 0, name))).count();
            case "copy" -> new ArrayList<>(list);
            default -> throw new IllegalStateException(name);
        };
    }

    private static Object arg(List<Object> args, int i, String name) {
        if (i >= args.size()) throw new TemplateException(name + "() needs " + (i + 1) + " argument" + (i > 0 ? "s" : ""));
        return args.get(i);
    }

    private static String stringArg(List<Object> args, int i, String name) {
        Object a = arg(args, i, name);
        if (!(a instanceof String s)) throw new TemplateException(name + "() needs a string, got " + Values.typeName(a));
        return s;
    }

    private static Object stringMethod(String s, String name, List<Object> args) {
        return switch (name) {
            case "strip" -> strip(s, chars(args), true, true);
            case "lstrip" -> strip(s, chars(args), true, false);
            case "rstrip" -> strip(s, chars(args), false, true);
            case "split", "rsplit" -> {
                Object sep = args.isEmpty() ? null : args.getFirst();
                long max = args.size() > 1 ? Values.toLong(args.get(1)) : -1;
                yield split(s, sep == null ? null : Values.str(sep), max, name.equals("rsplit"));
            }
            case "startswith", "endswith" -> {
                Object a = arg(args, 0, name);
                List<Object> options = a instanceof List<?> l ? new ArrayList<>(l) : List.of(a);
                boolean start = name.equals("startswith");
                yield options.stream().anyMatch(o -> start ? s.startsWith(Values.str(o)) : s.endsWith(Values.str(o)));
            }
            case "replace" -> replace(s, stringArg(args, 0, name), stringArg(args, 1, name), args.size() > 2 ? Values.toLong(args.get(2)) : -1);
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> capitalize(s);
            case "find" -> (long) codePointIndex(s, s.indexOf(stringArg(args, 0, name)));
            case "rfind" -> (long) codePointIndex(s, s.lastIndexOf(stringArg(args, 0, name)));
            case "count" -> {
                String sub = stringArg(args, 0, name);
                long n = 0;
                if (sub.isEmpty()) yield (long) s.codePointCount(0, s.length()) + 1;
                for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) n++;
                yield n;
            }
            case "join" -> join(Values.iterate(arg(args, 0, name)), s);
            case "splitlines" -> new ArrayList<Object>(splitLines(s));
            case "isdigit" -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace" -> !s.isEmpty() && s.chars().allMatch(c -> isSpace((char) c));
            case "islower" -> s.codePoints().anyMatch(Character::isLowerCase) && s.codePoints().noneMatch(Character::isUpperCase);
            case "isupper" -> s.codePoints().anyMatch(Character::isUpperCase) && s.codePoints().noneMatch(Character::isLowerCase);
            default -> throw new IllegalStateException(name);
        };
    }

    private static String join(List<Object> items, String separator) {
        StringBuilder r = new StringBuilder();
        for (int i = 0; i < items.size(); i++) {
            if (i > 0) r.append(separator);
            r.append(Values.str(items.get(i)));
        }
        return r.toString();
    }

    private static int codePointIndex(String s, int charIndex) {
        return charIndex < 0 ? -1 : s.codePointCount(0, charIndex);
    }

    private static String chars(List<Object> args) {
        return args.isEmpty() || args.getFirst() == null ? null : Values.str(args.getFirst());
    }

    /** Python's whitespace ({@code str.isspace}): Java's, plus the no-break spaces and NEL. */
    static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    /** Python's {@code strip}: whitespace, or any of {@code chars}, from either end. */
    static String strip(String s, String chars, boolean left, boolean right) {
        int from = 0, to = s.length();
        while (left && from < to && (chars == null ? isSpace(s.charAt(from)) : chars.indexOf(s.charAt(from)) >= 0)) from++;
        while (right && to > from && (chars == null ? isSpace(s.charAt(to - 1)) : chars.indexOf(s.charAt(to - 1)) >= 0)) to--;
        return s.substring(from, to);
    }

    /** Python's {@code split}/{@code rsplit}: at {@code sep}, or runs of whitespace (no empty parts) where it is null. */
    static List<Object> split(String s, String sep, long max, boolean fromRight) {
        if (sep != null && sep.isEmpty()) throw new TemplateException("empty separator");
        List<Object> parts = new ArrayList<>();
        if (sep == null) {
            List<int[]> words = new ArrayList<>();
            for (int i = 0; i < s.length(); ) {
                while (i < s.length() && isSpace(s.charAt(i))) i++;
                int start = i;
                while (i < s.length() && !isSpace(s.charAt(i))) i++;
                if (i > start) words.add(new int[]{start, i});
            }
            if (max < 0 || words.size() <= max + 1) {
                for (int[] w : words) parts.add(s.substring(w[0], w[1]));
            } else if (!fromRight) {
                for (int i = 0; i < max; i++) parts.add(s.substring(words.get(i)[0], words.get(i)[1]));
                parts.add(strip(s.substring(words.get((int) max)[0]), null, false, true));
            } else {
                int first = words.size() - (int) max;
                parts.add(strip(s.substring(0, words.get(first - 1)[1]), null, true, false));
                for (int i = first; i < words.size(); i++) parts.add(s.substring(words.get(i)[0], words.get(i)[1]));
            }
            return parts;
        }
        if (!fromRight) {
            int from = 0;
            for (int i = s.indexOf(sep); i >= 0 && (max < 0 || parts.size() < max); i = s.indexOf(sep, from)) {
                parts.add(s.substring(from, i));
                from = i + sep.length();
            }
            parts.add(s.substring(from));
            return parts;
        }
        int to = s.length();
        for (int i = s.lastIndexOf(sep); i >= 0 && (max < 0 || parts.size() < max); i = to - sep.length() < 0 ? -1 : s.lastIndexOf(sep, to - sep.length())) {
            parts.addFirst(s.substring(i + sep.length(), to));
            to = i;
        }
        parts.addFirst(s.substring(0, to));
        return parts;
    }

    private static String replace(String s, String old, String with, long count) {
        if (count < 0) return s.replace(old, with);
        StringBuilder r = new StringBuilder();
        int from = 0;
        for (long n = 0; n < count; n++) {
            int i = s.indexOf(old, from);
            if (i < 0 || old.isEmpty() && from > s.length()) break;
            r.append(s, from, i).append(with);
            from = i + old.length();
            if (old.isEmpty()) {
                if (from < s.length()) r.append(s.charAt(from));
                from++;
            }
        }
        if (from <= s.length()) r.append(s.substring(Math.min(from, s.length())));
        return r.toString();
    }

    private static String title(String s) {
        StringBuilder r = new StringBuilder();
        boolean previousCased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            r.appendCodePoint(previousCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
            previousCased = Character.isLetter(c);
            i += Character.charCount(c);
        }
        return r.toString();
    }

    private static String capitalize(String s) {
        if (s.isEmpty()) return s;
        int first = s.codePointAt(0);
        return new StringBuilder().appendCodePoint(Character.toTitleCase(first)).append(s.substring(Character.charCount(first)).toLowerCase(Locale.ROOT)).toString();
    }

    /** Python's {@code splitlines}: at line ends, the last line's end making no empty line. */
    static List<String> splitLines(String s) {
        List<String> lines = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if ("\n\r\u000b\u000c\u001c\u001d\u001e\u0085\u2028\u2029".indexOf(c) >= 0) {
                lines.add(s.substring(start, i));
                if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') i++;
                start = i + 1;
            }
        }
        if (start < s.length()) lines.add(s.substring(start));
        return lines;
    }

    private static List<Object> items(Map<?, ?> map) {
        List<Object> items = new ArrayList<>();
        map.forEach((k, v) -> items.add(new Values.Tuple(java.util.Arrays.asList(k, v))));
        return items;
    }

    // ---- filters

    Object filter(String name, Object value, List<Object> args, Map<String, Object> kw) {
        return switch (name) {
            case "tojson" -> {
                // Hugging Face's: tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)
                boolean ascii = Values.truthy(option(args, kw, 0, "ensure_ascii", false));
                Object indent = option(args, kw, 1, "indent", null);
                Object separators = option(args, kw, 2, "separators", null);
                boolean sort = Values.truthy(option(args, kw, 3, "sort_keys", false));
                if (value instanceof Undefined u) throw new TemplateException(u.name() + " is undefined (in tojson)");
                String indentText = indent == null ? null : indent instanceof String s ? s : " ".repeat((int) Values.toLong(indent));
                String itemSep = indent == null ? ", " : ",", keySep = ": ";
                if (separators instanceof List<?> l && l.size() == 2) {
                    itemSep = Values.str(l.get(0));
                    keySep = Values.str(l.get(1));
                }
                yield Values.json(value, ascii, indentText, itemSep, keySep, sort);
            }
            case "length", "count" -> (long) Values.length(value);
            case "trim" -> strip(Values.str(value), chars(args), true, true);
            case "string" -> Values.str(value);
            case "default", "d" -> {
                Object otherwise = option(args, kw, 0, "default_value", "");
                boolean onFalse = Values.truthy(option(args, kw, 1, "boolean", false));
                yield value instanceof Undefined || onFalse && !Values.truthy(value) ? otherwise : value;
            }
            case "join" -> {
                Object attribute = option(args, kw, 1, "attribute", null);
                List<Object> items = Values.iterate(value);
                if (attribute != null) items.replaceAll(x -> path(x, Values.str(attribute)));
                yield join(items, Values.str(option(args, kw, 0, "d", "")));
            }
            case "items" -> value instanceof Undefined ? new ArrayList<>() : items(mapping(value, name));
            case "upper" -> Values.str(value).toUpperCase(Locale.ROOT);
            case "lower" -> Values.str(value).toLowerCase(Locale.ROOT);
            case "capitalize" -> capitalize(Values.str(value));
            case "title" -> title(Values.str(value));
            case "safe" -> value;
            case "list" -> Values.iterate(value);
            case "first" -> {
                List<Object> items = Values.iterate(value);
                yield items.isEmpty() ? new Undefined("the first item of an empty sequence") : items.getFirst();
            }
            case "last" -> {
                List<Object> items = Values.iterate(value);
                yield items.isEmpty() ? new Undefined("the last item of an empty sequence") : items.getLast();
            }
            case "reverse" -> {
                if (value instanceof String s) yield new StringBuilder(s).reverse().toString();
                List<Object> items = Values.iterate(value);
                yield items.reversed();
            }
            case "replace" -> replace(Values.str(value), Values.str(arg(args, 0, name)), Values.str(arg(args, 1, name)),
                    args.size() > 2 ? Values.toLong(args.get(2)) : -1);
            case "dictsort" -> {
                boolean caseSensitive = Values.truthy(option(args, kw, 0, "case_sensitive", false));
                int by = "value".equals(option(args, kw, 1, "by", "key")) ? 1 : 0;
                boolean reverse = Values.truthy(option(args, kw, 2, "reverse", false));
                List<Object> items = items(mapping(value, name));
                Comparator<Object> order = (x, y) -> Values.compare(sortKey(((List<?>) x).get(by), caseSensitive), sortKey(((List<?>) y).get(by), caseSensitive));
                items.sort(reverse ? order.reversed() : order);
                yield items;
            }
            case "sort" -> {
                boolean reverse = Values.truthy(option(args, kw, 0, "reverse", false));
                boolean caseSensitive = Values.truthy(option(args, kw, 1, "case_sensitive", false));
                Object attribute = option(args, kw, 2, "attribute", null);
                List<Object> items = Values.iterate(value);
                Comparator<Object> order = (x, y) -> Values.compare(sortKey(attribute == null ? x : path(x, Values.str(attribute)), caseSensitive),
                        sortKey(attribute == null ? y : path(y, Values.str(attribute)), caseSensitive));
                items.sort(reverse ? order.reversed() : order);
                yield items;
            }
            case "unique" -> {
                boolean caseSensitive = Values.truthy(option(args, kw, 0, "case_sensitive", false));
                Object attribute = option(args, kw, 1, "attribute", null);
                List<Object> seen = new ArrayList<>(), kept = new ArrayList<>();
                for (Object x : Values.iterate(value)) {
                    Object key = sortKey(attribute == null ? x : path(x, Values.str(attribute)), caseSensitive);
                    if (seen.stream().noneMatch(k -> Values.equal(k, key))) {
                        seen.add(key);
                        kept.add(x);
                    }
                }
                yield kept;
            }
            case "min", "max" -> {
                boolean caseSensitive = Values.truthy(option(args, kw, 0, "case_sensitive", false));
                Object attribute = option(args, kw, 1, "attribute", null);
                List<Object> items = Values.iterate(value);
                if (items.isEmpty()) yield new Undefined("the " + name + " of an empty sequence");
                Comparator<Object> order = (x, y) -> Values.compare(sortKey(attribute == null ? x : path(x, Values.str(attribute)), caseSensitive),
                        sortKey(attribute == null ? y : path(y, Values.str(attribute)), caseSensitive));
                yield name.equals("min") ? items.stream().min(order).orElseThrow() : items.stream().max(order).orElseThrow();
            }
            case "sum" -> {
                Object attribute = option(args, kw, 0, "attribute", null);
                Object total = option(args, kw, 1, "start", 0L);
                for (Object x : Values.iterate(value)) total = Values.arithmetic("+", total, attribute == null ? x : path(x, Values.str(attribute)));
                yield total;
            }
            case "selectattr", "rejectattr" -> {
                String attribute = Values.str(arg(args, 0, name));
                List<Object> kept = new ArrayList<>();
                for (Object x : orEmpty(value)) {
                    Object a = path(x, attribute);
                    boolean pass = args.size() > 1 ? test(Values.str(args.get(1)), a, args.subList(2, args.size())) : Values.truthy(a);
                    if (pass == name.equals("selectattr")) kept.add(x);
                }
                yield kept;
            }
            case "select", "reject" -> {
                List<Object> kept = new ArrayList<>();
                for (Object x : orEmpty(value)) {
                    boolean pass = args.isEmpty() ? Values.truthy(x) : test(Values.str(args.getFirst()), x, args.subList(1, args.size()));
                    if (pass == name.equals("select")) kept.add(x);
                }
                yield kept;
            }
            case "map" -> {
                List<Object> mapped = new ArrayList<>();
                for (Object x : orEmpty(value)) {
                    if (kw.containsKey("attribute")) {
                        Object a = path(x, Values.str(kw.get("attribute")));
                        mapped.add(a instanceof Undefined && kw.containsKey("default") ? kw.get("default") : a);
                    } else {
                        mapped.add(filter(Values.str(arg(args, 0, name)), x, args.subList(1, args.size()), Map.of()));
                    }
                }
                yield mapped;
            }
            case "indent" -> indent(Values.str(value), option(args, kw, 0, "width", 4L), Values.truthy(option(args, kw, 1, "first", false)),
                    Values.truthy(option(args, kw, 2, "blank", false)));
            case "int" -> toInt(value, option(args, kw, 0, "default", 0L));
            case "float" -> toFloat(value, option(args, kw, 0, "default", 0.0));
            case "abs" -> value instanceof Double d ? (Object) Math.abs(d) : (Object) Math.abs(Values.toLong(value));
            case "round" -> {
                long precision = Values.toLong(option(args, kw, 0, "precision", 0L));
                String method = Values.str(option(args, kw, 1, "method", "common"));
                // Python's round (half to even, on the float's exact value) for "common", as Jinja calls it
                java.math.RoundingMode mode = switch (method) {
                    case "ceil" -> java.math.RoundingMode.CEILING;
                    case "floor" -> java.math.RoundingMode.FLOOR;
                    default -> java.math.RoundingMode.HALF_EVEN;
                };
                double v = Values.toDouble(value);
                yield Double.isFinite(v) ? new java.math.BigDecimal(v).setScale((int) precision, mode).doubleValue() : v;
            }
            case "wordcount" -> (long) split(Values.str(value), null, -1, false).size();
            case "center" -> {
                String s = Values.str(value);
                int width = (int) Values.toLong(option(args, kw, 0, "width", 80L)), pad = Math.max(0, width - s.length());
                int left = pad / 2 + (pad & width & 1);
                yield " ".repeat(left) + s + " ".repeat(pad - left);
            }
            case "batch" -> {
                int size = (int) Values.toLong(arg(args, 0, name));
                if (size <= 0) throw new TemplateException("batch size must be positive");
                List<Object> batches = new ArrayList<>(), items = Values.iterate(value);
                for (int i = 0; i < items.size(); i += size) batches.add(new ArrayList<>(items.subList(i, Math.min(items.size(), i + size))));
                yield batches;
            }
            default -> throw new TemplateException("no filter named '" + name + "'");
        };
    }

    /** The items of a sequence, none where it is false (None, empty): Jinja's select and map filters check first. */
    private static List<Object> orEmpty(Object value) {
        return Values.truthy(value) ? Values.iterate(value) : new ArrayList<>();
    }

    /** A filter's argument, by position or keyword. */
    private static Object option(List<Object> args, Map<String, Object> kw, int position, String keyword, Object otherwise) {
        if (position < args.size()) return args.get(position);
        return kw.getOrDefault(keyword, otherwise);
    }

    private static Map<?, ?> mapping(Object value, String filter) {
        if (value instanceof Map<?, ?> m) return m;
        if (value instanceof Namespace n) return n.attributes;
        throw new TemplateException(filter + " needs a dict, got " + Values.typeName(value));
    }

    private static Object sortKey(Object v, boolean caseSensitive) {
        return !caseSensitive && v instanceof String s ? s.toLowerCase(Locale.ROOT) : v;
    }

    /** {@code a.b.c} of a value, as selectattr, map and sort read an attribute (undefined where a step is missing). */
    private Object path(Object value, String dotted) {
        Object v = value;
        for (String part : dotted.split("\\.")) {
            if (v instanceof Undefined) return v;
            v = part.chars().allMatch(Character::isDigit) && !part.isEmpty() && v instanceof List<?> ? item(v, Long.parseLong(part)) : item(v, part);
        }
        return v;
    }

    private static String indent(String s, Object width, boolean first, boolean blank) {
        String indention = width instanceof String w ? w : " ".repeat((int) Values.toLong(width));
        List<String> lines = splitLines(s + "\n");
        StringBuilder r = new StringBuilder();
        if (blank) {
            r.append(String.join("\n" + indention, lines));
        } else {
            r.append(lines.getFirst());
            for (int i = 1; i < lines.size(); i++) r.append('\n').append(lines.get(i).isEmpty() ? "" : indention + lines.get(i));
        }
        return first ? indention + r : r.toString();
    }

    private static Object toInt(Object value, Object otherwise) {
        return switch (value) {
            case null -> otherwise;
            case Long l -> l;
            case Boolean b -> b ? 1L : 0L;
            case Double d -> (long) (double) d;
            case String s -> {
                try {
                    yield Long.parseLong(s.strip().replace("_", ""));
                } catch (NumberFormatException e) {
                    try {
                        yield (long) Double.parseDouble(s.strip());
                    } catch (NumberFormatException e2) {
                        yield otherwise;
                    }
                }
            }
            default -> otherwise;
        };
    }

    private static Object toFloat(Object value, Object otherwise) {
        if (Values.isNumber(value)) return Values.toDouble(value);
        if (value instanceof String s) {
            try {
                return Double.parseDouble(s.strip());
            } catch (NumberFormatException e) {
                return otherwise;
            }
        }
        return otherwise;
    }

    // ---- tests

    boolean test(String name, Object v, List<Object> args) {
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "string" -> v instanceof String;
            case "mapping" -> v instanceof Map;
            case "iterable" -> v instanceof String || v instanceof List || v instanceof Map || v instanceof Undefined;
            case "sequence" -> v instanceof String || v instanceof List || v instanceof Map;
            case "number" -> Values.isNumber(v);
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "callable" -> v instanceof Callable;
            case "odd" -> Values.toLong(v) % 2 != 0;
            case "even" -> Values.toLong(v) % 2 == 0;
            case "divisibleby" -> Values.toLong(v) % Values.toLong(arg(args, 0, name)) == 0;
            case "eq", "equalto", "==" -> Values.equal(v, arg(args, 0, name));
            case "ne", "!=" -> !Values.equal(v, arg(args, 0, name));
            case "lt", "lessthan", "<" -> Values.compare(v, arg(args, 0, name)) < 0;
            case "gt", "greaterthan", ">" -> Values.compare(v, arg(args, 0, name)) > 0;
            case "le", "<=" -> Values.compare(v, arg(args, 0, name)) <= 0;
            case "ge", ">=" -> Values.compare(v, arg(args, 0, name)) >= 0;
            case "in" -> contains(arg(args, 0, name), v);
            case "sameas" -> v == arg(args, 0, name) || v == null && args.getFirst() == null || v instanceof Boolean && v.equals(args.getFirst());
            case "lower" -> v instanceof String s && s.equals(s.toLowerCase(Locale.ROOT));
            case "upper" -> v instanceof String s && s.equals(s.toUpperCase(Locale.ROOT));
            default -> throw new TemplateException("no test named '" + name + "'");
        };
    }
}
