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
        return tools(extra, hermes ? Tools.Syntax.HERMES : Tools.Syntax.GENERIC);
    }

    private static Tools tools(String extra, Tools.Syntax syntax) throws Exception {
        ObjectNode body = (ObjectNode) JSON.readTree("""
                {"tools": [
                  {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}},
                  {"type": "function", "function": {"name": "get_time",
                    "parameters": {"type": "object", "properties": {"zone": {"$ref": "#/$defs/Zone"}}, "required": ["zone"],
                                   "$defs": {"Zone": {"enum": ["utc", "cet"]}}}}}]""" + extra + "}");
        return Tools.parse(body, syntax);
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
        Tools.Answer answer = new Tools.Answer(Tools.Syntax.HERMES, List.of());
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

    private static String template(String name) throws java.io.IOException {
        return java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/" + name + ".jinja"));
    }

    /** The syntax each real template writes its calls in; one that writes none of them takes the generic format. */
    @Test
    void templatesTellTheirSyntax() throws Exception {
        for (String t : new String[]{"meta-llama-Llama-3.1-8B-Instruct", "meta-llama-Llama-3.2-3B-Instruct", "meta-llama-Llama-3.3-70B-Instruct"}) {
            assertEquals(Tools.Syntax.LLAMA3, Tools.Syntax.of(template(t)), t);
        }
        for (String t : new String[]{"mistralai-Mistral-Nemo-Instruct-2407", "Mistral-Small-3.2-24B-Instruct-2506", "mistralai-Ministral-3-14B-Reasoning-2512", "unsloth-mistral-Devstral-Small-2507"}) {
            assertEquals(Tools.Syntax.MISTRAL, Tools.Syntax.of(template(t)), t);
        }
        for (String t : new String[]{"Qwen-Qwen3-0.6B", "Qwen-Qwen2.5-7B-Instruct", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use"}) {
            assertEquals(Tools.Syntax.HERMES, Tools.Syntax.of(template(t)), t);
        }
        for (String t : new String[]{"Qwen3-Coder", "Qwen3.5-4B"}) assertEquals(Tools.Syntax.XML, Tools.Syntax.of(template(t)), t);
        assertEquals(Tools.Syntax.GENERIC, Tools.Syntax.of(template("deepseek-ai-DeepSeek-R1-Distill-Llama-8B")));
    }

    /**
     * Llama 3.x's and Mistral's replies read back as the calls their templates write (jinja2's renderings of an
     * assistant's call of get_weather {"city": "Paris", "unit": "celsius"} in renderings.json's "tools" and "calls as
     * text" conversations), a text before Mistral's calls as content; what does not read is all text.
     */
    @Test
    void llamaAndMistralRepliesReadAsTheirTemplatesWriteCalls() {
        String paris = "{\"city\":\"Paris\",\"unit\":\"celsius\"}";
        // Llama 3.1's template
        Tools.Reply llama = Tools.readLlama3("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}");
        assertNull(llama.content());
        assertEquals(List.of(new Tools.Call(llama.calls().getFirst().id(), "get_weather", paris)), llama.calls());
        assertEquals("get_weather", Tools.readLlama3("<|python_tag|>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}").calls().getFirst().name());
        assertEquals("It is {sunny}.", Tools.readLlama3("It is {sunny}.").content());
        assertEquals("{\"name\": \"get_weather\"}", Tools.readLlama3("{\"name\": \"get_weather\"}").content(), "no parameters: text");

        // Nemo's, Small 3.2's, Ministral 3's (two calls) and Devstral's templates
        String[] written = {
                "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}, \"id\": \"a1b2c3d4e\"}]",
                "[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{\"city\": \"Paris\", \"unit\": \"celsius\"}",
                "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\", \"unit\": \"celsius\"}[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}",
                "[{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\", \\\"unit\\\": \\\"celsius\\\"}\"}]"};
        for (String reply : written) {
            Tools.Reply read = Tools.readMistral(reply);
            assertNull(read.content(), reply);
            assertEquals("get_weather", read.calls().getFirst().name(), reply);
            assertEquals(paris, read.calls().getFirst().arguments(), reply);
            assertTrue(read.calls().getFirst().id().matches("[A-Za-z0-9]{9}"), "Mistral's templates take ids of 9 letters and digits");
        }
        assertEquals("{\"city\":\"Rome\"}", Tools.readMistral(written[2]).calls().get(1).arguments());
        Tools.Reply withText = Tools.readMistral("Let me check. [TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}");
        assertEquals("Let me check.", withText.content());
        assertEquals(1, withText.calls().size());
        for (String broken : new String[]{"[TOOL_CALLS]get_weather[ARGS]{\"city\"", "[TOOL_CALLS]get weather[ARGS]{}", "[1] It is sunny.", "It is sunny."}) {
            Tools.Reply read = Tools.readMistral(broken);
            assertEquals(broken, read.content());
            assertTrue(read.calls().isEmpty(), broken);
        }

        // streamed: Mistral's text before its calls; a Llama reply that may be a call is held to its end
        String reply = "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}";
        Tools.Answer mistral = new Tools.Answer(Tools.Syntax.MISTRAL, List.of());
        StringBuilder streamed = new StringBuilder();
        for (int i = 0; i < reply.length(); i++) streamed.append(mistral.add(reply.substring(i, i + 1)));
        assertEquals("Sure.", streamed.toString());
        assertEquals("get_weather", mistral.reply().calls().getFirst().name());
        Tools.Answer call = new Tools.Answer(Tools.Syntax.LLAMA3, List.of()), text = new Tools.Answer(Tools.Syntax.LLAMA3, List.of());
        assertEquals("", call.add(" {\"name\": \"get_weather\","));
        assertEquals("It is", text.add("It is"));
        assertEquals(" sunny.", text.add(" sunny."));
    }

    /**
     * Qwen3-Coder's and Qwen3.5's replies read back as the calls their templates write (jinja2's renderings of the
     * assistant's call of get_weather {"city": "Paris", "unit": "celsius"} in renderings.json's "tools" conversation);
     * a value is text where its schema takes a string (a number's digits, a multi-line text kept as they are), JSON where
     * it takes another type; text before the calls is content, and what does not read (an unknown function, a block not
     * closed, stray text between parameters) is all text. Streamed, the text before a call comes as it is decoded.
     */
    @Test
    void xmlRepliesReadAsTheirTemplatesWriteCalls() throws Exception {
        JsonNode renderings = JSON.readTree(java.nio.file.Path.of("src/test/resources/chat-templates/renderings.json").toFile()).get("renderings");
        List<Tools.Function> weather = List.of(Tools.parse((ObjectNode) JSON.readTree("""
                {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
                  "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}]}"""), Tools.Syntax.XML).functions().getFirst());
        int read = 0;
        for (JsonNode r : renderings) {
            String template = r.path("template").asText();
            if (!r.path("case").asText().equals("tools") || !template.equals("Qwen3-Coder.jinja") && !template.equals("Qwen3.5-4B.jinja")) continue;
            String text = r.path("expected").asText();
            int from = text.indexOf("<tool_call>\n<function=get_weather>"); // after the system prompt's example of the format
            String call = text.substring(from, text.indexOf("</tool_call>", from) + "</tool_call>".length());
            Tools.Reply reply = Tools.readXml("Let me see.\n\n" + call, weather);
            assertEquals("Let me see.", reply.content(), template);
            assertEquals(List.of(new Tools.Call(reply.calls().getFirst().id(), "get_weather", "{\"city\":\"Paris\",\"unit\":\"celsius\"}")), reply.calls(), template);
            read++;
        }
        assertEquals(2, read);

        List<Tools.Function> typed = Tools.parse((ObjectNode) JSON.readTree("""
                {"tools": [{"type": "function", "function": {"name": "book", "parameters": {"type": "object", "properties": {
                  "code": {"type": "string"}, "nights": {"type": "integer"}, "options": {"type": "object"}, "late": {"type": ["boolean", "string"]},
                  "note": {"type": "string"}, "any": {}}}}}]}"""), Tools.Syntax.XML).functions();
        String call = "<tool_call>\n<function=book>\n<parameter=code>\n00123\n</parameter>\n<parameter=nights>\n3\n</parameter>\n"
                + "<parameter=options>\n{\"view\": \"sea\"}\n</parameter>\n<parameter=late>\ntrue\n</parameter>\n"
                + "<parameter=note>\ntwo lines,\n  kept\n</parameter>\n<parameter=any>\n[1, 2]\n</parameter>\n</function>\n</tool_call>";
        Tools.Reply two = Tools.readXml(call + "\n" + call.replace("00123", "A7"), typed);
        assertNull(two.content());
        assertEquals("{\"code\":\"00123\",\"nights\":3,\"options\":{\"view\":\"sea\"},\"late\":true,\"note\":\"two lines,\\n  kept\",\"any\":[1,2]}", two.calls().get(0).arguments());
        assertEquals("A7", JSON.readTree(two.calls().get(1).arguments()).get("code").asText());
        for (String broken : new String[]{call.replace("=book>", "=sell>"), call.replace("</tool_call>", ""), call.replace("</parameter>\n<parameter=nights>", "</parameter>\nstray<parameter=nights>"),
                "It is sunny."}) {
            Tools.Reply all = Tools.readXml(broken, typed);
            assertEquals(broken, all.content());
            assertTrue(all.calls().isEmpty(), broken);
        }
        Tools.Answer streamed = new Tools.Answer(Tools.Syntax.XML, typed);
        StringBuilder given = new StringBuilder();
        String reply = "Booking it.\n" + call;
        for (int i = 0; i < reply.length(); i++) given.append(streamed.add(reply.substring(i, i + 1)));
        assertEquals("Booking it.", given.toString());
        assertEquals("book", streamed.reply().calls().getFirst().name());
    }

    /** A required call's grammar: Llama's one object with "parameters", Mistral's list (one call, or several where parallel calls are asked for). */
    @Test
    void llamaAndMistralGrammarsHoldARequiredCall() throws Exception {
        Grammar llama = Grammar.parse(tools(", \"tool_choice\": \"required\"", Tools.Syntax.LLAMA3).grammar());
        assertTrue(llama.matches("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"c\"}}"));
        assertFalse(llama.matches(WEATHER), "Llama's calls name their arguments parameters");
        assertNull(tools("", Tools.Syntax.LLAMA3).grammar(), "auto: the reply is read afterwards");
        Grammar one = Grammar.parse(tools(", \"tool_choice\": \"required\"", Tools.Syntax.MISTRAL).grammar());
        assertTrue(one.matches("[" + WEATHER + "]"));
        assertFalse(one.matches("[" + WEATHER + ", " + TIME + "]"));
        Grammar several = Grammar.parse(tools(", \"tool_choice\": \"required\", \"parallel_tool_calls\": true", Tools.Syntax.MISTRAL).grammar());
        assertTrue(several.matches("[" + WEATHER + ", " + TIME + "]"));
        assertEquals(2, Tools.readMistral("[" + WEATHER + ", " + TIME + "]").calls().size());
    }

    /**
     * A template's tools as llama.cpp hands them over: name, description ("" where none) and parameters ({} where none),
     * the tool's other fields left out; gpt-oss's template, which writes each description, then renders the request as
     * llama-server de3ff81's /apply-template does (checked by hand, byte for byte).
     */
    @Test
    void aTemplatesToolsAreLlamaCppsNormalForm() throws Exception {
        var body = new com.fasterxml.jackson.databind.ObjectMapper().readTree("""
                {"messages": [{"role": "user", "content": "Hi"}], "tools": [
                  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                  {"type": "function", "function": {"name": "now", "description": "The time.", "strict": true}}]}""");
        CompletionRequest request = CompletionRequest.parse(body, true, Tools.Syntax.HARMONY, true);
        assertEquals("[{type=function, function={name=get_weather, description=, parameters={type=object, properties={city={type=string}}}}}, "
                + "{type=function, function={name=now, description=The time., parameters={}}}]", request.templateInput().tools().toString());
    }
}
