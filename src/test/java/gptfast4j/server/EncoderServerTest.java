package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.Shared;
import gptfast4j.model.Encoder;
import gptfast4j.model.EncoderTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An encoder's server ({@link EncoderServer}) on EncoderTest's random BERT files: embeddings and a reranker's scores of
 * query-document pairs are llama-embedding's (src/test/resources/embeddings/bert-mini-embeddings.json), to the F16
 * GELU's difference; the text endpoints answer 501, bad requests 400, an API key is asked for.
 */
class EncoderServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient CLIENT = HttpClient.newHttpClient();
    private static final JsonNode REFS = Shared.json(Path.of("src/test/resources/embeddings/bert-mini-embeddings.json"));

    private record Reply(int status, JsonNode body) {
    }

    private static Reply post(EncoderServer server, String path, String body, String key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path)).POST(HttpRequest.BodyPublishers.ofString(body));
        if (key != null) b.header("Authorization", "Bearer " + key);
        HttpResponse<String> r = CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        return new Reply(r.statusCode(), JSON.readTree(r.body()));
    }

    @Test
    void embeddingsAreLlamaEmbeddingsOutput(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("bert-mini.gguf");
        EncoderTest.writeBert(file, false);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (EncoderServer server = new EncoderServer(Encoder.load(file), new InetSocketAddress("127.0.0.1", 0), "k", new PrintStream(log, true))) {
            var input = JSON.createObjectNode();
            REFS.path("texts").forEach(t -> input.withArray("input").add(t.asText()));
            Reply r = post(server, "/v1/embeddings", input.toString(), "k");
            assertEquals(200, r.status(), r.body().toString());
            assertEquals(REFS.path("n_tokens").asInt(), r.body().at("/usage/prompt_tokens").asInt());
            for (int i = 0; i < REFS.path("texts").size(); i++) {
                JsonNode embedding = r.body().at("/data/" + i + "/embedding");
                assertEquals(REFS.at("/mean/" + i).size(), embedding.size());
                for (int j = 0; j < embedding.size(); j++) assertEquals(REFS.at("/mean/" + i + "/" + j).asDouble(), embedding.get(j).asDouble(), EncoderTest.TOLERANCE);
            }
            assertEquals(401, post(server, "/v1/embeddings", input.toString(), null).status());
            assertEquals(400, post(server, "/v1/embeddings", "{\"input\": [[101, 40000]]}", "k").status());
            Reply tooLong = post(server, "/v1/embeddings", JSON.createObjectNode().put("input", "word ".repeat(EncoderTest.CONTEXT)).toString(), "k");
            assertEquals(400, tooLong.status());
            assertEquals("'input' has " + (EncoderTest.CONTEXT + 2) + " tokens but the context length is " + EncoderTest.CONTEXT, tooLong.body().at("/error/message").asText());
            Reply chat = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}", "k");
            assertEquals(501, chat.status());
            assertTrue(chat.body().at("/error/message").asText().endsWith("is an encoder (bert), which makes embeddings and rerank scores, not text: POST /v1/embeddings or /v1/rerank"));
            assertEquals(501, post(server, "/v1/rerank", "{\"query\": \"a\", \"documents\": [\"b\"]}", "k").status());
            Reply tokens = post(server, "/tokenize", "{\"content\": \"hello world\", \"add_special\": true}", "k");
            assertEquals(JSON.readTree("[101, 22172, 3186, 102]"), tokens.body().get("tokens"));
        }
        assertTrue(log.toString().contains("POST /v1/embeddings 200"), log.toString());
    }

    /**
     * Concurrent requests, whose texts the server's passes may run together: each response is its texts' own
     * embeddings (llama-embedding's), in its own normalization (L2 or none).
     */
    @Test
    void concurrentRequestsEachGetTheirOwnEmbeddings(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("bert-mini.gguf");
        EncoderTest.writeBert(file, false);
        try (EncoderServer server = new EncoderServer(Encoder.load(file), new InetSocketAddress("127.0.0.1", 0), null, new PrintStream(new ByteArrayOutputStream()))) {
            List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> replies = new java.util.ArrayList<>();
            for (int r = 0; r < 16; r++) {
                var body = JSON.createObjectNode().put("input", REFS.at("/texts/" + (r % 4)).asText()).put("embd_normalize", r % 2 == 0 ? 2 : -1);
                replies.add(CLIENT.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/v1/embeddings"))
                        .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8)));
            }
            for (int r = 0; r < 16; r++) {
                HttpResponse<String> reply = replies.get(r).get();
                assertEquals(200, reply.statusCode(), reply.body());
                JsonNode embedding = JSON.readTree(reply.body()).at("/data/0/embedding"), expected = REFS.at("/mean/" + (r % 4));
                double norm = 0;
                for (int j = 0; j < embedding.size(); j++) norm += embedding.get(j).asDouble() * embedding.get(j).asDouble();
                double scale = r % 2 == 0 ? 1 : Math.sqrt(norm); // unnormalized: the reference's direction at its own length
                for (int j = 0; j < embedding.size(); j++) assertEquals(expected.get(j).asDouble(), embedding.get(j).asDouble() / scale, EncoderTest.TOLERANCE, "request " + r);
                if (r % 2 == 1) assertTrue(Math.abs(Math.sqrt(norm) - 1) > 1e-3, "request " + r + " was normalized");
            }
        }
    }

    /** A reranker's scores of [CLS] query [SEP] document [SEP], best first: llama-embedding's of the tab-separated lines. */
    @Test
    void rerankScoresAreLlamaEmbeddingsOutput(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("bert-mini-reranker.gguf");
        EncoderTest.writeBert(file, true);
        try (EncoderServer server = new EncoderServer(Encoder.load(file), new InetSocketAddress("127.0.0.1", 0), null, new PrintStream(new ByteArrayOutputStream()))) {
            JsonNode pairs = REFS.path("pairs");
            var body = JSON.createObjectNode().put("query", pairs.path("query").asText());
            body.set("documents", pairs.path("documents"));
            Reply r = post(server, "/v1/rerank", body.toString(), null);
            assertEquals(200, r.status(), r.body().toString());
            assertEquals(pairs.path("n_tokens").asInt(), r.body().at("/usage/prompt_tokens").asInt());
            JsonNode results = r.body().path("results");
            assertEquals(3, results.size());
            int[] best = {1, 0, 2}; // the scores' order
            for (int k = 0; k < 3; k++) {
                int i = results.get(k).path("index").asInt();
                assertEquals(best[k], i);
                assertEquals(pairs.at("/scores/" + i).asDouble(), results.get(k).path("relevance_score").asDouble(), EncoderTest.TOLERANCE);
            }
            Reply embeddings = post(server, "/v1/embeddings", "{\"input\": \"a\"}", null);
            assertEquals(501, embeddings.status());
        }
    }
}
