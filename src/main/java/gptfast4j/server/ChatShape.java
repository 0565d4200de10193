package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;

/**
 * Another API's shape of a chat (OpenAI's Responses API, Anthropic's Messages API): its request made a chat
 * completion request before the chat runs, and the chat's response, or its stream's chunks, made that API's response
 * or its named events after.
 */
abstract class ChatShape {
    /** A stream's event: its name ({@code event:} line) and data. */
    record Event(String type, ObjectNode data) {}

    private final List<Event> pending = new ArrayList<>();

    /** A stream's first events, before its first chunk; {@code promptTokens} the prompt's size. */
    abstract List<Event> start(int promptTokens);

    /** The chat's finish reason, from its stream's last chunk (null before). */
    String finish;

    /** The events of a chat stream's chunk: its finish reason kept, its thinking, text and calls handed on, in order. */
    final List<Event> chunk(JsonNode chatChunk) {
        JsonNode choice = chatChunk.path("choices").path(0), delta = choice.path("delta");
        if (choice.path("finish_reason").isTextual()) finish = choice.get("finish_reason").asText();
        if (delta.path("reasoning_content").isTextual()) thinking(delta.get("reasoning_content").asText());
        if (delta.path("content").isTextual() && !delta.get("content").asText().isEmpty()) text(delta.get("content").asText());
        for (JsonNode call : delta.path("tool_calls")) call(call);
        return take();
    }

    /** A piece of the reply's thinking, as this shape streams it. */
    abstract void thinking(String piece);

    /** A piece of the reply's text, as this shape streams it. */
    abstract void text(String piece);

    /** A whole call of the reply's ({@code {"id", "function": {"name", "arguments"}}}), as this shape streams it. */
    abstract void call(JsonNode call);

    /** A stream's last events, after its last chunk, with the chat's {@code usage}. */
    abstract List<Event> finish(JsonNode usage);

    /** A whole (not streamed) chat response in this shape, with {@code usage}. */
    abstract ObjectNode whole(JsonNode chatResponse, JsonNode usage);

    /** Queues an event named {@code type}: {@code {"type": type, ...}} with {@link #stamp}'s fields, then {@code fields}. */
    final void emit(String type, ObjectNode fields) {
        ObjectNode event = Server.JSON.createObjectNode().put("type", type);
        stamp(event);
        event.setAll(fields);
        pending.add(new Event(type, event));
    }

    /** Fields every event of this shape carries after its type (none by default). */
    void stamp(ObjectNode event) {
    }

    /** The events queued since the last call. */
    final List<Event> take() {
        List<Event> events = new ArrayList<>(pending);
        pending.clear();
        return events;
    }
}
