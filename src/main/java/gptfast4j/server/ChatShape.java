package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * Another API's shape of a chat (OpenAI's Responses API, Anthropic's Messages API): its request made a chat
 * completion request before the chat runs, and the chat's response, or its stream's chunks, made that API's response
 * or its named events after.
 */
interface ChatShape {
    /** A stream's event: its name ({@code event:} line) and data. */
    record Event(String type, ObjectNode data) {}

    /** A stream's first events, before its first chunk; {@code promptTokens} the prompt's size. */
    List<Event> start(int promptTokens);

    /** The events of a chat stream's chunk. */
    List<Event> chunk(JsonNode chatChunk);

    /** A stream's last events, after its last chunk, with the chat's {@code usage}. */
    List<Event> finish(JsonNode usage);

    /** A whole (not streamed) chat response in this shape, with {@code usage}. */
    ObjectNode whole(JsonNode chatResponse, JsonNode usage);
}
