package gptfast4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.InputFormat;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import gptfast4j.Shared;
import gptfast4j.generate.Grammar;
import gptfast4j.server.JsonSchemaGrammar;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Grammars made from JSON schemas against an independent validator (networknt's json-schema-validator, draft
 * 2020-12): on random schemas, every document the grammar matches is one the schema accepts, and every document made
 * to the schema in the grammar's form (properties in their order, none besides them) is one the grammar matches.
 */
class JsonSchemaGrammarTest {
    /** With format assertions: 2020-12 takes "format" as an annotation unless asked. */
    private static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12,
            b -> b.schemaRegistryConfig(com.networknt.schema.SchemaRegistryConfig.builder().formatAssertionsEnabled(true).build()));
    private static final JsonNodeFactory F = JsonNodeFactory.instance;
    private static final String[] NAMES = {"a", "b", "name", "x y", "é", "q\"uote"};
    private static final String[] TEXT = {"a", "Z", " ", "é", "😀", "\"", "\\", "\n", "7"};

    private static boolean valid(String schema, String document) {
        return REGISTRY.getSchema(schema, InputFormat.JSON).validate(document, InputFormat.JSON).isEmpty();
    }

    /** A random schema of the kinds the grammar takes; {@code defs} collects definitions that {@code $ref}s name. */
    private static ObjectNode schema(SplittableRandom r, int depth, ObjectNode defs) {
        ObjectNode s = F.objectNode();
        switch (depth >= 3 ? r.nextInt(6) : r.nextInt(14)) {
            case 0 -> {
                s.put("type", "string");
                if (r.nextBoolean()) s.put("minLength", r.nextInt(3));
                if (r.nextBoolean()) s.put("maxLength", s.path("minLength").asInt(0) + r.nextInt(4));
            }
            case 1 -> {
                s.put("type", r.nextBoolean() ? "integer" : "number");
                if (s.get("type").asText().equals("integer") && r.nextBoolean()) {
                    int lo = r.nextInt(2001) - 1000;
                    if (r.nextBoolean()) s.put(r.nextBoolean() ? "minimum" : "exclusiveMinimum", lo);
                    if (r.nextBoolean()) s.put(r.nextBoolean() ? "maximum" : "exclusiveMaximum", lo + 2 + r.nextInt(2000));
                }
            }
            case 2 -> s.put("type", r.nextBoolean() ? "boolean" : "null");
            case 3 -> {
                ArrayNode values = s.putArray("enum");
                for (int i = 0, n = 1 + r.nextInt(3); i < n; i++) values.add(randomValue(r, 2));
            }
            case 4 -> s.set("const", randomValue(r, 2)); // scalars: a compound one is matched only as compact JSON
            case 5 -> { } // any value
            case 6, 7 -> {
                s.put("type", "object");
                if (r.nextInt(3) == 0) { // no properties listed: a map of one schema's values, or no properties at all
                    if (r.nextInt(3) == 0) s.put("additionalProperties", false);
                    else s.set("additionalProperties", schema(r, depth + 1, defs));
                    break;
                }
                ObjectNode properties = s.putObject("properties");
                ArrayNode required = F.arrayNode();
                for (int i = 0, n = 1 + r.nextInt(3); i < n; i++) {
                    String name = NAMES[r.nextInt(NAMES.length)];
                    if (properties.has(name)) continue;
                    properties.set(name, schema(r, depth + 1, defs));
                    if (r.nextBoolean()) required.add(name);
                }
                if (!required.isEmpty()) s.set("required", required);
                if (r.nextBoolean()) s.put("additionalProperties", false);
            }
            case 8 -> {
                s.put("type", "array");
                s.set("items", schema(r, depth + 1, defs));
                if (r.nextBoolean()) s.put("minItems", r.nextInt(3));
                if (r.nextBoolean()) s.put("maxItems", s.path("minItems").asInt(0) + r.nextInt(3));
            }
            case 9 -> {
                ArrayNode options = s.putArray(r.nextBoolean() ? "anyOf" : "oneOf");
                options.add(schema(r, depth + 1, defs));
                options.add(schema(r, depth + 1, defs));
                if (s.has("oneOf")) { // oneOf is taken as anyOf: only where the options exclude each other is that the same
                    s.remove("oneOf");
                    s.set("anyOf", options);
                }
            }
            case 11 -> {
                s.put("type", "string");
                s.put("format", new String[]{"date", "time", "date-time", "uuid"}[r.nextInt(4)]);
            }
            case 12 -> s.putArray("allOf").add(schema(r, depth + 1, defs));
            case 13 -> { // a tuple
                s.put("type", "array");
                ArrayNode prefix = s.putArray("prefixItems");
                for (int i = 0, n = 1 + r.nextInt(3); i < n; i++) prefix.add(schema(r, depth + 1, defs));
                int way = r.nextInt(3);
                if (way == 0) s.put("items", false);
                if (way == 1) s.set("items", schema(r, depth + 1, defs));
                if (r.nextBoolean()) s.put("minItems", r.nextInt(way == 0 ? prefix.size() + 1 : prefix.size() + 3));
                if (r.nextBoolean()) s.put("maxItems", s.path("minItems").asInt(0) + r.nextInt(3));
            }
            default -> {
                String name = "d" + defs.size();
                defs.putNull(name); // the name taken before the definition, which may make definitions of its own
                defs.set(name, schema(r, depth + 1, defs));
                s.put("$ref", "#/$defs/" + name);
            }
        }
        return s;
    }

    private static JsonNode randomValue(SplittableRandom r, int depth) {
        return switch (depth >= 2 ? r.nextInt(5) : r.nextInt(7)) {
            case 0 -> F.textNode(text(r, TEXT, 0, 3));
            case 1 -> F.numberNode(r.nextInt(2001) - 1000);
            case 2 -> F.numberNode((r.nextInt(2001) - 1000) / 8.0);
            case 3 -> F.booleanNode(r.nextBoolean());
            case 4 -> F.nullNode();
            case 5 -> {
                ArrayNode a = F.arrayNode();
                for (int i = 0, n = r.nextInt(3); i < n; i++) a.add(randomValue(r, depth + 1));
                yield a;
            }
            default -> {
                ObjectNode o = F.objectNode();
                for (int i = 0, n = r.nextInt(3); i < n; i++) o.set(NAMES[r.nextInt(NAMES.length)], randomValue(r, depth + 1));
                yield o;
            }
        };
    }

    /** A random string of a format (a few of them with a fault that the format refuses, where the grammar must too). */
    private static String formatted(String format, SplittableRandom r) {
        String date = String.format("%04d-%02d-%02d", r.nextInt(10000), 1 + r.nextInt(12), 1 + r.nextInt(28));
        String time = String.format("%02d:%02d:%02d%s%s", r.nextInt(24), r.nextInt(60), r.nextInt(60), r.nextBoolean() ? "" : "." + r.nextInt(1000),
                r.nextBoolean() ? "Z" : String.format("%s%02d:%02d", r.nextBoolean() ? "+" : "-", r.nextInt(18), r.nextInt(60)));
        String uuid = new java.util.UUID(r.nextLong(), r.nextLong()).toString();
        return switch (format) {
            case "date" -> date;
            case "time" -> time;
            case "date-time" -> date + "T" + time;
            default -> uuid;
        };
    }

    /**
     * A document made to {@code schema} in the grammar's form, or, where {@code stray} and a coin says so, a random
     * value in some place instead (which the schema may or may not accept).
     */
    private static JsonNode instance(JsonNode schema, JsonNode root, SplittableRandom r, boolean stray) {
        if (stray && r.nextInt(8) == 0) return randomValue(r, 1);
        if (schema.has("$ref")) return instance(root.get("$defs").get(schema.get("$ref").asText().substring(8)), root, r, stray);
        if (schema.has("const")) return schema.get("const");
        if (schema.has("enum")) return schema.get("enum").get(r.nextInt(schema.get("enum").size()));
        if (schema.has("anyOf")) return instance(schema.get("anyOf").get(r.nextInt(2)), root, r, stray);
        if (schema.has("allOf")) return instance(schema.get("allOf").get(0), root, r, stray);
        if (schema.has("format")) return F.textNode(formatted(schema.get("format").asText(), r));
        String type = schema.path("type").asText("");
        switch (type) {
            case "string" -> {
                int min = schema.path("minLength").asInt(0), max = schema.path("maxLength").asInt(min + 4);
                return F.textNode(text(r, TEXT, min, max));
            }
            case "integer" -> {
                long lo = schema.has("minimum") ? schema.get("minimum").asLong() : schema.has("exclusiveMinimum") ? schema.get("exclusiveMinimum").asLong() + 1 : -1000;
                long hi = schema.has("maximum") ? schema.get("maximum").asLong() : schema.has("exclusiveMaximum") ? schema.get("exclusiveMaximum").asLong() - 1 : lo + 2000;
                return F.numberNode(lo + r.nextLong(hi - lo + 1));
            }
            case "number" -> { return r.nextBoolean() ? F.numberNode(r.nextInt(100)) : F.numberNode((r.nextInt(2001) - 1000) / 8.0); }
            case "boolean" -> { return F.booleanNode(r.nextBoolean()); }
            case "null" -> { return F.nullNode(); }
            case "object" -> {
                ObjectNode o = F.objectNode();
                if (!schema.has("properties")) { // a map of additionalProperties's values, or {}
                    JsonNode values = schema.get("additionalProperties");
                    if (values.isObject()) for (int i = 0, n = r.nextInt(4); i < n; i++) o.set(NAMES[r.nextInt(NAMES.length)], instance(values, root, r, stray));
                    if (stray && r.nextInt(6) == 0) o.set("extra", F.numberNode(1));
                    return o;
                }
                List<String> required = new ArrayList<>();
                schema.path("required").forEach(n -> required.add(n.asText()));
                for (Iterator<String> names = schema.get("properties").fieldNames(); names.hasNext(); ) {
                    String name = names.next();
                    if (required.contains(name) || r.nextBoolean()) o.set(name, instance(schema.get("properties").get(name), root, r, stray));
                }
                if (stray && r.nextInt(6) == 0) o.set("extra", F.numberNode(1));
                if (stray && r.nextInt(6) == 0 && !o.isEmpty()) {
                    List<String> present = new ArrayList<>();
                    o.fieldNames().forEachRemaining(present::add);
                    o.remove(present.get(r.nextInt(present.size())));
                }
                return o;
            }
            case "array" -> {
                int min = schema.path("minItems").asInt(0), max = schema.path("maxItems").asInt(min + 3);
                ArrayNode a = F.arrayNode();
                if (schema.has("prefixItems")) { // the prefix's items, then items' (none where false; where absent, those minItems needs)
                    JsonNode prefix = schema.get("prefixItems"), items = schema.get("items");
                    int n = prefix.size(), upper = items == null ? Math.max(min, n) : items.isBoolean() ? n : n + 2;
                    if (schema.has("maxItems")) upper = Math.min(upper, max);
                    for (int i = 0, length = min + r.nextInt(upper - min + 1); i < length; i++) {
                        a.add(i < n ? instance(prefix.get(i), root, r, stray) : items == null ? randomValue(r, 1) : instance(items, root, r, stray));
                    }
                } else {
                    for (int i = 0, n = min + r.nextInt(max - min + 1); i < n; i++) a.add(instance(schema.get("items"), root, r, stray));
                }
                if (stray && r.nextInt(6) == 0) a.add(F.numberNode(1));
                if (stray && r.nextInt(6) == 0 && !a.isEmpty()) a.remove(r.nextInt(a.size()));
                return a;
            }
            default -> { return randomValue(r, 0); }
        }
    }

    /** Compact JSON, or with a space after each comma and colon, as a model might write it. */
    private static String written(JsonNode document, SplittableRandom r) throws Exception {
        return r.nextBoolean() ? document.toString() : new ObjectMapper().writer(new com.fasterxml.jackson.core.util.MinimalPrettyPrinter() {
            @Override
            public void writeObjectFieldValueSeparator(com.fasterxml.jackson.core.JsonGenerator g) throws java.io.IOException {
                g.writeRaw(": ");
            }

            @Override
            public void writeObjectEntrySeparator(com.fasterxml.jackson.core.JsonGenerator g) throws java.io.IOException {
                g.writeRaw(", ");
            }

            @Override
            public void writeArrayValueSeparator(com.fasterxml.jackson.core.JsonGenerator g) throws java.io.IOException {
                g.writeRaw(",\n  ");
            }
        }).writeValueAsString(document);
    }

    @Test
    void randomSchemasAgainstAValidator() throws Exception {
        SplittableRandom r = new SplittableRandom(17);
        int matched = 0, refusedByBoth = 0;
        for (int c = 0; c < 300; c++) {
            ObjectNode defs = F.objectNode();
            ObjectNode root = schema(r, 0, defs);
            if (!defs.isEmpty()) root.set("$defs", defs);
            String schemaText = root.toString();
            Grammar grammar = Grammar.parse(JsonSchemaGrammar.convert(schemaText));
            for (int d = 0; d < 10; d++) {
                boolean stray = d >= 5;
                String document = written(instance(root, root, r, stray), r);
                boolean valid = valid(schemaText, document), matches = grammar.matches(document);
                String what = schemaText + " on " + document;
                if (matches) assertTrue(valid, "the grammar matches what the schema refuses: " + what);
                if (!stray) {
                    assertTrue(valid, "the test's own document: " + what);
                    assertTrue(matches, "the grammar refuses a document of its form: " + what);
                }
                if (matches) matched++;
                if (!valid && !matches) refusedByBoth++;
            }
        }
        assertTrue(matched > 1500 && refusedByBoth > 100, matched + " matched, " + refusedByBoth + " refused by both, of 3000");
    }

    /** Integer bounds against arithmetic: random ranges, some open on one side, each number near its ends and beyond. */
    @Test
    void integerRanges() {
        SplittableRandom r = new SplittableRandom(23);
        for (int c = 0; c < 400; c++) {
            long scale = new long[]{10, 1000, 1_000_000, 100_000_000_000L}[r.nextInt(4)];
            long a = r.nextLong(2 * scale + 1) - scale, b = a + r.nextLong(scale + 1);
            ObjectNode schema = F.objectNode().put("type", "integer");
            boolean low = r.nextInt(4) > 0, high = r.nextInt(4) > 0, exclusive = r.nextBoolean();
            if (low) schema.put(exclusive ? "exclusiveMinimum" : "minimum", exclusive ? a - 1 : a);
            if (high) schema.put(exclusive ? "exclusiveMaximum" : "maximum", exclusive ? b + 1 : b);
            Grammar g = Grammar.parse(JsonSchemaGrammar.convert(schema.toString()));
            long lo = low ? a : Long.MIN_VALUE, hi = high ? b : Long.MAX_VALUE;
            List<Long> numbers = new ArrayList<>(List.of(a - 1, a, a + 1, b - 1, b, b + 1, 0L, -1L, 1L, 9L, 10L, -10L, 99L, 100L));
            for (int i = 0; i < 30; i++) numbers.add(r.nextLong(4 * scale + 1) - 2 * scale);
            for (long n : numbers) assertEquals(n >= lo && n <= hi, g.matches(Long.toString(n)), schema + " on " + n);
        }
    }

    /**
     * Number bounds against arithmetic: random bounds of up to three decimals, some open on one side, inclusive or
     * not, each number near them and beyond written as a plain decimal (and with a trailing zero), also against the
     * validator.
     */
    @Test
    void numberRanges() {
        SplittableRandom r = new SplittableRandom(31);
        for (int c = 0; c < 300; c++) {
            java.math.BigDecimal a = java.math.BigDecimal.valueOf(r.nextLong(40001) - 20000, r.nextInt(4)), b = a.add(java.math.BigDecimal.valueOf(r.nextLong(20001), r.nextInt(4)));
            ObjectNode schema = F.objectNode().put("type", "number");
            boolean low = r.nextInt(4) > 0, high = r.nextInt(4) > 0, lowStrict = r.nextBoolean(), highStrict = r.nextBoolean();
            if (low) schema.put(lowStrict ? "exclusiveMinimum" : "minimum", a);
            if (high) schema.put(highStrict ? "exclusiveMaximum" : "maximum", b);
            if (low && high && a.compareTo(b) == 0 && (lowStrict || highStrict)) continue; // no number: refused, as below
            Grammar g = Grammar.parse(JsonSchemaGrammar.convert(schema.toString()));
            List<java.math.BigDecimal> numbers = new ArrayList<>();
            for (java.math.BigDecimal bound : List.of(a, b)) {
                for (String step : new String[]{"0", "0.001", "0.01", "0.5", "1", "10"}) {
                    numbers.add(bound.add(new java.math.BigDecimal(step)));
                    numbers.add(bound.subtract(new java.math.BigDecimal(step)));
                }
            }
            for (int i = 0; i < 10; i++) numbers.add(java.math.BigDecimal.valueOf(r.nextLong(60001) - 30000, r.nextInt(5)));
            numbers.addAll(List.of(java.math.BigDecimal.ZERO, java.math.BigDecimal.ONE, java.math.BigDecimal.ONE.negate(), new java.math.BigDecimal("0.5"), new java.math.BigDecimal("-0.5")));
            for (java.math.BigDecimal n : numbers) {
                boolean within = (!low || (lowStrict ? n.compareTo(a) > 0 : n.compareTo(a) >= 0)) && (!high || (highStrict ? n.compareTo(b) < 0 : n.compareTo(b) <= 0));
                String plain = n.stripTrailingZeros().toPlainString();
                if (plain.equals("-0")) continue;
                for (String text : List.of(plain, plain.contains(".") ? plain + "0" : plain + ".0")) {
                    assertEquals(within, g.matches(text), schema + " on " + text);
                }
                if (r.nextInt(10) == 0) assertEquals(within, valid(schema.toString(), plain), "the validator, " + schema + " on " + plain);
            }
        }
        Grammar unit = Grammar.parse(JsonSchemaGrammar.convert("{\"type\": \"number\", \"minimum\": 0, \"maximum\": 1}"));
        for (String yes : new String[]{"0", "0.0", "0.25", "1", "1.000", "0.999999"}) assertTrue(unit.matches(yes), yes);
        for (String no : new String[]{"-0.1", "1.0001", "2", "1e0", "-0"}) assertTrue(!unit.matches(no), no);
    }

    /**
     * Tuples against the validator: random prefixes of integers and strings, items false, absent or integers, random
     * length bounds, on arrays of every length up to three past the prefix with values of the right type or not.
     * What the grammar matches the schema accepts; what the schema accepts the grammar matches, but the items past the
     * prefix and past minItems where items is absent (any values, which the grammar does not write).
     */
    @Test
    void tuples() {
        SplittableRandom r = new SplittableRandom(37);
        int matched = 0;
        for (int c = 0; c < 200; c++) {
            ObjectNode schema = F.objectNode().put("type", "array");
            ArrayNode prefix = schema.putArray("prefixItems");
            int n = 1 + r.nextInt(3), way = r.nextInt(3);
            for (int i = 0; i < n; i++) prefix.add(F.objectNode().put("type", r.nextBoolean() ? "integer" : "string"));
            if (way == 0) schema.put("items", false);
            if (way == 1) schema.putObject("items").put("type", "integer");
            if (r.nextBoolean()) schema.put("minItems", r.nextInt(way == 0 ? n + 1 : n + 3));
            if (r.nextBoolean()) schema.put("maxItems", schema.path("minItems").asInt(0) + r.nextInt(3));
            Grammar g = Grammar.parse(JsonSchemaGrammar.convert(schema.toString()));
            int min = schema.path("minItems").asInt(0);
            for (int d = 0; d < 12; d++) {
                ArrayNode a = F.arrayNode();
                for (int i = 0, length = r.nextInt(n + 4); i < length; i++) {
                    boolean integer = i < n ? prefix.get(i).get("type").asText().equals("integer") : true;
                    if (r.nextInt(8) == 0) integer = !integer;
                    a.add(integer ? F.numberNode(r.nextInt(100)) : F.textNode(text(r, TEXT, 0, 2)));
                }
                String document = a.toString();
                boolean valid = valid(schema.toString(), document), matches = g.matches(document);
                if (matches) assertTrue(valid, "the grammar matches what the schema refuses: " + schema + " on " + document);
                if (valid && (way != 2 || a.size() <= Math.max(min, n))) assertTrue(matches, "the grammar refuses " + document + " of " + schema);
                if (matches) matched++;
            }
        }
        assertTrue(matched > 400, matched + " of 2400 matched");
    }

    @Test
    void byHand() {
        Grammar g = Grammar.parse(JsonSchemaGrammar.convert("""
                {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}, "tags": {"type": "array", "items": {"enum": ["x", 2]}, "minItems": 1}},
                 "required": ["tags"], "additionalProperties": false}"""));
        for (String yes : new String[]{"{\"tags\":[2]}", "{ \"name\": \"abc\", \"tags\": [\"x\", 2] } ", "{\"name\":\"\\n\\\"\",\"tags\":[2,2,2]}"}) assertTrue(g.matches(yes), yes);
        for (String no : new String[]{"{}", "{\"name\":\"abcd\",\"tags\":[2]}", "{\"tags\":[]}", "{\"tags\":[3]}", "{\"tags\":[2],\"name\":\"a\"}", "{\"tags\":[2],\"x\":1}"}) {
            assertTrue(!g.matches(no), no);
        }
        assertTrue(Grammar.parse(JsonSchemaGrammar.convert("{}")).matches("[1, {\"a\": null}, \"é\", -2.5e3]"));
        Grammar dates = Grammar.parse(JsonSchemaGrammar.convert("{\"type\": \"array\", \"items\": {\"type\": \"string\", \"format\": \"date-time\"}}"));
        assertTrue(dates.matches("[\"2024-02-29T23:59:59.5+05:30\", \"1999-12-31t00:00:00z\"]"));
        for (String no : new String[]{"2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00:00"}) {
            assertTrue(!dates.matches("[\"" + no + "\"]"), no);
        }
        Grammar uuid = Grammar.parse(JsonSchemaGrammar.convert("{\"allOf\": [{\"type\": \"string\", \"format\": \"uuid\"}], \"description\": \"an id\"}"));
        assertTrue(uuid.matches("\"123e4567-e89b-12d3-a456-426614174000\"") && !uuid.matches("\"123e4567-e89b-12d3-a456-42661417400\""));
        assertTrue(Grammar.parse(JsonSchemaGrammar.convert("true")).matches("false"));
        // a tuple as pydantic writes tuple[int, str], and a tagged union with its OpenAPI discriminator
        Grammar pair = Grammar.parse(JsonSchemaGrammar.convert("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"integer\"}, {\"type\": \"string\"}], \"minItems\": 2, \"maxItems\": 2}"));
        assertTrue(pair.matches("[1, \"a\"]") && !pair.matches("[1]") && !pair.matches("[\"a\", 1]") && !pair.matches("[1, \"a\", 2]"));
        Grammar tagged = Grammar.parse(JsonSchemaGrammar.convert("""
                {"oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}], "discriminator": {"propertyName": "pet", "mapping": {"cat": "#/$defs/Cat", "dog": "#/$defs/Dog"}},
                 "$defs": {"Cat": {"type": "object", "properties": {"pet": {"const": "cat"}}, "required": ["pet"]},
                           "Dog": {"type": "object", "properties": {"pet": {"const": "dog"}, "barks": {"type": "boolean"}}, "required": ["pet", "barks"]}}}"""));
        assertTrue(tagged.matches("{\"pet\": \"cat\"}") && tagged.matches("{\"pet\": \"dog\", \"barks\": true}") && !tagged.matches("{\"pet\": \"dog\"}"));
        assertTrue(Grammar.parse(JsonSchemaGrammar.convert("{\"type\": \"array\", \"items\": false}")).matches("[]"));
        // allOf of objects (an object that extends another): their properties and required names together
        String extended = """
                {"allOf": [{"$ref": "#/$defs/Base"}, {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]}],
                 "$defs": {"Base": {"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"], "title": "Base"}]}}}""";
        Grammar merged = Grammar.parse(JsonSchemaGrammar.convert(extended));
        for (String yes : new String[]{"{\"a\": \"x\", \"b\": 1}"}) assertTrue(merged.matches(yes) && valid(extended, yes), yes);
        for (String no : new String[]{"{\"a\": \"x\"}", "{\"b\": 1}", "{\"a\": 1, \"b\": 1}"}) assertTrue(!merged.matches(no) && !valid(extended, no), no);
        Grammar typedEnum = Grammar.parse(JsonSchemaGrammar.convert("{\"type\": [\"string\", \"null\"], \"enum\": [\"a\", 1, null], \"title\": \"t\"}"));
        assertTrue(typedEnum.matches("\"a\"") && typedEnum.matches("null") && !typedEnum.matches("1"), "the values of the type beside the enum");
    }

    /** Patterns by hand: what each matches and refuses, as JSON string texts. */
    @Test
    void patterns() {
        String[][] cases = { // pattern, then texts it matches, "!", texts it refuses
                {"^[A-Z]{2}-\\d{3}$", "AB-123", "!", "AB-12", "ab-123", "AB-1234", "xAB-123"},
                {"^\\(\\d{3}\\) \\d{3}-\\d{4}$", "(555) 123-4567", "!", "555 123-4567"},
                {"ab", "ab", "xxabyy", "a\nab", "!", "a b", ""},
                {"^ab", "abc", "!", "cab"},
                {"ab$", "cab", "!", "abc"},
                {"^a|b$", "ax", "xb", "!", "xa", "bx"},
                {"^(?:foo|bar)+$", "foobarfoo", "!", "", "foob"},
                {"^(a*)*b$", "b", "aaab", "!", "aa"},
                {"^(a?|b?){2,}$", "", "ab", "abba", "!", "c"},
                {"^[^\"]*$", "it's", "", "tab\there", "!", "say \"hi\""},
                {"^\"\\\\$", "\"\\", "!", "\"", "\\"},
                {"^.$", "é", "😀", "\"", "\t", "!", "\n", "ab", ""},
                {"^\\w+@\\w+\\.com$", "me@host.com", "!", "me@host.org", "m e@host.com"},
                {"^\\s\\S$", " x", "\tx", "!", "x ", "  "},
                {"^[\\x01-\\x1f]+$", "\u0001\n\u001f", "!", " "},
                {"^\\u00e9\\uD83D\\uDE00{1,2}?$", "é😀", "é😀😀", "!", "é", "e😀"},
                {"^[a-c-]{3}$", "a-c", "-ba", "!", "x", "abd"},
                {"", "", "anything at all"},
        };
        for (String[] c : cases) {
            String schema = F.objectNode().put("type", "string").put("pattern", c[0]).toString();
            Grammar g = Grammar.parse(JsonSchemaGrammar.convert(schema));
            boolean yes = true;
            for (int i = 1; i < c.length; i++) {
                if (c[i].equals("!")) { yes = false; continue; }
                String text = F.textNode(c[i]).toString();
                assertEquals(yes, g.matches(text), c[0] + " on " + text);
                assertEquals(yes, valid(schema, text), "the validator, " + c[0] + " on " + text);
            }
        }
        // ECMA-262's \s, which JSON Schema names, has the Unicode spaces (Java's, the validator's, has not); and
        // Annex B's brace that starts no quantifier is a literal (Java refuses it)
        assertTrue(Grammar.parse(JsonSchemaGrammar.convert("{\"type\": \"string\", \"pattern\": \"^\\\\s$\"}")).matches("\"\u00a0\""));
        Grammar brace = Grammar.parse(JsonSchemaGrammar.convert("{\"type\": \"string\", \"pattern\": \"^x{,2}$\"}"));
        assertTrue(brace.matches("\"x{,2}\"") && !brace.matches("\"xx\""));
    }

    private static final String[] PATTERN_TEXT = {"a", "b", "Z", "7", "é", "😀", " ", "\"", "\\", "-", "_", ".", "\t", "\u0001"};
    private static final String[][] PATTERN_ATOMS = { // a regular expression and the characters it matches among PATTERN_TEXT
            {"a", "a"}, {"b", "b"}, {"7", "7"}, {"é", "é"}, {"😀", "😀"}, {" ", " "}, {"\"", "\""}, {"\\\\", "\\"}, {"\\.", "."}, {"-", "-"},
            {"\\t", "\t"}, {"\\x01", "\u0001"}, {".", "a", "Z", "😀", "\"", "\\", "\t", "\u0001"}, {"\\d", "7"}, {"\\D", "a", "é", "-"},
            {"\\w", "a", "Z", "7", "_"}, {"\\W", "é", "😀", " ", "-"}, {"\\s", " ", "\t"}, {"\\S", "a", "\"", "\u0001"},
            {"[ab]", "a", "b"}, {"[^a\"]", "b", "\\", "\t"}, {"[a-z]", "a", "b"}, {"[\\d_]", "7", "_"}, {"[^\\s]", "a", "😀"}, {"[\\\\\"]", "\\", "\""},
    };

    /** A random pattern of the kinds taken (depth: of groups), and a string it matches, made together. */
    private static String[] randomPattern(SplittableRandom r, int depth) {
        StringBuilder pattern = new StringBuilder(), sample = new StringBuilder();
        for (int t = 0, terms = 1 + r.nextInt(3); t < terms; t++) {
            String[] atom;
            if (depth < 2 && r.nextInt(5) == 0) { // a group of alternatives
                String[] a = randomPattern(r, depth + 1), b = randomPattern(r, depth + 1);
                boolean two = r.nextBoolean(), second = two && r.nextBoolean();
                atom = new String[]{(r.nextBoolean() ? "(" : "(?:") + a[0] + (two ? "|" + b[0] : "") + ")", second ? b[1] : a[1]};
            } else {
                String[] choice = PATTERN_ATOMS[r.nextInt(PATTERN_ATOMS.length)];
                atom = new String[]{choice[0], choice[1 + r.nextInt(choice.length - 1)]};
            }
            int min = 1, max = 1;
            switch (r.nextInt(8)) {
                case 0 -> { pattern.append(atom[0]).append('*'); min = 0; max = 3; }
                case 1 -> { pattern.append(atom[0]).append('+'); max = 3; }
                case 2 -> { pattern.append(atom[0]).append('?'); min = 0; }
                case 3 -> {
                    min = r.nextInt(3);
                    max = min + r.nextInt(3);
                    pattern.append(atom[0]).append('{').append(min).append(r.nextBoolean() ? "," + max : min == max ? "" : ",").append('}');
                    if (pattern.charAt(pattern.length() - 2) == ',') max = min + 2; // unbounded
                }
                default -> pattern.append(atom[0]);
            }
            if (min != max && r.nextInt(4) == 0) pattern.append('?'); // lazy
            for (int i = 0, n = min + r.nextInt(max - min + 1); i < n; i++) sample.append(atom[1]);
        }
        return new String[]{pattern.toString(), sample.toString()};
    }

    /**
     * Random patterns, anchored or not, against the validator (its regular expressions, not ours): on strings each
     * pattern matches, those with a character changed, and random ones, the grammar matches the string's JSON text
     * exactly where the validator accepts it.
     */
    @Test
    void randomPatternsAgainstAValidator() {
        SplittableRandom r = new SplittableRandom(29);
        int matched = 0, refused = 0;
        for (int c = 0; c < 300; c++) {
            String[] p = randomPattern(r, 0);
            boolean start = r.nextBoolean(), end = r.nextBoolean();
            String pattern = (start ? "^" : "") + p[0] + (end ? "$" : "");
            String schema = F.objectNode().put("type", "string").put("pattern", pattern).toString();
            Grammar g = Grammar.parse(JsonSchemaGrammar.convert(schema));
            List<String> strings = new ArrayList<>();
            strings.add((start ? "" : text(r, PATTERN_TEXT, 0, 2)) + p[1] + (end ? "" : text(r, PATTERN_TEXT, 0, 2)));
            int[] cps = p[1].codePoints().toArray();
            if (cps.length > 0) {
                cps[r.nextInt(cps.length)] = PATTERN_TEXT[r.nextInt(PATTERN_TEXT.length)].codePointAt(0);
                strings.add(new String(cps, 0, cps.length));
            }
            for (int i = 0; i < 4; i++) strings.add(text(r, PATTERN_TEXT, 0, 5));
            for (String s : strings) {
                String text = F.textNode(s).toString();
                boolean valid = valid(schema, text);
                assertEquals(valid, g.matches(text), pattern + " on " + text);
                if (valid) matched++;
                else refused++;
            }
            assertTrue(valid(schema, F.textNode(strings.getFirst()).toString()), "the test's own sample: " + pattern + " on " + strings.getFirst());
        }
        assertTrue(matched > 600 && refused > 300, matched + " matched, " + refused + " refused");
    }

    private static String text(SplittableRandom r, String[] alphabet, int min, int max) {
        StringBuilder s = new StringBuilder();
        for (int i = 0, n = min + r.nextInt(max - min + 1); i < n; i++) s.append(alphabet[r.nextInt(alphabet.length)]);
        return s.toString();
    }

    /**
     * A schema nested 300 deep, arrays and objects taking turns, gives a grammar that grows with the nesting (an item
     * or property written once as a rule, where writing it in both places it is used doubled the text at each level:
     * 2^300), and one that matches the deepest document.
     */
    @Test
    void deepNestingGrowsTheGrammarLinearly() {
        String schema = "{}", document = "1";
        for (int i = 0; i < 300; i++) {
            schema = i % 2 == 0 ? "{\"type\": \"array\", \"items\": " + schema + ", \"minItems\": 1}" : "{\"type\": \"object\", \"properties\": {\"a\": " + schema + "}, \"required\": [\"a\"]}";
            document = i % 2 == 0 ? "[" + document + "]" : "{\"a\":" + document + "}";
        }
        String grammar = JsonSchemaGrammar.convert(schema);
        assertTrue(grammar.length() < 300 * 400, grammar.length() + " characters");
        assertTrue(Grammar.parse(grammar).matches(document));
    }

    @Test
    void whatIsNotTakenIsRefusedByName() {
        String[][] cases = {
                {"{\"type\": \"string\", \"pattern\": \"^(?=a)\"}", "--json-schema: pattern \"^(?=a)\" (at #): lookaround '(?=' is not supported"},
                {"{\"properties\": {\"p\": {\"type\": \"string\", \"pattern\": \"(a)\\\\1\"}}}", "--json-schema: pattern \"(a)\\\\1\" (at #/properties/p): backreference \\1 is not supported"},
                {"{\"type\": \"string\", \"pattern\": \"a^b\"}", "--json-schema: pattern \"a^b\" (at #): '^' inside the pattern (anchors are taken at its ends only)"},
                {"{\"type\": \"string\", \"pattern\": \"\\\\bword\"}", "--json-schema: pattern \"\\\\bword\" (at #): word boundary \\b is not supported"},
                {"{\"type\": \"string\", \"pattern\": \"(ab\"}", "--json-schema: pattern \"(ab\" (at #): '(' without its ')'"},
                {"{\"type\": \"string\", \"pattern\": \"[ab\"}", "--json-schema: pattern \"[ab\" (at #): '[' without its ']'"},
                {"{\"type\": \"string\", \"pattern\": \"a{3,2}\"}", "--json-schema: pattern \"a{3,2}\" (at #): a repetition's maximum below its minimum"},
                {"{\"type\": \"string\", \"pattern\": \"*a\"}", "--json-schema: pattern \"*a\" (at #): nothing to repeat before '*'"},
                {"{\"type\": \"string\", \"pattern\": \"^a\", \"maxLength\": 3}", "--json-schema: 'maxLength' beside 'pattern' (at #) is not supported"},
                {"{\"pattern\": \"^a\"}", "--json-schema: 'pattern' (at #) needs a type beside it"},
                {"{\"properties\": {\"n\": {\"type\": \"integer\", \"multipleOf\": 2}}}", "--json-schema: 'multipleOf' (at #/properties/n) is not supported"},
                {"{\"type\": \"object\", \"required\": [\"a\"]}", "--json-schema: required property 'a' (at #) is not among its properties"},
                {"{\"type\": \"object\", \"minProperties\": 1}", "--json-schema: 'minProperties' (at #) is not supported"},
                {"{\"$ref\": \"https://example.com/s.json\"}", "--json-schema: $ref 'https://example.com/s.json' (at #) is not supported: only #/$defs/NAME and #/definitions/NAME"},
                {"{\"$ref\": \"#/$defs/x\"}", "--json-schema: $ref '#/$defs/x' (at #) names no definition"},
                {"{\"type\": \"text\"}", "--json-schema: unknown type 'text' at #"},
                {"{\"type\": \"array\", \"minItems\": 3, \"maxItems\": 2}", "--json-schema: maxItems below minItems at #"},
                {"{\"type\": \"object\", \"properties\": {}, \"required\": [\"a\"]}", "--json-schema: required property 'a' (at #) is not among its properties"},
                {"false", "--json-schema: # is false (no value is allowed)"},
                {"{\"maxLength\": 3}", "--json-schema: 'maxLength' (at #) needs a type beside it"},
                {"{\"$ref\": \"#/$defs/s\", \"maxLength\": 3, \"$defs\": {\"s\": {\"type\": \"string\"}}}", "--json-schema: 'maxLength' beside '$ref' (at #) is not supported"},
                {"{\"type\": \"object\", \"anyOf\": [{\"required\": [\"a\"]}]}", "--json-schema: 'type' beside 'anyOf' (at #) is not supported"},
                {"{\"type\": \"string\", \"enum\": [1, 2]}", "--json-schema: no value of #/enum is of its type"},
                {"{\"type\": \"number\", \"minimum\": 0.5, \"exclusiveMaximum\": 0.5}", "--json-schema: no number lies within the bounds at #"},
                {"{\"type\": \"number\", \"minimum\": 0.0000000000000001}", "--json-schema: minimum at # is past 10^15 or has more than 15 decimals, which is not supported"},
                {"{\"type\": \"integer\", \"minimum\": 3, \"exclusiveMaximum\": 3}", "--json-schema: no integer lies within the bounds at #"},
                {"{\"type\": \"string\", \"format\": \"email\"}", "--json-schema: format 'email' (at #) is not supported; date, date-time, time, uuid are"},
                {"{\"type\": \"integer\", \"format\": \"int32\"}", "--json-schema: format (at #) is supported on strings only (type string)"},
                {"{\"allOf\": [{\"type\": \"string\"}, {\"maxLength\": 3}]}", "--json-schema: allOf of several schemas takes objects with properties only; 'type' at #/allOf/0 is not supported there"},
                {"{\"allOf\": [{\"properties\": {\"a\": {}}}, {\"properties\": {\"a\": {}}}]}", "--json-schema: property 'a' in two parts of an allOf (at #) is not supported"},
                {"{\"allOf\": [{\"$ref\": \"#/$defs/x\"}, {}], \"$defs\": {\"x\": {\"$ref\": \"#/$defs/x\"}}}", "--json-schema: $ref through more than 32 references (or to itself) at #/$defs/x"},
                {"[1]", "--json-schema: # is not a schema (an object or a boolean)"},
                {"{\"type\": \"array\", \"prefixItems\": [{}], \"items\": false, \"minItems\": 2}", "--json-schema: minItems above the prefixItems' count with items false at #"},
                {"{\"type\": \"array\", \"prefixItems\": []}", "--json-schema: prefixItems at # must be a non-empty array of schemas"},
        };
        for (String[] c : cases) assertEquals(c[1], assertThrows(IllegalArgumentException.class, () -> JsonSchemaGrammar.convert(c[0]), c[0]).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> JsonSchemaGrammar.convert("{\"type\": ")).getMessage().startsWith("--json-schema: not JSON ("));
    }

    /**
     * stories260K sampling to a schema, also speculatively: each document it ends (at EOS, where the grammar is
     * complete) is one the validator accepts.
     */
    @Test
    void generatedDocumentsAreValid() {
        String schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"age\":{\"type\":\"integer\"},"
                + "\"pets\":{\"type\":\"array\",\"items\":{\"enum\":[\"cat\",\"dog\"]},\"maxItems\":3}},\"required\":[\"name\"]}";
        int ended = 0;
        for (String seed : new String[]{"1", "2", "3", "4", "5", "6", "7"}) {
            // the last two with speculation: the draft tokens verified under the grammar
            String[] speculation = seed.equals("6") ? new String[]{"--lookup", "2"} : seed.equals("7") ? new String[]{"--draft-checkpoint", Shared.MODELS.resolve("stories260K.gguf").toString(), "--draft-quantize", "int4"} : new String[0];
            String[] args = {"generate", "-m", Shared.MODELS.resolve("stories260K.gguf").toString(), "-s", seed, "-n", "300", "-j", schema};
            String[] all = java.util.Arrays.copyOf(args, args.length + speculation.length);
            System.arraycopy(speculation, 0, all, args.length, speculation.length);
            ErrorsTest.Outcome o = ErrorsTest.run(all);
            assertEquals(0, o.exit(), o.err());
            if (o.err().contains("Generated 300 tokens")) { // cut at the limit: not a whole document, and said so
                assertTrue(o.err().contains("note: the text stops before the grammar is complete; a larger --max-new-tokens lets it finish"), o.err());
                continue;
            }
            assertTrue(!o.err().contains("note: the text stops"), o.err());
            ended++;
            assertTrue(valid(schema, o.out().strip()), o.out());
        }
        assertTrue(ended >= 4, ended + " of 7 ended");
        ErrorsTest.Outcome cut = ErrorsTest.run("generate", "-m", Shared.MODELS.resolve("stories260K.gguf").toString(), "-s", "1", "-n", "3", "-j", schema);
        assertTrue(cut.err().contains("note: the text stops before the grammar is complete; a larger --max-new-tokens lets it finish"), cut.err());
    }
}
