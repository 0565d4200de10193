package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * OpenAI's Responses API ({@code POST /v1/responses}) over the chat completions: a request's {@code input} items,
 * {@code instructions}, {@code tools} and {@code text.format} made a chat's messages, tools and response format
 * ({@link #chatRequest}); the chat's response made a response object of output items (reasoning, message,
 * function calls) and its stream's chunks the API's typed events, {@code response.created} to
 * {@code response.completed}. The server keeps no responses: {@code previous_response_id} is refused, and a
 * conversation goes on by sending its items again.
 */
final class ResponsesApi extends ChatShape {
    private final String id, model;
    private final JsonNode request;
    private final long created = System.currentTimeMillis() / 1000;
    private final ArrayNode output = Server.JSON.createArrayNode();
    private int sequence;
    /** The output item being streamed (a message or a reasoning item), null between items. */
    private ObjectNode open;
    private final StringBuilder openText = new StringBuilder();

    /** The Responses API request {@code request} (its fields echoed in the response), answered as response {@code id}. */
    ResponsesApi(String id, String model, JsonNode request) {
        this.id = "resp_" + id;
        this.model = model;
        this.request = request;
    }

    /** A Responses API request as the chat completions request it asks for. */
    static ObjectNode chatRequest(JsonNode body) {
        if (!body.isObject()) throw new CompletionRequest.Invalid("the request body must be a JSON object");
        if (body.hasNonNull("previous_response_id")) {
            throw new CompletionRequest.Invalid("'previous_response_id' is not supported: this server keeps no responses; send the conversation's items in 'input'");
        }
        ObjectNode chat = Server.JSON.createObjectNode();
        for (String same : new String[]{"model", "temperature", "top_p", "stream", "parallel_tool_calls", "seed", "stop", "top_k", "min_p",
                "repeat_penalty", "frequency_penalty", "presence_penalty", "logit_bias", "chat_template_kwargs", "reasoning_format"}) {
            if (body.has(same)) chat.set(same, body.get(same));
        }
        if (body.has("max_output_tokens")) chat.set("max_tokens", body.get("max_output_tokens"));
        ArrayNode messages = chat.putArray("messages");
        JsonNode instructions = body.get("instructions");
        if (instructions != null && !instructions.isNull()) {
            if (!instructions.isTextual()) throw new CompletionRequest.Invalid("'instructions' must be a string");
            messages.addObject().put("role", "system").put("content", instructions.asText());
        }
        JsonNode input = body.get("input");
        if (input == null || input.isNull()) throw new CompletionRequest.Invalid("'input' is required: a text or a list of input items");
        if (input.isTextual()) {
            messages.addObject().put("role", "user").put("content", input.asText());
        } else if (input.isArray()) {
            ObjectNode calling = null; // the assistant message that the function calls in a row go into
            for (int i = 0; i < input.size(); i++) {
                JsonNode item = input.get(i);
                String where = "input[" + i + "]";
                String type = item.path("type").asText(item.has("role") ? "message" : "");
                switch (type) {
                    case "message" -> {
                        if (!item.path("role").isTextual()) throw new CompletionRequest.Invalid(where + ".role must be a string");
                        messages.addObject().put("role", item.get("role").asText()).put("content", text(item.get("content"), where));
                        calling = null;
                    }
                    case "function_call" -> {
                        if (!item.path("call_id").isTextual() || !item.path("name").isTextual() || !item.path("arguments").isTextual()) {
                            throw new CompletionRequest.Invalid(where + " must be {\"type\": \"function_call\", \"call_id\", \"name\", \"arguments\": \"<JSON text>\"}");
                        }
                        if (calling == null) {
                            calling = messages.addObject().put("role", "assistant");
                            calling.putNull("content");
                            calling.putArray("tool_calls");
                        }
                        ((ArrayNode) calling.get("tool_calls")).addObject().put("id", item.get("call_id").asText()).put("type", "function")
                                .putObject("function").put("name", item.get("name").asText()).put("arguments", item.get("arguments").asText());
                    }
                    case "function_call_output" -> {
                        if (!item.path("call_id").isTextual() || !item.path("output").isTextual()) {
                            throw new CompletionRequest.Invalid(where + " must be {\"type\": \"function_call_output\", \"call_id\", \"output\": \"<text>\"}");
                        }
                        messages.addObject().put("role", "tool").put("tool_call_id", item.get("call_id").asText()).put("content", item.get("output").asText());
                        calling = null;
                    }
                    case "reasoning" -> {
                        // an earlier response's thinking, sent back: templates drop earlier thinking, and so does this
                    }
                    default -> throw new CompletionRequest.Invalid(where + ": input items of type '" + type + "' are not supported (message, function_call, function_call_output, reasoning)");
                }
            }
        } else {
            throw new CompletionRequest.Invalid("'input' must be a text or a list of input items");
        }
        JsonNode tools = body.get("tools");
        if (tools != null && !tools.isNull()) {
            if (!tools.isArray()) throw new CompletionRequest.Invalid("'tools' must be an array of tools");
            ArrayNode chatTools = chat.putArray("tools");
            for (int i = 0; i < tools.size(); i++) {
                JsonNode tool = tools.get(i);
                if (!"function".equals(tool.path("type").asText())) throw new CompletionRequest.Invalid("tools[" + i + "]: only function tools are supported, got type " + tool.path("type"));
                ObjectNode function = chatTools.addObject().put("type", "function").putObject("function");
                for (String field : new String[]{"name", "description", "parameters"}) if (tool.has(field)) function.set(field, tool.get(field));
            }
        }
        JsonNode choice = body.get("tool_choice");
        if (choice != null && !choice.isNull()) {
            if (choice.isObject() && "function".equals(choice.path("type").asText())) {
                chat.putObject("tool_choice").put("type", "function").putObject("function").set("name", choice.get("name"));
            } else {
                chat.set("tool_choice", choice);
            }
        }
        JsonNode format = body.path("text").path("format");
        switch (format.path("type").asText("text")) {
            case "text" -> {
            }
            case "json_object" -> chat.putObject("response_format").put("type", "json_object");
            case "json_schema" -> {
                ObjectNode schema = chat.putObject("response_format").put("type", "json_schema").putObject("json_schema");
                for (String field : new String[]{"name", "schema", "strict"}) if (format.has(field)) schema.set(field, format.get(field));
            }
            default -> throw new CompletionRequest.Invalid("'text.format.type' must be text, json_object or json_schema, got " + format.path("type"));
        }
        return chat;
    }

    /** An input item's content: a text, or a list of text parts ({@code input_text}, {@code output_text}) joined. */
    private static String text(JsonNode content, String where) {
        if (content != null && content.isTextual()) return content.asText();
        if (content == null || !content.isArray()) throw new CompletionRequest.Invalid(where + ".content must be a text or a list of text parts");
        StringBuilder text = new StringBuilder();
        for (JsonNode part : content) {
            String type = part.path("type").asText();
            if (!(type.equals("input_text") || type.equals("output_text") || type.equals("text")) || !part.path("text").isTextual()) {
                throw new CompletionRequest.Invalid(where + ".content: only text parts (input_text, output_text) are supported, got " + part.path("type"));
            }
            text.append(part.get("text").asText());
        }
        return text.toString();
    }

    /** The response object: its status, its output so far, the request's settings, and {@code usage} (null before the end). */
    private ObjectNode response(String status, String incomplete, JsonNode usage) {
        ObjectNode r = Server.JSON.createObjectNode().put("id", id).put("object", "response").put("created_at", created).put("status", status);
        r.putNull("error");
        if (incomplete != null) r.putObject("incomplete_details").put("reason", incomplete);
        else r.putNull("incomplete_details");
        r.set("instructions", request.path("instructions").isTextual() ? request.get("instructions") : null);
        r.set("max_output_tokens", request.has("max_output_tokens") ? request.get("max_output_tokens") : null);
        r.put("model", model);
        r.set("output", output.deepCopy());
        r.put("parallel_tool_calls", request.path("parallel_tool_calls").asBoolean(false));
        r.putNull("previous_response_id");
        r.put("store", false);
        r.set("temperature", request.has("temperature") ? request.get("temperature") : r.numberNode(0.8));
        r.set("text", request.path("text").has("format") ? request.get("text") : Server.JSON.createObjectNode().set("format", Server.JSON.createObjectNode().put("type", "text")));
        r.set("tool_choice", request.has("tool_choice") ? request.get("tool_choice") : r.textNode("auto"));
        r.set("tools", request.has("tools") ? request.get("tools") : Server.JSON.createArrayNode());
        r.set("top_p", request.has("top_p") ? request.get("top_p") : r.numberNode(1.0));
        r.putObject("metadata");
        if (usage != null) {
            ObjectNode u = r.putObject("usage").put("input_tokens", usage.path("prompt_tokens").asInt());
            u.putObject("input_tokens_details").put("cached_tokens", usage.path("prompt_tokens_details").path("cached_tokens").asInt(0));
            u.put("output_tokens", usage.path("completion_tokens").asInt());
            u.putObject("output_tokens_details").put("reasoning_tokens", 0);
            u.put("total_tokens", usage.path("total_tokens").asInt());
        } else {
            r.putNull("usage");
        }
        return r;
    }

    @Override
    ObjectNode whole(JsonNode chatResponse, JsonNode usage) {
        JsonNode choice = chatResponse.path("choices").get(0), message = choice.path("message");
        if (message.path("reasoning_content").isTextual()) output.add(reasoningItem(message.get("reasoning_content").asText(), "completed"));
        boolean cut = choice.path("finish_reason").asText().equals("length");
        if (message.path("content").isTextual() && !message.get("content").asText().isEmpty()) output.add(messageItem(message.get("content").asText(), cut ? "incomplete" : "completed"));
        for (JsonNode call : message.path("tool_calls")) output.add(callItem(call));
        return response(cut ? "incomplete" : "completed", cut ? "max_output_tokens" : null, usage);
    }

    private ObjectNode messageItem(String text, String status) {
        ObjectNode item = Server.JSON.createObjectNode().put("id", "msg_" + id.substring(5) + "_" + output.size()).put("type", "message").put("status", status).put("role", "assistant");
        ArrayNode content = item.putArray("content");
        if (text != null) content.add(textPart(text));
        return item;
    }

    private static ObjectNode textPart(String text) {
        ObjectNode part = Server.JSON.createObjectNode().put("type", "output_text").put("text", text);
        part.putArray("annotations");
        part.putArray("logprobs");
        return part;
    }

    private ObjectNode reasoningItem(String text, String status) {
        ObjectNode item = Server.JSON.createObjectNode().put("id", "rs_" + id.substring(5) + "_" + output.size()).put("type", "reasoning");
        item.putArray("summary");
        ArrayNode content = item.putArray("content");
        if (text != null) content.addObject().put("type", "reasoning_text").put("text", text);
        return item.put("status", status);
    }

    private ObjectNode callItem(JsonNode call) {
        return Server.JSON.createObjectNode().put("id", "fc_" + call.path("id").asText()).put("type", "function_call").put("status", "completed")
                .put("call_id", call.path("id").asText()).put("name", call.at("/function/name").asText()).put("arguments", call.at("/function/arguments").asText());
    }



    /** Each event's place in the stream, as the Responses API numbers them. */
    @Override
    void stamp(ObjectNode event) {
        event.put("sequence_number", sequence++);
    }

    @Override
    List<Event> start(int promptTokens) {
        emit("response.created", Server.JSON.createObjectNode().set("response", response("in_progress", null, null)));
        emit("response.in_progress", Server.JSON.createObjectNode().set("response", response("in_progress", null, null)));
        return take();
    }

    @Override
    void thinking(String piece) {
        piece("reasoning", piece);
    }

    @Override
    void text(String piece) {
        piece("message", piece);
    }

    /** A call as a function_call output item, its arguments as one delta. */
    @Override
    void call(JsonNode call) {
        close();
        ObjectNode item = callItem(call);
        int index = output.size();
        output.add(item);
        ObjectNode started = item.deepCopy().put("status", "in_progress").put("arguments", "");
        emit("response.output_item.added", Server.JSON.createObjectNode().put("output_index", index).set("item", started));
        emit("response.function_call_arguments.delta", Server.JSON.createObjectNode().put("item_id", item.get("id").asText()).put("output_index", index)
                .put("delta", item.get("arguments").asText()));
        emit("response.function_call_arguments.done", Server.JSON.createObjectNode().put("item_id", item.get("id").asText()).put("output_index", index)
                .put("arguments", item.get("arguments").asText()));
        emit("response.output_item.done", Server.JSON.createObjectNode().put("output_index", index).set("item", item));
    }

    /** A piece of an item's text ({@code kind} message or reasoning), the item opened where it is not. */
    private void piece(String kind, String text) {
        if (open != null && !open.path("type").asText().equals(kind)) close();
        int index = output.size();
        if (open == null) {
            open = kind.equals("message") ? messageItem(null, "in_progress") : reasoningItem(null, "in_progress");
            openText.setLength(0);
            emit("response.output_item.added", Server.JSON.createObjectNode().put("output_index", index).set("item", open.deepCopy()));
            ObjectNode part = kind.equals("message") ? textPart("") : Server.JSON.createObjectNode().put("type", "reasoning_text").put("text", "");
            emit("response.content_part.added", Server.JSON.createObjectNode().put("item_id", open.get("id").asText()).put("output_index", index)
                    .put("content_index", 0).set("part", part));
        }
        openText.append(text);
        ObjectNode delta = Server.JSON.createObjectNode().put("item_id", open.get("id").asText()).put("output_index", index).put("content_index", 0).put("delta", text);
        if (kind.equals("message")) delta.putArray("logprobs");
        emit(kind.equals("message") ? "response.output_text.delta" : "response.reasoning_text.delta", delta);
    }

    /** Ends the open item: its text's done events, and the item in the output. */
    private void close() {
        if (open == null) return;
        int index = output.size();
        boolean message = open.path("type").asText().equals("message");
        String itemId = open.get("id").asText(), text = openText.toString();
        ObjectNode done = Server.JSON.createObjectNode().put("item_id", itemId).put("output_index", index).put("content_index", 0).put("text", text);
        if (message) done.putArray("logprobs");
        emit(message ? "response.output_text.done" : "response.reasoning_text.done", done);
        ObjectNode item = message ? messageItem(text, "length".equals(finish) ? "incomplete" : "completed") : reasoningItem(text, "completed");
        item.put("id", itemId);
        emit("response.content_part.done", Server.JSON.createObjectNode().put("item_id", itemId).put("output_index", index).put("content_index", 0)
                .set("part", item.get("content").get(0)));
        emit("response.output_item.done", Server.JSON.createObjectNode().put("output_index", index).set("item", item));
        output.add(item);
        open = null;
    }

    @Override
    List<Event> finish(JsonNode usage) {
        close();
        boolean cut = "length".equals(finish);
        emit(cut ? "response.incomplete" : "response.completed",
                Server.JSON.createObjectNode().set("response", response(cut ? "incomplete" : "completed", cut ? "max_output_tokens" : null, usage)));
        return take();
    }
}
