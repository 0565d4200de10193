package gptfast4j.server;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** The JSON objects of one choice's response, or of its stream's chunks, in OpenAI's shapes; choice {@code index} of the request's. */
record Responses(String id, boolean chat, String model, int index) {
    private ObjectNode base(boolean chunk) {
        return Server.JSON.createObjectNode().put("id", id).put("object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion")
                .put("created", System.currentTimeMillis() / 1000).put("model", model);
    }

    /** A chat stream's first chunk: the role. */
    ObjectNode role() {
        ObjectNode chunk = base(true);
        chunk.putArray("choices").addObject().put("index", index).putNull("finish_reason").putObject("delta").put("role", "assistant").put("content", "");
        return chunk;
    }

    /** A stream's chunk: a piece of text (null for none), and the finish reason in the last one (null before). */
    ObjectNode text(String piece, String finish) {
        ObjectNode chunk = base(true);
        ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
        if (chat) {
            ObjectNode delta = choice.putObject("delta");
            if (piece != null) delta.put("content", piece);
        } else {
            choice.put("text", piece != null ? piece : "").putNull("logprobs");
        }
        choice.put("finish_reason", finish);
        return chunk;
    }

    /** The stream's usage chunk ({@code stream_options.include_usage}): no choices. */
    ObjectNode usage(ObjectNode usage) {
        ObjectNode chunk = base(true);
        chunk.putArray("choices");
        chunk.set("usage", usage);
        return chunk;
    }

    /** A whole response. */
    ObjectNode response(String text, String finish) {
        ObjectNode response = base(false);
        ObjectNode choice = response.putArray("choices").addObject().put("index", index);
        if (chat) choice.putObject("message").put("role", "assistant").put("content", text);
        else choice.put("text", text);
        choice.putNull("logprobs").put("finish_reason", finish);
        return response;
    }
}
