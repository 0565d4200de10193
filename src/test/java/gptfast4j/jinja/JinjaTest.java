package gptfast4j.jinja;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Jinja renderer against jinja2 (3.1.6, Hugging Face's settings): real models' chat templates and
 * {@code features.jinja} over seven conversations, each rendering written by jinja2
 * ({@code scripts/chat-template-renderings.py src/test/resources/chat-templates/renderings.json
 * src/test/resources/chat-templates/*.jinja}); where jinja2 fails on a conversation, the renderer must fail too.
 */
class JinjaTest {
    private static final Path TEMPLATES = Path.of("src/test/resources/chat-templates");
    /** The date the renderings were made with ({@code strftime_now}). */
    private static final LocalDateTime RENDERED_AT = LocalDateTime.of(2026, 12, 6, 0, 0);

    @TestFactory
    Stream<DynamicTest> templatesRenderAsJinja2RendersThem() throws IOException {
        JsonNode file = new ObjectMapper().readTree(TEMPLATES.resolve("renderings.json").toFile());
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode r : file.get("renderings")) {
            String name = r.get("template").asText(), caseName = r.get("case").asText();
            JsonNode conversation = file.get("cases").get(caseName);
            tests.add(DynamicTest.dynamicTest(name + ": " + caseName, () -> {
                Template template = Template.parse(Files.readString(TEMPLATES.resolve(name)));
                Map<String, Object> context = new HashMap<>();
                context.put("messages", value(conversation.get("messages")));
                context.put("tools", value(conversation.get("tools")));
                context.put("add_generation_prompt", conversation.path("add_generation_prompt").asBoolean(true));
                if (conversation.has("enable_thinking")) context.put("enable_thinking", conversation.get("enable_thinking").asBoolean());
                context.put("bos_token", "<s>");
                context.put("eos_token", "</s>");
                if (r.has("error")) {
                    assertThrows(TemplateException.class, () -> template.render(context, RENDERED_AT), "jinja2: " + r.get("error").asText());
                } else {
                    assertEquals(r.get("expected").asText(), template.render(context, RENDERED_AT));
                }
            }));
        }
        assertTrue(tests.size() >= 180, "renderings: " + tests.size());
        return tests.stream();
    }

    /** JSON as the renderer's values (Python's, as Hugging Face hands a conversation to jinja2). */
    private static Object value(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isBoolean()) return n.asBoolean();
        if (n.isIntegralNumber()) return n.asLong();
        if (n.isNumber()) return n.asDouble();
        if (n.isArray()) {
            List<Object> list = new ArrayList<>();
            n.forEach(x -> list.add(value(x)));
            return list;
        }
        Map<Object, Object> map = new LinkedHashMap<>();
        n.fields().forEachRemaining(e -> map.put(e.getKey(), value(e.getValue())));
        return map;
    }

    private static String render(String template, Map<String, ?> context) {
        return Template.parse(template).render(context, RENDERED_AT);
    }

    @Test
    void undefinedValuesRenderAsNothingButCannotBeRead() {
        assertEquals("[]", render("[{{ missing }}]", Map.of()));
        assertEquals("0", render("{{ missing|length }}", Map.of()));
        TemplateException e = assertThrows(TemplateException.class, () -> render("line one\n{{ missing.field }}", Map.of()));
        assertEquals("line 2: 'missing' is undefined (reading .field)", e.getMessage());
        assertThrows(TemplateException.class, () -> render("{{ missing + 1 }}", Map.of()));
        assertThrows(TemplateException.class, () -> render("{{ missing() }}", Map.of()));
        assertEquals("", render("{{ m.role }}", Map.of("m", new LinkedHashMap<>())), "a dict's missing key is undefined, not an error");
    }

    @Test
    void raiseExceptionStopsWithTheTemplatesMessage() {
        TemplateException e = assertThrows(TemplateException.class,
                () -> render("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
                        Map.of("messages", List.of(Map.of("role", "system")))));
        assertEquals("line 1: System role not supported", e.getMessage());
    }

    @Test
    void syntaxErrorsNameTheirLine() {
        assertEquals("line 3: a block is not closed (expected elif or else or endif)",
                assertThrows(TemplateException.class, () -> Template.parse("a\n{% if x %}\nb")).getMessage());
        assertEquals("line 2: unknown block 'include'", assertThrows(TemplateException.class, () -> Template.parse("\n{% include 'x' %}")).getMessage());
        assertEquals("line 1: a tag is not closed", assertThrows(TemplateException.class, () -> Template.parse("{{ x ")).getMessage());
        assertEquals("line 1: no filter named 'nope'", assertThrows(TemplateException.class, () -> render("{{ 1|nope }}", Map.of())).getMessage());
    }

    @Test
    void deepRecursionIsAnErrorNotACrash() {
        assertThrows(TemplateException.class, () -> render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", Map.of()));
    }
}
