package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.model.Checkpoint;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * A {@code POST /v1/rerank} request, as llama.cpp's server takes it: a {@code query} and its {@code documents} (Jina's
 * API; TEI's where the body gives {@code texts}), each pair made one prompt ({@link #prompt}) that a reranker scores
 * ({@link gptfast4j.model.Pooling#RANK}: the first of its classifier's scores, Qwen3-Reranker's probability of
 * "yes"); answered best first, at most {@code top_n} of them.
 *
 * @param prompts  each document's prompt, in the request's order
 * @param texts    the documents, for TEI's {@code return_text}
 * @param topN     how many results to give back
 * @param tei      whether the body was TEI's ({@code texts}): answered as TEI answers
 * @param withText TEI's {@code return_text}
 * @param model    the request's {@code model}, which the response names (null: the server's)
 */
record Rerank(List<int[]> prompts, List<String> texts, int topN, boolean tei, boolean withText, String model) {

    /** A request's body, checked; each prompt at most {@code context} tokens. */
    static Rerank parse(JsonNode body, EmbeddingModel model, int context) {
        if (!body.isObject()) throw Server.HttpError.invalid("the request body must be a JSON object");
        JsonNode query = body.get("query");
        if (query == null || query.isNull()) throw Server.HttpError.invalid("'query' must be provided");
        if (!query.isTextual()) throw Server.HttpError.invalid("'query' must be a string");
        boolean tei = body.has("texts");
        JsonNode documents = tei ? body.get("texts") : body.get("documents");
        String name = tei ? "'texts'" : "'documents'";
        if (documents == null || !documents.isArray() || documents.isEmpty()) throw Server.HttpError.invalid(name + " must be a non-empty array of strings");
        if (documents.size() > Embeddings.MAX_INPUTS) throw Server.HttpError.invalid(name + " holds " + documents.size() + " documents; at most " + Embeddings.MAX_INPUTS);
        List<String> texts = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < documents.size(); i++) {
            if (!documents.get(i).isTextual()) throw Server.HttpError.invalid(name + "[" + i + "] must be a string");
            texts.add(documents.get(i).asText());
            int[] ids = model.pair(query.asText(), documents.get(i).asText());
            if (ids.length == 0) throw Server.HttpError.invalid(name + "[" + i + "] and the query make no tokens");
            if (ids.length > context) throw Server.HttpError.invalid(name + "[" + i + "] with the query has " + ids.length + " tokens but the context length is " + context);
            prompts.add(ids);
        }
        JsonNode top = body.get("top_n");
        if (top != null && !top.isNull() && !(top.isIntegralNumber() && top.canConvertToInt() && top.asInt() >= 0)) {
            throw Server.HttpError.invalid("'top_n' must be a whole number >= 0, got " + top);
        }
        int topN = top == null || top.isNull() ? documents.size() : Math.min(top.asInt(), documents.size());
        return new Rerank(prompts, texts, topN, tei, tei && body.path("return_text").asBoolean(false), body.path("model").isTextual() ? body.get("model").asText() : null);
    }

    /**
     * The prompt of a query and a document, as llama.cpp's server makes it: the file's rerank template
     * ({@code tokenizer.chat_template.rerank}, Qwen3-Reranker's) with {@code {query}} and then {@code {document}}
     * replaced, its special tokens' text taken as those tokens and no BOS added; else BOS (where the vocabulary adds
     * one), the query, EOS (where it adds one), SEP (where it adds one), the document, EOS.
     */
    static int[] prompt(Checkpoint ckpt, String query, String document) {
        gptfast4j.io.Metadata md = ckpt.metadata();
        String template = md == null ? null : md.getString("tokenizer.chat_template.rerank", null);
        if (template != null) return ckpt.tokenizer().encodeWithSpecials(template.replace("{query}", query).replace("{document}", document));
        boolean eos = md != null && md.getBool("tokenizer.ggml.add_eos_token", false), sep = md != null && md.getBool("tokenizer.ggml.add_sep_token", false);
        int sepId = md == null ? -1 : md.getInt("tokenizer.ggml.seperator_token_id", -1);
        IntStream.Builder ids = IntStream.builder();
        if (ckpt.addBos()) ids.add(ckpt.bos());
        for (int id : ckpt.tokenizer().encode(query)) ids.add(id);
        if (eos) ids.add(ckpt.eos()[0]);
        if (sep && sepId >= 0) ids.add(sepId);
        for (int id : ckpt.tokenizer().encode(document)) ids.add(id);
        if (eos) ids.add(ckpt.eos()[0]);
        return ids.build().toArray();
    }

    /** The tokens of all the prompts ({@code usage}). */
    int tokens() {
        return prompts.stream().mapToInt(ids -> ids.length).sum();
    }

    /** The response for each document's {@code scores} (in the request's order): the best {@link #topN}, best first. */
    JsonNode response(float[] scores, String serverModel) {
        List<Integer> order = IntStream.range(0, scores.length).boxed().sorted(Comparator.comparingDouble(i -> -scores[i])).limit(topN).toList();
        ArrayNode results = Server.JSON.createArrayNode();
        for (int i : order) {
            ObjectNode r = results.addObject().put("index", i).put(tei ? "score" : "relevance_score", scores[i]);
            if (withText) r.put("text", texts.get(i));
        }
        if (tei) return results;
        ObjectNode response = Server.JSON.createObjectNode().put("model", model != null ? model : serverModel).put("object", "list");
        response.putObject("usage").put("prompt_tokens", tokens()).put("total_tokens", tokens());
        response.set("results", results);
        return response;
    }
}
