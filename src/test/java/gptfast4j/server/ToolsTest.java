package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.generate.Grammar;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A request's tools: the replies their grammar takes and how they read, the answer streamed, the prompt's description. */
class ToolsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static final String WEATHER = "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}";
    private static final String TIME = "{\"name\": \"get_time\", \"arguments\": {\"zone\": \"utc\"}}";

    /** Two functions, the second's argument a reference to a definition of its own; {@code extra} more of the request's fields. */
    private static Tools tools(String extra) throws Exception {
        ObjectNode body = (ObjectNode) JSON.readTree("""
                {"tools": [
                  {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}},
                  {"type": "function", "function": {"name": "get_time",
                    "parameters": {"type": "object", "properties": {"zone": {"$ref": "#/$defs/Zone"}}, "required": ["zone"],
                                   "$defs": {"Zone": {"enum": ["utc", "cet"]}}}}}]""" + extra + "}");
        return Tools.parse(body);
    }

    @Test
    void aReplyIsOneCallOrAnAnswer() throws Exception {
        Grammar auto = Grammar.parse(tools("").grammar());
        assertTrue(auto.matches("{\"tool_call\": " + WEATHER + "}"));
        assertTrue(auto.matches("{ \"tool_call\" : " + TIME + " }"));
        assertTrue(auto.matches("{\"response\": \"It is sunny.\"}"));
        assertFalse(auto.matches("{\"tool_calls\": [" + WEATHER + "]}"), "several calls only where parallel calls are asked for");
        assertFalse(auto.matches("{\"tool_call\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"k\"}}}"), "an argument outside its enum");
        assertFalse(auto.matches("{\"tool_call\": {\"name\": \"get_time\", \"arguments\": {\"zone\": \"pst\"}}}"), "outside the referenced definition");
        assertFalse(auto.matches("{\"tool_call\": {\"name\": \"get_date\", \"arguments\": {}}}"), "a function not in the tools");
        assertFalse(auto.matches("{\"tool_call\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}"), "a required argument left out");

        Grammar required = Grammar.parse(tools(", \"tool_choice\": \"required\"").grammar());
        assertTrue(required.matches("{\"tool_call\": " + TIME + "}"));
        assertFalse(required.matches("{\"response\": \"It is sunny.\"}"));
        Grammar named = Grammar.parse(tools(", \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"get_time\"}}").grammar());
        assertTrue(named.matches("{\"tool_call\": " + TIME + "}"));
        assertFalse(named.matches("{\"tool_call\": " + WEATHER + "}"));
        assertNull(tools(", \"tool_choice\": \"none\""));
    }

    @Test
    void parallelCallsAreAList() throws Exception {
        Grammar parallel = Grammar.parse(tools(", \"parallel_tool_calls\": true").grammar());
        String two = "{\"tool_calls\": [" + WEATHER + ", " + TIME + "]}";
        assertTrue(parallel.matches(two));
        assertTrue(parallel.matches("{\"tool_calls\": [" + TIME + "]}"));
        assertFalse(parallel.matches("{\"tool_calls\": []}"));
        assertFalse(parallel.matches("{\"tool_call\": " + TIME + "}"));
        Tools.Reply reply = Tools.read(two);
        assertNull(reply.content());
        assertEquals(List.of("get_weather", "get_time"), reply.calls().stream().map(Tools.Call::name).toList());
        assertEquals("{\"city\":\"Paris\",\"unit\":\"c\"}", reply.calls().get(0).arguments());
        assertEquals("{\"zone\":\"utc\"}", reply.calls().get(1).arguments());
        assertTrue(reply.calls().get(0).id().matches("call_[A-Za-z0-9]{24}") && !reply.calls().get(0).id().equals(reply.calls().get(1).id()));
    }

    /** An answer's characters come out as its JSON comes in, escapes decoded once whole, a surrogate pair never split. */
    @Test
    void anAnswerIsGivenOutAsItComes() {
        String json = "{ \"response\" :\n  \"a\\\"b\\\\c\\/\\n \\u00e9 \\ud83d\\ude00 \u00e8 \ud83d\ude01 end\" }";
        String decoded = "a\"b\\c/\n \u00e9 \ud83d\ude00 \u00e8 \ud83d\ude01 end";
        Tools.Answer answer = new Tools.Answer();
        StringBuilder given = new StringBuilder();
        for (int i = 0; i < json.length(); i++) {
            String piece = answer.add(json.substring(i, i + 1));
            assertFalse(!piece.isEmpty() && Character.isHighSurrogate(piece.charAt(piece.length() - 1)), "half a pair: " + given + piece);
            given.append(piece);
            assertTrue(decoded.startsWith(given.toString()), given.toString());
        }
        assertEquals(decoded, given.toString());
        assertEquals(decoded, answer.reply().content());
        assertEquals(decoded.length(), answer.given());

        Tools.Answer cut = new Tools.Answer();
        assertEquals("ab", cut.add("{\"response\": \"ab\\"));
        assertEquals("ab", cut.reply().content(), "cut short: the answer as far as it came");

        Tools.Answer call = new Tools.Answer();
        assertEquals("", call.add("{\"tool_call\": " + WEATHER.substring(0, 20)));
        assertEquals("{\"tool_call\": " + WEATHER.substring(0, 20), call.reply().content(), "a call cut short: the text as it is");
        assertEquals("", call.add(WEATHER.substring(20) + "}"));
        assertEquals("get_weather", call.reply().calls().getFirst().name());
        assertNull(call.reply().content());
    }

    @Test
    void thePromptDescribesEachTool() throws Exception {
        String auto = tools("").describe("Be brief.");
        assertTrue(auto.startsWith("Be brief.\n\n"), auto);
        for (JsonNode tool : JSON.readTree("[{\"name\":\"get_weather\",\"description\":\"The weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":"
                + "{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\",\"unit\"]}}, {\"name\":\"get_time\",\"parameters\":"
                + "{\"type\":\"object\",\"properties\":{\"zone\":{\"$ref\":\"#/$defs/Zone\"}},\"required\":[\"zone\"],\"$defs\":{\"Zone\":{\"enum\":[\"utc\",\"cet\"]}}}}]")) {
            assertTrue(auto.contains("\n" + tool + "\n"), auto);
        }
        assertTrue(auto.contains("{\"tool_call\": {\"name\": \"<tool>\"") && auto.contains("{\"response\": \"<your answer>\"}"), auto);
        String required = tools(", \"tool_choice\": \"required\", \"parallel_tool_calls\": true").describe(null);
        assertTrue(required.startsWith("You can call these tools") && required.contains("{\"tool_calls\": [") && !required.contains("\"response\""), required);
    }
}
