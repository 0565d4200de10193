package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.model.Pooling;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * {@code POST /v1/embeddings}, OpenAI's: {@code input} (a text, a list of texts, a list of token ids or a list of such
 * lists), {@code encoding_format} ({@code float}, or {@code base64}: the floats' little-endian bytes, which OpenAI's
 * Python client asks for by default); each input's embedding as {@link Pooling} makes it (the server's
 * {@code --pooling}), computed on the engine's thread in a free slot, whose cache then holds the last input's tokens.
 *
 * @param inputs    each input's tokens (BOS where the model asks for it; EOS where the file does)
 * @param base64    whether the embeddings go as base64 text rather than lists of numbers
 * @param normalize how each is scaled ({@link Pooling#normalize}): llama.cpp's {@code embd_normalize}, 2 (length 1) by
 *                  default
 * @param llama     answered in llama.cpp's own shape ({@code /embedding}, or a body with {@code content}):
 *                  {@code [{"index", "embedding": [[...]]}]}
 */
record Embeddings(List<int[]> inputs, boolean base64, int normalize, boolean llama) {
    /** OpenAI's limit on a request's inputs. */
    static final int MAX_INPUTS = 2048;

    /**
     * A request's body, checked; each input at most {@code context} tokens. Its {@code input}, or llama.cpp's
     * {@code content} (then answered in llama.cpp's shape, as where {@code llama}).
     */
    static Embeddings parse(JsonNode body, EmbeddingModel model, int context, boolean llama) {
        if (!body.isObject()) throw Server.HttpError.invalid("the request body must be a JSON object");
        JsonNode input = body.get("input");
        if ((input == null || input.isNull()) && body.hasNonNull("content")) {
            input = body.get("content");
            llama = true;
        }
        if (input == null || input.isNull()) throw Server.HttpError.invalid("'input' (or llama.cpp's 'content') is required: a text, a list of texts, or token ids");
        JsonNode formatNode = body.get("encoding_format");
        String format = formatNode == null || formatNode.isNull() ? "float" : formatNode.asText();
        if (!format.equals("float") && !format.equals("base64")) throw Server.HttpError.invalid("'encoding_format' must be float or base64, got " + formatNode);
        JsonNode dimensions = body.get("dimensions");
        int dim = model.dim();
        if (dimensions != null && !dimensions.isNull() && !(dimensions.isIntegralNumber() && dimensions.asInt() == dim)) {
            throw Server.HttpError.invalid("'dimensions' must be this model's, " + dim + ", if given (embeddings are not shortened), got " + dimensions);
        }
        List<JsonNode> items = new ArrayList<>();
        // one text, one list of ids, or a list of either
        if (input.isTextual() || input.isArray() && !input.isEmpty() && input.get(0).isNumber()) items.add(input);
        else if (input.isArray()) input.forEach(items::add);
        if (items.isEmpty()) throw Server.HttpError.invalid("'input' is empty");
        if (items.size() > MAX_INPUTS) throw Server.HttpError.invalid("'input' holds " + items.size() + " inputs; at most " + MAX_INPUTS);
        List<int[]> inputs = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            JsonNode item = items.get(i);
            String where = items.size() == 1 && item == input ? "'input'" : "input[" + i + "]";
            int[] ids;
            if (item.isTextual()) {
                if (item.asText().isEmpty()) throw Server.HttpError.invalid(where + " is an empty text");
                ids = model.tokens(item.asText());
            } else if (item.isArray() && !item.isEmpty()) {
                try {
                    ids = CompletionRequest.ids(item);
                } catch (CompletionRequest.Invalid e) {
                    throw Server.HttpError.invalid(where + ": " + e.getMessage());
                }
                model.checkVocabulary(ids, where + ": ");
            } else {
                throw Server.HttpError.invalid(where + " must be a non-empty text or a non-empty list of token ids");
            }
            if (ids.length > context) throw Server.HttpError.invalid(where + " has " + ids.length + " tokens but the context length is " + context);
            inputs.add(ids);
        }
        JsonNode normalize = body.get("embd_normalize");
        if (normalize != null && !normalize.isNull() && !(normalize.isIntegralNumber() && normalize.asInt() >= -1 && normalize.canConvertToInt())) {
            throw Server.HttpError.invalid("'embd_normalize' must be -1 (none), 0 (int16 range), 1 (taxicab), 2 (Euclidean) or a p-norm above 2, got " + normalize);
        }
        return new Embeddings(inputs, format.equals("base64"), normalize == null || normalize.isNull() ? Pooling.EUCLIDEAN : normalize.asInt(), llama);
    }

    /** llama.cpp's own response: for each input in order, its index and its pooled embedding as a list of one. */
    ArrayNode llamaResponse(List<float[]> embeddings) {
        ArrayNode response = Server.JSON.createArrayNode();
        for (int i = 0; i < embeddings.size(); i++) {
            ArrayNode values = response.addObject().put("index", i).putArray("embedding").addArray();
            for (float v : embeddings.get(i)) values.add(v);
        }
        return response;
    }

    /** The tokens of all the inputs ({@code usage}). */
    int tokens() {
        return inputs.stream().mapToInt(ids -> ids.length).sum();
    }

    /** OpenAI's response for {@code embeddings}, one per input in order. */
    ObjectNode response(List<float[]> embeddings, String model) {
        ObjectNode response = Server.JSON.createObjectNode().put("object", "list");
        ArrayNode data = response.putArray("data");
        for (int i = 0; i < embeddings.size(); i++) {
            ObjectNode item = data.addObject().put("object", "embedding").put("index", i);
            float[] e = embeddings.get(i);
            if (base64) {
                ByteBuffer bytes = ByteBuffer.allocate(4 * e.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float v : e) bytes.putFloat(v);
                item.put("embedding", Base64.getEncoder().encodeToString(bytes.array()));
            } else {
                ArrayNode values = item.putArray("embedding");
                for (float v : e) values.add(v);
            }
        }
        response.put("model", model);
        response.putObject("usage").put("prompt_tokens", tokens()).put("total_tokens", tokens());
        return response;
    }
}
