package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The JSON objects of one choice's response, or of its stream's chunks, in OpenAI's shapes, or in llama.cpp's own
 * ({@code llama}: its {@code /completion}'s); choice {@code index} of the request's.
 */
record Responses(String id, boolean chat, String model, int index, boolean llama) {
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

    /**
     * A stream's chunk: a piece of text (null for none), its tokens' log-probabilities (null where none were asked
     * for), and the finish reason in the last one (null before).
     */
    ObjectNode text(String piece, JsonNode logprobs, String finish) {
        if (llama) {
            ObjectNode chunk = Server.JSON.createObjectNode().put("index", index).put("content", piece != null ? piece : "");
            chunk.putArray("tokens");
            if (logprobs != null) chunk.set("completion_probabilities", logprobs);
            return chunk.put("stop", false);
        }
        ObjectNode chunk = base(true);
        ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
        if (chat) {
            ObjectNode delta = choice.putObject("delta");
            if (piece != null) delta.put("content", piece);
        } else {
            choice.put("text", piece != null ? piece : "");
        }
        choice.set("logprobs", logprobs != null ? logprobs : NullNode.getInstance());
        choice.put("finish_reason", finish);
        return chunk;
    }

    /** A chat stream's chunk of a reply's thinking ({@link Reasoning}): OpenAI's {@code delta.reasoning_content}, as llama.cpp's server sends it. */
    ObjectNode reasoning(String piece, JsonNode logprobs) {
        ObjectNode chunk = base(true);
        ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
        choice.putObject("delta").put("reasoning_content", piece);
        choice.set("logprobs", logprobs != null ? logprobs : NullNode.getInstance());
        choice.putNull("finish_reason");
        return chunk;
    }

    /** A chat stream's chunk of a reply's calls, each whole ({@code index} its place in the reply's calls). */
    ObjectNode calls(java.util.List<Tools.Call> calls) {
        ObjectNode chunk = base(true);
        ObjectNode choice = chunk.putArray("choices").addObject().put("index", index);
        ArrayNode list = choice.putObject("delta").putArray("tool_calls");
        for (int i = 0; i < calls.size(); i++) call(list.addObject().put("index", i), calls.get(i));
        choice.putNull("logprobs");
        choice.putNull("finish_reason");
        return chunk;
    }

    private static void call(ObjectNode node, Tools.Call call) {
        node.put("id", call.id()).put("type", "function").putObject("function").put("name", call.name()).put("arguments", call.arguments());
    }

    /**
     * llama.cpp's {@code /completion}'s end, whole or as a stream's last event: the text ({@code content}, empty where
     * it was streamed), the prompt, the tokens predicted, evaluated and found in the cache, why it stopped
     * ({@code eos}, {@code word} with the stop string, or {@code limit}), whether the text has a line break, the timings.
     */
    ObjectNode llamaEnd(String content, String prompt, int predicted, int evaluated, int cached, String stopType, String stoppingWord,
                        boolean newLine, ObjectNode timings, JsonNode probabilities) {
        ObjectNode end = Server.JSON.createObjectNode().put("index", index).put("content", content);
        end.putArray("tokens");
        if (probabilities != null) end.set("completion_probabilities", probabilities);
        end.put("stop", true).put("model", model).put("tokens_predicted", predicted).put("tokens_evaluated", evaluated).put("prompt", prompt)
                .put("has_new_line", newLine).put("truncated", false).put("stop_type", stopType).put("stopping_word", stoppingWord).put("tokens_cached", cached);
        end.set("timings", timings);
        return end;
    }

    /** The stream's usage chunk ({@code stream_options.include_usage}): no choices. */
    ObjectNode usage(ObjectNode usage) {
        ObjectNode chunk = base(true);
        chunk.putArray("choices");
        chunk.set("usage", usage);
        return chunk;
    }

    /**
     * A whole response: its text (null for none, where a chat's reply calls tools), a chat's thinking (null for none,
     * {@link Reasoning}), a chat's calls (empty for none), its tokens' log-probabilities (null where none were asked
     * for), and the finish reason.
     */
    ObjectNode response(String text, String reasoning, java.util.List<Tools.Call> calls, JsonNode logprobs, String finish) {
        ObjectNode response = base(false);
        ObjectNode choice = response.putArray("choices").addObject().put("index", index);
        if (chat) {
            ObjectNode message = choice.putObject("message").put("role", "assistant").put("content", text);
            if (reasoning != null) message.put("reasoning_content", reasoning);
            if (!calls.isEmpty()) {
                ArrayNode list = message.putArray("tool_calls");
                calls.forEach(c -> call(list.addObject(), c));
            }
        } else {
            choice.put("text", text);
        }
        choice.set("logprobs", logprobs != null ? logprobs : NullNode.getInstance());
        choice.put("finish_reason", finish);
        return response;
    }

    /**
     * Tokens' log-probabilities in OpenAI's shape: a chat's {@code {"content": [{token, logprob, bytes, top_logprobs}]}},
     * a completion's {@code {tokens, token_logprobs, top_logprobs, text_offset}} ({@code offset}: the first token's
     * place in the reply's text).
     */
    JsonNode logprobs(java.util.List<Job.Logprob> tokens, gptfast4j.tokenizer.Tokenizer tokenizer, int offset) {
        if (llama) {
            // llama.cpp's /completion n_probs: [{id, token, bytes, logprob, top_logprobs: [{id, token, bytes, logprob}]}]
            ArrayNode probabilities = Server.JSON.createArrayNode();
            for (Job.Logprob t : tokens) {
                ObjectNode entry = tokenEntry(probabilities.addObject().put("id", t.token()), t.token(), t.logprob(), tokenizer);
                ArrayNode top = entry.putArray("top_logprobs");
                for (int i = 0; i < t.top().length; i++) tokenEntry(top.addObject().put("id", t.top()[i]), t.top()[i], t.topLogprobs()[i], tokenizer);
            }
            return probabilities;
        }
        ObjectNode node = Server.JSON.createObjectNode();
        if (chat) {
            ArrayNode content = node.putArray("content");
            for (Job.Logprob t : tokens) {
                ObjectNode entry = tokenEntry(content.addObject(), t.token(), t.logprob(), tokenizer);
                ArrayNode top = entry.putArray("top_logprobs");
                for (int i = 0; i < t.top().length; i++) tokenEntry(top.addObject(), t.top()[i], t.topLogprobs()[i], tokenizer);
            }
            return node;
        }
        ArrayNode texts = node.putArray("tokens"), logprobs = node.putArray("token_logprobs"), tops = node.putArray("top_logprobs"),
                offsets = node.putArray("text_offset");
        for (Job.Logprob t : tokens) {
            String text = Job.text(tokenizer, t.token());
            texts.add(text);
            logprobs.add(t.logprob());
            ObjectNode top = tops.addObject();
            for (int i = 0; i < t.top().length; i++) top.put(Job.text(tokenizer, t.top()[i]), t.topLogprobs()[i]);
            offsets.add(offset);
            offset += text.length();
        }
        return node;
    }

    private static ObjectNode tokenEntry(ObjectNode entry, int token, float logprob, gptfast4j.tokenizer.Tokenizer tokenizer) {
        entry.put("token", Job.text(tokenizer, token)).put("logprob", logprob);
        ArrayNode bytes = entry.putArray("bytes");
        for (byte b : tokenizer.bytes(token)) bytes.add(b & 0xFF);
        return entry;
    }
}
