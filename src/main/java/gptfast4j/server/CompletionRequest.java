package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.generate.Grammar;
import gptfast4j.generate.Dry;
import gptfast4j.generate.Sampler;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The body of a {@code /v1/completions} or {@code /v1/chat/completions} request, checked field by field: OpenAI's
 * fields, and llama.cpp server's sampling extensions ({@code top_k}, {@code min_p}, {@code repeat_penalty},
 * {@code repeat_last_n}, {@code grammar}, {@code json_schema}, and its other samplers: {@code typical_p},
 * {@code top_n_sigma}, {@code xtc_*}, {@code dynatemp_*}, {@code mirostat*}, {@code dry_*}). Fields this server cannot
 * honour ({@code best_of} above 1, {@code echo}, {@code suffix}, the deprecated {@code functions}) are refused by name
 * rather than ignored; fields that
 * do not change the text ({@code model}, {@code user}, ...) are ignored. Defaults are {@code gptfast generate}'s. A
 * chat's {@code tools} are {@link Tools}'.
 *
 * @param prompt    a completion's prompt text (null for a chat, or where it is given as token ids)
 * @param promptIds a completion's prompt as token ids, taken as they are (null where it is a text)
 * @param system    a chat's system prompt (null for none)
 * @param messages  a chat's turns, user and assistant alternating, the user's first and last (a tool's result is the
 *                  user's turn, an assistant's calls its turn's text: {@link Tools})
 * @param maxTokens tokens to generate at most; {@link Integer#MAX_VALUE}: until EOS or the context's end; 0: the prompt
 *                  evaluated into the cache only
 * @param n         choices to make, each sampled on its own (with a seed, choice i draws with seed + i)
 * @param logprobs  -1: no log-probabilities; else each token's, with this many most likely alternatives
 * @param grammar   the grammar the reply must match (a chat with tools: {@link Tools#grammar}); null for none
 * @param ignoreEos the model's end-of-text tokens never drawn (llama.cpp's {@code ignore_eos})
 * @param tools     a chat's tools; null for none (or {@code tool_choice} none)
 * @param templateInput a chat for a chat template (the model's own, by default), where {@code messages} is empty and
 *                  {@code system} null; null where the chat is framed by a fixed chat format
 */
record CompletionRequest(String prompt, int[] promptIds, String system, List<String> messages, int maxTokens, int n, int logprobs, float temperature, int topK,
                         float topP, float minP, Sampler.Penalties penalties, Sampler.LogitBias bias, Sampler.Advanced advanced, List<String> dryBreakers, JsonNode lora, Long seed,
                         List<String> stops, boolean stream, boolean includeUsage, Grammar grammar, boolean ignoreEos, Tools tools,
                         TemplateInput templateInput) {

    /**
     * A chat as a Jinja chat template reads it: the messages (each content a string, each call's arguments an object,
     * as Hugging Face's templates take them), the tools as the request gives them (null for none) and the request's
     * {@code chat_template_kwargs}, as the template's values ({@code gptfast4j.jinja}: maps, lists, strings, Long,
     * Double, Boolean, null).
     */
    record TemplateInput(List<Object> messages, List<Object> tools, Map<String, Object> variables) {}

    /** A request the client got wrong: HTTP 400 with {@code message}, which names the field. */
    static final class Invalid extends RuntimeException {
        Invalid(String message) {
            super(message);
        }
    }

    /** Choices one request may ask for ({@code n}). */
    static final int MAX_CHOICES = 16;

    /** The longest stop string taken. */
    static final int MAX_STOP_LENGTH = 1000;

    /** llama.cpp's and OpenAI's limit on stop strings is 4; a few more cost nothing. */
    private static final int MAX_STOPS = 16;

    static CompletionRequest parse(JsonNode body, boolean chat) {
        return parse(body, chat, false);
    }

    /** {@link #parse(JsonNode, boolean)}, a chat's tools in {@link Tools}' Hermes style where {@code hermes} (ChatML models). */
    static CompletionRequest parse(JsonNode body, boolean chat, boolean hermes) {
        return parse(body, chat, hermes ? Tools.Syntax.HERMES : Tools.Syntax.GENERIC, false);
    }

    /**
     * {@link #parse(JsonNode, boolean)}, a chat's tools called in {@code syntax}; a chat for the model's own template
     * where {@code template} ({@link #templateInput}).
     */
    static CompletionRequest parse(JsonNode body, boolean chat, Tools.Syntax syntax, boolean template) {
        boolean hermes = syntax == Tools.Syntax.HERMES;
        if (!body.isObject()) throw new Invalid("the request body must be a JSON object");
        if (present(body, "suffix")) throw new Invalid("'suffix' is not supported by this server");
        for (String refused : new String[]{"functions", "function_call"}) {
            if (present(body, refused)) throw new Invalid("'" + refused + "' (OpenAI's deprecated form) is not supported by this server: use 'tools' and 'tool_choice'");
        }
        if (!chat) {
            for (String chatOnly : new String[]{"tools", "tool_choice", "parallel_tool_calls"}) {
                if (present(body, chatOnly)) throw new Invalid("'" + chatOnly + "' is for /v1/chat/completions");
            }
        }
        Tools tools = chat ? Tools.parse(body, syntax) : null;
        if (present(body, "best_of") && !(body.get("best_of").isIntegralNumber() && body.get("best_of").asLong() == 1)) {
            throw new Invalid("'best_of' must be 1: this server ranks no choices");
        }
        int n = integer(body, "n", 1, 1, MAX_CHOICES);
        if (bool(body, "echo", false)) throw new Invalid("'echo' is not supported by this server");
        int logprobs = logprobs(body, chat);

        String prompt = null, system = null;
        int[] promptIds = null;
        List<String> messages = new ArrayList<>();
        TemplateInput templateInput = null;
        if (chat && template) {
            templateInput = templateInput(body, tools);
        } else if (chat) {
            system = messages(body, messages, hermes);
            if (tools != null) system = tools.describe(system);
        } else {
            JsonNode p = body.get("prompt");
            // OpenAI's token form: a list of ids, or a list holding one such list
            JsonNode ids = p != null && p.isArray() && p.size() == 1 && p.get(0).isArray() ? p.get(0) : p;
            if (ids != null && ids.isArray() && !ids.isEmpty() && ids.get(0).isNumber()) promptIds = ids(ids);
            else prompt = prompt(body);
        }
        String maxField = chat && present(body, "max_completion_tokens") ? "max_completion_tokens" : present(body, "n_predict") ? "n_predict" : "max_tokens";
        // as llama.cpp's server takes n_predict (and max_tokens, which it reads as that): -1 no limit, 0 the prompt
        // evaluated into the cache and nothing generated (a later request that starts with it reuses it)
        int maxTokens = integer(body, maxField, Integer.MAX_VALUE, -1, Integer.MAX_VALUE);
        if (maxTokens == -1) maxTokens = Integer.MAX_VALUE;
        float temperature = number(body, "temperature", 0.8f, 0, Float.MAX_VALUE);
        int topK = integer(body, "top_k", 200, 0, Integer.MAX_VALUE);
        float topP = number(body, "top_p", 1f, Float.MIN_VALUE, 1);
        float minP = number(body, "min_p", 0f, 0, 1);
        Sampler.Penalties penalties = new Sampler.Penalties(number(body, "repeat_penalty", 1f, Float.MIN_VALUE, Float.MAX_VALUE),
                number(body, "frequency_penalty", 0f, -2, 2), number(body, "presence_penalty", 0f, -2, 2),
                integer(body, "repeat_last_n", 64, -1, Integer.MAX_VALUE));
        Sampler.Advanced advanced = advanced(body);
        List<String> dryBreakers = advanced.dry() != null ? dryBreakers(body) : List.of();
        Long seed = present(body, "seed") ? longValue(body, "seed") : null;
        boolean stream = bool(body, "stream", false);
        JsonNode options = body.get("stream_options");
        boolean includeUsage = false;
        if (options != null && !options.isNull()) {
            if (!options.isObject()) throw new Invalid("'stream_options' must be an object");
            if (!stream) throw new Invalid("'stream_options' is for a request with \"stream\": true");
            includeUsage = bool(options, "include_usage", false);
        }
        Grammar grammar = grammar(body);
        if (tools != null) {
            if (grammar != null) throw new Invalid("'tools' cannot be used with a grammar or a response format (the tools' calls have a grammar of their own)");
            String toolGrammar = tools.grammar(); // none where a Hermes-style reply may answer freely
            if (toolGrammar != null) grammar = Grammar.parse(toolGrammar);
        }
        // as llama.cpp's server: the end-of-text tokens never drawn, so the text goes on to the token limit
        boolean ignoreEos = bool(body, "ignore_eos", false);
        if (ignoreEos && grammar != null) throw new Invalid("'ignore_eos' cannot be used with a grammar, a response format or tools (the text ends where it is complete)");
        return new CompletionRequest(prompt, promptIds, system, messages, maxTokens, n, logprobs, temperature, topK, topP, minP, penalties, logitBias(body),
                advanced, dryBreakers, lora(body), seed, stops(body), stream, includeUsage, grammar, ignoreEos, tools, templateInput);
    }

    /**
     * A chat's {@code messages}, {@code tools} and {@code chat_template_kwargs} for a Jinja template: each message as it
     * is, with its content a string (text parts joined; none, or null, as an empty string, which templates take where
     * they would fail on None), {@code developer} as {@code system}, and each tool call's arguments parsed to an
     * object. Roles and their order are the template's to check (its {@code raise_exception}). Tools in the generic
     * format (a template without a tool syntax {@link Tools.Syntax} reads) are not the template's: they are described
     * in the system message, earlier calls written as the reply's JSON and results as the user's turn, as the fixed
     * formats frame them ({@link #messages}).
     */
    @SuppressWarnings("unchecked")
    private static TemplateInput templateInput(JsonNode body, Tools tools) {
        JsonNode list = body.get("messages");
        if (list == null || !list.isArray() || list.isEmpty()) throw new Invalid("'messages' must be a non-empty array of messages");
        boolean generic = tools != null && tools.syntax() == Tools.Syntax.GENERIC;
        List<Object> messages = new ArrayList<>();
        Map<String, String> called = Map.of(); // generic: the last assistant message's calls, id to function name
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) throw new Invalid(where + " must be an object with 'role' and 'content'");
            if (!m.path("role").isTextual()) throw new Invalid(where + ".role must be a string");
            String role = m.get("role").asText();
            if (!List.of("system", "developer", "user", "assistant", "tool").contains(role)) {
                throw new Invalid(where + ".role must be system, developer, user, assistant or tool, got '" + role + "'");
            }
            Map<Object, Object> message = (Map<Object, Object>) templateValue(m);
            if (role.equals("developer")) message.put("role", "system");
            JsonNode content = m.get("content");
            String text = content == null || content.isNull() ? "" : content(content, where);
            message.put("content", text);
            JsonNode calls = m.get("tool_calls");
            if (generic && role.equals("tool")) {
                JsonNode id = m.get("tool_call_id");
                if (id == null || !id.isTextual()) throw new Invalid(where + ".tool_call_id must be a string");
                String name = called.get(id.asText());
                if (name == null) throw new Invalid(where + ".tool_call_id '" + id.asText() + "' is not a call of the assistant's message before it");
                message = new java.util.LinkedHashMap<>(Map.of("role", "user", "content", Tools.responseText(name, text, false)));
            } else if (generic && calls != null && !calls.isNull() && !calls.isEmpty()) {
                List<Tools.Call> made = toolCalls(calls, where);
                message.remove("tool_calls");
                message.put("content", (text.isEmpty() ? "" : text + "\n") + Tools.callsText(made, false));
                called = new java.util.HashMap<>();
                for (Tools.Call c : made) called.put(c.id(), c.name());
            } else if (calls != null && !calls.isNull()) {
                toolCalls(calls, where); // checked as the fixed formats check them
                List<Object> withArguments = (List<Object>) message.get("tool_calls");
                for (int j = 0; j < calls.size(); j++) {
                    Map<Object, Object> function = (Map<Object, Object>) ((Map<Object, Object>) withArguments.get(j)).get("function");
                    try {
                        function.put("arguments", templateValue(Server.JSON.readTree(calls.get(j).at("/function/arguments").asText())));
                    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                        throw new IllegalStateException(e); // toolCalls parsed them
                    }
                }
            }
            if (generic && "user".equals(message.get("role")) && !messages.isEmpty() && messages.getLast() instanceof Map<?, ?> last && "user".equals(last.get("role"))) {
                // results and the user's words after them: one turn, as the fixed formats frame them
                ((Map<Object, Object>) last).put("content", last.get("content") + "\n" + message.get("content"));
                continue;
            }
            messages.add(message);
        }
        if (generic) {
            if (messages.getFirst() instanceof Map<?, ?> first && "system".equals(first.get("role"))) {
                ((Map<Object, Object>) first).put("content", tools.describe((String) first.get("content")));
            } else {
                messages.addFirst(new java.util.LinkedHashMap<>(Map.of("role", "system", "content", tools.describe(null))));
            }
        }
        JsonNode kwargs = body.get("chat_template_kwargs");
        Map<String, Object> variables = new java.util.LinkedHashMap<>();
        if (kwargs != null && !kwargs.isNull()) {
            if (!kwargs.isObject()) throw new Invalid("'chat_template_kwargs' must be an object of the template's variables");
            kwargs.properties().forEach(e -> variables.put(e.getKey(), templateValue(e.getValue())));
        }
        return new TemplateInput(messages, tools != null && !generic ? templateTools(tools) : null, variables);
    }

    /**
     * The tools as llama.cpp hands them to a template: each {@code {"type": "function", "function": {"name",
     * "description", "parameters"}}}, a missing description "" and missing parameters {@code {}} (gpt-oss's template
     * writes the description whatever it is), the tool's other fields left out.
     */
    @SuppressWarnings("unchecked")
    private static List<Object> templateTools(Tools tools) {
        com.fasterxml.jackson.databind.node.ArrayNode list = Server.JSON.createArrayNode();
        for (Tools.Function f : tools.functions()) {
            JsonNode given = f.tool().path("function").get("parameters");
            com.fasterxml.jackson.databind.node.ObjectNode function = list.addObject().put("type", "function").putObject("function");
            function.put("name", f.name()).put("description", f.description() == null ? "" : f.description());
            function.set("parameters", given == null || given.isNull() ? Server.JSON.createObjectNode() : given);
        }
        return (List<Object>) templateValue(list);
    }

    /** JSON as a Jinja template's values. */
    static Object templateValue(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isBoolean()) return n.asBoolean();
        if (n.isIntegralNumber() && n.canConvertToLong()) return n.asLong();
        if (n.isNumber()) return n.asDouble();
        if (n.isArray()) {
            List<Object> items = new ArrayList<>();
            n.forEach(x -> items.add(templateValue(x)));
            return items;
        }
        Map<Object, Object> map = new java.util.LinkedHashMap<>();
        n.properties().forEach(e -> map.put(e.getKey(), templateValue(e.getValue())));
        return map;
    }

    /** A prompt's token ids, each an integer >= 0 (the vocabulary's bounds are the model's, checked with it). */
    static int[] ids(JsonNode list) {
        int[] ids = new int[list.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = list.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0) throw new Invalid("token ids must be integers >= 0, got " + id);
            ids[i] = id.asInt();
        }
        return ids;
    }

    /** The most alternatives a token's log-probabilities list (OpenAI's {@code top_logprobs} limit). */
    static final int MAX_TOP_LOGPROBS = 20;

    /**
     * The log-probabilities asked for: a chat's {@code logprobs} (true or false) and {@code top_logprobs}, a
     * completion's {@code logprobs} (the alternatives' count); -1 for none.
     */
    private static int logprobs(JsonNode body, boolean chat) {
        if (!chat) return present(body, "logprobs") ? integer(body, "logprobs", 0, 0, MAX_TOP_LOGPROBS) : -1;
        boolean wanted = bool(body, "logprobs", false);
        if (present(body, "top_logprobs") && !wanted) throw new Invalid("'top_logprobs' needs \"logprobs\": true");
        return wanted ? integer(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS) : -1;
    }

    /** {@code prompt}: a text, or a list holding one text (OpenAI's batch form, of one prompt). */
    private static String prompt(JsonNode body) {
        JsonNode p = body.get("prompt");
        if (p == null || p.isNull()) throw new Invalid("'prompt' is required");
        if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) return p.get(0).asText();
        if (p.isArray() && !p.isEmpty() && p.get(0).isTextual()) throw new Invalid("'prompt' holds " + p.size() + " texts; this server takes one per request");
        if (!p.isTextual()) throw new Invalid("'prompt' must be a string or a list of token ids");
        return p.asText();
    }

    /**
     * A chat's {@code messages} into {@code turns} (user and assistant alternating, the user's first and last); returns
     * the system prompt, a {@code system} (or {@code developer}) message that comes first, or null. An assistant's
     * {@code tool_calls} become its turn's text, and {@code tool} messages (the results of the calls of the assistant's
     * message before them) the user's next turn, as {@link Tools} writes them, with the user's message after them, if
     * any.
     */
    private static String messages(JsonNode body, List<String> turns, boolean hermes) {
        JsonNode list = body.get("messages");
        if (list == null || !list.isArray() || list.isEmpty()) throw new Invalid("'messages' must be a non-empty array of messages");
        String system = null;
        Map<String, String> calls = Map.of(); // the last assistant message's calls: id to function name
        boolean afterTool = false;
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) throw new Invalid(where + " must be an object with 'role' and 'content'");
            JsonNode roleNode = m.get("role");
            if (roleNode == null || !roleNode.isTextual()) throw new Invalid(where + ".role must be a string");
            String role = roleNode.asText();
            boolean userSide = turns.size() % 2 == 1; // the last turn is the user's
            switch (role) {
                case "system", "developer" -> {
                    if (i > 0) throw new Invalid(where + ": a system message must be the first");
                    system = content(m.get("content"), where);
                }
                case "user" -> {
                    String content = content(m.get("content"), where);
                    if (userSide && afterTool) turns.set(turns.size() - 1, turns.getLast() + "\n" + content);
                    else if (userSide) throw new Invalid(where + ": user and assistant messages must alternate, starting with the user's; expected assistant, got user");
                    else turns.add(content);
                }
                case "tool" -> {
                    JsonNode id = m.get("tool_call_id");
                    if (id == null || !id.isTextual()) throw new Invalid(where + ".tool_call_id must be a string");
                    String name = calls.get(id.asText());
                    if (name == null) throw new Invalid(where + ".tool_call_id '" + id.asText() + "' is not a call of the assistant's message before it");
                    String response = Tools.responseText(name, content(m.get("content"), where), hermes);
                    if (userSide) turns.set(turns.size() - 1, turns.getLast() + "\n" + response);
                    else turns.add(response);
                }
                case "assistant" -> {
                    if (!userSide) throw new Invalid(where + ": user and assistant messages must alternate, starting with the user's; expected user, got assistant");
                    JsonNode toolCalls = m.get("tool_calls");
                    if (toolCalls == null || toolCalls.isNull() || toolCalls.isArray() && toolCalls.isEmpty()) {
                        turns.add(content(m.get("content"), where));
                        calls = Map.of();
                    } else {
                        List<Tools.Call> made = toolCalls(toolCalls, where);
                        JsonNode content = m.get("content");
                        String text = content == null || content.isNull() ? "" : content(content, where);
                        turns.add((text.isEmpty() ? "" : text + "\n") + Tools.callsText(made, hermes));
                        calls = new java.util.HashMap<>();
                        for (Tools.Call c : made) calls.put(c.id(), c.name());
                    }
                }
                default -> throw new Invalid(where + ".role must be system, user, assistant or tool, got '" + role + "'");
            }
            afterTool = role.equals("tool");
        }
        if (turns.size() % 2 == 0) throw new Invalid("the last message must be the user's (or a tool's)");
        return system;
    }

    /** An assistant message's {@code tool_calls}: {@code [{"id", "type": "function", "function": {"name", "arguments"}}]}, arguments a JSON object's text. */
    private static List<Tools.Call> toolCalls(JsonNode list, String where) {
        if (!list.isArray()) throw new Invalid(where + ".tool_calls must be an array of calls");
        List<Tools.Call> calls = new ArrayList<>();
        for (int j = 0; j < list.size(); j++) {
            JsonNode c = list.get(j);
            String at = where + ".tool_calls[" + j + "]";
            if (!c.path("id").isTextual() || !c.path("function").path("name").isTextual() || !c.path("function").path("arguments").isTextual()) {
                throw new Invalid(at + " must be {\"id\": ..., \"type\": \"function\", \"function\": {\"name\": ..., \"arguments\": \"<JSON text>\"}}");
            }
            String arguments = c.at("/function/arguments").asText();
            JsonNode parsed;
            try {
                parsed = Server.JSON.readTree(arguments);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                parsed = null;
            }
            if (parsed == null || !parsed.isObject()) throw new Invalid(at + ".function.arguments must be a JSON object's text");
            calls.add(new Tools.Call(c.get("id").asText(), c.at("/function/name").asText(), arguments));
        }
        return calls;
    }

    /** A message's {@code content}: a string, or an array of text parts ({@code {"type": "text", "text": ...}}), joined. */
    private static String content(JsonNode content, String where) {
        if (content != null && content.isTextual()) return content.asText();
        if (content == null || !content.isArray()) throw new Invalid(where + ".content must be a string or an array of text parts");
        StringBuilder text = new StringBuilder();
        for (JsonNode part : content) {
            if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                throw new Invalid(where + ".content: only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
            }
            text.append(part.get("text").asText());
        }
        return text.toString();
    }

    /** {@code stop}: a string or an array of strings, none empty; null for none. */
    private static List<String> stops(JsonNode body) {
        JsonNode stop = body.get("stop");
        if (stop == null || stop.isNull()) return List.of();
        List<String> stops = new ArrayList<>();
        if (stop.isTextual()) {
            stops.add(stop.asText());
        } else if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual()) throw new Invalid("'stop' must be a string or an array of strings");
                stops.add(s.asText());
            }
        } else {
            throw new Invalid("'stop' must be a string or an array of strings");
        }
        if (stops.size() > MAX_STOPS) throw new Invalid("'stop' holds " + stops.size() + " strings; at most " + MAX_STOPS);
        if (stops.stream().anyMatch(String::isEmpty)) throw new Invalid("'stop' strings must not be empty");
        // each token's text is compared with every start of every string that a tail of the reply may begin
        if (stops.stream().anyMatch(s -> s.length() > MAX_STOP_LENGTH)) throw new Invalid("'stop' strings must be at most " + MAX_STOP_LENGTH + " characters");
        return stops;
    }

    /**
     * {@code logit_bias}: token ids (as strings, JSON's keys) to biases, OpenAI's -100 to 100 (-100 bans the token, as
     * OpenAI means it, where llama.cpp adds the number as it is).
     */
    private static Sampler.LogitBias logitBias(JsonNode body) {
        JsonNode bias = body.get("logit_bias");
        if (bias == null || bias.isNull()) return Sampler.LogitBias.NONE;
        if (!bias.isObject()) throw new Invalid("'logit_bias' must be an object of token ids to biases");
        int[] tokens = new int[bias.size()];
        float[] biases = new float[bias.size()];
        int i = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = bias.fields(); it.hasNext(); i++) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getKey().matches("\\d{1,9}")) throw new Invalid("'logit_bias' keys must be token ids, got '" + e.getKey() + "'");
            tokens[i] = Integer.parseInt(e.getKey());
            double b = e.getValue().isNumber() ? e.getValue().asDouble() : Double.NaN;
            if (!(b >= -100 && b <= 100)) throw new Invalid("'logit_bias' values must be numbers from -100 to 100, got " + e.getValue() + " for token " + e.getKey());
            biases[i] = b == -100 ? Float.NEGATIVE_INFINITY : (float) b;
        }
        return new Sampler.LogitBias(tokens, biases);
    }

    /**
     * The grammar the text must match, from {@code response_format} ({@code json_object}, or {@code json_schema} with
     * its {@code schema}), or llama.cpp's {@code grammar} (GBNF) or {@code json_schema}; null for none.
     */
    private static Grammar grammar(JsonNode body) {
        List<String> given = new ArrayList<>();
        String gbnf = null;
        JsonNode format = body.get("response_format");
        if (format != null && !format.isNull()) {
            String type = format.path("type").asText("");
            switch (type) {
                case "text" -> {
                }
                case "json_object" -> {
                    // llama.cpp takes a schema here too
                    gbnf = JsonSchemaGrammar.convert(format.has("schema") ? format.get("schema").toString() : "{\"type\": \"object\"}");
                    given.add("response_format");
                }
                case "json_schema" -> {
                    JsonNode schema = format.path("json_schema").get("schema");
                    if (schema == null) throw new Invalid("response_format of type json_schema needs json_schema.schema");
                    gbnf = JsonSchemaGrammar.convert(schema.toString());
                    given.add("response_format");
                }
                default -> throw new Invalid("response_format.type must be text, json_object or json_schema, got '" + type + "'");
            }
        }
        JsonNode grammar = body.get("grammar");
        if (grammar != null && !grammar.isNull()) {
            if (!grammar.isTextual()) throw new Invalid("'grammar' must be a string (GBNF)");
            gbnf = grammar.asText();
            given.add("grammar");
        }
        JsonNode schema = body.get("json_schema");
        if (schema != null && !schema.isNull()) {
            gbnf = JsonSchemaGrammar.convert(schema.toString());
            given.add("json_schema");
        }
        if (given.size() > 1) throw new Invalid("give one of " + String.join(", ", given) + ", not several");
        return gbnf == null ? null : Grammar.parse(gbnf);
    }

    private static boolean present(JsonNode body, String field) {
        return body.has(field) && !body.get(field).isNull();
    }

    /**
     * llama.cpp server's other samplers, under its field names and defaults (its clients and web UI send them all);
     * DRY's with no breakers yet ({@link #dryBreakers}: the job finds them in the vocabulary).
     */
    private static Sampler.Advanced advanced(JsonNode body) {
        float most = Float.MAX_VALUE;
        Dry dry = new Dry(number(body, "dry_multiplier", 0f, 0, most), number(body, "dry_base", 1.75f, 1, most),
                integer(body, "dry_allowed_length", 2, 1, Integer.MAX_VALUE), integer(body, "dry_penalty_last_n", 64, -1, Integer.MAX_VALUE), Dry.Breakers.NONE);
        return new Sampler.Advanced(number(body, "typical_p", 1f, Float.MIN_VALUE, 1), number(body, "top_n_sigma", -1f, -most, most),
                number(body, "xtc_probability", 0f, 0, 1), number(body, "xtc_threshold", 0.1f, 0, 1),
                number(body, "dynatemp_range", 0f, 0, most), number(body, "dynatemp_exponent", 1f, Float.MIN_VALUE, most),
                integer(body, "mirostat", 0, 0, 2), number(body, "mirostat_tau", 5f, Float.MIN_VALUE, most), number(body, "mirostat_eta", 0.1f, Float.MIN_VALUE, most), dry);
    }

    /** {@code lora}: llama.cpp's per-request adapter scales, checked against the server's adapters when the job starts ({@link #loraScales}); null for none. */
    private static JsonNode lora(JsonNode body) {
        if (!present(body, "lora")) return null;
        JsonNode lora = body.get("lora");
        if (!lora.isArray()) throw new Invalid("'lora' must be a list of {\"id\": N, \"scale\": S}");
        return lora;
    }

    /**
     * llama.cpp's list of adapter scales, {@code [{"id": 0, "scale": 0.5}, ...]}, as one weight per adapter of the
     * {@code adapters} (one left out: 0); {@code what} names the list in errors.
     */
    static float[] loraScales(JsonNode list, int adapters, String what) {
        if (!list.isArray()) throw new Invalid(what + " must be a list of {\"id\": N, \"scale\": S}");
        float[] weights = new float[adapters];
        for (JsonNode item : list) {
            if (!item.isObject() || !item.path("id").isIntegralNumber() || !item.path("scale").isNumber()) {
                throw new Invalid(what + " must be a list of {\"id\": N, \"scale\": S}, got " + item);
            }
            int id = item.get("id").asInt();
            if (id < 0 || id >= adapters) throw new Invalid(what + ": no LoRA adapter " + id + " (the server has " + adapters + ", ids from 0: GET /lora-adapters)");
            double scale = item.get("scale").asDouble();
            if (!Double.isFinite(scale)) throw new Invalid(what + ": adapter " + id + "'s scale must be a finite number");
            weights[id] = (float) scale;
        }
        return weights;
    }

    /** {@code dry_sequence_breakers}: non-empty strings (llama.cpp's four by default). */
    private static List<String> dryBreakers(JsonNode body) {
        if (!present(body, "dry_sequence_breakers")) return Dry.DEFAULT_BREAKERS;
        JsonNode list = body.get("dry_sequence_breakers");
        List<String> breakers = new ArrayList<>();
        if (!list.isArray()) throw new Invalid("'dry_sequence_breakers' must be an array of strings");
        for (JsonNode b : list) {
            if (!b.isTextual() || b.asText().isEmpty()) throw new Invalid("'dry_sequence_breakers' must be an array of non-empty strings");
            breakers.add(b.asText());
        }
        if (breakers.size() > MAX_STOPS) throw new Invalid("'dry_sequence_breakers' holds " + breakers.size() + " strings; at most " + MAX_STOPS);
        return breakers;
    }

    private static boolean bool(JsonNode body, String field, boolean absent) {
        if (!present(body, field)) return absent;
        if (!body.get(field).isBoolean()) throw new Invalid("'" + field + "' must be true or false");
        return body.get(field).asBoolean();
    }

    private static int integer(JsonNode body, String field, int absent, int min, int max) {
        if (!present(body, field)) return absent;
        JsonNode v = body.get(field);
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < min || v.asInt() > max) {
            throw new Invalid("'" + field + "' must be an integer " + (max == Integer.MAX_VALUE ? ">= " + min : "from " + min + " to " + max) + ", got " + v);
        }
        return v.asInt();
    }

    private static long longValue(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw new Invalid("'" + field + "' must be an integer, got " + v);
        return v.asLong();
    }

    private static float number(JsonNode body, String field, float absent, float min, float max) {
        if (!present(body, field)) return absent;
        JsonNode v = body.get(field);
        double d = v.isNumber() ? v.asDouble() : Double.NaN;
        if (!(d >= min && d <= max)) {
            throw new Invalid("'" + field + "' must be a number " + (max == Float.MAX_VALUE ? (min == Float.MIN_VALUE ? "> 0" : ">= " + fmt(min)) : "from " + fmt(min) + " to " + fmt(max)) + ", got " + v);
        }
        return (float) d;
    }

    private static String fmt(float f) {
        return f == Float.MIN_VALUE ? "0 (exclusive)" : f == (int) f ? Integer.toString((int) f) : Float.toString(f);
    }
}
