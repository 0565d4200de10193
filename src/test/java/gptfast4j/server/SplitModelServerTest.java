package gptfast4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.Shared;
import gptfast4j.distributed.SocketGroup;
import gptfast4j.generate.Generator;
import gptfast4j.model.ChatFormat;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A server over a model split with a follower (tensor parallelism): it answers as one process does, and once the
 * follower is gone every request fails naming it and {@code /health} is 503, so that a supervisor restarts the server.
 */
class SplitModelServerTest {
    private static final HttpClient CLIENT = HttpClient.newHttpClient();

    @Test
    void aServerWhosePeerIsGoneIsUnhealthy() throws Exception {
        Checkpoint stories = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        try (ServerSocketChannel listening = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
            Llama followerWhole = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null).model();
            CompletableFuture<SocketGroup> followerGroup = new CompletableFuture<>();
            Thread follower = Thread.ofPlatform().daemon().start(() -> {
                try {
                    SocketGroup g = SocketGroup.follow(listening, null, print -> null, m -> { });
                    followerGroup.complete(g);
                    followerWhole.split(g).follow();
                } catch (Throwable e) {
                    followerGroup.completeExceptionally(e); // ends when the test closes the group under it, too
                }
            });
            int port = ((InetSocketAddress) listening.getLocalAddress()).getPort();
            Checkpoint split = stories.withModel(stories.model().split(SocketGroup.lead(List.of("127.0.0.1:" + port), "", null)));
            Llama.State state = split.model().newState(256, 256, 1, KvCache.Type.F32);
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            try (Server server = new Server(split, Engine.sequential(state, new Generator(split.model(), state, split.eos())), ChatFormat.PLAIN,
                    new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), null, new PrintStream(log, true, StandardCharsets.UTF_8))) {
                JsonNode reference = Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")).path("cases").get(1);
                assertEquals("Once upon a time", reference.path("prompt").asText());
                String completion = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 200, \"temperature\": 0}";
                HttpResponse<String> ok = request(server, "POST", "/v1/completions", completion);
                assertEquals(200, ok.statusCode(), ok.body());
                assertEquals(reference.path("gen_text").asText(), new ObjectMapper().readTree(ok.body()).at("/choices/0/text").asText()); // llama.cpp's greedy text
                assertEquals(200, request(server, "GET", "/health", null).statusCode());

                followerGroup.get(30, TimeUnit.SECONDS).close(); // the follower's process gone
                follower.join(30_000);
                for (int i = 0; i < 2; i++) { // the request that finds it gone, and one after
                    HttpResponse<String> failed = request(server, "POST", "/v1/completions", completion);
                    assertEquals(500, failed.statusCode(), failed.body());
                    assertTrue(failed.body().contains("tensor-parallel peer 127.0.0.1:" + port), failed.body());
                }
                HttpResponse<String> health = request(server, "GET", "/health", null);
                assertEquals(503, health.statusCode(), health.body());
                JsonNode h = new ObjectMapper().readTree(health.body());
                assertEquals("error", h.path("status").asText());
                assertTrue(h.path("error").asText().startsWith("tensor-parallel peer 127.0.0.1:" + port), health.body());
            }
        }
    }

    private static HttpResponse<String> request(Server server, String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path));
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        return CLIENT.send(b.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    }
}
