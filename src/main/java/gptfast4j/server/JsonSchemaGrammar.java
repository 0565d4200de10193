package gptfast4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A JSON Schema as a GBNF grammar (for {@code --json-schema}, as llama.cpp's json-schema-to-grammar), so that the text
 * generated is a JSON document the schema accepts. Every value is followed by optional whitespace (a space, or a line
 * break and up to 20 spaces or tabs); punctuation too.
 * <p>
 * Taken: {@code type} (one or a list), {@code enum}, {@code const}, {@code anyOf}/{@code oneOf} ({@code oneOf} as
 * {@code anyOf}, as llama.cpp takes it: a value that more than one option accepts passes, which {@code oneOf} refuses),
 * {@code properties} (written in their order, the {@code required} ones always, the others where the model chooses;
 * an object with listed properties has those only, whatever {@code additionalProperties} says, which is always within
 * what the schema accepts, as OpenAI's structured outputs have it), {@code additionalProperties} where no properties
 * are listed (true or absent: any object; false: {@code {}}; a schema: a map of values of it), {@code items},
 * {@code prefixItems} (a tuple),
 * {@code minItems}, {@code maxItems}, {@code minLength}, {@code maxLength}, {@code format} (date, time, date-time,
 * uuid), a string's {@code pattern} ({@link PatternGrammar}), an integer's or a number's {@code minimum},
 * {@code maximum}, {@code exclusiveMinimum} and {@code exclusiveMaximum} (a bounded number written without an exponent),
 * {@code allOf} (of one schema, or of objects with properties, merged), and {@code $ref} to {@code #/$defs/NAME} or {@code #/definitions/NAME};
 * {@code {}} or {@code true} is any JSON value. Annotations ({@code title}, {@code description}, ..., and OpenAPI's
 * {@code discriminator}) are ignored.
 * Any other keyword is refused by name rather than left out, since the text would then not be held to it; so are a
 * constraint of one kind of value without a {@code type}, and constraints beside {@code $ref}, {@code allOf},
 * {@code anyOf}, {@code oneOf}, {@code enum} or {@code const} (but a {@code type}, which keeps the values of that type).
 */
public final class JsonSchemaGrammar {
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "$schema", "$id", "$comment", "default", "examples", "$defs", "definitions",
            "deprecated", "readOnly", "writeOnly", "discriminator"); // the last OpenAPI's, beside a oneOf (pydantic's tagged unions), no constraint in JSON Schema
    private static final int MAX_REPEAT = 1000;

    /** The rules every grammar has: any JSON value, and its parts (RFC 8259). */
    private static final String BASE = """
            ws ::= (" " | "\\n" [ \\t]{0,20})?
            value ::= object | array | string | number | ("true" | "false" | "null") ws
            object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
            array ::= "[" ws ( value ("," ws value)* )? "]" ws
            char ::= [^"\\\\\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})
            string ::= "\\"" char* "\\"" ws
            integer ::= "-"? ("0" | [1-9] [0-9]{0,15}) ws
            number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? ws
            boolean ::= ("true" | "false") ws
            null ::= "null" ws
            """;

    /**
     * RFC 3339's forms (JSON Schema's {@code format}): a day up to 31, 30 or 29 by month, whatever the year (February
     * 29th of a year that is not a leap year passes); no leap second; offsets within 17:59 hours, as Java's
     * {@code ZoneOffset} (and validators built on it) take them.
     */
    private static final Map<String, String> FORMATS = new java.util.TreeMap<>(Map.of(
            "date", "[0-9]{4} \"-\" ((\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01]) | (\"0\" [469] | \"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\") | \"02-\" (\"0\" [1-9] | [12] [0-9]))",
            "time", "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,9})? ([zZ] | [+-] (\"0\" [0-9] | \"1\" [0-7]) \":\" [0-5] [0-9])",
            "date-time", "date [tT] time",
            "uuid", "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12}"));

    private final JsonNode root;
    private final Map<String, String> rules = new LinkedHashMap<>();
    private final Map<String, String> refRules = new LinkedHashMap<>();
    private int generated;

    private JsonSchemaGrammar(JsonNode root) {
        this.root = root;
    }

    /** The GBNF grammar of the schema's JSON text; a schema that is not JSON, or uses what is not taken, is refused by name. */
    public static String convert(String schemaText) {
        JsonNode schema;
        try {
            schema = new ObjectMapper().readTree(schemaText);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("--json-schema: not JSON (" + e.getOriginalMessage() + ")");
        }
        if (schema == null) throw new IllegalArgumentException("--json-schema: empty");
        JsonSchemaGrammar g = new JsonSchemaGrammar(schema);
        String top = g.rule(schema, "#");
        StringBuilder out = new StringBuilder("root ::= ").append(top).append('\n');
        g.rules.forEach((name, body) -> out.append(name).append(" ::= ").append(body).append('\n'));
        return out.append(BASE).toString();
    }

    /** An expression (a rule name or a group) matching the values {@code schema} accepts; {@code at} names it in errors. */
    private String rule(JsonNode schema, String at) {
        if (schema.isBoolean()) {
            if (!schema.asBoolean()) throw new IllegalArgumentException("--json-schema: " + at + " is false (no value is allowed)");
            return "value";
        }
        if (!schema.isObject()) throw new IllegalArgumentException("--json-schema: " + at + " is not a schema (an object or a boolean)");
        for (Iterator<String> names = schema.fieldNames(); names.hasNext(); ) {
            String keyword = names.next();
            if (!ANNOTATIONS.contains(keyword) && !Set.of("type", "enum", "const", "anyOf", "oneOf", "properties", "required", "additionalProperties",
                    "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "format", "allOf", "$ref",
                    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern").contains(keyword)) {
                throw new IllegalArgumentException("--json-schema: '" + keyword + "' (at " + at + ") is not supported");
            }
        }
        // a keyword that makes the value on its own: what else constrains it would go unchecked beside it
        for (String alone : List.of("$ref", "allOf", "anyOf", "oneOf", "const", "enum")) {
            if (!schema.has(alone)) continue;
            for (Iterator<String> names = schema.fieldNames(); names.hasNext(); ) {
                String keyword = names.next();
                boolean typeOfValues = keyword.equals("type") && (alone.equals("const") || alone.equals("enum"));
                if (!keyword.equals(alone) && !ANNOTATIONS.contains(keyword) && !typeOfValues) {
                    throw new IllegalArgumentException("--json-schema: '" + keyword + "' beside '" + alone + "' (at " + at + ") is not supported");
                }
            }
        }
        if (schema.has("$ref")) return ref(schema.get("$ref").asText(), at);
        if (schema.has("allOf")) {
            // one schema, as pydantic writes a reference with a description beside it; the intersection of several
            // is not made
            if (schema.get("allOf").size() == 1) return rule(schema.get("allOf").get(0), at + "/allOf/0");
            ObjectNode merged = new ObjectMapper().createObjectNode().put("type", "object");
            merge(schema, merged, at, 0);
            return object(merged, at);
        }
        if (schema.has("const") || schema.has("enum")) {
            // the values of a type beside them, where one is given
            List<String> values = new ArrayList<>();
            for (JsonNode v : schema.has("const") ? List.of(schema.get("const")) : schema.get("enum")) if (ofType(v, schema.get("type"))) values.add(literal(v));
            if (values.isEmpty()) throw new IllegalArgumentException("--json-schema: no value of " + at + "/" + (schema.has("const") ? "const" : "enum") + " is of its type");
            return "(" + String.join(" | ", values) + ")";
        }
        for (String any : new String[]{"anyOf", "oneOf"}) {
            if (schema.has(any)) {
                List<String> options = new ArrayList<>();
                int i = 0;
                for (JsonNode option : schema.get(any)) options.add(rule(option, at + "/" + any + "/" + i++));
                if (options.isEmpty()) throw new IllegalArgumentException("--json-schema: " + at + "/" + any + " is empty");
                return "(" + String.join(" | ", options) + ")";
            }
        }
        JsonNode type = schema.get("type");
        if (schema.has("format") && !(type != null && type.asText().equals("string"))) {
            throw new IllegalArgumentException("--json-schema: format (at " + at + ") is supported on strings only (type string)");
        }
        if (type == null) {
            if (schema.has("properties")) return object(schema, at);
            if (schema.has("items") || schema.has("prefixItems")) return array(schema, at);
            // a constraint of one kind of value on any value: the others would pass unchecked (a string of any length
            // where maxLength is 3)
            for (String keyword : List.of("minLength", "maxLength", "pattern", "minItems", "maxItems", "required", "additionalProperties", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")) {
                if (schema.has(keyword)) throw new IllegalArgumentException("--json-schema: '" + keyword + "' (at " + at + ") needs a type beside it");
            }
            return "value";
        }
        if (type.isArray()) {
            List<String> options = new ArrayList<>();
            for (JsonNode t : type) options.add(typed(schema, t.asText(), at));
            return "(" + String.join(" | ", options) + ")";
        }
        return typed(schema, type.asText(), at);
    }

    /**
     * The properties and required names of an {@code allOf}'s objects (each a schema with properties, a {@code $ref}
     * to one, or an {@code allOf} of them) gathered into {@code into}: an object with them all is one every part
     * accepts. Anything else in a part (a property in two parts, additionalProperties false, a constraint of
     * another kind) is refused: the intersection is not made.
     */
    private void merge(JsonNode allOf, ObjectNode into, String at, int depth) {
        if (depth > 32) throw new IllegalArgumentException("--json-schema: allOf nested more than 32 deep (or through itself) at " + at);
        int i = 0;
        for (JsonNode part : allOf.get("allOf")) {
            String where = at + "/allOf/" + i++;
            for (int hops = 0; part.has("$ref") && part.size() == 1; hops++) {
                if (hops == 32) throw new IllegalArgumentException("--json-schema: $ref through more than 32 references (or to itself) at " + where);
                String ref = part.get("$ref").asText();
                where = ref;
                JsonNode target = ref.startsWith("#/$defs/") ? root.path("$defs").get(ref.substring(8)) : ref.startsWith("#/definitions/") ? root.path("definitions").get(ref.substring(14)) : null;
                if (target == null) throw new IllegalArgumentException("--json-schema: $ref '" + ref + "' (at " + at + ") names no local definition");
                part = target;
            }
            if (part.has("allOf")) {
                merge(part, into, where, depth + 1);
                continue;
            }
            for (Iterator<String> names = part.fieldNames(); names.hasNext(); ) {
                String keyword = names.next();
                boolean fits = ANNOTATIONS.contains(keyword) || keyword.equals("properties") || keyword.equals("required")
                        || keyword.equals("type") && part.get("type").asText().equals("object")
                        || keyword.equals("additionalProperties") && !part.get(keyword).equals(BooleanNode.FALSE);
                if (!fits) throw new IllegalArgumentException("--json-schema: allOf of several schemas takes objects with properties only; '" + keyword + "' at " + where + " is not supported there");
            }
            ObjectNode properties = into.has("properties") ? (ObjectNode) into.get("properties") : into.putObject("properties");
            for (Map.Entry<String, JsonNode> e : part.path("properties").properties()) {
                if (properties.has(e.getKey())) throw new IllegalArgumentException("--json-schema: property '" + e.getKey() + "' in two parts of an allOf (at " + at + ") is not supported");
                properties.set(e.getKey(), e.getValue());
            }
            ArrayNode required = into.has("required") ? (ArrayNode) into.get("required") : into.putArray("required");
            for (JsonNode r : part.path("required")) required.add(r);
        }
    }

    /** Whether {@code value} is of {@code type} (a name or a list of names; null: any). */
    private static boolean ofType(JsonNode value, JsonNode type) {
        if (type == null) return true;
        for (JsonNode t : type.isArray() ? type : List.of(type)) {
            boolean is = switch (t.asText()) {
                case "string" -> value.isTextual();
                case "integer" -> value.isIntegralNumber() || value.isNumber() && value.asDouble() == Math.rint(value.asDouble());
                case "number" -> value.isNumber();
                case "boolean" -> value.isBoolean();
                case "null" -> value.isNull();
                case "object" -> value.isObject();
                case "array" -> value.isArray();
                default -> false;
            };
            if (is) return true;
        }
        return false;
    }

    private String typed(JsonNode schema, String type, String at) {
        return switch (type) {
            case "object" -> object(schema, at);
            case "array" -> array(schema, at);
            case "string" -> string(schema, at);
            case "integer" -> integer(schema, at);
            case "number" -> number(schema, at);
            case "boolean", "null" -> type;
            default -> throw new IllegalArgumentException("--json-schema: unknown type '" + type + "' at " + at);
        };
    }

    private String object(JsonNode schema, String at) {
        JsonNode properties = schema.get("properties"), additional = schema.get("additionalProperties");
        Set<String> required = new java.util.HashSet<>();
        if (schema.has("required")) for (JsonNode r : schema.get("required")) required.add(r.asText());
        List<String> names = new ArrayList<>();
        if (properties != null) properties.fieldNames().forEachRemaining(names::add);
        for (String r : required) {
            if (!names.contains(r)) throw new IllegalArgumentException("--json-schema: required property '" + r + "' (at " + at + ") is not among its properties");
        }
        if (names.isEmpty()) {
            // no properties listed: any object, none (additionalProperties false), or a map whose values all follow
            // one schema
            if (additional == null || additional.isBoolean() && additional.asBoolean()) return "object";
            if (additional.isBoolean()) return "(\"{\" ws \"}\" ws)";
            String value = named(rule(additional, at + "/additionalProperties"));
            return "(\"{\" ws (string \":\" ws " + value + " (\",\" ws string \":\" ws " + value + ")*)? \"}\" ws)";
        }
        // listed properties: those alone, whatever additionalProperties allows besides (always within what it allows)
        int n = names.size();
        String[] pairs = new String[n];
        for (int i = 0; i < n; i++) {
            pairs[i] = named(literal(new ObjectMapper().getNodeFactory().textNode(names.get(i))) + " \":\" ws " + rule(properties.get(names.get(i)), at + "/properties/" + names.get(i)));
        }
        // first[i]: properties i.. with none written before them; after[i]: with some written (a comma comes first);
        // an optional property is there or not, in order
        String id = "obj" + generated++;
        for (int i = n; i >= 0; i--) {
            String first = id + "-first" + i, after = id + "-after" + i;
            if (i == n) {
                rules.put(first, "\"\"");
                rules.put(after, "\"\"");
            } else if (required.contains(names.get(i))) {
                rules.put(first, pairs[i] + " " + id + "-after" + (i + 1));
                rules.put(after, "\",\" ws " + pairs[i] + " " + id + "-after" + (i + 1));
            } else {
                rules.put(first, pairs[i] + " " + id + "-after" + (i + 1) + " | " + id + "-first" + (i + 1));
                rules.put(after, "\",\" ws " + pairs[i] + " " + id + "-after" + (i + 1) + " | " + id + "-after" + (i + 1));
            }
        }
        return "(\"{\" ws " + id + "-first0 \"}\" ws)";
    }

    private static final List<String> BOUNDS = List.of("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum");
    /** The most digits an integer has here, as the base grammar's {@code integer} rule takes them. */
    private static final int DIGITS = 16;

    /** An integer within the schema's bounds (inclusive or exclusive, as whole numbers), or any integer without them. */
    private String integer(JsonNode schema, String at) {
        long lo = Long.MIN_VALUE, hi = Long.MAX_VALUE;
        for (String keyword : BOUNDS) {
            JsonNode v = schema.get(keyword);
            if (v == null) continue;
            if (!v.isNumber()) throw new IllegalArgumentException("--json-schema: " + keyword + " at " + at + " must be a number, got " + v);
            double d = v.asDouble();
            if (Math.abs(d) >= 1e15) throw new IllegalArgumentException("--json-schema: " + keyword + " at " + at + " is past 10^15, which is not supported");
            switch (keyword) {
                case "minimum" -> lo = Math.max(lo, (long) Math.ceil(d));
                case "exclusiveMinimum" -> lo = Math.max(lo, (long) Math.floor(d) + 1);
                case "maximum" -> hi = Math.min(hi, (long) Math.floor(d));
                default -> hi = Math.min(hi, (long) Math.ceil(d) - 1);
            }
        }
        if (lo == Long.MIN_VALUE && hi == Long.MAX_VALUE) return "integer";
        if (lo > hi) throw new IllegalArgumentException("--json-schema: no integer lies within the bounds at " + at);
        List<String> options = new ArrayList<>();
        // the negative ones as a minus sign before their magnitudes, then zero and up
        if (lo < 0) options.add("\"-\" " + magnitudes(hi >= 0 ? 1 : -hi, lo == Long.MIN_VALUE ? -1 : -lo));
        if (hi >= 0) options.add(magnitudes(Math.max(lo, 0), hi == Long.MAX_VALUE ? -1 : hi));
        return "((" + String.join(" | ", options) + ") ws)";
    }

    /**
     * A number within the schema's bounds, written without an exponent (and a negative one not as -0), or any number
     * without them: its sign, integer part and fraction compared digit by digit with the bounds'.
     */
    private String number(JsonNode schema, String at) {
        BigDecimal lo = null, hi = null;
        boolean loIncl = true, hiIncl = true;
        for (String keyword : BOUNDS) {
            JsonNode v = schema.get(keyword);
            if (v == null) continue;
            if (!v.isNumber()) throw new IllegalArgumentException("--json-schema: " + keyword + " at " + at + " must be a number, got " + v);
            BigDecimal d = v.decimalValue().stripTrailingZeros();
            if (d.abs().compareTo(BigDecimal.valueOf(1e15)) >= 0 || Math.max(d.scale(), 0) > DIGITS - 1) {
                throw new IllegalArgumentException("--json-schema: " + keyword + " at " + at + " is past 10^15 or has more than " + (DIGITS - 1) + " decimals, which is not supported");
            }
            boolean inclusive = !keyword.startsWith("exclusive");
            if (keyword.endsWith("inimum")) {
                if (lo == null || d.compareTo(lo) > 0 || d.compareTo(lo) == 0 && !inclusive) { lo = d; loIncl = inclusive; }
            } else if (hi == null || d.compareTo(hi) < 0 || d.compareTo(hi) == 0 && !inclusive) { hi = d; hiIncl = inclusive; }
        }
        if (lo == null && hi == null) return "number";
        List<String> options = new ArrayList<>();
        // x < 0 as "-" m, m = -x > 0 (x >= lo: m <= -lo; x <= hi: m >= -hi); x >= 0 as m = x
        if (lo == null || lo.signum() < 0) {
            boolean above = hi != null && hi.signum() < 0;
            String m = decimals(above ? hi.negate() : BigDecimal.ZERO, above && hiIncl, lo == null ? null : lo.negate(), loIncl);
            if (m != null) options.add("\"-\" " + m);
        }
        if (hi == null || hi.signum() >= 0) {
            boolean above = lo != null && lo.signum() >= 0;
            String m = decimals(above ? lo : BigDecimal.ZERO, !above || loIncl, hi, hiIncl);
            if (m != null) options.add(m);
        }
        if (options.isEmpty()) throw new IllegalArgumentException("--json-schema: no number lies within the bounds at " + at);
        return "((" + String.join(" | ", options) + ") ws)";
    }

    /** The texts of the numbers m, {@code lo <= m <= hi} ({@code hi} null: no end; strict where not inclusive; lo >= 0), or null if none. */
    private static String decimals(BigDecimal lo, boolean loIncl, BigDecimal hi, boolean hiIncl) {
        if (hi != null && (lo.compareTo(hi) > 0 || lo.compareTo(hi) == 0 && !(loIncl && hiIncl))) return null;
        long loInt = lo.longValue(), hiInt = hi == null ? -1 : hi.longValue(); // integer parts (floors: both >= 0)
        String loFrac = fractionDigits(lo), hiFrac = hi == null ? null : fractionDigits(hi);
        List<String> options = new ArrayList<>();
        if (hiInt == loInt) {
            String f = fraction(loFrac, loIncl, hiFrac, hiIncl);
            if (f != null) options.add("\"" + loInt + "\" " + f);
        } else {
            String first = fraction(loFrac, loIncl, null, true), last = hi == null ? null : fraction(null, true, hiFrac, hiIncl);
            if (first != null) options.add("\"" + loInt + "\" " + first);
            if (hi == null || loInt + 1 <= hiInt - 1) options.add(magnitudes(loInt + 1, hi == null ? -1 : hiInt - 1) + " (\".\" [0-9]{1," + DIGITS + "})?");
            if (last != null) options.add("\"" + hiInt + "\" " + last);
        }
        return options.isEmpty() ? null : "(" + String.join(" | ", options) + ")";
    }

    /** The digits after the point of a non-negative number, without trailing zeros ("" for a whole number). */
    private static String fractionDigits(BigDecimal d) {
        BigDecimal f = d.subtract(new BigDecimal(d.toBigInteger())).stripTrailingZeros();
        return f.signum() == 0 ? "" : f.toPlainString().substring(2);
    }

    /**
     * A number's optional fraction ({@code "." digits}) whose value 0.digits lies between {@code lo} and {@code hi},
     * each the digits of a fraction (null: no bound on that side); null if there is none.
     */
    private static String fraction(String lo, boolean loIncl, String hi, boolean hiIncl) {
        boolean noneOk = fractionOk(lo, loIncl, hi, hiIncl);
        String digits = digits(lo, loIncl, hi, hiIncl, DIGITS);
        if (digits == null) return noneOk ? "\"\"" : null;
        return "(\".\" " + digits + ")" + (noneOk ? "?" : "");
    }

    /** Whether a fraction of value 0 (no digits left) lies within the bounds. */
    private static boolean fractionOk(String lo, boolean loIncl, String hi, boolean hiIncl) {
        return (lo == null || lo.isEmpty() && loIncl) && (hi == null || !(hi.isEmpty() && !hiIncl));
    }

    /** One to {@code left} digits whose value as a fraction lies between the bounds ({@link #fraction}'s), or null if none do. */
    private static String digits(String lo, boolean loIncl, String hi, boolean hiIncl, int left) {
        if (left == 0 || hi != null && hi.isEmpty() && !hiIncl) return null;
        if (lo != null && lo.isEmpty() && loIncl) lo = null; // every fraction is at least 0
        if (lo == null && hi == null) return "[0-9]{1," + left + "}";
        int l = lo == null ? -1 : lo.isEmpty() ? 0 : lo.charAt(0) - '0', h = hi == null ? 10 : hi.isEmpty() ? 0 : hi.charAt(0) - '0';
        List<String> options = new ArrayList<>();
        // a first digit strictly between the bounds' first digits: any digits after it
        if (l + 1 <= h - 1) options.add("[" + (l + 1) + "-" + (h - 1) + "] [0-9]{0," + (left - 1) + "}");
        // the bounds' own first digits: the rest held to the rest of the bound
        String loRest = lo == null || lo.isEmpty() ? lo : lo.substring(1), hiRest = hi == null || hi.isEmpty() ? hi : hi.substring(1);
        if (l == h) {
            String r = rest(loRest, loIncl, hiRest, hiIncl, left - 1);
            if (r != null) options.add("\"" + l + "\" " + r);
        } else {
            String r = lo == null ? null : rest(loRest, loIncl, null, true, left - 1);
            if (r != null) options.add("\"" + l + "\" " + r);
            r = hi == null ? null : rest(null, true, hiRest, hiIncl, left - 1);
            if (r != null) options.add("\"" + h + "\" " + r);
        }
        return options.isEmpty() ? null : "(" + String.join(" | ", options) + ")";
    }

    /** Up to {@code left} digits (none too) within the bounds, as {@link #digits}. */
    private static String rest(String lo, boolean loIncl, String hi, boolean hiIncl, int left) {
        boolean emptyOk = fractionOk(lo, loIncl, hi, hiIncl);
        String d = digits(lo, loIncl, hi, hiIncl, left);
        if (d == null) return emptyOk ? "\"\"" : null;
        return emptyOk ? "(" + d + ")?" : d;
    }

    /**
     * The decimal texts (no leading zeros) of the whole numbers {@code lo .. hi} ({@code hi} -1: up to {@link #DIGITS}
     * digits): by number of digits, each length's range as llama.cpp's and the classic regex constructions make it.
     */
    private static String magnitudes(long lo, long hi) {
        List<String> options = new ArrayList<>();
        int loDigits = Long.toString(lo).length(), hiDigits = hi < 0 ? DIGITS : Long.toString(hi).length();
        for (int digits = loDigits; digits <= hiDigits; digits++) {
            long first = digits == 1 ? 0 : pow10(digits - 1), last = pow10(digits) - 1;
            long from = Math.max(lo, first), to = hi < 0 ? last : Math.min(hi, last);
            if (from > to) continue;
            if (hi < 0 && digits > loDigits) { // every longer length, whole
                options.add("[1-9] [0-9]{" + loDigits + "," + (DIGITS - 1) + "}");
                break;
            }
            options.add(sameLength(Long.toString(from), Long.toString(to)));
        }
        return "(" + String.join(" | ", options) + ")";
    }

    /** The texts between {@code a} and {@code b}, of one length, as GBNF. */
    private static String sameLength(String a, String b) {
        if (a.equals(b)) return "\"" + a + "\"";
        int common = 0;
        while (a.charAt(common) == b.charAt(common)) common++;
        String prefix = common > 0 ? "\"" + a.substring(0, common) + "\" " : "";
        char da = a.charAt(common), db = b.charAt(common);
        int rest = a.length() - common - 1;
        if (rest == 0) return "(" + prefix + "[" + da + "-" + db + "])";
        List<String> options = new ArrayList<>();
        String restA = a.substring(common + 1), restB = b.substring(common + 1);
        boolean lowFull = restA.chars().allMatch(c -> c == '0'), highFull = restB.chars().allMatch(c -> c == '9');
        // the first differing digit: a's (with the rest from a's up), those between (any rest), b's (the rest to b's)
        char fullFrom = lowFull ? da : (char) (da + 1), fullTo = highFull ? db : (char) (db - 1);
        if (!lowFull) options.add("\"" + da + "\" " + sameLength(restA, "9".repeat(rest)));
        if (fullFrom <= fullTo) options.add("[" + fullFrom + "-" + fullTo + "] [0-9]{" + rest + "}");
        if (!highFull) options.add("\"" + db + "\" " + sameLength("0".repeat(rest), restB));
        return "(" + prefix + "(" + String.join(" | ", options) + "))";
    }

    private static long pow10(int n) {
        long p = 1;
        for (int i = 0; i < n; i++) p *= 10;
        return p;
    }

    private String array(JsonNode schema, String at) {
        int min = count(schema, "minItems", 0, at), max = count(schema, "maxItems", -1, at);
        if (max >= 0 && max < min) throw new IllegalArgumentException("--json-schema: maxItems below minItems at " + at);
        if (schema.has("prefixItems")) return tuple(schema, min, max, at);
        if (schema.path("items").isBoolean() && !schema.get("items").asBoolean()) { // no items: []
            if (min > 0) throw new IllegalArgumentException("--json-schema: minItems above 0 with items false at " + at);
            return "(\"[\" ws \"]\" ws)";
        }
        String item = schema.has("items") ? named(rule(schema.get("items"), at + "/items")) : "value";
        String items;
        if (max == 0) {
            items = "";
        } else {
            String rest = "(\",\" ws " + item + ")" + repeat(Math.max(min - 1, 0), max < 0 ? -1 : max - 1);
            items = "(" + item + " " + rest + ")" + (min == 0 ? "?" : "");
        }
        return "(\"[\" ws " + items + " \"]\" ws)";
    }

    /**
     * An array whose first items follow {@code prefixItems} in order (a tuple, as pydantic writes one), those after
     * them {@code items} (false: none; absent: any value, written only where {@code minItems} needs them), its length
     * within {@code minItems} and {@code maxItems}.
     */
    private String tuple(JsonNode schema, int min, int max, String at) {
        JsonNode prefix = schema.get("prefixItems"), items = schema.get("items");
        if (!prefix.isArray() || prefix.isEmpty()) throw new IllegalArgumentException("--json-schema: prefixItems at " + at + " must be a non-empty array of schemas");
        int n = prefix.size();
        boolean none = items != null && items.isBoolean() && !items.asBoolean();
        if (none && min > n) throw new IllegalArgumentException("--json-schema: minItems above the prefixItems' count with items false at " + at);
        // the items after the prefix: as many as minItems needs, and as maxItems allows where items names a schema
        String rest = "";
        if (!none && (min > n || items != null) && (max < 0 || max > n)) {
            String item = items == null ? "value" : named(rule(items, at + "/items"));
            int least = Math.max(min - n, 0), most = items == null ? least : max < 0 ? -1 : max - n;
            if (most != 0) rest = " (\",\" ws " + item + ")" + repeat(least, most);
        }
        // the prefix from its end: item i and those after it, there if the length reaches i + 1
        String tail = rest;
        for (int i = n - 1; i >= 0; i--) {
            if (max >= 0 && i >= max) continue;
            String one = (i == 0 ? "" : "\",\" ws ") + named(rule(prefix.get(i), at + "/prefixItems/" + i)) + tail;
            tail = i < min ? " " + one : " (" + one + ")?";
        }
        return "(\"[\" ws" + tail + " \"]\" ws)";
    }

    private String string(JsonNode schema, String at) {
        if (schema.has("pattern")) {
            JsonNode pattern = schema.get("pattern");
            if (!pattern.isTextual()) throw new IllegalArgumentException("--json-schema: pattern at " + at + " must be a string, got " + pattern);
            for (String beside : List.of("format", "minLength", "maxLength")) {
                if (schema.has(beside)) throw new IllegalArgumentException("--json-schema: '" + beside + "' beside 'pattern' (at " + at + ") is not supported");
            }
            return "(\"\\\"\" " + PatternGrammar.convert(pattern.asText(), at) + " \"\\\"\" ws)";
        }
        if (schema.has("format")) {
            String format = schema.get("format").asText();
            if (!FORMATS.containsKey(format) || schema.has("minLength") || schema.has("maxLength")) {
                throw new IllegalArgumentException("--json-schema: format '" + format + "' (at " + at + ") is not supported" + (FORMATS.containsKey(format) ? " with minLength or maxLength" : "; " + String.join(", ", FORMATS.keySet()) + " are"));
            }
            for (String f : format.equals("date-time") ? List.of("date", "time", format) : List.of(format)) rules.putIfAbsent(f, FORMATS.get(f));
            return "(\"\\\"\" " + format + " \"\\\"\" ws)";
        }
        int min = count(schema, "minLength", 0, at), max = count(schema, "maxLength", -1, at);
        if (max >= 0 && max < min) throw new IllegalArgumentException("--json-schema: maxLength below minLength at " + at);
        return min == 0 && max < 0 ? "string" : "(\"\\\"\" char" + repeat(min, max) + " \"\\\"\" ws)";
    }

    /**
     * {@code expression} as a rule of its own, where it is more than a rule's name: written once where it is used
     * twice (an array's first and later items, a property in two rules), which would otherwise double the grammar's
     * text at each level of nesting.
     */
    private String named(String expression) {
        if (expression.matches("[a-zA-Z0-9-]+")) return expression;
        String name = "part" + generated++;
        rules.put(name, expression);
        return name;
    }

    /** {@code {min,max}} ({@code max} -1: unbounded). */
    private static String repeat(int min, int max) {
        return max < 0 ? "{" + min + ",}" : "{" + min + "," + max + "}";
    }

    private static int count(JsonNode schema, String keyword, int absent, String at) {
        JsonNode v = schema.get(keyword);
        if (v == null) return absent;
        if (!v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < 0 || v.asInt() > MAX_REPEAT) {
            throw new IllegalArgumentException("--json-schema: " + keyword + " at " + at + " must be a whole number in 0.." + MAX_REPEAT + ", got " + v);
        }
        return v.asInt();
    }

    /** A rule for a local definition, made once (so a definition may refer to itself through an object or array). */
    private String ref(String ref, String at) {
        String name;
        if (ref.startsWith("#/$defs/")) name = ref.substring(8);
        else if (ref.startsWith("#/definitions/")) name = ref.substring(14);
        else throw new IllegalArgumentException("--json-schema: $ref '" + ref + "' (at " + at + ") is not supported: only #/$defs/NAME and #/definitions/NAME");
        String rule = refRules.get(ref);
        if (rule != null) return rule;
        JsonNode target = root.path(ref.startsWith("#/$defs/") ? "$defs" : "definitions").get(name);
        if (target == null) throw new IllegalArgumentException("--json-schema: $ref '" + ref + "' (at " + at + ") names no definition");
        rule = "def" + generated++;
        refRules.put(ref, rule);
        rules.put(rule, ""); // its place, so that rules come out in order; filled below
        rules.put(rule, rule(target, ref));
        return rule;
    }

    /** The value's JSON text as a GBNF literal (with trailing whitespace allowed). */
    private static String literal(JsonNode value) {
        String json = value.toString();
        StringBuilder g = new StringBuilder("\"");
        for (int i = 0; i < json.length(); i++) {
            char c = json.charAt(i);
            if (c == '"' || c == '\\') g.append('\\');
            g.append(c);
        }
        return "(" + g.append('"') + " ws)";
    }
}
