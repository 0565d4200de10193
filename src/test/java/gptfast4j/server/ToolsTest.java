package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.generate.Grammar;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
        return tools(extra, false);
    }

    private static Tools tools(String extra, boolean hermes) throws Exception {
        ObjectNode body = (ObjectNode) JSON.readTree("""
                {"tools": [
                  {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}},
                  {"type": "function", "function": {"name": "get_time",
                    "parameters": {"type": "object", "properties": {"zone": {"$ref": "#/$defs/Zone"}}, "required": ["zone"],
                                   "$defs": {"Zone": {"enum": ["utc", "cet"]}}}}}]""" + extra + "}");
        return Tools.parse(body, hermes);
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

    /**
     * ChatML's models' own tool syntax (Qwen3, Qwen2.5, Hermes): a conversation with tools, an earlier call and two
     * results is what Qwen3-0.6B's template renders (scripts/render-chat-template.py TEMPLATE MESSAGES '' '<|im_end|>'
     * TOOLS, as below), tokenized on the Llama-3 vocabulary with ChatML's markers.
     */
    @Test
    void hermesStyleIsQwen3sTemplate() throws Exception {
        ObjectNode body = (ObjectNode) JSON.readTree("""
                {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city, \\"now\\"",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
                 "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "sunny"}, {"role": "tool", "tool_call_id": "c1", "content": "20 C"}]}""");
        CompletionRequest r = CompletionRequest.parse(body, true, true);
        String rendered = "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": "
                + "{\"name\": \"get_weather\", \"description\": \"The weather in a city, \\\"now\\\"\", \"parameters\": {\"type\": \"object\", "
                + "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}\n</tools>\n\nFor each function call, return a json "
                + "object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                + "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n"
                + "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n"
                + "<tool_response>\nsunny\n</tool_response>\n<tool_response>\n20 C\n</tool_response><|im_end|>\n<|im_start|>assistant\n";
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(gptfast4j.Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        String[] tokens = vocab.metadata().getStrings("tokenizer.ggml.tokens").clone();
        tokens[128018] = "<|im_start|>";
        tokens[128019] = "<|im_end|>";
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens));
        gptfast4j.tokenizer.Tokenizer t = gptfast4j.tokenizer.Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, "chatml"));
        assertArrayEquals(t.encodeWithSpecials(rendered), gptfast4j.model.ChatFormat.CHATML.conversation(t, r.system(), r.messages(), 128000, false, 128019));
        assertNull(r.grammar(), "auto: the reply is read afterwards");
    }

    /** A Hermes-style reply: its calls, the answer before them, an answer alone; streamed, the text before a call only. */
    @Test
    void hermesRepliesAreRead() throws Exception {
        Tools.Reply two = Tools.readHermes("Let me check.\n\n<tool_call>\n" + WEATHER + "\n</tool_call>\n<tool_call>\n" + TIME + "\n</tool_call>");
        assertEquals("Let me check.", two.content());
        assertEquals(List.of("get_weather", "get_time"), two.calls().stream().map(Tools.Call::name).toList());
        assertEquals("{\"zone\":\"utc\"}", two.calls().get(1).arguments());
        assertNull(Tools.readHermes("<tool_call>\n" + TIME + "\n</tool_call>").content());
        assertEquals("It is sunny.", Tools.readHermes("It is sunny.").content());
        assertTrue(Tools.readHermes("<tool_call>\n{\"name\": \"x\"\n</tool_call>").calls().isEmpty(), "not a call's JSON: all text");

        String reply = "Let me check.\n\n<tool_call>\n" + WEATHER + "\n</tool_call>";
        Tools.Answer answer = new Tools.Answer(true);
        StringBuilder streamed = new StringBuilder();
        for (int i = 0; i < reply.length(); i++) streamed.append(answer.add(reply.substring(i, i + 1)));
        assertEquals("Let me check.", streamed.toString());
        assertEquals("get_weather", answer.reply().calls().getFirst().name());

        Tools required = tools(", \"tool_choice\": \"required\", \"parallel_tool_calls\": true", true);
        Grammar g = Grammar.parse(required.grammar());
        assertTrue(g.matches("<tool_call>\n" + WEATHER + "\n</tool_call>"));
        assertTrue(g.matches("<tool_call>\n" + WEATHER + "\n</tool_call>\n<tool_call>\n" + TIME + "\n</tool_call>"));
        assertFalse(g.matches("Let me check.<tool_call>\n" + WEATHER + "\n</tool_call>"));
        assertFalse(g.matches("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"pst\"}}\n</tool_call>"));
    }
}
