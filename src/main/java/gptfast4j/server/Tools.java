package gptfast4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A chat request's tools (OpenAI's {@code tools}, {@code tool_choice}, {@code parallel_tool_calls}) in llama.cpp's
 * generic tool-call format (its common/chat.cpp of 2025, for templates without a tool syntax of their own): the tools
 * are described in the system prompt, and a grammar holds the reply to one JSON object, a call
 * {@code {"tool_call": {"name": ..., "arguments": {...}}}} (with parallel calls {@code {"tool_calls": [...]}}) or an
 * answer {@code {"response": "..."}} (not where a call is required), each call's arguments to its function's
 * {@code parameters} schema. So every chat format and every model calls tools the same way, in valid JSON whatever the
 * model; a model trained on a tool syntax of its own follows this one from the prompt's description alone.
 * <p>
 * Earlier calls and their results in {@code messages} are written as the model would have written them and as the
 * prompt says results come back: an assistant's {@code tool_calls} as the reply's JSON, a {@code tool} message as a user
 * turn {@code {"tool_response": {"name": ..., "content": ...}}}.
 *
 * @param functions the functions the model may call, in the request's order; one where {@code tool_choice} names it
 * @param required  whether the reply must call (tool_choice {@code required} or a named function) rather than answer
 * @param parallel  whether a reply may make several calls ({@code parallel_tool_calls}; false where it is left out, as
 *                  llama.cpp's server has it)
 * @param syntax    how the reply calls: {@link Syntax#GENERIC} as above, or a model's own syntax (a grammar only where
 *                  a call is required; the reply read afterwards)
 */
record Tools(List<Function> functions, boolean required, boolean parallel, Syntax syntax) {

    /** How a reply calls tools. */
    enum Syntax {
        /** llama.cpp's generic format: the reply one JSON object, held by a grammar (any model). */
        GENERIC,
        /**
         * ChatML's models' own (Qwen2.5, Qwen3, Hermes), as Qwen3's template writes it: the tools in {@code <tools>} in
         * the system prompt (where this server frames the chat; a template writes its own), calls as
         * {@code <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>} blocks ({@link #readHermes}), results in
         * {@code <tool_response>} tags.
         */
        HERMES,
        /**
         * Llama 3.1's, 3.2's and 3.3's (under their chat templates): a call is the whole reply, one JSON
         * object {@code {"name": ..., "parameters": {...}}}, at times after {@code <|python_tag|>} ({@link #readLlama3}).
         */
        LLAMA3,
        /**
         * Mistral's (under its chat templates): the reply's calls after {@code [TOOL_CALLS]}, a JSON list of
         * {@code {"name", "arguments", "id"}} (Nemo, 7B v0.3) or {@code name[ARGS]{...}} each, {@code [CALL_ID]id}
         * between in Small 3.2's ({@link #readMistral}); ids of 9 letters and digits, which its templates require.
         */
        MISTRAL,
        /**
         * gpt-oss's harmony (under its chat template): a call is a message to its function, {@code <|channel|>commentary
         * to=functions.NAME <|constrain|>json<|message|>{...}}, ended by {@code <|call|>}; {@link Reasoning#harmony}
         * parts the reply's messages and keeps its calls, the answer passing through as it is.
         */
        HARMONY,
        /**
         * Qwen3-Coder's and Qwen3.5's XML (under their chat templates): a call is {@code <tool_call>\n<function=NAME>\n}
         * then each argument as {@code <parameter=P>\nVALUE\n</parameter>\n}, then {@code </function>\n</tool_call>}
         * ({@link #readXml}: a value as text where its schema takes a string, else as JSON).
         */
        XML;

        /** The syntax a chat template writes tool calls in; GENERIC for one it has none of (the chat is then framed by the chat format). */
        static Syntax of(String template) {
            if (template.contains("<|channel|>")) return HARMONY;
            // llama.cpp's test for its Qwen3-Coder format (its templates that write no line break between the tags excepted)
            if (template.contains("<tool_call>") && template.contains("<function=") && template.contains("<parameter=")
                    && !template.contains("'<tool_call><function=' ~ tool_call.name ~ '>'")) return XML;
            if (template.contains("<tool_call>")) return HERMES;
            if (template.contains("[TOOL_CALLS]")) return MISTRAL;
            if (template.contains("<|start_header_id|>") && template.contains("\"parameters\": ")) return LLAMA3;
            return GENERIC;
        }

        /** The special tokens whose text a reply in this syntax must keep to be read (a vocabulary's control tokens give none). */
        List<String> markers() {
            return switch (this) {
                case LLAMA3 -> List.of(PYTHON_TAG);
                case MISTRAL -> List.of(TOOL_CALLS, "[ARGS]", "[CALL_ID]");
                case HARMONY -> gptfast4j.tokenizer.Tokenizer.HARMONY_MARKERS;
                default -> List.of();
            };
        }

        /** The text that starts a call, where text may come before it; null where a call is the whole reply. */
        private String callStart() {
            return switch (this) {
                case HERMES, XML -> CALL_START;
                case MISTRAL -> TOOL_CALLS;
                default -> null;
            };
        }
    }

    /** A function the model may call: its name, its description (null for none), its arguments' JSON Schema, the request's tool object. */
    record Function(String name, String description, JsonNode parameters, JsonNode tool) {
    }

    /** A call: OpenAI's id for it, the function's name, its arguments as JSON text (a reply's compact, an earlier call's as its request gives it). */
    record Call(String id, String name, String arguments) {
    }

    /**
     * A request's tools, checked; null where there are none or {@code tool_choice} is {@code none} (then the reply is
     * text, as without tools).
     */
    static Tools parse(JsonNode body, Syntax syntax) {
        JsonNode list = body.get("tools"), choice = body.get("tool_choice");
        boolean none = list == null || list.isNull();
        if (none && choice != null && !choice.isNull()) throw new CompletionRequest.Invalid("'tool_choice' needs 'tools'");
        JsonNode parallelNode = body.get("parallel_tool_calls");
        if (parallelNode != null && !parallelNode.isNull() && !parallelNode.isBoolean()) throw new CompletionRequest.Invalid("'parallel_tool_calls' must be true or false");
        if (none) return null;
        if (!list.isArray()) throw new CompletionRequest.Invalid("'tools' must be an array of tools");
        List<Function> functions = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < list.size(); i++) {
            Function f = function(list.get(i), "tools[" + i + "]");
            if (!names.add(f.name())) throw new CompletionRequest.Invalid("tools[" + i + "]: a second function named '" + f.name() + "'");
            functions.add(f);
        }
        boolean required = false;
        if (choice != null && !choice.isNull()) {
            if (choice.isTextual()) {
                switch (choice.asText()) {
                    case "none" -> {
                        return null;
                    }
                    case "auto" -> {
                    }
                    case "required" -> required = true;
                    default -> throw new CompletionRequest.Invalid("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}, got '" + choice.asText() + "'");
                }
            } else {
                String name = choice.path("function").path("name").asText(null);
                if (!"function".equals(choice.path("type").asText()) || name == null) {
                    throw new CompletionRequest.Invalid("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}");
                }
                functions = functions.stream().filter(f -> f.name().equals(name)).toList();
                if (functions.isEmpty()) throw new CompletionRequest.Invalid("'tool_choice' names function '" + name + "', which is not in 'tools'");
                required = true;
            }
        }
        if (functions.isEmpty()) throw new CompletionRequest.Invalid("'tools' is empty: give a function, or leave 'tools' out");
        Tools tools = new Tools(functions, required, parallelNode != null && parallelNode.asBoolean() && syntax != Syntax.LLAMA3, syntax);
        tools.grammar(); // the schemas' errors now, as the request's
        return tools;
    }

    /** {@code {"type": "function", "function": {"name", "description", "parameters"}}}, checked. */
    private static Function function(JsonNode tool, String where) {
        if (!tool.isObject() || !"function".equals(tool.path("type").asText()) || !tool.path("function").isObject()) {
            throw new CompletionRequest.Invalid(where + " must be {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": ...}}");
        }
        JsonNode f = tool.get("function");
        String name = f.path("name").asText("");
        // OpenAI's rule for names; it also keeps them plain in the prompt and the grammar
        if (!name.matches("[a-zA-Z0-9_-]{1,64}")) throw new CompletionRequest.Invalid(where + ".function.name must be 1 to 64 letters, digits, _ or -, got " + f.path("name"));
        JsonNode description = f.get("description");
        if (description != null && !description.isNull() && !description.isTextual()) throw new CompletionRequest.Invalid(where + ".function.description must be a string");
        JsonNode parameters = f.get("parameters");
        if (parameters == null || parameters.isNull()) {
            // no parameters: OpenAI's "a function with an empty parameter list"
            parameters = Server.JSON.createObjectNode().put("type", "object").put("additionalProperties", false);
        } else if (!parameters.isObject()) {
            throw new CompletionRequest.Invalid(where + ".function.parameters must be a JSON Schema object");
        }
        try {
            JsonSchemaGrammar.convert(parameters.toString());
        } catch (IllegalArgumentException e) {
            throw new CompletionRequest.Invalid(where + ".function.parameters: " + e.getMessage().replaceFirst("^--json-schema: ", ""));
        }
        return new Function(name, description == null || description.isNull() ? null : description.asText(), parameters, tool);
    }

    /** The system prompt: the request's own (null for none), then the tools and how to call them. */
    String describe(String system) {
        StringBuilder text = new StringBuilder();
        if (system != null && !system.isEmpty()) text.append(system).append("\n\n");
        if (syntax == Syntax.HERMES) {
            // as Qwen3's (and Qwen2.5's, Hermes') template writes them, each tool as Python's json.dumps writes it
            text.append("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                    + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
            for (Function f : functions) text.append('\n').append(gptfast4j.jinja.Template.toJson(CompletionRequest.templateValue(f.tool())));
            return text.append("\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
                    + "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>").toString();
        }
        text.append("You can call these tools (each one's arguments as a JSON Schema):\n");
        for (Function f : functions) {
            ObjectNode tool = Server.JSON.createObjectNode().put("name", f.name());
            if (f.description() != null) tool.put("description", f.description());
            tool.set("parameters", f.parameters());
            text.append(tool).append('\n');
        }
        String call = parallel ? "{\"tool_calls\": [{\"name\": \"<tool>\", \"arguments\": {<its arguments>}}, ...]} to call one or more tools"
                : "{\"tool_call\": {\"name\": \"<tool>\", \"arguments\": {<its arguments>}}} to call a tool";
        text.append("\nReply with one JSON object: ").append(call);
        if (!required) text.append(", or {\"response\": \"<your answer>\"} to answer the user");
        return text.append(". A tool's result comes back as {\"tool_response\": {\"name\": \"<tool>\", \"content\": \"<its result>\"}}.").toString();
    }

    /**
     * The GBNF grammar of a reply: llama.cpp's generic format's JSON Schema (a call of one of the functions, or
     * several, or an answer), each function's local definitions ({@code $defs}) moved to the schema's top as
     * {@code fN.NAME} so that its references still find them.
     */
    String grammar() {
        // an answer or calls, read afterwards (harmony's and the XML's always: a grammar of their frames is not made here,
        // so their tool_choice "required" is not enforced)
        if (syntax == Syntax.HARMONY || syntax == Syntax.XML || syntax != Syntax.GENERIC && !required) return null;
        ObjectNode defs = Server.JSON.createObjectNode();
        ArrayNode calls = Server.JSON.createArrayNode();
        for (int i = 0; i < functions.size(); i++) {
            Function f = functions.get(i);
            ObjectNode call = calls.addObject().put("type", "object");
            ObjectNode properties = call.putObject("properties");
            properties.putObject("name").put("const", f.name());
            String field = syntax == Syntax.LLAMA3 ? "parameters" : "arguments";
            properties.set(field, hoisted(f.parameters(), "f" + i + ".", defs, true));
            call.putArray("required").add("name").add(field);
        }
        JsonNode oneCall = calls.size() == 1 ? calls.get(0) : Server.JSON.createObjectNode().set("anyOf", calls);
        if (syntax == Syntax.LLAMA3 || syntax == Syntax.MISTRAL) {
            // Llama's call is the reply's one object; Mistral's calls a list (its [TOOL_CALLS] a control token a
            // grammar over token texts cannot hold a reply to; its reader takes the list without it)
            ObjectNode schema = syntax == Syntax.LLAMA3 ? ((ObjectNode) oneCall).deepCopy()
                    : Server.JSON.createObjectNode().put("type", "array").put("minItems", 1).put("maxItems", parallel ? 64 : 1).set("items", oneCall);
            if (!defs.isEmpty()) schema.set("$defs", defs);
            return JsonSchemaGrammar.convert(schema.toString());
        }
        if (syntax == Syntax.HERMES) {
            // <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>, one, or several a line apart
            ObjectNode schema = ((ObjectNode) oneCall).deepCopy();
            if (!defs.isEmpty()) schema.set("$defs", defs);
            String json = JsonSchemaGrammar.convert(schema.toString()).replaceFirst("^root ::= ", "tool-call-json ::= ");
            String block = "\"<tool_call>\\n\" tool-call-json \"\\n</tool_call>\"";
            return "root ::= " + block + (parallel ? " (\"\\n\" " + block + ")*" : "") + "\n" + json;
        }
        ObjectNode schema = Server.JSON.createObjectNode();
        ObjectNode reply = Server.JSON.createObjectNode().put("type", "object");
        String field = parallel ? "tool_calls" : "tool_call";
        if (parallel) reply.putObject("properties").putObject(field).put("type", "array").put("minItems", 1).set("items", oneCall);
        else reply.putObject("properties").set(field, oneCall);
        reply.putArray("required").add(field);
        if (required) {
            schema.setAll(reply);
        } else {
            ObjectNode answer = Server.JSON.createObjectNode().put("type", "object");
            answer.putObject("properties").putObject("response").put("type", "string");
            answer.putArray("required").add("response");
            schema.putArray("anyOf").add(reply).add(answer);
        }
        if (!defs.isEmpty()) schema.set("$defs", defs);
        return JsonSchemaGrammar.convert(schema.toString());
    }

    /**
     * {@code schema} with its {@code $ref}s to local definitions renamed with {@code prefix}, and (at its top) its
     * definitions moved into {@code defs} under those names.
     */
    private static JsonNode hoisted(JsonNode schema, String prefix, ObjectNode defs, boolean top) {
        if (schema.isArray()) {
            ArrayNode copy = Server.JSON.createArrayNode();
            schema.forEach(item -> copy.add(hoisted(item, prefix, defs, false)));
            return copy;
        }
        if (!schema.isObject()) return schema;
        ObjectNode copy = Server.JSON.createObjectNode();
        for (Map.Entry<String, JsonNode> e : schema.properties()) {
            String key = e.getKey();
            JsonNode value = e.getValue();
            if (top && (key.equals("$defs") || key.equals("definitions")) && value.isObject()) {
                for (Map.Entry<String, JsonNode> d : value.properties()) defs.set(prefix + d.getKey(), hoisted(d.getValue(), prefix, defs, false));
            } else if (key.equals("$ref") && value.isTextual()) {
                String ref = value.asText();
                String name = ref.startsWith("#/$defs/") ? ref.substring(8) : ref.startsWith("#/definitions/") ? ref.substring(14) : null;
                copy.put(key, name == null ? ref : "#/$defs/" + prefix + name);
            } else {
                copy.set(key, hoisted(value, prefix, defs, false));
            }
        }
        return copy;
    }

    /**
     * An assistant's earlier calls as its reply's text was (Hermes style: {@code <tool_call>} blocks a line apart, each
     * call's arguments as the request gives them, as Qwen3's template writes them), for the prompt.
     */
    static String callsText(List<Call> calls, boolean hermes) {
        if (hermes) {
            StringBuilder text = new StringBuilder();
            for (Call c : calls) {
                if (!text.isEmpty()) text.append('\n');
                text.append("<tool_call>\n{\"name\": \"").append(c.name()).append("\", \"arguments\": ").append(c.arguments()).append("}\n</tool_call>");
            }
            return text.toString();
        }
        ObjectNode reply = Server.JSON.createObjectNode();
        if (calls.size() == 1) {
            reply.set("tool_call", callNode(calls.getFirst()));
        } else {
            ArrayNode list = reply.putArray("tool_calls");
            calls.forEach(c -> list.add(callNode(c)));
        }
        return reply.toString();
    }

    private static ObjectNode callNode(Call call) {
        ObjectNode node = Server.JSON.createObjectNode().put("name", call.name());
        try {
            node.set("arguments", Server.JSON.readTree(call.arguments()));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e); // checked where the call was taken
        }
        return node;
    }

    /** A tool's result, for the prompt: its function's name and the result's text (Hermes style: in {@code <tool_response>} tags). */
    static String responseText(String name, String content, boolean hermes) {
        if (hermes) return "<tool_response>\n" + content + "\n</tool_response>";
        ObjectNode response = Server.JSON.createObjectNode();
        response.putObject("tool_response").put("name", name).put("content", content);
        return response.toString();
    }

    /** A reply's calls ({@code null} content) or its answer (no calls). */
    record Reply(String content, List<Call> calls) {
    }

    /** The reply's JSON text as a call or an answer; null where it is not one (cut short by the token limit or a stop string). */
    static Reply read(String text) {
        JsonNode reply;
        try {
            reply = Server.JSON.readTree(text);
        } catch (JsonProcessingException e) {
            return null;
        }
        if (reply == null || !reply.isObject()) return null;
        if (reply.get("response") instanceof JsonNode answer && answer.isTextual()) return new Reply(answer.asText(), List.of());
        List<JsonNode> nodes = new ArrayList<>();
        if (reply.get("tool_call") instanceof JsonNode one && one.isObject()) nodes.add(one);
        if (reply.get("tool_calls") instanceof JsonNode several && several.isArray()) several.forEach(nodes::add);
        List<Call> calls = new ArrayList<>();
        for (JsonNode c : nodes) {
            if (!c.path("name").isTextual() || !c.path("arguments").isObject()) return null;
            calls.add(new Call(newId(Syntax.GENERIC), c.get("name").asText(), c.get("arguments").toString()));
        }
        return calls.isEmpty() ? null : new Reply(null, calls);
    }

    /**
     * A reply as its text comes, for a stream: where it begins as an answer ({@code {"response": "}), the answer's
     * characters as far as they are decoded and whole; at its end, the reply as {@link #read} takes it.
     */
    static final class Answer {
        private static final Pattern START = Pattern.compile("\\s*\\{\\s*\"response\"\\s*:\\s*\"");
        private final StringBuilder json = new StringBuilder(), answer = new StringBuilder();
        /** Where in the JSON the answer's characters not yet decoded start: -1 before its opening quote, -2 where the reply is no answer. */
        private int next = -1;
        private boolean closed;
        private int given;
        private final Syntax syntax;
        /** The request's functions (their argument schemas read an XML call's values). */
        private final List<Function> functions;

        Answer() {
            this(Syntax.GENERIC, List.of());
        }

        Answer(Syntax syntax, List<Function> functions) {
            this.syntax = syntax;
            this.functions = functions;
        }

        /** Adds a piece of the reply's text; returns the answer's characters that it completes (empty for none). */
        String add(String piece) {
            json.append(piece);
            if (syntax == Syntax.HARMONY) { // the calls already apart (Reasoning.harmony): the answer as it comes
                given = json.length();
                return piece;
            }
            if (syntax == Syntax.LLAMA3) {
                // a reply that may be a call (it starts with an object or <|python_tag|>) is held to its end
                String start = json.toString().stripLeading();
                if (start.isEmpty() || start.startsWith("{") || PYTHON_TAG.startsWith(start) || start.startsWith(PYTHON_TAG)) return "";
                String text = json.substring(given);
                given = json.length();
                return text;
            }
            if (syntax != Syntax.GENERIC) {
                // the text before a call, short of a tail that may begin one and of whitespace that may end the answer
                String callStart = syntax.callStart();
                int call = json.indexOf(callStart), end = call >= 0 ? call : json.length() - heldCallStart(callStart);
                while (end > given && Character.isWhitespace(json.charAt(end - 1))) end--;
                if (end <= given) return "";
                String text = json.substring(given, end);
                given = end;
                return text;
            }
            if (next == -1) {
                Matcher m = START.matcher(json);
                if (m.lookingAt()) next = m.end();
                else if (!m.hitEnd()) next = -2;
            }
            while (next >= 0 && !closed && next < json.length()) {
                char c = json.charAt(next);
                if (c == '"') {
                    closed = true;
                } else if (c != '\\') {
                    answer.append(c);
                    next++;
                } else {
                    if (next + 1 >= json.length()) break;
                    char e = json.charAt(next + 1);
                    if (e == 'u') {
                        if (next + 6 > json.length()) break;
                        answer.append((char) Integer.parseInt(json.substring(next + 2, next + 6), 16));
                        next += 6;
                    } else {
                        answer.append(switch (e) {
                            case 'b' -> '\b';
                            case 'f' -> '\f';
                            case 'n' -> '\n';
                            case 'r' -> '\r';
                            case 't' -> '\t';
                            default -> e; // " \\ /
                        });
                        next += 2;
                    }
                }
            }
            // half of a surrogate pair waits for its other half
            int end = answer.length() > given && Character.isHighSurrogate(answer.charAt(answer.length() - 1)) ? answer.length() - 1 : answer.length();
            String decoded = answer.substring(given, end);
            given = end;
            return decoded;
        }

        /**
         * The whole reply: its calls, or its answer; where it is neither whole (cut short), the answer as far as it
         * came, or else the reply's text as it is. The answer's characters given out so far start its content.
         */
        Reply reply() {
            switch (syntax) {
                case HERMES -> {
                    return readHermes(json.toString());
                }
                case LLAMA3 -> {
                    return readLlama3(json.toString());
                }
                case MISTRAL -> {
                    return readMistral(json.toString());
                }
                case HARMONY -> {
                    return new Reply(json.toString(), List.of());
                }
                case XML -> {
                    return readXml(json.toString(), functions);
                }
                default -> {
                }
            }
            Reply whole = read(json.toString());
            if (whole != null) return whole;
            return new Reply(next >= 0 ? answer.toString() : json.toString(), List.of());
        }

        /** How many of the text's last characters may begin {@code callStart}. */
        private int heldCallStart(String callStart) {
            for (int n = Math.min(callStart.length() - 1, json.length()); n > 0; n--) {
                if (callStart.startsWith(json.substring(json.length() - n))) return n;
            }
            return 0;
        }

        /** How many of the content's characters {@link #add} gave out. */
        int given() {
            return given;
        }
    }

    private static final String CALL_START = "<tool_call>", CALL_END = "</tool_call>", PYTHON_TAG = "<|python_tag|>", TOOL_CALLS = "[TOOL_CALLS]";

    /**
     * A Hermes-style reply: its {@code <tool_call>} blocks' calls, the text before the first (trailing whitespace left
     * out; null where there is none) as content; all text where there is no block, or one that is not a call's JSON.
     */
    static Reply readHermes(String text) {
        return readBlocks(text, body -> {
            JsonNode call;
            try {
                call = Server.JSON.readTree(body);
            } catch (JsonProcessingException e) {
                return null;
            }
            if (call == null || !call.path("name").isTextual() || !call.path("arguments").isObject()) return null;
            return new Call(newId(Syntax.HERMES), call.get("name").asText(), call.get("arguments").toString());
        });
    }

    /**
     * A reply's {@code <tool_call>} blocks, each read into a call by {@code read} (null: not a call), the text before the
     * first (trailing whitespace left out; null where there is none) as content; all text where there is no block, one
     * not closed, or one that does not read.
     */
    private static Reply readBlocks(String text, java.util.function.Function<String, Call> read) {
        int first = text.indexOf(CALL_START);
        if (first < 0) return new Reply(text, List.of());
        List<Call> calls = new ArrayList<>();
        for (int at = first; at >= 0; at = text.indexOf(CALL_START, at)) {
            int end = text.indexOf(CALL_END, at);
            Call call = end < 0 ? null : read.apply(text.substring(at + CALL_START.length(), end));
            if (call == null) return new Reply(text, List.of());
            calls.add(call);
            at = end + CALL_END.length();
        }
        String before = text.substring(0, first).stripTrailing();
        return new Reply(before.isEmpty() ? null : before, calls);
    }

    private static final Pattern XML_FUNCTION = Pattern.compile("\\s*<function=([^>\\n]+)>\\n(.*)</function>\\s*", Pattern.DOTALL),
            XML_PARAMETER = Pattern.compile("<parameter=([^>\\n]+)>\\n(.*?)\\n</parameter>\\n?", Pattern.DOTALL);

    /**
     * A Qwen3-Coder or Qwen3.5 reply ({@link Syntax#XML}): its {@code <tool_call>} blocks' calls, each a function of
     * {@code functions} with its parameters, the text before the first as content (null where there is none); all
     * text where there is no block, or one that does not read as a call of a known function. A value is the text
     * between its tags where its schema's types include a string and it is not JSON of another of them (as
     * llama.cpp's parser reads it), else JSON.
     */
    static Reply readXml(String text, List<Function> functions) {
        return readBlocks(text, body -> {
            Matcher call = XML_FUNCTION.matcher(body);
            if (!call.matches()) return null;
            Function function = functions.stream().filter(f -> f.name().equals(call.group(1))).findFirst().orElse(null);
            if (function == null) return null;
            ObjectNode arguments = Server.JSON.createObjectNode();
            String parameters = call.group(2);
            Matcher parameter = XML_PARAMETER.matcher(parameters);
            int read = 0;
            while (parameter.find()) {
                if (!parameters.substring(read, parameter.start()).isBlank()) return null;
                arguments.set(parameter.group(1), xmlValue(function.parameters().path("properties").path(parameter.group(1)), parameter.group(2)));
                read = parameter.end();
            }
            return parameters.substring(read).isBlank() ? new Call(newId(Syntax.XML), function.name(), arguments.toString()) : null;
        });
    }

    /** An XML call's value: JSON where it parses as a type {@code schema} takes other than a string, else the text. */
    private static JsonNode xmlValue(JsonNode schema, String value) {
        JsonNode type = schema.path("type");
        java.util.Set<String> types = new java.util.HashSet<>();
        if (type.isTextual()) types.add(type.asText());
        type.forEach(t -> types.add(t.asText()));
        if (types.size() == 1 && types.contains("string")) return com.fasterxml.jackson.databind.node.TextNode.valueOf(value);
        try {
            JsonNode json = Server.JSON.readTree(value);
            if (json != null && (types.isEmpty() || !json.isTextual() && types.stream().anyMatch(t -> matches(json, t)))) return json;
        } catch (JsonProcessingException e) {
            // not JSON: the text
        }
        return com.fasterxml.jackson.databind.node.TextNode.valueOf(value);
    }

    /** Whether {@code json} is of JSON Schema type {@code type}. */
    private static boolean matches(JsonNode json, String type) {
        return switch (type) {
            case "object" -> json.isObject();
            case "array" -> json.isArray();
            case "number" -> json.isNumber();
            case "integer" -> json.isIntegralNumber();
            case "boolean" -> json.isBoolean();
            case "null" -> json.isNull();
            default -> false;
        };
    }

    /**
     * A Llama 3.x reply: a call where the whole reply (after {@code <|python_tag|>}, if any) is one JSON object
     * {@code {"name": ..., "parameters": {...}}} ({@code "arguments"} taken too, as llama.cpp takes it); all text
     * otherwise.
     */
    static Reply readLlama3(String text) {
        String json = text.strip();
        if (json.startsWith(PYTHON_TAG)) json = json.substring(PYTHON_TAG.length()).strip();
        JsonNode call;
        try {
            call = Server.JSON.readTree(json);
        } catch (JsonProcessingException e) {
            return new Reply(text, List.of());
        }
        JsonNode arguments = call == null ? null : call.has("parameters") ? call.get("parameters") : call.get("arguments");
        if (call == null || !call.path("name").isTextual() || arguments == null || !arguments.isObject()) return new Reply(text, List.of());
        return new Reply(null, List.of(new Call(newId(Syntax.LLAMA3), call.get("name").asText(), arguments.toString())));
    }

    /**
     * A Mistral reply: its calls after {@code [TOOL_CALLS]}, a JSON list of {@code {"name", "arguments"}} or
     * {@code name[ARGS]{...}} each ({@code [CALL_ID]id} between, Small 3.2's), the text before as content (null where
     * there is none); a reply that is such a list alone (a required call's grammar) too; all text where there is no
     * call or one that does not read.
     */
    static Reply readMistral(String text) {
        int first = text.indexOf(TOOL_CALLS);
        String stripped = text.strip();
        if (first < 0 && !stripped.startsWith("[")) return new Reply(text, List.of());
        List<Call> calls = new ArrayList<>();
        int at = first < 0 ? text.indexOf('[') : first + TOOL_CALLS.length();
        while (at >= 0) {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) at++;
            if (text.startsWith("[", at) && !text.startsWith("[ARGS]", at) && !text.startsWith("[CALL_ID]", at)) {
                JsonParsed list = json(text, at);
                if (list == null || !list.node().isArray()) return new Reply(text, List.of());
                for (JsonNode c : list.node()) {
                    JsonNode arguments = arguments(c.get("arguments"));
                    if (!c.path("name").isTextual() || arguments == null) return new Reply(text, List.of());
                    calls.add(new Call(newId(Syntax.MISTRAL), c.get("name").asText(), arguments.toString()));
                }
                at = list.end();
            } else {
                int args = text.indexOf("[ARGS]", at), id = text.indexOf("[CALL_ID]", at);
                if (args < 0) return new Reply(text, List.of());
                String name = text.substring(at, id >= 0 && id < args ? id : args).strip();
                JsonParsed arguments = json(text, args + "[ARGS]".length());
                if (!name.matches("[a-zA-Z0-9_-]{1,64}") || arguments == null || !arguments.node().isObject()) return new Reply(text, List.of());
                calls.add(new Call(newId(Syntax.MISTRAL), name, arguments.node().toString()));
                at = arguments.end();
            }
            int next = text.indexOf(TOOL_CALLS, at);
            if (next < 0 && !text.substring(at).isBlank()) return new Reply(text, List.of());
            at = next < 0 ? -1 : next + TOOL_CALLS.length();
        }
        String before = first < 0 ? "" : text.substring(0, first).stripTrailing();
        return new Reply(before.isEmpty() ? null : before, calls);
    }

    /** A call's arguments: an object, or an object's JSON text; null for anything else. */
    private static JsonNode arguments(JsonNode arguments) {
        if (arguments != null && arguments.isTextual()) {
            try {
                arguments = Server.JSON.readTree(arguments.asText());
            } catch (JsonProcessingException e) {
                return null;
            }
        }
        return arguments != null && arguments.isObject() ? arguments : null;
    }

    /** A JSON value read from a text and where in the text it ends. */
    private record JsonParsed(JsonNode node, int end) {}

    /** Reads one JSON value and leaves what follows it (the server's reader refuses trailing text). */
    private static final com.fasterxml.jackson.databind.ObjectReader FIRST_VALUE = Server.JSON.reader()
            .without(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** The JSON value that starts at {@code from} in {@code text} (whitespace before it skipped); null where none does. */
    private static JsonParsed json(String text, int from) {
        try (com.fasterxml.jackson.core.JsonParser parser = Server.JSON.getFactory().createParser(text.substring(from))) {
            JsonNode node = FIRST_VALUE.readTree(parser);
            return node == null ? null : new JsonParsed(node, from + (int) parser.currentLocation().getCharOffset());
        } catch (java.io.IOException e) {
            return null;
        }
    }

    private static final String ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    /** A call's id, as OpenAI's look ({@code call_} and 24 letters and digits); Mistral's 9 letters and digits, as its templates require. */
    static String newId(Syntax syntax) {
        StringBuilder id = new StringBuilder(syntax == Syntax.MISTRAL ? "" : "call_");
        for (int i = 0; i < (syntax == Syntax.MISTRAL ? 9 : 24); i++) id.append(ID_CHARS.charAt(ThreadLocalRandom.current().nextInt(ID_CHARS.length())));
        return id.toString();
    }
}
