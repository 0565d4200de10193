package gptfast4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * Anthropic's Messages API ({@code POST /v1/messages}, as llama.cpp's server takes it) over the chat completions: the
 * request's {@code system}, {@code messages} (text, {@code thinking}, {@code tool_use} and {@code tool_result} blocks),
 * {@code tools} ({@code input_schema}) and {@code tool_choice} made a chat request ({@link #chatRequest}); the chat's
 * response made a message of content blocks (thinking, text, tool_use) with its {@code stop_reason}, and its stream's
 * chunks the API's events, {@code message_start} to {@code message_stop}.
 */
final class AnthropicApi extends ChatShape {
    private final String id, model;
    /** Content blocks begun so far in a stream; the one open (thinking or text), its type, null between blocks. */
    private int blocks;
    private String open;
    private int promptTokens;

    AnthropicApi(String id, String model) {
        this.id = "msg_" + id;
        this.model = model;
    }

    /** A Messages API request as the chat completions request it asks for. */
    static ObjectNode chatRequest(JsonNode body) {
        if (!body.isObject()) throw new CompletionRequest.Invalid("the request body must be a JSON object");
        ObjectNode chat = Server.JSON.createObjectNode();
        for (String same : new String[]{"model", "temperature", "top_p", "top_k", "stream", "chat_template_kwargs"}) {
            if (body.has(same)) chat.set(same, body.get(same));
        }
        if (body.has("stop_sequences")) chat.set("stop", body.get("stop_sequences"));
        if (body.has("max_tokens")) chat.set("max_tokens", body.get("max_tokens"));
        ArrayNode messages = chat.putArray("messages");
        JsonNode system = body.get("system");
        if (system != null && !system.isNull()) messages.addObject().put("role", "system").put("content", text(system, "system"));
        JsonNode list = body.get("messages");
        if (list == null || !list.isArray()) throw new CompletionRequest.Invalid("'messages' is required: an array of messages");
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String where = "messages[" + i + "]";
            if (!m.path("role").isTextual()) throw new CompletionRequest.Invalid(where + ".role must be user or assistant");
            JsonNode content = m.get("content");
            if (content == null || content.isTextual()) {
                messages.addObject().put("role", m.get("role").asText()).put("content", content == null ? "" : content.asText());
                continue;
            }
            if (!content.isArray()) throw new CompletionRequest.Invalid(where + ".content must be a text or a list of content blocks");
            StringBuilder text = new StringBuilder(), thinking = new StringBuilder();
            ArrayNode calls = Server.JSON.createArrayNode(), results = Server.JSON.createArrayNode();
            for (int j = 0; j < content.size(); j++) {
                JsonNode block = content.get(j);
                String at = where + ".content[" + j + "]";
                switch (block.path("type").asText()) {
                    case "text" -> text.append(block.path("text").asText());
                    case "thinking" -> thinking.append(block.path("thinking").asText());
                    case "redacted_thinking" -> {
                    }
                    case "tool_use" -> {
                        if (!block.path("id").isTextual() || !block.path("name").isTextual()) throw new CompletionRequest.Invalid(at + ": a tool_use block needs its id and name");
                        calls.addObject().put("id", block.get("id").asText()).put("type", "function").putObject("function")
                                .put("name", block.get("name").asText()).put("arguments", block.has("input") ? block.get("input").toString() : "{}");
                    }
                    case "tool_result" -> {
                        if (!block.path("tool_use_id").isTextual()) throw new CompletionRequest.Invalid(at + ": a tool_result block needs its tool_use_id");
                        JsonNode result = block.get("content");
                        results.addObject().put("role", "tool").put("tool_call_id", block.get("tool_use_id").asText())
                                .put("content", result == null || result.isNull() ? "" : text(result, at + ".content"));
                    }
                    default -> throw new CompletionRequest.Invalid(at + ": content blocks of type " + block.path("type") + " are not supported (text, thinking, tool_use, tool_result)");
                }
            }
            if (!text.isEmpty() || !calls.isEmpty() || !thinking.isEmpty()) {
                ObjectNode message = messages.addObject().put("role", m.get("role").asText()).put("content", text.toString());
                if (!calls.isEmpty()) message.set("tool_calls", calls);
                if (!thinking.isEmpty()) message.put("reasoning_content", thinking.toString());
            }
            messages.addAll(results);
        }
        JsonNode tools = body.get("tools");
        if (tools != null && !tools.isNull()) {
            if (!tools.isArray()) throw new CompletionRequest.Invalid("'tools' must be an array of tools");
            ArrayNode chatTools = chat.putArray("tools");
            for (JsonNode tool : tools) {
                ObjectNode function = chatTools.addObject().put("type", "function").putObject("function");
                function.set("name", tool.get("name"));
                if (tool.has("description")) function.set("description", tool.get("description"));
                if (tool.has("input_schema")) function.set("parameters", tool.get("input_schema"));
            }
        }
        JsonNode choice = body.get("tool_choice");
        if (choice != null && !choice.isNull()) {
            switch (choice.path("type").asText()) {
                case "auto" -> chat.put("tool_choice", "auto");
                case "any" -> chat.put("tool_choice", "required");
                case "none" -> chat.put("tool_choice", "none");
                case "tool" -> chat.putObject("tool_choice").put("type", "function").putObject("function").set("name", choice.get("name"));
                default -> throw new CompletionRequest.Invalid("'tool_choice.type' must be auto, any, tool or none, got " + choice.path("type"));
            }
            if (choice.path("disable_parallel_tool_use").isBoolean()) chat.put("parallel_tool_calls", !choice.get("disable_parallel_tool_use").asBoolean());
        }
        return chat;
    }

    /** A system prompt's or a tool result's text: a text, or text blocks joined. */
    private static String text(JsonNode value, String where) {
        if (value.isTextual()) return value.asText();
        if (!value.isArray()) throw new CompletionRequest.Invalid(where + " must be a text or a list of text blocks");
        StringBuilder text = new StringBuilder();
        for (JsonNode block : value) {
            if (!"text".equals(block.path("type").asText())) throw new CompletionRequest.Invalid(where + ": only text blocks are supported here, got " + block.path("type"));
            text.append(block.path("text").asText());
        }
        return text.toString();
    }

    /** The chat's finish reason as Anthropic's stop reason. */
    private static String stopReason(String finish) {
        return switch (finish == null ? "stop" : finish) {
            case "length" -> "max_tokens";
            case "tool_calls" -> "tool_use";
            default -> "end_turn";
        };
    }

    private ObjectNode message(ArrayNode content, String stopReason, int inputTokens, int outputTokens) {
        ObjectNode m = Server.JSON.createObjectNode().put("id", id).put("type", "message").put("role", "assistant").put("model", model);
        m.set("content", content);
        if (stopReason != null) m.put("stop_reason", stopReason);
        else m.putNull("stop_reason");
        m.putNull("stop_sequence");
        m.putObject("usage").put("input_tokens", inputTokens).put("output_tokens", outputTokens);
        return m;
    }

    private static ObjectNode toolUse(JsonNode call) {
        ObjectNode block = Server.JSON.createObjectNode().put("type", "tool_use").put("id", call.path("id").asText()).put("name", call.at("/function/name").asText());
        try {
            block.set("input", Server.JSON.readTree(call.at("/function/arguments").asText()));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e); // the reply's calls are read from JSON
        }
        return block;
    }

    @Override
    ObjectNode whole(JsonNode chatResponse, JsonNode usage) {
        JsonNode choice = chatResponse.path("choices").get(0), reply = choice.path("message");
        ArrayNode content = Server.JSON.createArrayNode();
        if (reply.path("reasoning_content").isTextual()) content.addObject().put("type", "thinking").put("thinking", reply.get("reasoning_content").asText()).put("signature", "");
        if (reply.path("content").isTextual() && !reply.get("content").asText().isEmpty()) content.addObject().put("type", "text").put("text", reply.get("content").asText());
        for (JsonNode call : reply.path("tool_calls")) content.add(toolUse(call));
        return message(content, stopReason(choice.path("finish_reason").asText()), usage.path("prompt_tokens").asInt(), usage.path("completion_tokens").asInt());
    }



    @Override
    List<Event> start(int promptTokens) {
        this.promptTokens = promptTokens;
        emit("message_start", Server.JSON.createObjectNode().set("message", message(Server.JSON.createArrayNode(), null, promptTokens, 0)));
        return take();
    }

    @Override
    void thinking(String piece) {
        piece("thinking", piece);
    }

    @Override
    void text(String piece) {
        piece("text", piece);
    }

    /** A call as a tool_use block, its input as one delta. */
    @Override
    void call(JsonNode call) {
        close();
        ObjectNode block = toolUse(call);
        JsonNode input = block.get("input");
        block.putObject("input");
        emit("content_block_start", Server.JSON.createObjectNode().put("index", blocks).set("content_block", block));
        emit("content_block_delta", Server.JSON.createObjectNode().put("index", blocks)
                .set("delta", Server.JSON.createObjectNode().put("type", "input_json_delta").put("partial_json", input.toString())));
        emit("content_block_stop", Server.JSON.createObjectNode().put("index", blocks++));
    }

    /** A piece of a thinking or text block, the block begun where it is not. */
    private void piece(String kind, String text) {
        if (open != null && !open.equals(kind)) close();
        if (open == null) {
            open = kind;
            ObjectNode block = Server.JSON.createObjectNode().put("type", kind).put(kind, "");
            if (kind.equals("thinking")) block.put("signature", "");
            emit("content_block_start", Server.JSON.createObjectNode().put("index", blocks).set("content_block", block));
        }
        ObjectNode delta = Server.JSON.createObjectNode().put("type", kind.equals("text") ? "text_delta" : "thinking_delta").put(kind, text);
        emit("content_block_delta", Server.JSON.createObjectNode().put("index", blocks).set("delta", delta));
    }

    private void close() {
        if (open == null) return;
        emit("content_block_stop", Server.JSON.createObjectNode().put("index", blocks++));
        open = null;
    }

    @Override
    List<Event> finish(JsonNode usage) {
        close();
        ObjectNode delta = Server.JSON.createObjectNode().put("stop_reason", stopReason(finish));
        delta.putNull("stop_sequence");
        ObjectNode data = Server.JSON.createObjectNode().set("delta", delta);
        data.putObject("usage").put("input_tokens", promptTokens).put("output_tokens", usage.path("completion_tokens").asInt());
        emit("message_delta", data);
        emit("message_stop", Server.JSON.createObjectNode());
        return take();
    }
}
